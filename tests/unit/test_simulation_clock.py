"""Compressed simulation time: fast until it reaches now, never ahead of the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ioc.simulator.runner import next_working_morning, simulated_now

REAL = datetime(2026, 11, 21, 12, tzinfo=UTC)


def test_simulated_time_runs_at_the_speedup_until_it_catches_up_with_now() -> None:
    start = REAL - timedelta(days=1)
    assert simulated_now(start, REAL, REAL + timedelta(seconds=10), 720) == start + timedelta(
        hours=2
    )
    later = REAL + timedelta(minutes=10)
    assert simulated_now(start, REAL, later, 720) == later


def test_a_sunday_night_start_moves_to_monday_0700_in_vietnam() -> None:
    sunday_night_vn = datetime(2026, 11, 15, 15, tzinfo=UTC)  # 22:00 Sunday in Hanoi
    assert next_working_morning(sunday_night_vn) == datetime(2026, 11, 16, 0, tzinfo=UTC)


def test_a_weekday_before_seven_starts_that_morning() -> None:
    tuesday_early = datetime(2026, 11, 16, 22, tzinfo=UTC)  # 05:00 Tuesday in Hanoi
    assert next_working_morning(tuesday_early) == datetime(2026, 11, 16, 0, tzinfo=UTC) + (
        timedelta(days=1)
    )
