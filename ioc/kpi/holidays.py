"""Vietnamese public holidays (Bộ luật Lao động 2019, Điều 112) as data for working-day counts.

Fixed-date holidays follow the law's rules; the lunar ones (Tết, Giỗ Tổ Hùng Vương) come from
a table of lunar new-year dates. The Prime Minister fixes the exact Tết days and swaps working
days every year, so these defaults are the common pattern, not the decree: a province loads
the announced list (``IOC_HOLIDAYS`` adds days) where it matters. Holidays that fall on a
weekend give the next working day off, as the law provides.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

# Mùng 1 Tết (lunar new year's day) and Giỗ Tổ Hùng Vương (10/3 lunar), by Gregorian year.
LUNAR_NEW_YEAR: dict[int, date] = {
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
}
HUNG_KINGS: dict[int, date] = {
    2023: date(2023, 4, 29),
    2024: date(2024, 4, 18),
    2025: date(2025, 4, 7),
    2026: date(2026, 4, 26),
    2027: date(2027, 4, 16),
    2028: date(2028, 4, 4),
}


def statutory_days(year: int) -> list[date]:
    """The 11 statutory days off of ``year`` (fewer if its lunar dates are not tabled)."""
    days = [
        date(year, 1, 1),  # Tết Dương lịch
        date(year, 4, 30),  # Ngày Chiến thắng
        date(year, 5, 1),  # Quốc tế Lao động
        date(year, 9, 1),  # Quốc khánh: the adjacent day (the usual choice)
        date(year, 9, 2),  # Quốc khánh
    ]
    if year in LUNAR_NEW_YEAR:
        new_year = LUNAR_NEW_YEAR[year]
        days += [new_year + timedelta(days=d) for d in range(-1, 4)]  # 30 Tết … mùng 4
    if year in HUNG_KINGS:
        days.append(HUNG_KINGS[year])
    return sorted(days)


def with_compensatory_days(days: Iterable[date]) -> frozenset[date]:
    """Add, for each holiday on a Saturday or Sunday, the next weekday that is not a holiday."""
    result = set(days)
    for d in sorted(result):
        if d.weekday() >= 5:
            extra = d + timedelta(days=1)
            while extra.weekday() >= 5 or extra in result:
                extra += timedelta(days=1)
            result.add(extra)
    return frozenset(result)


def vn_public_holidays(years: Iterable[int], extra: Iterable[date] = ()) -> frozenset[date]:
    """Days off for ``years``: statutory days, their compensatory days, and ``extra``."""
    statutory = [d for y in years for d in statutory_days(y)]
    return with_compensatory_days([*statutory, *extra])


VN_PUBLIC_HOLIDAYS = vn_public_holidays(range(2023, 2029))
