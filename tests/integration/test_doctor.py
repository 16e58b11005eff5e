"""``ioc doctor`` against a healthy set-up and broken ones: the real command, real broker,
database and Alertmanager. It must pass a working deployment, and for each thing broken name
it, say what to do, and exit 1."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ioc.broker import ensure_topics
from ioc.services.alertmanager import LocalAlertmanager
from ioc.storage.migrations import migrate
from tests.support.alertmanager import alertmanager_fixture  # noqa: F401
from tests.support.services import Stack, free_port, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(Path(tmp_path_factory.mktemp("doctor")))
    try:
        yield s
    finally:
        s.close()


def doctor(env: dict[str, str]) -> tuple[int, dict[str, list[str]]]:
    """Exit code, and each check's lines (status and detail, hint lines joined on)."""
    done = subprocess.run(
        [sys.executable, "-m", "ioc.cli", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    by_check: dict[str, list[str]] = {}
    last = ""
    for line in done.stdout.splitlines()[:-1]:
        finding = re.match(r"(\S+)\s+(\S.*?)\s{2,}(.*)$", line)
        if finding:
            status, last, detail = finding.groups()
            by_check.setdefault(last, []).append(f"{status} {last}  {detail}")
        else:
            by_check[last][-1] += " " + line.strip()
    by_check["verdict"] = done.stdout.splitlines()[-1:]
    return done.returncode, by_check


def healthy_env(stack: Stack, am: LocalAlertmanager) -> dict[str, str]:
    return {**stack.env, "IOC_ALERTMANAGER_URL": am.url}


def test_a_working_deployment_is_healthy(
    stack: Stack,
    alertmanager: LocalAlertmanager,
) -> None:
    migrate(stack.database_url)
    asyncio.run(ensure_topics(stack.settings))
    code, found = doctor(healthy_env(stack, alertmanager))
    assert code == 0, found
    assert found["broker"][0].startswith("ok ")
    assert "embedded Tansu" in found["broker"][0]
    assert found["topics"] == [
        "ok topics  all 6 present (dossier 4, uptime 4, security 4, deadletter 4, kpi 4,"
        " alerts 4 partitions)"
    ]
    assert found["database"][0].startswith("ok ")
    assert found["migrations"][0].startswith("ok ")
    assert found["alertmanager"] == [
        f"ok alertmanager  receiver alertmanager at {alertmanager.url}/-/ready: "
        + found["alertmanager"][0].split(": ", 1)[1]
    ]
    assert "skip" in found["grafana"][0]  # no Grafana runs here: said, not faked
    assert any("forever: dossier_events" in r for r in found["retention"])
    assert found["verdict"][0].startswith("healthy")


def test_nothing_reachable_names_each_service_and_what_to_do(
    stack: Stack,
    alertmanager: LocalAlertmanager,
) -> None:
    closed = free_port()
    env = {
        **stack.env,
        "IOC_KAFKA_URL": f"kafka://127.0.0.1:{closed}",
        "IOC_DATABASE_URL": f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/ioc",
        "IOC_ALERTMANAGER_URL": f"http://127.0.0.1:{closed}",
        # Something answers there, but it is not Grafana.
        "GRAFANA_URL": alertmanager.url,
    }
    code, found = doctor(env)
    assert code == 1
    broker, database = found["broker"][0], found["database"][0]
    assert broker.startswith(f"FAIL broker  no answer from 127.0.0.1:{closed}")
    assert "→ is Kafka running and IOC_KAFKA_URL right?" in broker
    assert database.startswith("FAIL database  cannot connect to postgres@127.0.0.1:")
    assert all("s3cret" not in line for lines in found.values() for line in lines)
    assert "→ is the server running" in database
    assert found["alertmanager"][0].startswith("FAIL alertmanager  receiver alertmanager at")
    assert found["grafana"][0].startswith(
        f"FAIL grafana  Grafana at {alertmanager.url}/api/health answered HTTP 404"
    )
    assert found["verdict"][0].startswith("4 problem(s)")


def test_missing_topics_and_a_pending_migration_are_problems(
    stack: Stack,
    alertmanager: LocalAlertmanager,
    tmp_path: Path,
) -> None:
    migrate(stack.database_url)
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ioc_schema_migrations WHERE version = 8")
    fresh = start_stack(tmp_path)  # a broker with no topics yet
    try:
        env = {**healthy_env(stack, alertmanager), "IOC_KAFKA_URL": fresh.broker.url}
        code, found = doctor(env)
    finally:
        fresh.close()
        migrate(stack.database_url)  # put the module's database back
    assert code == 1
    assert found["topics"][0].startswith("FAIL topics  missing: ioc.alerts.v1, ioc.deadletter.v1")
    assert "→ run `ioc topics`" in found["topics"][0]
    assert found["migrations"] == [
        "FAIL migrations  pending: [8] (applied up to 7) → run `ioc migrate` before starting"
        " the new release's workers"
    ]
    assert found["verdict"][0].startswith("2 problem(s)")


def test_a_broken_rule_file_and_a_bad_setting_are_reported(
    stack: Stack,
    alertmanager: LocalAlertmanager,
    tmp_path: Path,
) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - id: x\n    kind: nonsense\n")
    code, found = doctor({**healthy_env(stack, alertmanager), "IOC_ALERT_RULES": str(bad)})
    assert code == 1
    assert found["alert rules"][0].startswith("FAIL alert rules")
    assert "→ run `ioc rules check`" in found["alert rules"][0]

    code, found = doctor({**stack.env, "IOC_RETENTION": "security_event=30"})
    assert code == 1
    assert found["config"][0].startswith("FAIL config  IOC_RETENTION: unknown table")
