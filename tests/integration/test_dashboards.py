"""Every wall panel's SQL, as Grafana sends it, against a seeded database and an empty one,
through the read-only login Grafana uses; and every PromQL metric against what a running
worker and gateway export.

The seeded database holds two weeks of a simulated province stored by the real writer, the
KPIs the worker's own refresh computes from it, and alerts in each state. Variables are
chosen three ways (one value, several, "All"); macros are expanded as Grafana's PostgreSQL
datasource does, in the plain form and, on a TimescaleDB server, the ``time_bucket`` form.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg.types.json import Jsonb

from ioc.config import Settings
from ioc.dashboards import render_all
from ioc.producer import stream_of
from ioc.services.postgres import drop_database
from ioc.simulator import ProvinceSimulator
from ioc.storage.kpi_store import publish_snapshot, save_catalogue
from ioc.storage.migrations import READER_ROLE, current_mode, migrate
from ioc.storage.writer import EventWriter
from ioc.storage_types import Consumed
from pipelines.kpi import live_kpis
from tests.support.gateway import GatewayThread
from tests.support.grafana_sql import MacroError, Range, grafana_sql, with_panel_interval
from tests.support.panels import (
    MODES,
    choose,
    postgres_targets,
    run,
    series_names,
    shape_problems,
)
from tests.support.services import (
    Stack,
    WorkerProcess,
    free_port,
    new_database,
    wait_for,
)

pytestmark = pytest.mark.integration

LOGIN = "ioc_grafana_test"
DASHBOARDS = render_all()["vi"]
NOW = datetime.now(UTC).replace(microsecond=0)
WEEK = Range(NOW - timedelta(days=7), NOW)


def _login(url: str) -> str:
    """The same database as Grafana's read-only login (trust authentication here)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (LOGIN,)).fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateObject):
                conn.execute(f"CREATE ROLE {LOGIN} LOGIN IN ROLE {READER_ROLE}")
        conn.execute(f"ALTER ROLE {LOGIN} SET default_transaction_read_only = on")
        dbname = conn.info.dbname
    return psycopg.conninfo.make_conninfo(url, user=LOGIN, dbname=dbname)


def _seed(url: str) -> None:
    sim = ProvinceSimulator(
        seed=7,
        start=NOW - timedelta(days=14),
        dossiers_per_day=150,
        services=6,
        probe_interval=timedelta(minutes=5),
        security_events_per_minute=1,
    )
    events = sim.advance(NOW - timedelta(seconds=1))
    settings = Settings.from_env({"IOC_DATABASE_URL": url})

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await save_catalogue(conn, sim.tree, sim.procedures)
        by_stream: dict[Any, list[Any]] = {}
        for e in events:
            by_stream.setdefault(stream_of(e), []).append(e)
        for stream, items in by_stream.items():
            writer = EventWriter(url, stream, lambda: datetime.now(UTC))
            for n, i in enumerate(range(0, len(items), 5000)):
                batch = items[i : i + 5000]
                await writer.write([Consumed(e, 0, n * 5000 + j) for j, e in enumerate(batch)])
            await writer.close()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            rows = await live_kpis(settings, as_of=True).refresh(conn, NOW)
            await publish_snapshot(conn, rows, rows)

    asyncio.run(go())
    service = sim.service_ids[0]
    with psycopg.connect(url, autocommit=True) as conn:
        # A source that went quiet two days ago, and alerts in each state.
        conn.execute(
            "INSERT INTO security_sources VALUES ('waf-cu', %s, %s)",
            (NOW - timedelta(days=9), NOW - timedelta(days=2)),
        )
        alerts = [
            ("security-critical", "critical", "firing", {"team": "security", "source": "soc"}),
            ("port-scan", "high", "acknowledged", {"team": "security", "src_ip": "192.0.2.7"}),
            ("service-down", "critical", "firing", {"team": "operations", "service_id": service}),
            ("service-down", "high", "resolved", {"team": "operations", "service_id": service}),
        ]
        for i, (rule, severity, state, labels) in enumerate(alerts):
            start = NOW - timedelta(hours=3 + i)
            conn.execute(
                "INSERT INTO alerts (id, fingerprint, rule, state, severity, summary, labels,"
                " starts_at, ends_at, fired_at, updated_at, acknowledged_by, acknowledged_at,"
                " event_count, doc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, '{}')",
                (
                    uuid.uuid4(),
                    f"fp-{i}",
                    rule,
                    state,
                    severity,
                    f"Cảnh báo {rule} ({state}) — kiểm tra 'dấu nháy'",
                    Jsonb(labels),
                    start,
                    start + timedelta(minutes=40) if state == "resolved" else None,
                    start,
                    start,
                    "an.nv" if state == "acknowledged" else None,
                    start + timedelta(minutes=5) if state == "acknowledged" else None,
                    3 + i,
                ),
            )


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[str, str]]:
    url = new_database()
    migrate(url)
    _seed(url)
    yield url, _login(url)
    drop_database(url)


