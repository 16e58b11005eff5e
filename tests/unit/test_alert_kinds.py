"""Each rule kind on hand-made sequences: fires, stays quiet one below the threshold, fires
exactly at it, copes with late, out-of-order and repeated events, and clears."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ioc.alerts.evaluate import RuleEngine
from ioc.alerts.kinds import correlation
from ioc.alerts.model import fingerprint
from ioc.alerts.routing import InhibitRule, Matcher
from ioc.events import SecurityEvent
from tests.support.alert_events import (
    T0,
    at,
    check,
    checks,
    cleared,
    engine,
    feed,
    firing,
    kpi,
    sec,
)

# -- match ----------------------------------------------------------------------------------

MATCH = """
rules:
  - id: critical
    kind: match
    where: {severity_at_least: high, category: [intrusion, malware]}
    group_by: [source, asset_id]
    labels: {team: security}
    summary: "{severity} {category} on {asset_id}: {message}"
"""


def test_match_fires_on_each_matching_event_with_its_evidence() -> None:
    eng = engine(MATCH)
    received = at(2)
    out = eng.observe(sec(0, event_id="e1", severity="high", message="SQLi"), received)
    assert len(out) == 1
    s = out[0]
    assert s.firing and s.rule == "critical"
    assert s.group == {"source": "ids-core", "asset_id": "srv-dvc"}
    assert s.labels == {"team": "security"}
    assert (s.severity, s.evidence, s.at, s.received_at) == ("high", ("e1",), at(0), received)
    assert s.summary == "high intrusion on srv-dvc: SQLi"
    again = eng.observe(sec(5, event_id="e2", severity="high"))
    assert [x.fingerprint for x in again] == [s.fingerprint]
    assert eng.firing() == {s.fingerprint}


def test_match_ignores_events_below_the_floor_or_outside_the_lists() -> None:
    eng = engine(MATCH)
    assert eng.observe(sec(0, severity="medium")) == []
    assert eng.observe(sec(0, severity="critical", category="policy")) == []
    assert eng.observe(sec(0, severity="high")) != []  # exactly at the floor


def test_match_severity_from_event_never_downgrades_an_open_alert() -> None:
    eng = engine(MATCH)
    assert eng.observe(sec(0, severity="high"))[0].severity == "high"
    assert eng.observe(sec(1, severity="critical"))[0].severity == "critical"
    assert eng.observe(sec(2, severity="high"))[0].severity == "critical"


def test_match_repeated_event_id_is_not_counted_again() -> None:
    eng = engine(MATCH)
    assert eng.observe(sec(0, event_id="dup")) != []
    assert eng.observe(sec(0, event_id="dup")) == []
    assert eng.duplicates["critical"] == 1


def test_match_missing_group_field_still_alerts_and_summary_shows_the_gap() -> None:
    eng = engine(MATCH)
    s = eng.observe(sec(0, asset_id=None))[0]
    assert s.group == {"source": "ids-core", "asset_id": ""}
    assert s.summary == "high intrusion on : {message?}"


def test_match_clears_resolve_after_the_newest_event_on_the_clock() -> None:
    eng = engine(MATCH)
    eng.tick(at(0))
    feed(eng, [sec(0), sec(600)])
    assert eng.tick(at(600 + 3599)) == []
    out = eng.tick(at(600 + 3600))
    assert len(out) == 1 and not out[0].firing
    assert out[0].at == at(4200)
    assert eng.firing() == set()
    assert firing(eng.observe(sec(4300)))  # a new episode


def test_match_late_event_after_a_backlog_does_not_flap() -> None:
    """Old events seen now (a replayed backlog) keep one alert open for resolve_after."""
    eng = engine(MATCH)
    eng.tick(at(10_000))
    assert firing(eng.observe(sec(0)))
    assert eng.tick(at(10_001)) == []
    assert eng.tick(at(10_000 + 3599)) == []
    assert cleared(eng.tick(at(10_000 + 3600)))


# -- correlation ----------------------------------------------------------------------------

BRUTE = """
rules:
  - id: brute-force
    kind: correlation
    where: {category: [brute_force]}
    group_by: [src_ip]
    window: 5m
    min_events: 10
    lateness: 2m
