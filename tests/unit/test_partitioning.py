"""Partitions follow Asia/Ho_Chi_Minh reporting days and are created ahead of the data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.partitioning import (
    REPORTING_TZ,
    expired_partitions,
    plan_partitions,
    span_containing,
)


def test_an_event_at_2330_utc_belongs_to_the_next_vietnamese_day() -> None:
    span = span_containing("security_events", datetime(2026, 11, 20, 23, 30, tzinfo=UTC), "day")
    assert span.name == "security_events_p20261121"
    assert span.start == datetime(2026, 11, 21, tzinfo=REPORTING_TZ)


def test_month_partition_of_december_ends_on_new_year_in_vietnam() -> None:
    span = span_containing("dossier_events", datetime(2026, 12, 31, 18, tzinfo=UTC), "month")
    assert span.name == "dossier_events_p20270101"
    span = span_containing("dossier_events", datetime(2026, 12, 15, tzinfo=UTC), "month")
    assert span.end == datetime(2027, 1, 1, tzinfo=REPORTING_TZ)


def test_week_partitions_start_on_monday() -> None:
    span = span_containing("uptime_checks", datetime(2026, 11, 21, 5, tzinfo=UTC), "week")
    assert span.start.weekday() == 0
    assert span.end - span.start == timedelta(days=7)


def test_plan_creates_missing_partitions_for_the_batch_and_ahead_of_now() -> None:
    now = datetime(2026, 11, 21, 5, tzinfo=UTC)
    times = [datetime(2026, 11, 1, tzinfo=UTC), now]
    plan = plan_partitions("security_events", "day", times, now=now, ahead=2)
    assert [s.name for s in plan] == [
        "security_events_p20261101",
        "security_events_p20261121",
        "security_events_p20261122",
        "security_events_p20261123",
    ]


def test_plan_skips_partitions_that_exist() -> None:
    now = datetime(2026, 11, 21, 5, tzinfo=UTC)
    existing = {"security_events_p20261121", "security_events_p20261122"}
    plan = plan_partitions("security_events", "day", [now], existing=existing, now=now, ahead=1)
    assert plan == []


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        span_containing("t", datetime(2026, 1, 1), "day")  # noqa: DTZ001


def test_only_partitions_entirely_past_retention_expire() -> None:
    now = datetime(2026, 11, 21, tzinfo=UTC)
    spans = [span_containing("t", now - timedelta(days=d), "day") for d in (1, 30, 31, 400)]
    expired = expired_partitions(spans, now=now, retention=timedelta(days=30))
    assert [s.name for s in expired] == [spans[3].name, spans[2].name]


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2099, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    st.sampled_from(["day", "week", "month"]),
)
def test_every_instant_falls_in_exactly_its_partition(when: datetime, interval: str) -> None:
    span = span_containing("t", when, interval)  # type: ignore[arg-type]
    assert span.start <= when < span.end
    assert span_containing("t", span.end, interval).start == span.end  # type: ignore[arg-type]
    assert span_containing("t", span.start, interval) == span  # type: ignore[arg-type]