@pytest.fixture(scope="module")
def empty() -> Iterator[tuple[str, str]]:
    url = new_database()
    migrate(url)
    yield url, _login(url)
    drop_database(url)


def _timescale(url: str) -> list[bool]:
    with psycopg.connect(url) as conn:
        return [False, True] if current_mode(conn) == "timescale" else [False]


def _run_all(url: str, login: str) -> tuple[list[str], dict[str, int], list[str]]:
    """Every target of every dashboard in every variable mode: problems, rows per target
    (the most over the modes), and time-series overrides that matched no series."""
    problems: list[str] = []
    rows: dict[str, int] = {}
    series: dict[tuple[str, int], set[str]] = {}
    with psycopg.connect(login, autocommit=True) as conn:
        for dashboard in DASHBOARDS:
            for mode in MODES:
                variables = choose(conn, dashboard, mode, WEEK)
                for panel, target in postgres_targets(dashboard):
                    where = f"{dashboard['uid']} / {panel['title']} / {target['refId']} ({mode})"
                    when = with_panel_interval(WEEK, panel)
                    for timescale in _timescale(url):
                        try:
                            statement = grafana_sql(
                                target["rawSql"], variables, when, timescale=timescale
                            )
                            res = run(conn, statement)
                        except (MacroError, psycopg.Error) as exc:
                            problems.append(f"{where}: {exc}")
                            continue
                        problems += [f"{where}: {p}" for p in shape_problems(panel, target, res)]
                        if target["format"] == "time_series":
                            seen = series.setdefault((dashboard["uid"], panel["id"]), set())
                            seen |= series_names(res)
                        key = f"{dashboard['uid']} / {panel['title']} / {target['refId']}"
                        rows[key] = max(rows.get(key, 0), len(res.rows))
    unmatched = []
    for dashboard in DASHBOARDS:
        for panel in dashboard["panels"]:
            names = series.get((dashboard["uid"], panel["id"]))
            if names is None:
                continue
            for override in panel["fieldConfig"]["overrides"]:
                if override["matcher"]["options"] not in names:
                    unmatched.append(f"{panel['title']}: {override['matcher']['options']}")
    return problems, rows, unmatched


#: Panels with nothing to show on two weeks of the simulator, and why that is right.
EMPTY_WHEN_SEEDED = {
    # The simulated services carry certificates valid for months.
    "ioc-services / Chứng chỉ TLS hết hạn < 30 ngày / A",
}


def test_every_panel_runs_and_fits_its_panel_type_on_a_seeded_database(
    seeded: tuple[str, str],
) -> None:
    problems, rows, unmatched = _run_all(*seeded)
    assert not problems, "\n".join(problems)
    assert not unmatched, f"overrides naming no series: {unmatched}"
    empty = sorted(k for k, n in rows.items() if n == 0)
    assert set(empty) <= EMPTY_WHEN_SEEDED, f"panels with no rows on seeded data: {empty}"


def test_no_panel_errors_on_an_empty_database(empty: tuple[str, str]) -> None:
    problems, _, _ = _run_all(*empty)
    assert not problems, "\n".join(problems)


