"""Uptime KPIs: availability outside maintenance, incidents, recovery time, TLS expiry."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.events import UptimeEvent
from ioc.kpi.uptime import (
    CheckCounts,
    Incident,
    IncidentSummary,
    IncidentTracker,
    MaintenanceWindow,
    availability,
    bucket_counts,
    days_until,
    floor_to,
    incidents,
    window_bounds,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_ids = itertools.count()


def check(minute: float, status: str, service: str = "portal", latency: float | None = 120.0):
    return UptimeEvent(
        event_id=f"c{next(_ids)}",
        event_time=T0 + timedelta(minutes=minute),
        service_id=service,
        status=status,  # type: ignore[arg-type]
        latency_ms=latency,
    )


def per_bucket(events: list[UptimeEvent], service: str = "portal") -> dict[datetime, CheckCounts]:
    return {m: c for (s, m), c in bucket_counts(events).items() if s == service}


def test_availability_counts_degraded_as_available_and_excludes_maintenance_buckets() -> None:
    # Two checks a minute over 15 minutes (three buckets); the portal is down from 08:06 to 08:08.
    events = [
        check(m / 2, "degraded" if m == 1 else "down" if 12 <= m < 16 else "up") for m in range(30)
    ]
    buckets = per_bucket(events)
    assert sorted(buckets) == [T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]
    whole = availability("portal", buckets, T0, T0 + timedelta(minutes=15))
    assert (whole.checks, whole.up, whole.degraded, whole.down) == (30, 25, 1, 4)
    assert whole.availability == pytest.approx(26 / 30)
    # A window from 08:06:10 to 08:06:20 touches the 08:05 bucket only: those ten checks go.
    window = MaintenanceWindow(T0 + timedelta(seconds=370), T0 + timedelta(seconds=380), "portal")
    kept = availability("portal", buckets, T0, T0 + timedelta(minutes=15), [window])
    assert (kept.checks, kept.down, kept.availability) == (20, 0, 1.0)
    # Another service's window, or one that ends exactly at a bucket's start, changes nothing.
    other = MaintenanceWindow(T0, T0 + timedelta(minutes=15), "mail")
    ends_at_bucket = MaintenanceWindow(T0 - timedelta(minutes=5), T0, None)
    assert (
        availability("portal", buckets, T0, T0 + timedelta(minutes=15), [other, ends_at_bucket])
        == whole
    )


def test_window_covers_whole_buckets_up_to_the_current_one() -> None:
    now = T0 + timedelta(minutes=57, seconds=30)
    start, end = window_bounds(now, timedelta(hours=1))
    assert (start, end) == (T0, T0 + timedelta(hours=1))
    # At the first second of a bucket the window moves on by one bucket.
    assert window_bounds(T0 + timedelta(hours=1), timedelta(hours=1))[0] == T0 + timedelta(
        minutes=5
    )


def test_no_checks_gives_no_availability_not_zero() -> None:
    assert availability("portal", {}, T0, T0 + timedelta(hours=1)).availability is None


def test_latency_mean_ignores_checks_without_latency() -> None:
    counts = sum(
        (CheckCounts.of(e) for e in [check(0, "up", latency=100), check(1, "down", latency=None)]),
        CheckCounts(),
    )
    assert counts.mean_latency_ms == 100


def test_incidents_are_down_to_not_down_spans_and_open_ones_stay_open() -> None:
    checks = [
        (T0 + timedelta(minutes=m), s)
        for m, s in [(0, "up"), (1, "down"), (2, "down"), (3, "degraded"), (4, "up"), (5, "down")]
    ]
    found = incidents({"portal": reversed(checks)})  # arrival order does not matter
    assert found == [
        Incident("portal", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)),
        Incident("portal", T0 + timedelta(minutes=5), None),
    ]
    summary = IncidentSummary.of(found, T0, T0 + timedelta(hours=1))
    assert (summary.incidents, summary.recovered) == (2, 1)
    assert summary.mean_time_to_recover == timedelta(minutes=2)


def test_down_checks_inside_maintenance_open_no_incident() -> None:
    checks = [(T0, "up"), (T0 + timedelta(minutes=6), "down"), (T0 + timedelta(minutes=12), "up")]
    window = MaintenanceWindow(T0 + timedelta(minutes=6), T0 + timedelta(minutes=7), "portal")
    assert incidents({"portal": checks}, [window]) == []
    # The bucket is the unit: a window in the first minutes of the bucket covers its last ones.
    late_in_bucket = [
        (T0, "up"),
        (T0 + timedelta(minutes=9), "down"),
        (T0 + timedelta(minutes=12), "up"),
    ]
    assert incidents({"portal": late_in_bucket}, [window]) == []


def test_mean_time_to_recover_counts_only_incidents_recovered_inside_the_window() -> None:
    early = Incident("a", T0 - timedelta(hours=3), T0 - timedelta(hours=2))
    spans = Incident("a", T0 - timedelta(minutes=10), T0 + timedelta(minutes=10))
    summary = IncidentSummary.of([early, spans], T0, T0 + timedelta(hours=1))
    assert (summary.incidents, summary.recovered) == (1, 1)
    assert summary.mean_time_to_recover == timedelta(minutes=20)


def test_days_until_certificate_expiry() -> None:
    assert days_until(T0 + timedelta(days=10, hours=12), T0) == 10.5
    assert days_until(T0 - timedelta(days=1), T0) == -1
    assert days_until(None, T0) is None


statuses = st.sampled_from(["up", "degraded", "down"])
check_lists = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 600), statuses), max_size=60
)


@given(check_lists, st.integers(1, 600))
def test_buckets_add_up_over_any_split(raw: list[tuple[str, int, str]], cut: int) -> None:
    events = [
        UptimeEvent(
            event_id=f"e{i}", event_time=T0 + timedelta(seconds=s), service_id=svc, status=st_
        )  # type: ignore[arg-type]
        for i, (svc, s, st_) in enumerate(raw)
    ]
    whole = bucket_counts(events)
    first, second = bucket_counts(events[:cut]), bucket_counts(events[cut:])
    merged = {k: first.get(k, CheckCounts()) + second.get(k, CheckCounts()) for k in first | second}
    assert merged == whole
    for counts in whole.values():
        assert counts.availability is not None and 0 <= counts.availability <= 1


@given(check_lists, st.integers(1, 5), st.randoms(use_true_random=False))
def test_tracker_fed_in_slices_finds_the_same_incidents_as_one_scan(
    raw: list[tuple[str, int, str]], slices: int, rnd
) -> None:
    """Checks arriving shuffled inside the grace give exactly the batch answer."""
    checks = sorted({(svc, T0 + timedelta(seconds=s), status) for svc, s, status in raw})
    # Keep one status per (service, time): a probe reports once per instant.
    unique = {(svc, t): status for svc, t, status in checks}
    checks = sorted(((svc, t, status) for (svc, t), status in unique.items()), key=lambda c: c[1])
    tracker = IncidentTracker(grace=timedelta(seconds=30))
    size = max(1, len(checks) // slices)
    for i in range(0, len(checks), size):
        piece = checks[i : i + size]
        rnd.shuffle(piece)
        assert tracker.update(piece) == 0
    by_service: dict[str, list[tuple[datetime, str]]] = {}
    for svc, t, status in checks:
        by_service.setdefault(svc, []).append((t, status))
    assert tracker.incidents() == sorted(
        incidents(by_service), key=lambda i: (i.service_id, i.started_at)
    )


def test_floor_to_aligns_on_vietnamese_clock_boundaries_too() -> None:
    from ioc.kpi.calendar import REPORTING_TZ

    t = datetime(2026, 3, 2, 9, 47, 31, tzinfo=REPORTING_TZ)
    assert floor_to(t, timedelta(hours=1)) == datetime(2026, 3, 2, 9, 0, tzinfo=REPORTING_TZ)
    assert floor_to(t, timedelta(minutes=5)) == datetime(2026, 3, 2, 9, 45, tzinfo=REPORTING_TZ)


def test_a_check_older_than_the_settled_point_is_reported_late_not_applied() -> None:
    tracker = IncidentTracker(grace=timedelta(minutes=5))
    tracker.update([("portal", T0, "up"), ("portal", T0 + timedelta(minutes=20), "up")])
    assert tracker.settled_until["portal"] == T0 + timedelta(minutes=15)
    late = ("portal", T0 + timedelta(minutes=10), "down")
    assert tracker.update([late, ("portal", T0 + timedelta(minutes=20), "up")]) == 1
    assert tracker.incidents() == []


def test_a_service_catching_up_is_not_late_because_another_service_is_ahead() -> None:
    tracker = IncidentTracker(grace=timedelta(minutes=5))
    tracker.update([("mail", T0 + timedelta(hours=5), "up")])  # its partition is current
    behind = [
        ("portal", T0 + timedelta(minutes=m), s) for m, s in [(0, "up"), (1, "down"), (2, "up")]
    ]
    assert tracker.update(behind) == 0
    assert tracker.incidents() == [
        Incident("portal", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    ]