"""


def brute(t: float, event_id: str | None = None, src_ip: str = "203.0.113.9") -> SecurityEvent:
    return sec(t, category="brute_force", severity="low", event_id=event_id, src_ip=src_ip)


def test_correlation_one_below_threshold_does_not_fire_exactly_at_does() -> None:
    eng = engine(BRUTE)
    assert feed(eng, [brute(i * 10) for i in range(9)]) == []
    out = eng.observe(brute(90, event_id="tenth"))
    assert len(out) == 1
    s = out[0]
    assert s.firing and s.value == 10 and s.at == at(90)
    assert s.group == {"src_ip": "203.0.113.9"}
    assert len(s.evidence) == 10 and s.evidence[-1] == "tenth"
    assert s.summary == "brute-force: 10 events from src_ip=203.0.113.9 within 5m"


def test_correlation_window_includes_both_ends() -> None:
    eng = engine(BRUTE)
    events = [brute(0)] + [brute(200 + i) for i in range(8)] + [brute(300)]
    assert len(firing(feed(eng, events))) == 1  # 0 and 300 are exactly 5 minutes apart

    eng = engine(BRUTE)
    events = [brute(0)] + [brute(200 + i) for i in range(8)] + [brute(301)]
    assert feed(eng, events) == []


def test_correlation_groups_are_separate() -> None:
    eng = engine(BRUTE)
    events = [brute(i, src_ip=f"198.51.100.{i % 2}") for i in range(18)]
    assert feed(eng, events) == []
    assert eng.observe(brute(20, src_ip="198.51.100.0"))


def test_correlation_duplicates_do_not_count_twice() -> None:
    eng = engine(BRUTE)
    events = [brute(i, event_id=f"b{i % 5}") for i in range(20)]
    assert feed(eng, events) == []
    assert eng.duplicates["brute-force"] == 15


def test_correlation_out_of_order_events_fire_once_in_any_order() -> None:
    events = [brute(i * 10) for i in range(12)]  # 110 s: all within the 2m lateness
    for seed in range(20):
        random.Random(seed).shuffle(events)
        eng = engine(BRUTE)
        out = feed(eng, events)
        assert len(firing(out)) == 1, seed
        assert eng.late_events["brute-force"] == 0


def test_correlation_event_later_than_lateness_is_ignored_and_counted() -> None:
    eng = engine(BRUTE)
    feed(eng, [brute(200 + i * 10) for i in range(9)] + [brute(590)])
    assert eng.observe(brute(469)) == []  # 121 s behind 590
    assert eng.late_events["brute-force"] == 1
    assert eng.firing() == set()


def test_correlation_late_event_fires_with_the_past_window_end() -> None:
    eng = engine(BRUTE)
    feed(eng, [brute(200 + i * 10) for i in range(9)])  # 200..280
    assert feed(eng, [brute(590)]) == []  # window [290, 590]: one event
    out = eng.observe(brute(480, event_id="late"))  # 110 s late
    assert len(out) == 1
    assert out[0].at == at(480)  # the window [180, 480] holds 200..280 and 480
    assert out[0].value == 10 and "late" in out[0].evidence


def test_correlation_big_group_late_event_is_rescanned_at_the_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(correlation, "SCAN_NOW", 0)
    eng = engine(BRUTE)
    feed(eng, [brute(200 + i * 10) for i in range(9)] + [brute(590)])
    assert eng.observe(brute(480)) == []
    out = eng.tick(at(591))
    assert len(out) == 1 and out[0].firing and out[0].at == at(480)


DISTINCT = """
rules:
  - id: port-scan
    kind: correlation
    group_by: [src_ip]
    window: 10m
    min_events: 20
    distinct: dst_ip
    min_distinct: 5
