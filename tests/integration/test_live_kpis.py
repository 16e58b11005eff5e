"""Simulator → broker → worker → KPI snapshots, equal to the pure functions on the same events.

A simulated province's last three days go through the real embedded broker into a real
``ioc worker``; once everything is stored and a refresh has completed, every row of
``kpi_latest`` (and the gauges) must equal what :mod:`ioc.kpi` computes from the events alone.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ioc.events import SEVERITY_RANK, DossierEvent, SecurityEvent, UptimeEvent, partition_key
from ioc.kpi.calendar import WorkCalendar, periods_at
from ioc.kpi.dossier_kpis import counts_by_agency
from ioc.kpi.dossier_rules import DossierFacts
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS
from ioc.kpi.security import (
    FIVE_MINUTES,
    category_counts,
    quiet_sources,
    source_activity,
    target_counts,
    top_targets,
    totals_by,
)
from ioc.kpi.snapshot import dossier_rows, security_rows, service_window_values
from ioc.kpi.uptime import (
    WINDOWS,
    IncidentSummary,
    availability,
    floor_to,
    incidents,
    minute_counts,
    window_bounds,
)
from ioc.kpi_live import CATEGORIES
from ioc.producer import encode, stream_of
from ioc.simulator import ProvinceSimulator
from ioc.storage.kpi_store import save_catalogue
from ioc.storage.migrations import migrate
from tests.integration.test_worker_ingest import counts, produce
from tests.support.services import Stack, WorkerProcess, start_stack, wait_for

pytestmark = pytest.mark.integration

VOLATILE = {"last_check_age_seconds", "silent_seconds"}


@pytest.fixture(scope="module")
def kpi_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(Path(tmp_path_factory.mktemp("kpi")))
    s.extra_env["IOC_KPI_INTERVAL_SECONDS"] = "1"
    try:
        yield s
    finally:
        s.close()


def test_live_snapshots_equal_the_pure_functions(kpi_stack: Stack, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    sim = ProvinceSimulator(
        seed=3,
        start=now - timedelta(days=3),
        dossiers_per_day=250,
        services=6,
        probe_interval=timedelta(minutes=2),
        security_events_per_minute=4,
    )
    events = sim.advance(now - timedelta(seconds=5))
    migrate(kpi_stack.database_url)

    async def seed() -> None:
        async with await psycopg.AsyncConnection.connect(kpi_stack.database_url) as conn:
            await save_catalogue(conn, sim.tree, sim.procedures)

    asyncio.run(seed())
    produce(kpi_stack, [(stream_of(e).topic, partition_key(e).encode(), encode(e)) for e in events])
    dossier = [e for e in events if isinstance(e, DossierEvent)]
    uptime = [e for e in events if isinstance(e, UptimeEvent)]
    security = [e for e in events if isinstance(e, SecurityEvent)]

    worker = WorkerProcess(kpi_stack, tmp_path / "worker.log")
    worker.start()
    try:
        wait_for(
            lambda: (
                counts(kpi_stack)["dossier_events"] == len(dossier)
                and counts(kpi_stack)["uptime_checks"] == len(uptime)
                and counts(kpi_stack)["security_events"] == len(security)
            ),
            timeout=120,
            what="every event stored",
            on_fail=lambda: f"{counts(kpi_stack)}\n{worker.log_tail()}",
        )
        stored_at = datetime.now(UTC).timestamp()
        wait_for(
            lambda: (
                (worker.sample("ioc_kpi_last_refresh_timestamp_seconds") or 0) > stored_at + 0.5
            ),
            timeout=60,
            what="a KPI refresh after everything was stored",
            on_fail=worker.log_tail,
        )
        with psycopg.connect(kpi_stack.database_url) as conn:
            rows = conn.execute(
                'SELECT taken_at, scope, key, period, "values" FROM kpi_latest'
            ).fetchall()
        metric_on_time = worker.sample(
            "ioc_kpi_dossier_on_time_ratio", agency=sim.tree.root.code, period="year"
        )
    finally:
        worker.stop()

    taken = max(r[0] for r in rows)
    latest = {(r[1], r[2], r[3]): r[4] for r in rows}
    expected = expected_rows(taken, sim, dossier, uptime, security)

    def stable(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k not in VOLATILE}

    assert set(latest) >= set(expected)
    mismatches = [
        (series, stable(latest[series]), stable(values))
        for series, values in expected.items()
        if stable(latest[series]) != stable(values)
    ]
    assert not mismatches, mismatches[:5]
    kinds = {s[0] for s in expected}
    assert kinds >= {"agency", "service", "security_severity", "security_top", "security_source"}
    root_year = latest[("agency", sim.tree.root.code, "year")]
    assert root_year["counted"] > 500 and root_year["on_time_ratio"] is not None
    assert metric_on_time == pytest.approx(root_year["on_time_ratio"])


def expected_rows(
    now: datetime,
    sim: ProvinceSimulator,
    dossier: list[DossierEvent],
    uptime: list[UptimeEvent],
    security: list[SecurityEvent],
) -> dict[tuple[str, str, str], dict[str, Any]]:
    calendar = WorkCalendar(VN_PUBLIC_HOLIDAYS)
    legal = {p.code: p.max_days for p in sim.procedures}
    history: dict[str, list[DossierEvent]] = defaultdict(list)
    for e in dossier:
        history[e.dossier_id].append(e)
    facts = [DossierFacts.from_events(h) for h in history.values()]
    by_period = {
        name: counts_by_agency(facts, period, calendar, legal.get, 2)
        for name, period in periods_at(now).items()
    }
    rows = dossier_rows(now, sim.tree, by_period)

    minutes: dict[str, dict[datetime, Any]] = defaultdict(dict)
    for (sid, minute), c in minute_counts(uptime).items():
        minutes[sid][minute] = c
    checks: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for e in uptime:
        checks[e.service_id].append((e.event_time, e.status))
    found = incidents(checks)
    services: dict[tuple[str, str, str], dict[str, Any]] = {}
    for sid in sorted(minutes):
        for name, length in WINDOWS.items():
            start, end = window_bounds(now, length)
            c = availability(sid, minutes[sid], start, end)
            summary = IncidentSummary.of([i for i in found if i.service_id == sid], start, end)
            services[("service", sid, name)] = service_window_values(c, summary)

    cats = category_counts(security)
    current = floor_to(now, FIVE_MINUTES) + FIVE_MINUTES
    windows = {
        "5m": (floor_to(now, FIVE_MINUTES) - FIVE_MINUTES, floor_to(now, FIVE_MINUTES)),
        "1h": (current - timedelta(hours=1), current),
        "24h": (current - timedelta(days=1), current),
    }
    by_window = {
        n: (totals_by(cats, 2, s, e), totals_by(cats, 3, s, e)) for n, (s, e) in windows.items()
    }
    targets = target_counts(security)
    top = {
        "assets": top_targets(targets, *windows["24h"], by="asset"),
        "agencies": top_targets(targets, *windows["24h"], by="agency"),
    }
    activity = source_activity(security)
    quiet = quiet_sources(activity, now, timedelta(minutes=30))
    rows += security_rows(now, by_window, top, activity, quiet, SEVERITY_RANK, CATEGORIES)
    out = {r.series: json.loads(json.dumps(r.values)) for r in rows}
    out.update({k: json.loads(json.dumps(v)) for k, v in services.items()})
    return out
