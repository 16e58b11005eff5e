"""Security KPIs: counts per severity and category per 5 minutes, top targets, quiet sources."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ioc.events import SecurityEvent
from ioc.kpi.security import (
    UNKNOWN,
    SourceActivity,
    category_counts,
    quiet_sources,
    source_activity,
    target_counts,
    top_targets,
    totals_by,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
_ids = itertools.count()


def ev(minute: float, severity: str = "high", category: str = "intrusion", **kw: object):
    return SecurityEvent(
        event_id=f"s{next(_ids)}",
        event_time=T0 + timedelta(minutes=minute),
        source=str(kw.pop("source", "wazuh-1")),
        severity=severity,  # type: ignore[arg-type]
        category=category,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_counts_per_five_minutes_by_severity_and_category() -> None:
    events = [ev(0, "critical"), ev(4.9, "high"), ev(5, "high", "malware"), ev(9, "low", "policy")]
    counts = category_counts(events)
    assert counts[(T0, "wazuh-1", "critical", "intrusion")] == 1
    assert counts[(T0 + timedelta(minutes=5), "wazuh-1", "high", "malware")] == 1
    first = totals_by(counts, 2, T0, T0 + timedelta(minutes=5))
    assert first == {"critical": 1, "high": 1}
    assert totals_by(counts, 3, T0, T0 + timedelta(minutes=10)) == {
        "intrusion": 2,
        "malware": 1,
        "policy": 1,
    }


def test_top_targets_rank_by_count_then_name_and_leave_unknown_out() -> None:
    events = [ev(1, asset_id="web-01", agency_code="SO-TTTT") for _ in range(3)]
    events += [ev(2, asset_id="mail-01", agency_code="SO-NV") for _ in range(3)]
    events += [ev(3, asset_id="db-01", agency_code="SO-NV", severity="low")]
    events += [ev(4) for _ in range(10)]  # no asset, no agency
    counts = target_counts(events)
    end = T0 + timedelta(hours=1)
    assert top_targets(counts, T0, end, by="asset") == [("mail-01", 3), ("web-01", 3), ("db-01", 1)]
    assert top_targets(counts, T0, end, by="agency", n=1) == [("SO-NV", 4)]
    assert top_targets(counts, T0, end, by="asset", min_severity={"low"}) == [("db-01", 1)]
    assert sum(n for k, n in counts.items() if k[2] == UNKNOWN) == 10


def test_quiet_sources_between_quiet_after_and_forget_after() -> None:
    activity = {
        "wazuh-1": SourceActivity(T0, T0 + timedelta(minutes=50), 10),
        "waf": SourceActivity(T0, T0 + timedelta(minutes=5), 4),
        "old-ids": SourceActivity(T0 - timedelta(days=60), T0 - timedelta(days=40), 1),
    }
    now = T0 + timedelta(hours=1)
    quiet = quiet_sources(activity, now, quiet_after=timedelta(minutes=30))
    assert [(q.source, q.silent_for) for q in quiet] == [("waf", timedelta(minutes=55))]


def test_source_activity_keeps_first_last_and_count() -> None:
    events = [ev(10, source="ids"), ev(2, source="ids"), ev(7, source="waf")]
    assert source_activity(events)["ids"] == SourceActivity(
        T0 + timedelta(minutes=2), T0 + timedelta(minutes=10), 2
    )


severities = st.sampled_from(["info", "low", "medium", "high", "critical"])
event_lists = st.lists(
    st.tuples(st.integers(0, 180), severities, st.sampled_from(["a", "b", None])), max_size=80
)


@given(event_lists, st.integers(0, 80))
def test_summaries_of_two_parts_add_up_to_the_whole(raw, cut: int) -> None:
    events = [ev(m, sev, asset_id=a) for m, sev, a in raw]
    for summarise in (category_counts, target_counts):
        assert summarise(events[:cut]) + summarise(events[cut:]) == summarise(events)
    whole = source_activity(events)
    first, second = source_activity(events[:cut]), source_activity(events[cut:])
    for source in whole:
        parts = [p[source] for p in (first, second) if source in p]
        assert sum(parts[1:], parts[0]) == whole[source]
    assert sum(totals_by(category_counts(events), 2, T0, T0 + timedelta(hours=4)).values()) == len(
        events
    )