"""


def test_correlation_distinct_values_one_below_and_exactly_at() -> None:
    eng = engine(DISTINCT)
    events = [sec(i, dst_ip=f"10.0.0.{i % 4}") for i in range(30)]
    assert feed(eng, events) == []  # 30 events, 4 hosts
    out = eng.observe(sec(31, dst_ip="10.0.0.9"))
    assert len(out) == 1 and out[0].value == 31
    assert "5 distinct dst_ip" in out[0].summary


def test_correlation_distinct_without_enough_events_does_not_fire() -> None:
    eng = engine(DISTINCT)
    assert feed(eng, [sec(i, dst_ip=f"10.0.0.{i}") for i in range(19)]) == []
    assert firing(eng.observe(sec(19, dst_ip="10.0.0.1")))  # the 20th event


def test_correlation_clears_a_window_after_the_last_qualifying_window() -> None:
    eng = engine(BRUTE)
    eng.tick(at(0))
    feed(eng, [brute(i * 10) for i in range(10)])  # qualifies at 90
    # clears once now − lateness ≥ 90 + 300
    assert eng.tick(at(90 + 300 + 120 - 1)) == []
    out = eng.tick(at(90 + 300 + 120))
    assert len(out) == 1 and not out[0].firing and out[0].at == at(390)
    assert eng.firing() == set()


def test_correlation_signals_new_evidence_at_most_once_a_minute() -> None:
    eng = engine(BRUTE)
    out = feed(eng, [brute(i) for i in range(200)])  # 200 s of one event per second
    assert 2 <= len(out) <= 5
    assert len({s.fingerprint for s in out}) == 1
    assert all(s.evidence for s in out)


# -- absence --------------------------------------------------------------------------------

ABSENCE = """
rules:
  - id: source-silent
    kind: absence
    stream: security
    group_by: [source]
    window: 30m
    forget_after: 1d
"""
EXPECTING = ABSENCE + "    expect: [soc-tinh]\n"


def test_absence_fires_exactly_when_the_window_has_passed() -> None:
    eng = engine(ABSENCE)
    eng.tick(at(0))
    eng.observe(sec(60, source="wazuh-01"))
    assert eng.tick(at(60 + 1799)) == []
    out = eng.tick(at(60 + 1800))
    assert [s.group for s in out] == [{"source": "wazuh-01"}]
    assert out[0].at == at(1860) and out[0].firing


def test_absence_expected_source_fires_after_window_from_the_first_tick() -> None:
    eng = engine(EXPECTING)
    eng.tick(at(100))
    assert eng.tick(at(100 + 1799)) == []
    out = eng.tick(at(100 + 1800))
    assert [s.group for s in out] == [{"source": "soc-tinh"}]
    assert out[0].summary == "source-silent: nothing from source=soc-tinh for 30m"


def test_absence_clears_on_a_fresh_event_but_not_on_a_replayed_old_one() -> None:
    eng = engine(EXPECTING)
    eng.tick(at(0))
    eng.observe(sec(0, source="wazuh-01"))
    assert eng.tick(at(3600))  # fired (the expected soc-tinh too)
    assert eng.observe(sec(1000, source="wazuh-01")) == []  # 43 min old: still silent
    out = eng.observe(sec(3500, source="wazuh-01"))  # within 30 min of the clock
    assert len(out) == 1 and not out[0].firing and out[0].at == at(3500)
    assert eng.firing_groups("source-silent") == [{"source": "soc-tinh"}]


def test_absence_forgets_an_unexpected_group_after_forget_after() -> None:
    eng = engine(EXPECTING)
    eng.tick(at(0))
    eng.observe(sec(0, source="old-ids"))
    eng.tick(at(1800))
    out = eng.tick(at(86_400))
    assert [(s.group, s.firing) for s in out] == [({"source": "old-ids"}, False)]
    assert eng.firing_groups("source-silent") == [{"source": "soc-tinh"}]  # expected: kept


# -- consecutive ----------------------------------------------------------------------------

DOWN = """
rules:
  - id: service-down
    kind: consecutive
    where: {kind: [probe]}
    count: 3
