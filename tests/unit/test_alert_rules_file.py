"""Alert rule files: what loads, what is refused (every problem at once, each with its file,
line and YAML path), how secrets come from the environment, and the committed default set."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.alerts.kinds.template import Template, TemplateError
from ioc.alerts.receivers import AlertmanagerReceiver, MailReceiver, WebhookReceiver
from ioc.alerts.routing import Matcher
from ioc.alerts.rules import (
    AbsenceRule,
    BurnRateRule,
    BurnWindow,
    ConsecutiveRule,
    CorrelationRule,
    DurationError,
    KpiRisingRule,
    KpiThresholdRule,
    MatchRule,
    RuleFileError,
    RuleText,
    Where,
    check,
    check_report,
    format_duration,
    load_config,
    load_texts,
    parse_duration,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "alert-rules"
FULL_ENV = {
    "IOC_ALERTMANAGER_URL": "http://127.0.0.1:9093",
    "IOC_WEBHOOK_URL_SOC": "https://soc.tinh.gov.vn/hooks/ioc",
    "IOC_WEBHOOK_SECRET_SOC": "not-a-real-secret",
    "IOC_SMTP_HOST": "mail.tinh.gov.vn",
    "IOC_SMTP_PASSWORD": "not-a-real-password",
}


def problems(texts: dict[str, str], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        load_texts(texts, env or {})
    assert str(info.value).count("\n") == len(info.value.problems)  # one line each
    return list(info.value.problems)


# -- what loads -----------------------------------------------------------------------------

EVERY_KIND = """
rules:
  - id: critical
    kind: match
    where: {severity: [critical], category: [malware, intrusion]}
    group_by: [source, asset_id]
    labels: {team: security}
  - id: brute-force
    kind: correlation
    where: {category: brute_force}
    group_by: [src_ip]
    window: 5m
    min_events: 10
  - id: port-scan
    kind: correlation
    group_by: [src_ip]
    window: 10m
    min_events: 20
    distinct: dst_ip
    min_distinct: 5
    lateness: 1m30s
  - id: soc-silent
    kind: absence
    group_by: [source]
    window: 30m
    expect: [soc-tinh]
  - id: service-down
    kind: consecutive
    count: 3
  - id: slo
    kind: burn_rate
    objective: 0.995
    windows:
      - {long: 1h, short: 5m, factor: 14.4, severity: critical}
      - {long: 6h, short: 30m, factor: 6}
  - id: on-time
    kind: kpi_threshold
    scope: agency
    period: month
    value: on_time_ratio
    below: 0.9
    for: 30m
  - id: at-risk
    kind: kpi_rising
    scope: agency
    period: today
    value: at_risk
    rise: 10
    over: 1h
"""


def test_every_rule_kind_loads_with_its_settings_and_defaults() -> None:
    config = load_texts({"rules.yaml": EVERY_KIND}, {})
    rules = {r.id: r for r in config.rules}
    assert rules["critical"] == MatchRule(
        id="critical",
        where=Where.of(severity=["critical"], category=["malware", "intrusion"]),
        group_by=("source", "asset_id"),
        labels={"team": "security"},
    )
    assert rules["critical"].severity == "from_event"
    brute = rules["brute-force"]
    assert isinstance(brute, CorrelationRule)
    assert brute.where == Where.of(category=["brute_force"])  # a single value is a list of one
    assert (brute.window, brute.min_events, brute.lateness) == (timedelta(minutes=5), 10, None)
    scan = rules["port-scan"]
    assert isinstance(scan, CorrelationRule)
    assert (scan.distinct, scan.min_distinct, scan.lateness) == ("dst_ip", 5, timedelta(seconds=90))
    silent = rules["soc-silent"]
    assert isinstance(silent, AbsenceRule) and silent.expect == (("soc-tinh",),)
    down = rules["service-down"]
    assert isinstance(down, ConsecutiveRule)
    assert (down.group_by, down.status, down.severity) == (("service_id",), ("down",), "critical")
    slo = rules["slo"]
    assert isinstance(slo, BurnRateRule)
    assert slo.windows[1] == BurnWindow(
        long=timedelta(hours=6), short=timedelta(minutes=30), factor=6.0, severity="critical"
    )  # a pair without a severity takes the rule's
    on_time = rules["on-time"]
    assert isinstance(on_time, KpiThresholdRule)
    assert (on_time.below, on_time.above, on_time.for_) == (0.9, None, timedelta(minutes=30))
    assert isinstance(rules["at-risk"], KpiRisingRule)


def test_routes_take_matcher_strings_or_a_mapping_and_inhibitions_parse() -> None:
    text = """
