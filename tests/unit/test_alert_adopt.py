"""Adopting open alerts after a takeover: the rebuilt engine may not hold a group that has an
open alert; once adopted, each kind emits the usual cleared signal (same fingerprint) exactly
when it finds the condition false, and not before.

Each test plays a takeover: the stored events replayed through ``observe`` with no clock
(the warm-up), a first ``tick`` whose signals are dropped, ``adopt``, then the live run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from ioc.alerts.evaluate import RuleEngine
from ioc.alerts.lifecycle import AlertBook
from ioc.alerts.model import Signal, fingerprint
from ioc.events import SecurityEvent
from ioc.kpi.snapshot import KpiRow
from tests.support.alert_events import at, check, checks, cleared, engine, feed, firing, kpi, sec


def take_over(
    rules: str,
    replay: list[Any],
    now: float,
    rule_id: str,
    group: dict[str, str],
    since: float,
    rows: list[KpiRow] | None = None,
) -> RuleEngine:
    """A new evaluator at clock ``now``: warm-up (replay, KPI rows, a tick), then adopt."""
    eng = engine(rules)
    feed(eng, replay)
    if rows:
        eng.observe_kpis(rows, at(now))
    eng.tick(at(now))  # the warm-up's tick: its signals are dropped
    assert fingerprint(rule_id, group) not in eng.firing()  # what adopt is for
    assert eng.adopt(rule_id, group, at(since), at(now))
    assert fingerprint(rule_id, group) in eng.firing()
    return eng


def only_clear(signals: list[Signal], rule_id: str, group: dict[str, str], when: datetime) -> None:
    assert len(signals) == 1
    s = signals[0]
    assert not s.firing and s.at == when
    assert s.fingerprint == fingerprint(rule_id, group)


# -- the API --------------------------------------------------------------------------------

MATCH = """
rules:
  - id: critical
    kind: match
    where: {severity_at_least: high}
    group_by: [source, asset_id]
    labels: {team: security, asset_id: overridden-by-the-group}
  - id: retired
    kind: match
    enabled: false
inventory:
  assets:
    srv-dvc: {site: dc-tinh, source: not-the-group}