"""


def test_consecutive_fires_exactly_at_count() -> None:
    eng = engine(DOWN)
    assert feed(eng, checks(0, "udd")) == []
    out = eng.observe(check(90, "down", event_id="third"))
    assert len(out) == 1
    s = out[0]
    assert s.firing and s.severity == "critical" and s.at == at(90)
    assert s.group == {"service_id": "svc-dvc"} and s.evidence[-1] == "third"


def test_consecutive_a_good_check_in_between_resets_the_run() -> None:
    eng = engine(DOWN)
    assert feed(eng, checks(0, "ddgdd")) == []


def test_consecutive_late_older_check_completes_the_run_in_event_time_order() -> None:
    eng = engine(DOWN)
    assert feed(eng, [check(60), check(90)]) == []
    out = eng.observe(check(30))  # arrives last, belongs first
    assert len(out) == 1 and out[0].at == at(90)


def test_consecutive_late_older_good_check_does_not_clear() -> None:
    eng = engine(DOWN)
    assert firing(feed(eng, checks(30, "ddd")))  # 30, 60, 90
    assert eng.observe(check(45, "up")) == []
    assert eng.firing()
    more = eng.observe(check(120, "down"))
    assert firing(more)  # more evidence
    out = eng.observe(check(150, "up"), at(151))
    assert len(out) == 1 and not out[0].firing and out[0].at == at(150)
    assert out[0].received_at == at(151)  # the resolve's latency is measurable too


def test_consecutive_duplicate_check_does_not_count_twice() -> None:
    eng = engine(DOWN)
    feed(eng, [check(0, event_id="a"), check(30, event_id="b")])
    assert eng.observe(check(30, event_id="b")) == []
    assert eng.duplicates["service-down"] == 1


def test_consecutive_heartbeats_are_not_checks() -> None:
    eng = engine(DOWN)
    assert feed(eng, [check(i, kind="heartbeat") for i in range(5)]) == []


# -- burn rate ------------------------------------------------------------------------------

BURN = """
rules:
  - id: slo-burn
    kind: burn_rate
    objective: 0.995
    windows:
      - {long: 1h, short: 5m, factor: 14.4, severity: critical}
      - {long: 6h, short: 30m, factor: 6, severity: high}
    min_checks: 3
"""
# Checks every 30 s: the 1h window holds 120 checks, 5m 10, 6h 720, 30m 60.
# Thresholds: 14.4 × 0.005 = 0.072 and 6 × 0.005 = 0.03.


def slow_burn() -> str:
    """Six clean hours, then one failure every 25 checks: the 22nd failure in six hours
    crosses 6 × 0.005, while the last hour (about 5 of 120) stays under 14.4 × 0.005."""
    pattern = ["u"] * 720 + ["u"] * 560
    for i in range(22):
        pattern[720 + 10 + i * 25] = "d"
    return "".join(pattern[: 720 + 10 + 21 * 25 + 1])


def test_burn_rate_slow_burn_fires_the_six_hour_pair_as_high() -> None:
    eng = engine(BURN)
    events = checks(0, slow_burn())
    assert feed(eng, events[:-1]) == []
    out = eng.observe(events[-1])  # the 22nd failure
    assert len(out) == 1 and out[0].severity == "high"
    assert out[0].fingerprint == fingerprint("slo-burn", {"service_id": "svc-dvc"})
    assert out[0].value is not None and out[0].value > 6


def test_burn_rate_both_pairs_take_the_most_severe_then_step_down_and_clear() -> None:
    eng = engine(BURN)
    start = len(slow_burn())
    feed(eng, checks(0, slow_burn()))
    out = feed(eng, checks(start * 30, "d" * 7))  # the last hour now holds > 8.64 failures
    assert out[-1].firing and out[-1].severity == "critical"
    assert len({s.fingerprint for s in out}) == 1
    out = feed(eng, checks((start + 7) * 30, "u" * 10))  # the 5m window is clean again
    assert [s.severity for s in out if s.firing][-1:] == ["high"]
    out = feed(eng, checks((start + 17) * 30, "u" * 60))  # and then 30 clean minutes
    assert cleared(out) and eng.firing() == set()


def test_burn_rate_exactly_at_the_threshold_does_not_fire() -> None:
    rules = """
rules:
  - id: slo
    kind: burn_rate
    objective: 0.9
    windows: [{long: 1h, short: 5m, factor: 2, severity: critical}]
