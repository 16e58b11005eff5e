"""What ``ioc doctor`` concludes from what it read, for the set-ups the integration tests cannot
build here: a TimescaleDB schema on a server without the extension, a production cluster's
replication, a database newer than the release."""

from __future__ import annotations

from ioc.broker import topic_plan
from ioc.config import Settings
from ioc.doctor import (
    Finding,
    _database_shown,
    _extension_finding,
    _migration_finding,
    _topic_findings,
    exit_code,
    grafana_health,
    render,
    retention_findings,
)

KAFKA = Settings.from_env(
    {
        "IOC_KAFKA_URL": "k1:9092;k2:9092;k3:9092",
        "IOC_TOPIC_REPLICATION": "3",
        "IOC_PARTITIONS": "12",
    }
)


def described(
    partitions: int, replicas: int, settings: Settings = KAFKA
) -> list[dict[str, object]]:
    return [
        {
            "topic": t,
            "error_code": 0,
            "partitions": [
                {
                    "partition": p,
                    "leader": 0,
                    "replicas": list(range(replicas)),
                    "isr": list(range(replicas)),
                }
                for p in range(partitions)
            ],
        }
        for t in topic_plan(settings)
    ]


def test_a_healthy_production_cluster_passes() -> None:
    found = _topic_findings(KAFKA, described(12, 3), brokers=3)
    assert [f.status for f in found] == ["ok"]


def test_under_replicated_and_under_partitioned_topics_are_warned_about() -> None:
    found = _topic_findings(KAFKA, described(6, 1), brokers=3)
    assert [f.status for f in found] == ["warn", "warn"]
    assert "ioc.security.v1 has 6 < 12" in found[0].detail
    assert "replication below IOC_TOPIC_REPLICATION=3" in found[1].detail
    assert "lose" in found[1].hint


def test_replication_one_on_a_three_broker_cluster_is_a_warning() -> None:
    single = Settings.from_env({"IOC_KAFKA_URL": "k1:9092", "IOC_PARTITIONS": "12"})
    found = _topic_findings(single, described(12, 1, single), brokers=3)
    assert [f.status for f in found] == ["warn"]
    assert "min.insync.replicas=2" in found[0].hint


def test_a_timescale_schema_without_the_extension_fails() -> None:
    f = _extension_finding("timescale", None, None)
    assert f.status == "FAIL" and "same TimescaleDB version" in f.hint
    assert _extension_finding("timescale", "2.28.1", "2.28.1").status == "ok"
    assert _extension_finding("plain", None, "2.28.1").status == "warn"
    assert _extension_finding("plain", None, None).status == "info"


def test_a_database_newer_than_the_release_fails() -> None:
    f = _migration_finding({1, 2, 3, 4}, {1, 2, 3})
    assert f.status == "FAIL" and "[4]" in f.detail and "older than the schema" in f.hint
    assert _migration_finding({1, 2, 3}, {1, 2, 3}).status == "ok"


def test_the_report_ends_with_a_verdict_and_the_exit_code_follows_failures() -> None:
    warn = Finding("topics", "warn", "few partitions", "add some")
    fail = Finding("database", "FAIL", "down", "start it")
    assert render([warn]).splitlines() == [
        "warn  topics  few partitions",
        "              → add some",
        "healthy (1 warning(s))",
    ]
    assert render([warn, fail]).splitlines()[-1].startswith("1 problem(s), 1 warning(s)")
    assert (exit_code([warn]), exit_code([warn, fail])) == (0, 1)


def test_the_retention_plan_is_grouped_by_days() -> None:
    found = retention_findings([("a", 30), ("b", None), ("c", 30), ("d", 400)])
    assert [f.detail for f in found] == ["30 days: a, c", "400 days: d", "forever: b"]


def test_leaderless_partitions_fail_and_short_isr_warns() -> None:
    topics = described(12, 3)
    partitions = topics[2]["partitions"]
    assert isinstance(partitions, list)
    partitions[0].update(leader=-1, isr=[])
    partitions[1].update(leader=1, isr=[1])
    found = _topic_findings(KAFKA, topics, brokers=3)
    assert [(f.status, f.detail) for f in found] == [
        ("FAIL", "no leader: ioc.security.v1/0"),
        ("warn", "under-replicated (fewer than 2 in sync): ioc.security.v1/1"),
    ]


def test_grafana_health_is_read_from_its_whole_body() -> None:
    # Grafana 11's answer: pretty-printed, longer than a display line.
    body = (
        '{\n  "commit": "83b9528bce85cf9371320f6d6e450916156da3f6",\n  "database": "ok",\n'
        '  "version": "11.6.3"\n}'
    )
    assert grafana_health("http://grafana:3000", body) == Finding(
        "grafana", "ok", "Grafana 11.6.3 at http://grafana:3000"
    )
    assert grafana_health("g", '{"database": "failing"}').status == "FAIL"
    assert grafana_health("g", "<html>login</html>").status == "FAIL"


def test_the_database_is_shown_without_its_password_in_any_form() -> None:
    for url in (
        "postgresql://ioc:s3cret@db:5433/ioc",
        "postgresql://ioc@db:5433/ioc?password=s3cret",
        "host=db port=5433 dbname=ioc user=ioc password=s3cret",
    ):
        assert _database_shown(url) == "ioc@db:5433/ioc"