"""
CRIT = {"source": "ids-core", "asset_id": "srv-dvc"}


def test_group_of_reproduces_the_fingerprint_from_an_alerts_labels() -> None:
    eng = engine(MATCH)
    signal = eng.observe(sec(0))[0]
    labels = signal.all_labels()  # what the lifecycle stores as the alert's labels
    assert labels["site"] == "dc-tinh" and labels["team"] == "security"
    group = eng.group_of("critical", labels)
    assert group == CRIT == signal.group
    assert fingerprint("critical", group) == signal.fingerprint
    missing = eng.observe(sec(1, asset_id=None, source="fw"))[0]  # the group holds ""
    assert eng.group_of("critical", missing.all_labels()) == {"source": "fw", "asset_id": ""}


def test_group_of_an_unknown_rule_or_without_the_group_fields_is_none() -> None:
    eng = engine(MATCH)
    assert eng.group_of("gone", CRIT) is None
    assert eng.group_of("retired", {}) is None  # disabled
    assert eng.group_of("critical", {"source": "ids-core"}) is None


def test_adopting_for_an_unknown_or_disabled_rule_says_false() -> None:
    eng = engine(MATCH)
    eng.tick(at(0))
    assert eng.adopt("gone", {}, at(0), at(0)) is False
    assert eng.adopt("retired", {}, at(0), at(0)) is False
    assert eng.firing() == set()


def test_adopt_checks_the_group_and_the_times() -> None:
    eng = engine(MATCH)
    with pytest.raises(ValueError, match="fields of rule"):
        eng.adopt("critical", {"source": "ids-core"}, at(0), at(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        eng.adopt("critical", CRIT, datetime(2026, 1, 1), at(0))  # noqa: DTZ001


def test_adopting_a_group_already_firing_changes_nothing() -> None:
    def run(adopt: bool) -> list[list[Signal]]:
        eng = engine(MATCH)
        feed(eng, [sec(0, event_id="a"), sec(600, event_id="b")])
        eng.tick(at(1000))
        if adopt:
            assert eng.adopt("critical", CRIT, at(0), at(1000))
        out = [eng.tick(at(t)) for t in (1001, 4199, 4200, 4201)]
        return [*out, eng.observe(sec(5000, event_id="c"))]

    assert run(adopt=True) == run(adopt=False)
    assert cleared(run(adopt=True)[2])


def test_adopting_a_group_pending_behind_for_makes_its_clear_heard() -> None:
    rules = KPI.replace("    below: 0.9\n", "    below: 0.9\n    for: 30m\n")
    eng = engine(rules)
    eng.observe_kpis([kpi(0, "SO-11", on_time_ratio=0.8)], at(0))
    eng.tick(at(60))
    assert eng.firing() == set()  # pending: the alert was raised by the previous evaluator
    assert eng.adopt("on-time-low", AGENCY, at(0), at(60))
    assert eng.tick(at(3600)) == []  # no second firing signal from the ``for:`` gate
    out = eng.observe_kpis([kpi(4000, "SO-11", on_time_ratio=0.95)], at(4000))
    only_clear(out, "on-time-low", AGENCY, at(4000))


def test_a_taken_over_alert_is_resolved_through_the_book() -> None:
    old = engine(MATCH)
    book = AlertBook()
    for s in old.observe(sec(0)):
        book.apply(s, at(0))
    (alert,) = book.alerts.values()
    # The new evaluator, two hours later: the event is older than the look-back.
    eng = engine(MATCH)
    eng.tick(at(7200))
    group = eng.group_of(alert.rule, alert.labels)
    assert group is not None and fingerprint(alert.rule, group) == alert.fingerprint
    since = alert.last_event_at or alert.starts_at
    assert eng.adopt(alert.rule, group, since, at(7200))
    changes = [c for s in eng.tick(at(7200 + 3600)) for c in book.apply(s, at(10_800))]
    assert [c.kind for c in changes] == ["resolved"] and book.alerts == {}


# -- match ----------------------------------------------------------------------------------


def test_match_whose_events_are_gone_clears_resolve_after_after_adoption() -> None:
    eng = take_over(MATCH, [], now=10_000, rule_id="critical", group=CRIT, since=0)
    assert eng.tick(at(10_001)) == []
    assert eng.tick(at(10_000 + 3599)) == []
    only_clear(eng.tick(at(10_000 + 3600)), "critical", CRIT, at(3600))  # newest + 1h


def test_match_adopted_is_kept_open_by_new_matching_events() -> None:
    eng = take_over(MATCH, [], now=10_000, rule_id="critical", group=CRIT, since=0)
    eng.tick(at(11_000))
    more = eng.observe(sec(11_000))
    assert [s.fingerprint for s in firing(more)] == [fingerprint("critical", CRIT)]
    assert eng.tick(at(10_000 + 3600)) == []
    assert eng.tick(at(11_000 + 3599)) == []
    only_clear(eng.tick(at(11_000 + 3600)), "critical", CRIT, at(11_000 + 3600))


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
IP = {"src_ip": "203.0.113.9"}


def brute(t: float) -> SecurityEvent:
    return sec(t, category="brute_force", severity="low")


def test_correlation_adopted_without_events_clears_a_window_after_adoption() -> None:
    eng = take_over(BRUTE, [], now=10_000, rule_id="brute-force", group=IP, since=9_000)
    assert eng.tick(at(10_001)) == []
    assert eng.tick(at(10_299)) == []
    only_clear(eng.tick(at(10_300)), "brute-force", IP, at(9_300))  # since + window


def test_correlation_adopted_recent_window_waits_for_its_lateness() -> None:
    eng = take_over(BRUTE, [], now=10_000, rule_id="brute-force", group=IP, since=9_940)
    assert eng.tick(at(9_940 + 300 + 119)) == []  # a late event could still complete it
    only_clear(eng.tick(at(9_940 + 420)), "brute-force", IP, at(10_240))


def test_correlation_adopted_a_few_events_short_still_clears() -> None:
    replay = [brute(9_900 + i) for i in range(9)]  # nine: one below the threshold
    eng = take_over(BRUTE, replay, now=10_000, rule_id="brute-force", group=IP, since=9_000)
    assert eng.tick(at(10_299)) == []
    only_clear(eng.tick(at(10_300)), "brute-force", IP, at(9_300))


def test_correlation_adopted_is_extended_by_a_qualifying_window() -> None:
    eng = take_over(BRUTE, [], now=10_000, rule_id="brute-force", group=IP, since=9_000)
    eng.tick(at(10_200))
    out = feed(eng, [brute(10_100 + 10 * i) for i in range(10)])  # qualifies at 10_190
    assert firing(out) and not cleared(out)
    assert eng.tick(at(10_300)) == []
    assert eng.tick(at(10_190 + 420 - 1)) == []
    only_clear(eng.tick(at(10_190 + 420)), "brute-force", IP, at(10_490))


# -- absence --------------------------------------------------------------------------------

ABSENCE = """
rules:
  - id: source-silent
    kind: absence
    stream: security
    group_by: [source]
    window: 30m
    forget_after: 1d
    expect: [soc-tinh]