"""
    eng = engine(rules)  # threshold 2 × 0.1 = 0.2
    # An hour clean, then every 5th check fails: each 5m window holds exactly 2 of 10 and
    # the hour 24 of 120, both exactly at the threshold.
    assert feed(eng, checks(0, "u" * 120 + "uuuud" * 24)) == []
    out = eng.observe(check(240 * 30, "down"))  # 3 of 10 and 25 of 120
    assert len(out) == 1 and out[0].firing


def test_burn_rate_needs_min_checks_in_the_short_window() -> None:
    eng = engine(BURN)
    assert feed(eng, checks(0, "dd")) == []  # a fresh start: two failed probes
    assert firing(eng.observe(check(60, "down")))


def test_burn_rate_duplicates_and_too_old_checks_do_not_count() -> None:
    eng = engine(BURN)
    feed(eng, checks(0, "u" * 120))
    dup = check(3570, "down", event_id="x")
    eng.observe(dup)
    assert eng.observe(check(3570, "down", event_id="x")) == []
    assert eng.duplicates["slo-burn"] == 1
    assert eng.observe(check(3570 - 7 * 3600, "down")) == []  # older than six hours
    assert eng.late_events["slo-burn"] == 1


def test_burn_rate_a_late_failure_counts_where_it_belongs() -> None:
    eng = engine(BURN)
    feed(eng, checks(0, "u" * 115 + "dd" + "u"))  # newest check at 3510
    assert eng.firing() == set()
    late = [check(3300 + 5 * i, "down") for i in range(1, 9)]  # inside the last 5 minutes
    out = feed(eng, late)  # 10 failures of 126 in the hour: over 0.072
    assert firing(out) and out[-1].severity == "critical"
    assert out[-1].at == at(3510)  # windows end at the newest check, not the late one


def test_burn_rate_clears_on_the_clock_when_checks_stop() -> None:
    eng = engine(BURN)
    feed(eng, checks(0, "ddddd"))
    assert eng.firing()
    assert eng.tick(at(120 + 1799)) == []
    out = eng.tick(at(120 + 1800))  # the longest short window (30m) is empty
    assert cleared(out)


# -- KPI rules ------------------------------------------------------------------------------

KPI = """
rules:
  - id: on-time-low
    kind: kpi_threshold
    scope: agency
    period: month
    value: on_time_ratio
    below: 0.9
  - id: overdue-high
    kind: kpi_threshold
    scope: agency
    period: year
    value: overdue
    above: 20
    keys: [SO-11]
"""


def test_kpi_below_is_strict() -> None:
    eng = engine(KPI)
    assert eng.observe_kpis([kpi(0, "SO-11", on_time_ratio=0.9)], at(0)) == []
    out = eng.observe_kpis([kpi(60, "SO-11", on_time_ratio=0.8999)], at(60))
    assert len(out) == 1 and out[0].value == 0.8999 and out[0].at == at(60)
    assert out[0].group == {"agency_code": "SO-11"}


def test_kpi_above_is_strict_and_keys_filter() -> None:
    eng = engine(KPI)
    rows = [kpi(0, "SO-11", period="year", overdue=20), kpi(0, "SO-02", period="year", overdue=99)]
    assert eng.observe_kpis(rows, at(0)) == []
    assert eng.observe_kpis([kpi(1, "SO-11", period="year", overdue=21)], at(1))


def test_kpi_missing_value_neither_fires_nor_clears() -> None:
    eng = engine(KPI)
    assert eng.observe_kpis([kpi(0, "SO-11", on_time_ratio=None)], at(0)) == []
    assert eng.observe_kpis([kpi(1, "SO-11", on_time_ratio=0.5)], at(1))
    assert eng.observe_kpis([kpi(2, "SO-11")], at(2)) == []
    assert eng.firing()
    out = eng.observe_kpis([kpi(3, "SO-11", on_time_ratio=0.95)], at(3))
    assert cleared(out) and eng.firing() == set()


def test_kpi_threshold_with_for_waits_and_a_blip_notifies_nobody() -> None:
    rules = KPI.replace("    below: 0.9\n", "    below: 0.9\n    for: 30m\n")
    eng = engine(rules)
    eng.tick(at(0))
    assert eng.observe_kpis([kpi(0, "SO-11", on_time_ratio=0.8)], at(0)) == []
    assert eng.tick(at(1799)) == []
    out = eng.tick(at(1800))
    assert len(out) == 1 and out[0].firing and out[0].at == at(1800)

    eng = engine(rules)
    eng.observe_kpis([kpi(0, "SO-11", on_time_ratio=0.8)], at(0))
    assert eng.observe_kpis([kpi(600, "SO-11", on_time_ratio=0.95)], at(600)) == []
    assert eng.tick(at(4000)) == []


RISING = """
rules:
  - id: at-risk-rising
    kind: kpi_rising
    scope: agency
    period: today
    value: at_risk
    rise: 10
    over: 1h