receivers:
  am: {kind: alertmanager, url: "http://127.0.0.1:9093"}
routes:
  - name: security
    match: ['team="security"', 'severity=~"high|critical"']
    receivers: [am]
    escalate_after: 15m
    escalate_to: [am]
  - name: operations
    match: {team: operations}
    receivers: [am]
    continue: true
inhibit:
  - source: ['alertname="service-down"', 'tier="network"']
    target: ['tier!="network"']
    equal: [site]
"""
    config = load_texts({"routing.yaml": text}, {})
    security, operations = config.routes
    assert security.matchers == (
        Matcher("team", "=", "security"),
        Matcher("severity", "=~", "high|critical"),
    )
    assert security.escalate_after == timedelta(minutes=15)
    assert operations.matchers == (Matcher("team", "=", "operations"),) and operations.continue_
    assert config.inhibit[0].equal == ("site",)
    assert config.inhibit[0].target == (Matcher("tier", "!=", "network"),)


# -- what is refused ------------------------------------------------------------------------

BROKEN = """\
rules:
  - id: ok-rule
    kind: consecutive
  - id: Bad Id
    kind: match
  - id: brute-force
    kind: correlation
    window: 5 minutes
    min_events: 0
    windw: 5m
  - id: tls
    kind: kpi_threshold
    scope: service
    period: now
    value: tls_days
    below: 14
  - id: odd
    kind: sometimes
"""


def test_every_problem_is_listed_with_file_line_and_yaml_path() -> None:
    found = problems({"deploy/alert-rules/security.yaml": BROKEN})
    f = "deploy/alert-rules/security.yaml"
    assert f"{f}:4: rules[1].id: expected a slug like brute-force-ssh, got 'Bad Id'" in found
    assert f"{f}:8: rules[2].window: expected a duration like 5m, 1h30m, got '5 minutes'" in found
    assert f"{f}:9: rules[2].min_events: must be at least 1, got 0" in found
    assert any(
        p.startswith(f"{f}:10: rules[2].windw: unknown key 'windw'; did you mean 'window'?")
        for p in found
    )
    assert any(
        p.startswith(f"{f}:15: rules[3].value: service/now rows have no numeric value 'tls_days'")
        and "did you mean 'tls_days_left'?" in p
        for p in found
    )
    assert any(p.startswith(f"{f}:18: rules[4].kind: expected one of match,") for p in found)
    assert len(found) == 6


def test_duplicate_rule_ids_across_files_name_both_places() -> None:
    a = "rules:\n  - {id: brute-force, kind: consecutive}\n"
    b = "rules:\n  - {id: other, kind: consecutive}\n  - {id: brute-force, kind: consecutive}\n"
    found = problems({"a.yaml": a, "b.yaml": b})
    assert found == ["b.yaml:3: rules[1].id: duplicate rule id 'brute-force' (first in a.yaml:2)"]


def test_a_key_given_twice_in_yaml_is_refused() -> None:
    text = "rules:\n  - id: x\n    kind: consecutive\n    count: 3\n    count: 4\n"
    assert problems({"r.yaml": text}) == [
        "r.yaml:5: rules[0].count: key given twice (the first would be ignored)"
    ]


def test_invalid_yaml_names_the_line() -> None:
    found = problems({"r.yaml": "rules:\n  - id: x\n   kind: [\n"})
    assert len(found) == 1 and found[0].startswith("r.yaml:3: not valid YAML")


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("{id: x, kind: correlation, window: 0s, min_events: 3}", "window: must be longer than 0s"),
        (
            "{id: x, kind: correlation, window: 5m, min_events: 3, min_distinct: 2}",
            "min_distinct: min_distinct needs a distinct field to count",
        ),
        (
            "{id: x, kind: correlation, window: 5m, min_events: 3, group_by: [src_ip],"
            " distinct: src_ip, min_distinct: 2}",
            "distinct: 'src_ip' is in group_by, so each group has one value of it",
        ),
        (
            "{id: x, kind: burn_rate, objective: 0.995, windows: [{long: 5m, short: 1h,"
            " factor: 2}]}",
            "windows[0].short: must be shorter than long (5m)",
        ),
        (
            "{id: x, kind: burn_rate, objective: 0.9, windows: [{long: 1h, short: 5m,"
            " factor: 10}]}",
            "windows[0].factor: factor × (1 − objective) = 1 ≥ 1",
        ),
        ("{id: x, kind: burn_rate, objective: 1.5, windows: []}", "objective: must be between"),
        ("{id: x, kind: consecutive, stream: security}", "stream: consecutive rules read the"),
        ("{id: x, kind: match, group_by: [service_id]}", "group_by[0]: expected one of source,"),
        ("{id: x, kind: match, where: {severity: [urgent]}}", "where.severity[0]: expected one"),
        ("{id: x, kind: match, summary: 'open {brace'}", "summary: bad summary template"),
        ("{id: x, kind: match, labels: {alertname: y}}", "labels.alertname: 'alertname' is set"),
        (
            "{id: x, kind: kpi_threshold, scope: agency, period: now, value: overdue, above: 1}",
            "period: agency rows have periods today, month",
        ),
        (
            "{id: x, kind: kpi_threshold, scope: agency, period: year, value: overdue}",
            "kind: a kpi_threshold rule needs one of below: or above:",
        ),
        (
            "{id: x, kind: kpi_rising, scope: agency, period: year, value: overdue, rise: -1,"
            " over: 1h}",
            "rise: must be positive, got -1",
        ),
        ("{id: x, kind: absence, window: 5m, expect: [a]}", "expect: expect names groups"),
        ("{kind: match}", "rules[0]: missing required key 'id'"),
    ],
)
def test_rule_problems_name_the_key_and_the_reason(rule: str, reason: str) -> None:
    found = problems({"r.yaml": f"rules:\n  - {rule}\n"})
    assert any(reason in p for p in found), found
    assert all(p.startswith("r.yaml:2: rules[0]") for p in found), found


# -- receivers and secrets ------------------------------------------------------------------

WEBHOOK = """
receivers:
  soc-oncall:
    kind: webhook
    url: https://soc.tinh.gov.vn/hook
    secret_env: IOC_WEBHOOK_SECRET_SOC