"""
WAZUH = {"source": "wazuh-01"}


def test_absence_adopted_whose_source_came_back_clears_at_the_next_tick() -> None:
    replay = [sec(9_400, source="wazuh-01")]  # heard 10 minutes before the takeover
    eng = take_over(ABSENCE, replay, now=10_000, rule_id="source-silent", group=WAZUH, since=0)
    only_clear(eng.tick(at(10_001)), "source-silent", WAZUH, at(9_400))
    assert eng.tick(at(9_400 + 1800)) != []  # silent again half an hour later: fires anew


def test_absence_adopted_stays_until_a_fresh_event() -> None:
    eng = take_over(ABSENCE, [], now=10_000, rule_id="source-silent", group=WAZUH, since=0)
    for t in (10_001, 12_000, 50_000):
        assert cleared(eng.tick(at(t))) == []
    assert eng.observe(sec(40_000, source="wazuh-01")) == []  # old: still silent as of now
    out = eng.observe(sec(49_000, source="wazuh-01"))
    only_clear(out, "source-silent", WAZUH, at(49_000))


def test_absence_adopted_unknown_group_is_forgotten_after_forget_after() -> None:
    eng = take_over(ABSENCE, [], now=10_000, rule_id="source-silent", group=WAZUH, since=0)
    assert cleared(eng.tick(at(10_000 + 86_399))) == []
    only_clear(eng.tick(at(10_000 + 86_400)), "source-silent", WAZUH, at(10_000 + 86_400))


def test_absence_adopted_expected_group_is_never_forgotten() -> None:
    soc = {"source": "soc-tinh"}
    eng = engine(ABSENCE)
    assert eng.adopt("source-silent", soc, at(0), at(10_000))  # before any tick
    assert eng.tick(at(10_000)) == []
    assert eng.tick(at(10_000 + 10 * 86_400)) == []
    fresh = sec(10_000 + 10 * 86_400 - 60, source="soc-tinh")  # within 30 min of the clock
    only_clear(eng.observe(fresh), "source-silent", soc, fresh.event_time)


# -- consecutive ----------------------------------------------------------------------------

DOWN = """
rules:
  - id: service-down
    kind: consecutive
    where: {kind: [probe]}
    count: 3
