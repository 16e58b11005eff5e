"""Working days and reporting periods in Asia/Ho_Chi_Minh.

Legal processing times of administrative procedures count working days: weekends and public
holidays excluded. Holidays are data (a province may also add its own days off), so the
calendar takes them as a set; :data:`ioc.kpi.holidays.VN_PUBLIC_HOLIDAYS` is the default.
Reporting periods (today, month/quarter/year to date) start at Vietnamese midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

REPORTING_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

PeriodName = Literal["today", "month", "quarter", "year", "rolling_24h"]
PERIOD_NAMES: tuple[PeriodName, ...] = ("today", "month", "quarter", "year", "rolling_24h")


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)`` in aware datetimes; ``name`` says which kind it is."""

    name: PeriodName
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("periods need timezone-aware bounds")
        if self.end < self.start:
            raise ValueError("a period cannot end before it starts")

    def contains(self, when: datetime) -> bool:
        return self.start <= when < self.end


def local_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=REPORTING_TZ)


def periods_at(now: datetime) -> dict[PeriodName, Period]:
    """The to-date periods ending at ``now`` (Vietnamese calendar) and the rolling 24 h."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(REPORTING_TZ).date()
    quarter_month = 3 * ((today.month - 1) // 3) + 1
    starts: dict[PeriodName, datetime] = {
        "today": local_midnight(today),
        "month": local_midnight(today.replace(day=1)),
        "quarter": local_midnight(today.replace(month=quarter_month, day=1)),
        "year": local_midnight(today.replace(month=1, day=1)),
        "rolling_24h": now - timedelta(hours=24),
    }
    return {name: Period(name, start, now) for name, start in starts.items()}


class WorkCalendar:
    """Working days: Monday–Friday that are not holidays, in the Vietnamese calendar."""

    def __init__(self, holidays: Iterable[date] = ()) -> None:
        self.holidays = frozenset(holidays)
        # Working days in (anchor, day] by ordinal, grown on demand: live KPIs ask this for
        # every open dossier on every refresh, so it must not walk the days each time.
        self._cumulative: dict[int, int] = {}
        self._lo = self._hi = 0

    def is_working_day(self, d: date) -> bool:
        return d.weekday() < 5 and d not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same local time ``days`` working days after ``start`` (a due time)."""
        if days < 0:
            raise ValueError("days must be ≥ 0")
        local = start.astimezone(REPORTING_TZ)
        d = local.date()
        remaining = days
        while remaining:
            d += timedelta(days=1)
            if self.is_working_day(d):
                remaining -= 1
        return datetime.combine(d, local.timetz()).astimezone(start.tzinfo)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days strictly after ``start``'s local date, up to and including ``end``'s.

        So a due time ``add_working_days(t, n)`` is exactly ``n`` working days after ``t``.
        """
        a = start.astimezone(REPORTING_TZ).date()
        b = end.astimezone(REPORTING_TZ).date()
        return self._count_to(b) - self._count_to(a)

    def _count_to(self, d: date) -> int:
        o = d.toordinal()
        cum = self._cumulative
        if not cum:
            cum[o] = 0
            self._lo = self._hi = o
        while o > self._hi:
            self._hi += 1
            cum[self._hi] = cum[self._hi - 1] + self.is_working_day(date.fromordinal(self._hi))
        while o < self._lo:
            cum[self._lo - 1] = cum[self._lo] - self.is_working_day(date.fromordinal(self._lo))
            self._lo -= 1
        return cum[o]