"""


def test_kpi_rising_fires_at_exactly_the_rise_and_clears_when_it_ages_out() -> None:
    eng = engine(RISING)
    assert eng.observe_kpis([kpi(0, "SO-11", period="today", at_risk=10)], at(0)) == []
    assert eng.observe_kpis([kpi(600, "SO-11", period="today", at_risk=19)], at(600)) == []
    out = eng.observe_kpis([kpi(1200, "SO-11", period="today", at_risk=20)], at(1200))
    assert len(out) == 1 and out[0].value == 20
    assert "10" in out[0].summary
    # No new row (values unchanged); once the 10 is older than an hour, the rise is gone.
    assert eng.tick(at(600 + 3599)) == []  # the 10 was in effect until 600
    assert cleared(eng.tick(at(1200 + 3600)))


def test_kpi_rising_over_a_dip_counts_from_the_lowest_value() -> None:
    eng = engine(RISING)
    rows = [(0, 15), (300, 8), (900, 18)]
    out = []
    for t, v in rows:
        out += eng.observe_kpis([kpi(t, "SO-11", period="today", at_risk=v)], at(t))
    assert len(out) == 1 and out[0].at == at(900)


# -- the engine -----------------------------------------------------------------------------


def test_inventory_labels_let_a_network_outage_inhibit_the_services_behind_it() -> None:
    rules = (
        DOWN
        + """
inventory:
  services:
    svc-net: {site: dc-tinh, tier: network}
    svc-dvc: {site: dc-tinh, tier: core}
"""
    )
    eng = engine(rules)
    net = firing(feed(eng, checks(0, "ddd", service="svc-net")))[0]
    dvc = firing(feed(eng, checks(0, "ddd", service="svc-dvc")))[0]
    assert dvc.labels == {"site": "dc-tinh", "tier": "core"}
    assert dvc.fingerprint == fingerprint("service-down", {"service_id": "svc-dvc"})
    inhibit = InhibitRule(
        source=(Matcher.parse('alertname="service-down"'), Matcher.parse('tier="network"')),
        target=(Matcher.parse('tier!="network"'),),
        equal=("site",),
    )
    assert inhibit.inhibits(net.all_labels(), dvc.all_labels())
    assert not inhibit.inhibits(dvc.all_labels(), net.all_labels())


def test_groups_are_capped_per_rule_and_drops_are_counted() -> None:
    eng = engine(MATCH + "defaults: {max_groups_per_rule: 3}\n")
    out = feed(eng, [sec(0, asset_id=f"a{i}") for i in range(5)])
    assert len(out) == 3
    assert eng.dropped_groups["critical"] == 2


def test_disabled_rules_are_loaded_but_not_evaluated() -> None:
    eng = engine(MATCH.replace("    kind: match\n", "    kind: match\n    enabled: false\n"))
    assert eng.observe(sec(0, severity="critical")) == []


def test_the_engine_refuses_naive_times() -> None:
    eng = engine(MATCH)
    with pytest.raises(ValueError, match="timezone-aware"):
        eng.tick(datetime(2026, 1, 1))  # noqa: DTZ001 (the point of the test)
    assert eng.tick(datetime(2026, 1, 1, tzinfo=UTC)) == []
    assert eng.started_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert T0.tzinfo is not None


# -- correlation against a brute-force oracle -----------------------------------------------

ORACLE_RULE = """
rules:
  - id: scan
    kind: correlation
    group_by: [src_ip]
    window: 1m
    min_events: 4
    distinct: dst_ip
    min_distinct: 3
    lateness: 30s