routes:
  - {name: security, receivers: [soc-oncall]}
"""


def test_secrets_come_from_the_environment_by_name() -> None:
    config = load_texts({"r.yaml": WEBHOOK}, {"IOC_WEBHOOK_SECRET_SOC": "k3y"})
    hook = config.receivers["soc-oncall"]
    assert isinstance(hook, WebhookReceiver) and hook.secret == "k3y"
    assert "k3y" not in repr(hook) and "k3y" not in check_report(config)
    assert config.routes[0].receivers == ("soc-oncall",) and config.warnings == ()


def test_a_receiver_whose_variable_is_missing_is_disabled_and_routes_skip_it() -> None:
    config = load_texts({"r.yaml": WEBHOOK}, {})
    assert config.receivers == {}
    assert config.routes[0].receivers == ()  # the route keeps its place in the order
    assert "receiver soc-oncall disabled: IOC_WEBHOOK_SECRET_SOC not set" in config.warnings
    ok, report = check([RuleText("r.yaml", WEBHOOK)], {})
    assert ok and "IOC_WEBHOOK_SECRET_SOC not set" in report
    assert check([RuleText("r.yaml", WEBHOOK)], {}, strict=True)[0] is False


def test_a_required_receiver_whose_variable_is_missing_is_an_error_naming_it() -> None:
    text = WEBHOOK.replace("    kind: webhook\n", "    kind: webhook\n    required: true\n")
    found = problems({"r.yaml": text})
    assert found == [
        "r.yaml:5: receivers.soc-oncall.required: environment variable not set:"
        " IOC_WEBHOOK_SECRET_SOC"
    ]


def test_a_webhook_needs_a_secret_and_secrets_are_never_written_in_files() -> None:
    text = "receivers:\n  hook: {kind: webhook, url: 'https://x.vn/h', secret: hunter2}\n"
    found = problems({"r.yaml": text})
    assert any("hook.secret: secrets are not written in rule files" in p for p in found)
    assert any("hook.kind: a webhook receiver needs secret_env:" in p for p in found)
    assert all("hunter2" not in p for p in found)


def test_url_env_wins_and_url_is_the_fallback() -> None:
    text = """
receivers:
  am: {kind: alertmanager, url_env: IOC_ALERTMANAGER_URL, url: "http://127.0.0.1:9093"}