def test_stats_show_the_values_the_kpis_hold(seeded: tuple[str, str]) -> None:
    """The overview's numbers are the KPI rows of the province, not something else."""
    _url, login = seeded
    overview = next(d for d in DASHBOARDS if d["uid"] == "ioc-overview")
    by_title = {p["title"]: p for p in overview["panels"]}
    with psycopg.connect(login) as conn:
        variables = choose(conn, overview, "single", WEEK)

        def value(title: str) -> Any:
            target = by_title[title]["targets"][0]
            return run(conn, grafana_sql(target["rawSql"], variables, WEEK)).rows[0][0]

        received = value("Hồ sơ tiếp nhận hôm nay")
        expected = conn.execute(
            "SELECT (k.\"values\"->>'received')::int FROM kpi_current k JOIN agencies a"
            " ON a.code = k.key WHERE a.parent_code IS NULL AND k.scope = 'agency'"
            " AND k.period = 'today'"
        ).fetchone()
        assert expected is not None and received == expected[0]
        assert value("Cảnh báo ATTT nghiêm trọng") == 1  # one firing critical security alert
        assert value("Nguồn ATTT im lặng") == 1  # waf-cu, quiet for two days
        events = value("Sự kiện ATTT trong kỳ")
        counted = conn.execute(
            "SELECT count(*) FROM security_events WHERE event_time BETWEEN %s AND %s",
            (WEEK.start, WEEK.end),
        ).fetchone()
        assert counted is not None and 0 < events <= counted[0] + 5 * 60  # 5-minute buckets


def test_the_grafana_login_cannot_write_or_read_credentials(seeded: tuple[str, str]) -> None:
    _, login = seeded
    with psycopg.connect(login, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM alerts")
        for secret in ("integrations", "alert_users", "gateway_audit", "notifications"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {secret} LIMIT 1")


def test_time_series_use_vietnamese_days(seeded: tuple[str, str]) -> None:
    """The dossier trend's daily points fall on midnight in Hà Nội, not in UTC."""
    _, login = seeded
    dossiers = next(d for d in DASHBOARDS if d["uid"] == "ioc-dossiers")
    panel = next(p for p in dossiers["panels"] if p["title"] == "Hồ sơ theo ngày")
    with psycopg.connect(login) as conn:
        variables = choose(conn, dossiers, "all", WEEK)
        res = run(conn, grafana_sql(panel["targets"][0]["rawSql"], variables, WEEK))
    assert res.rows
    hanoi = timedelta(hours=7)
    assert all((r[0] + hanoi).astimezone(UTC).hour == 0 for r in res.rows)


PROMQL_METRIC = re.compile(r"\b(ioc_[a-z0-9_]+)")


def _families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def _exported(name: str, families: dict[str, str]) -> bool:
    """Whether ``name`` (as PromQL writes it) is a sample of an exported family."""
    if name in families:
        return True
    for suffix, kinds in (
        ("_total", {"counter"}),
        ("_bucket", {"histogram"}),
        ("_count", {"histogram", "summary"}),
        ("_sum", {"histogram", "summary"}),
    ):
        if name.endswith(suffix) and families.get(name.removesuffix(suffix)) in kinds:
            return True
    return False


def test_every_promql_metric_is_exported_by_a_running_worker_or_gateway(
    tmp_path: Path, kpi_stack: Stack
) -> None:
    migrate(kpi_stack.database_url)
    env = {
        **kpi_stack.env,
        "IOC_GATEWAY_PORT": "0",
        "IOC_SYSLOG_UDP_PORT": "0",
        "IOC_SYSLOG_TCP_PORT": "0",
    }
    with GatewayThread(Settings.from_env(env)) as gw:
        gw.wait_ready()
        families = _families(str(gw.get("/metrics").body))
    worker = WorkerProcess(kpi_stack, tmp_path / "worker.log", metrics_port=free_port())
    worker.start()
    try:
        wait_for(
            lambda: worker.sample("ioc_worker_up") == 1,
            timeout=90,
            what="the worker's metrics",
            on_fail=worker.log_tail,
        )
        families.update(_families(worker.metrics()))
    finally:
        worker.stop()
    missing = []
    for dashboard in DASHBOARDS:
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["type"] != "prometheus":
                    continue
                for name in PROMQL_METRIC.findall(target["expr"]):
                    if not _exported(name, families):
                        missing.append(f"{dashboard['uid']} / {panel['title']}: {name}")
    assert not missing, "\n".join(missing)
    assert {"ioc_events_stored", "ioc_consumer_lag", "ioc_gateway_requests"} <= set(families)