"""
SVC = {"service_id": "svc-dvc"}


def test_consecutive_adopted_with_a_good_newest_check_clears_at_the_next_tick() -> None:
    replay = checks(9_000, "ddu")  # back up during the outage
    eng = take_over(DOWN, replay, now=10_000, rule_id="service-down", group=SVC, since=0)
    only_clear(eng.tick(at(10_001)), "service-down", SVC, at(9_060))
    assert eng.tick(at(10_002)) == []


def test_consecutive_adopted_clears_on_the_first_newer_good_check() -> None:
    replay = checks(9_000, "ud")  # down, but not three in a row as far as the state knows
    eng = take_over(DOWN, replay, now=10_000, rule_id="service-down", group=SVC, since=0)
    assert eng.tick(at(10_001)) == []
    assert eng.observe(check(9_010, "up")) == []  # a late, older good check: not the newest
    more = eng.observe(check(10_020, "down"))
    assert firing(more) and not cleared(more)
    only_clear(eng.observe(check(10_050, "up")), "service-down", SVC, at(10_050))


def test_consecutive_adopted_without_checks_waits_for_one() -> None:
    eng = take_over(DOWN, [], now=10_000, rule_id="service-down", group=SVC, since=0)
    assert eng.tick(at(10_001)) == []
    assert eng.tick(at(20_000)) == []
    only_clear(eng.observe(check(20_000, "degraded")), "service-down", SVC, at(20_000))


def test_consecutive_a_bad_check_before_the_first_tick_keeps_it() -> None:
    replay = checks(9_000, "uu")
    eng = take_over(DOWN, replay, now=10_000, rule_id="service-down", group=SVC, since=0)
    assert firing(eng.observe(check(10_000, "down")))
    assert eng.tick(at(10_001)) == []
    assert eng.firing() == {fingerprint("service-down", SVC)}


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


def test_burn_rate_adopted_with_clean_checks_clears_at_the_next_tick() -> None:
    replay = checks(0, "u" * 120)  # a clean hour: no pair holds
    eng = take_over(BURN, replay, now=3_600, rule_id="slo-burn", group=SVC, since=0)
    only_clear(eng.tick(at(3_601)), "slo-burn", SVC, at(3_570))  # the newest check


def test_burn_rate_adopted_clears_at_a_check_when_no_pair_holds() -> None:
    eng = take_over(BURN, [], now=3_600, rule_id="slo-burn", group=SVC, since=0)
    only_clear(eng.observe(check(3_590, "up")), "slo-burn", SVC, at(3_590))
    assert eng.tick(at(3_601)) == []


def test_burn_rate_adopted_without_checks_clears_at_the_next_tick() -> None:
    eng = take_over(BURN, [], now=10_000, rule_id="slo-burn", group=SVC, since=0)
    only_clear(eng.tick(at(10_001)), "slo-burn", SVC, at(1_800))  # since + 30m


def test_burn_rate_adopted_is_not_kept_by_a_failure_short_of_a_pair() -> None:
    replay = checks(0, "u" * 110)
    eng = take_over(BURN, replay, now=3_300, rule_id="slo-burn", group=SVC, since=0)
    # One failed check: no pair holds at this evaluation, so the adopted alert clears; the
    # failures that follow raise a new one when a pair holds again.
    only_clear(eng.observe(check(3_300, "down")), "slo-burn", SVC, at(3_300))
    out = feed(eng, checks(3_330, "d" * 9))
    assert firing(out) and not cleared(out) and out[-1].severity == "critical"


# -- KPI ------------------------------------------------------------------------------------

KPI = """
rules:
  - id: on-time-low
    kind: kpi_threshold
    scope: agency
    period: month
    value: on_time_ratio
    below: 0.9
