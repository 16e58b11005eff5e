"""Working days and reporting periods as the 766 rules count them, in Vietnamese time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.kpi.calendar import REPORTING_TZ, WorkCalendar, periods_at
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS, statutory_days, vn_public_holidays

CAL = WorkCalendar(VN_PUBLIC_HOLIDAYS)


def vn(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=REPORTING_TZ)


def test_the_statutory_year_has_eleven_days_off() -> None:
    assert len(statutory_days(2026)) == 11


def test_a_holiday_on_sunday_gives_monday_off() -> None:
    # Giỗ Tổ Hùng Vương 2026 is Sunday 26 April: Monday 27 April is off instead.
    assert date(2026, 4, 27) in VN_PUBLIC_HOLIDAYS
    assert not CAL.is_working_day(date(2026, 4, 27))


def test_due_time_skips_weekends_and_tet() -> None:
    # Received Friday 13 Feb 2026 at 10:00; Tết 2026 runs 16–20 Feb (30 Tết … mùng 4).
    due = CAL.add_working_days(vn(2026, 2, 13, 10), 3)
    assert due == vn(2026, 2, 25, 10)
    assert CAL.working_days_between(vn(2026, 2, 13, 10), due) == 3


def test_a_province_can_add_its_own_days_off() -> None:
    extra = WorkCalendar(vn_public_holidays([2026], extra=[date(2026, 11, 24)]))
    assert not extra.is_working_day(date(2026, 11, 24))
    assert CAL.is_working_day(date(2026, 11, 24))


def test_periods_start_at_vietnamese_midnight() -> None:
    now = datetime(2026, 3, 31, 18, 30, tzinfo=UTC)  # 01:30 on 1 April in Hanoi
    p = periods_at(now)
    assert p["today"].start == vn(2026, 4, 1)
    assert p["month"].start == vn(2026, 4, 1)
    assert p["quarter"].start == vn(2026, 4, 1)
    assert p["year"].start == vn(2026, 1, 1)
    assert p["rolling_24h"].start == now - timedelta(hours=24)
    assert all(period.end == now for period in p.values())


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        periods_at(datetime(2026, 1, 1))  # noqa: DTZ001


@given(
    st.datetimes(
        min_value=datetime(2024, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2027, 12, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.integers(0, 60),
)
def test_adding_n_working_days_is_n_working_days_later(start: datetime, n: int) -> None:
    due = CAL.add_working_days(start, n)
    assert CAL.working_days_between(start, due) == n
    assert due >= start
    if n:
        assert CAL.is_working_day(due.astimezone(REPORTING_TZ).date())