"""
    local = load_texts({"r.yaml": text}, {}).receivers["am"]
    prod = load_texts({"r.yaml": text}, {"IOC_ALERTMANAGER_URL": "http://am:9093"}).receivers["am"]
    assert isinstance(local, AlertmanagerReceiver) and local.url == "http://127.0.0.1:9093"
    assert isinstance(prod, AlertmanagerReceiver) and prod.url == "http://am:9093"


def test_a_route_to_an_unknown_receiver_is_an_error() -> None:
    text = "routes:\n  - {name: security, receivers: [pager]}\n"
    assert problems({"r.yaml": text}) == [
        "r.yaml:2: routes[0].receivers: unknown receiver 'pager' (receivers: none defined)"
    ]


def test_a_bad_matcher_is_reported_where_it_is() -> None:
    text = "routes:\n  - name: x\n    match:\n      - 'team = '\n      - 'site=~\"(\"'\n"
    found = problems({"r.yaml": text})
    assert len(found) == 1 and found[0].startswith("r.yaml:5: routes[0].match[1]: bad regular")


# -- files and directories ------------------------------------------------------------------


def test_a_directory_loads_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("rules:\n  - {id: second, kind: consecutive}\n")
    (tmp_path / "a.yaml").write_text("rules:\n  - {id: first, kind: consecutive}\n")
    (tmp_path / "notes.txt").write_text("not rules")
    config = load_config([tmp_path], {})
    assert [r.id for r in config.rules] == ["first", "second"]
    assert config.files == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yml"))


def test_missing_files_and_empty_directories_are_reported(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError) as info:
        load_config([tmp_path, tmp_path / "gone.yaml"], {})
    assert len(info.value.problems) == 2
    assert "no *.yaml or *.yml files" in info.value.problems[0]
    assert info.value.problems[1].startswith(f"{tmp_path / 'gone.yaml'}: cannot read")


# -- the committed default set --------------------------------------------------------------


def test_the_committed_rules_load_without_any_secret() -> None:
    config = load_config([DEPLOY], {})
    assert len(config.rules) >= 14
    assert {r.kind for r in config.rules} == {
        "match",
        "correlation",
        "absence",
        "consecutive",
        "burn_rate",
        "kpi_threshold",
        "kpi_rising",
    }
    assert config.receivers == {}
    assert [r.name for r in config.routes] == ["security", "operations", "default"]
    assert any("nobody is notified" in w for w in config.warnings)


def test_the_committed_rules_with_the_production_environment_notify_everyone() -> None:
    ok, report = check([DEPLOY], FULL_ENV, strict=True)
    assert ok, report
    config = load_config([DEPLOY], FULL_ENV)
    assert config.warnings == ()
    security = config.routes[0]
    assert security.receivers == ("alertmanager", "soc-oncall")
    assert security.escalate_to == ("security-team",)
    assert security.escalate_after == timedelta(minutes=15)
    mail = config.receivers["security-team"]
    assert isinstance(mail, MailReceiver) and mail.password == FULL_ENV["IOC_SMTP_PASSWORD"]
    assert config.inventory.labels("service_id", "svc-dvc") == {"site": "dc-tinh", "tier": "core"}


def test_the_report_counts_what_was_loaded() -> None:
    report = check_report(load_config([DEPLOY], FULL_ENV))
    assert report.startswith("Alert rules: ")
    assert "Receivers: 4 enabled" in report
    assert 'security         team="security" → alertmanager, soc-oncall' in report
    assert "unacknowledged 15m → security-team" in report


def test_check_returns_the_problems_when_files_are_broken() -> None:
    ok, text = check([RuleText("x.yaml", BROKEN)], {})
    assert not ok and "6 problems in the alert rule files" in text


# -- durations and templates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("0s", 0)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@given(st.integers(0, int(timedelta(days=3650).total_seconds())))
def test_duration_spelling_round_trips(seconds: int) -> None:
    d = timedelta(seconds=seconds)
    assert parse_duration(format_duration(d)) == d


@given(st.text(max_size=30))
def test_parse_duration_raises_nothing_but_its_own_error(text: str) -> None:
    try:
        d = parse_duration(text)
    except DurationError:
        return
    assert format_duration(d) == format_duration(parse_duration(format_duration(d)))
    assert timedelta(0) <= d <= timedelta(days=3650)


@given(
    st.text(max_size=40),
    st.dictionaries(
        st.text(max_size=8), st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5))
    ),
)
def test_a_summary_template_either_fails_at_load_or_always_renders(
    text: str, values: dict[str, object]
) -> None:
    try:
        template = Template(text)
    except TemplateError:
        return
    assert isinstance(template.render(values), str)


def test_a_missing_placeholder_stays_visible() -> None:
    assert Template("{a} on {b:.1f} and {c:.1%}").render({"a": 1, "c": "x"}) == "1 on {b?} and x"