"""
AGENCY = {"agency_code": "SO-11"}


def test_kpi_threshold_adopted_with_the_value_back_clears_at_the_next_tick() -> None:
    rows = [kpi(9_000, "SO-11", on_time_ratio=0.95)]  # kpi_current at the takeover
    eng = take_over(KPI, [], 10_000, "on-time-low", AGENCY, since=0, rows=rows)
    only_clear(eng.tick(at(10_001)), "on-time-low", AGENCY, at(9_000))


def test_kpi_threshold_adopted_clears_on_the_next_row_with_the_value_back() -> None:
    eng = take_over(KPI, [], now=10_000, rule_id="on-time-low", group=AGENCY, since=0)
    assert eng.tick(at(10_001)) == []
    again = eng.observe_kpis([kpi(10_100, "SO-11", on_time_ratio=0.85)], at(10_100))
    assert firing(again) and again[0].value == 0.85  # its summary was not known: once
    assert eng.observe_kpis([kpi(10_200, "SO-11", on_time_ratio=0.85)], at(10_200)) == []
    assert eng.tick(at(10_300)) == []
    out = eng.observe_kpis([kpi(10_400, "SO-11", on_time_ratio=0.9)], at(10_400))
    only_clear(out, "on-time-low", AGENCY, at(10_400))


def test_kpi_threshold_a_breaching_row_before_the_first_tick_keeps_it() -> None:
    rows = [kpi(9_000, "SO-11", on_time_ratio=0.95)]
    eng = take_over(KPI, [], 10_000, "on-time-low", AGENCY, since=0, rows=rows)
    assert firing(eng.observe_kpis([kpi(10_000, "SO-11", on_time_ratio=0.5)], at(10_000)))
    assert eng.tick(at(10_001)) == []


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


def risk(t: float, v: float) -> KpiRow:
    return kpi(t, "SO-11", period="today", at_risk=v)


def test_kpi_rising_adopted_with_an_old_current_value_clears_at_the_next_tick() -> None:
    rows = [risk(0, 30)]  # the current value, unchanged for over an hour: no rise
    eng = take_over(RISING, [], 10_000, "at-risk-rising", AGENCY, since=0, rows=rows)
    only_clear(eng.tick(at(10_001)), "at-risk-rising", AGENCY, at(10_001))


def test_kpi_rising_adopted_recent_value_clears_once_it_ages_out() -> None:
    rows = [risk(9_400, 30)]  # taken 10 minutes before: the lower value before it is lost
    eng = take_over(RISING, [], 10_000, "at-risk-rising", AGENCY, since=9_400, rows=rows)
    assert eng.tick(at(10_001)) == []
    assert eng.tick(at(9_400 + 3599)) == []
    only_clear(eng.tick(at(9_400 + 3600)), "at-risk-rising", AGENCY, at(13_000))


def test_kpi_rising_adopted_judges_rows_only_once_the_window_is_known() -> None:
    eng = take_over(RISING, [], now=10_000, rule_id="at-risk-rising", group=AGENCY, since=0)
    assert eng.tick(at(10_001)) == []  # no row known: kept
    assert eng.observe_kpis([risk(10_100, 50)], at(10_100)) == []  # rise unknown: kept
    assert eng.observe_kpis([risk(10_200, 45)], at(10_200)) == []  # lower, still not known
    up = eng.observe_kpis([risk(10_300, 56)], at(10_300))  # 45 → 56 within the hour: holds
    assert firing(up) and up[0].value == 56
    assert eng.tick(at(10_200 + 3599)) == []
    only_clear(eng.tick(at(10_300 + 3600)), "at-risk-rising", AGENCY, at(13_900))


# -- look-back ------------------------------------------------------------------------------


def test_the_look_back_covers_consecutive_rules() -> None:
    assert engine(DOWN).look_back("uptime") == timedelta(hours=1)
    many = DOWN.replace("count: 3", "count: 90")
    assert engine(many).look_back("uptime") == timedelta(minutes=90)
    assert engine(many).look_back("security") == timedelta(0)
    assert engine(BURN + DOWN.replace("rules:\n", "")).look_back("uptime") == timedelta(hours=6)