"""


@settings(max_examples=300, deadline=None)
@example(arrivals=[(0, 0), (50, 2), (60, 2), (70, 2), (40, 1)], defer=False)  # [0, 60] only
@example(arrivals=[(0, 0), (50, 2), (60, 2), (70, 2), (40, 1)], defer=True)
@given(
    st.lists(st.tuples(st.integers(0, 40).map(lambda x: x * 10), st.integers(0, 4)), max_size=40),
    st.booleans(),
)
def test_correlation_fires_iff_some_window_of_accepted_events_qualifies(
    arrivals: list[tuple[int, int]], defer: bool
) -> None:
    """Whatever the arrival order, the engine fires exactly when a window over the events it
    accepted (not later than the lateness behind the newest) qualifies."""
    eng = engine(ORACLE_RULE)
    with patch.object(correlation, "SCAN_NOW", -1 if defer else correlation.SCAN_NOW):
        assert eng.late_events["scan"] == 0
        fired, accepted = _replay(eng, arrivals)
    expected = any(
        len(inside := [d for t, d in accepted if e - 60 <= t <= e]) >= 4 and len(set(inside)) >= 3
        for e, _ in accepted
    )
    assert fired == expected


def _replay(eng: RuleEngine, arrivals: list[tuple[int, int]]) -> tuple[bool, list[tuple[int, int]]]:
    accepted: list[tuple[int, int]] = []
    newest = -(10**9)
    fired = False
    for n, (t, d) in enumerate(arrivals):
        if t >= newest - 30:
            accepted.append((t, d))
            newest = max(newest, t)
        fired |= bool(eng.observe(sec(t, event_id=f"e{n}", dst_ip=f"10.0.0.{d}")))
        fired |= bool(eng.tick(at(-86_400)))  # deferred rescans; too early to clear anything
    return fired, accepted


def test_kpi_firing_again_only_when_the_summary_would_change() -> None:
    rules = """
rules:
  - id: tls
    kind: kpi_threshold
    scope: service
    period: now
    value: tls_days_left
    below: 14
    summary: "{service_id}: {value:.0f} days left"
"""
    eng = engine(rules)
    rows = [kpi(t, "svc-dvc", "service", "now", tls_days_left=10 - t / 86400) for t in (0, 60)]
    out = eng.observe_kpis(rows, at(60))
    assert [s.summary for s in out] == ["svc-dvc: 10 days left"]
    later = eng.observe_kpis([kpi(86_400, "svc-dvc", "service", "now", tls_days_left=9)], at(0))
    assert [s.summary for s in later] == ["svc-dvc: 9 days left"]


def test_the_look_back_a_restart_needs_covers_the_longest_window() -> None:
    eng = engine(BRUTE + MATCH.replace("rules:\n", ""))
    assert eng.look_back("security") == timedelta(hours=1)  # resolve_after beats 5m + 2m
    assert engine(BURN).look_back("uptime") == timedelta(hours=6)


BURN_SMALL = """
rules:
  - id: slo
    kind: burn_rate
    objective: 0.9
    windows:
      - {long: 10m, short: 2m, factor: 2.5, severity: critical}
      - {long: 30m, short: 5m, factor: 1.5, severity: high}
    min_checks: 2
"""


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 360).map(lambda x: x * 10), st.booleans()), max_size=60))
def test_burn_rate_after_every_check_matches_a_recount(arrivals: list[tuple[int, bool]]) -> None:
    """After each check, in any arrival order, the alert is up (with the most severe pair)
    exactly when a recount of the accepted checks in the windows ending at the newest check
    finds both ratios of a pair above factor × (1 − objective)."""
    eng = engine(BURN_SMALL)
    pairs = ((600, 120, 0.25, "critical"), (1800, 300, 0.15, "high"))
    accepted: list[tuple[int, bool]] = []
    severity = None
    for t, good in arrivals:
        newest = max([t, *(a for a, _ in accepted)])
        if t > newest - 1800:  # within the longest window of the newest check
            accepted.append((t, good))
        for s in eng.observe(check(t, "up" if good else "down")):
            severity = s.severity if s.firing else None
        expected = None
        for long, short, threshold, sev in pairs:
            ratios = []
            for span in (long, short):
                inside = [g for a, g in accepted if a > newest - span]
                ratios.append((len(inside), inside.count(False) / max(len(inside), 1)))
            if ratios[1][0] >= 2 and all(r - threshold > 1e-9 for _, r in ratios):
                expected = expected or sev
        assert severity == expected, (t, good)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 100), st.booleans()), max_size=30, unique_by=lambda a: a[0])
)
def test_consecutive_fires_iff_some_arrival_saw_the_newest_three_down(
    arrivals: list[tuple[int, bool]],
) -> None:
    eng = engine(DOWN)
    seen: list[tuple[int, bool]] = []
    fired = expected = False
    for t, down in arrivals:
        seen.append((t, down))
        newest = sorted(seen)[-3:]
        expected |= len(newest) == 3 and all(d for _, d in newest)
        fired |= bool(firing(eng.observe(check(t * 30, "down" if down else "up"))))
        if eng.firing():
            assert max(seen)[1], "open while the newest check is up"
    assert fired == expected
