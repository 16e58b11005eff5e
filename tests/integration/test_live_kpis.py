"""Simulator → broker → worker → KPI snapshots, equal to the pure functions on the same events.

A simulated province's last three days go through the real embedded broker into a real
``ioc worker``; once everything is stored and a refresh has completed, every row of
``kpi_latest`` (and the gauges) must equal what :mod:`ioc.kpi` computes from the events alone.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ioc.events import DossierEvent, SecurityEvent, UptimeEvent, partition_key
from ioc.producer import encode, stream_of
from ioc.simulator import ProvinceSimulator
from ioc.storage.kpi_store import save_catalogue
from ioc.storage.migrations import migrate
from tests.support.kpi import differences, expected_rows, latest
from tests.support.services import Stack, WorkerProcess, counts, produce, wait_for

pytestmark = pytest.mark.integration


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
        worker.wait_for_kpi_refresh(after=datetime.now(UTC).timestamp() + 0.5)
        taken, live = latest(kpi_stack.database_url)
        metric_on_time = worker.sample(
            "ioc_kpi_dossier_on_time_ratio", agency=sim.tree.root.code, period="year"
        )
        # Killed outright (no shutdown, its advisory lock dies with its connection), a worker
        # is replaced by one that rebuilds the state from storage and publishes at once.
        worker.kill_hard()
        worker = WorkerProcess(kpi_stack, tmp_path / "restarted.log")
        restarted_at = datetime.now(UTC).timestamp()
        worker.start()
        worker.wait_for_kpi_refresh(after=restarted_at)
        taken_again, again = latest(kpi_stack.database_url)
    finally:
        worker.stop()

    expected = expected_rows(taken, sim, dossier, uptime, security)
    assert set(live) >= set(expected)
    assert not (wrong := differences(live, expected)), wrong[:5]
    kinds = {s[0] for s in expected}
    assert kinds >= {"agency", "service", "security_severity", "security_top", "security_source"}
    root_year = live[("agency", sim.tree.root.code, "year")]
    # Not a vacuous comparison: hundreds of dossiers counted (fewer when the three days
    # include a weekend, when the simulated province receives few; 494 on a Sunday).
    assert root_year["counted"] > 200 and root_year["on_time_ratio"] is not None
    assert metric_on_time == pytest.approx(root_year["on_time_ratio"])

    assert taken_again > taken
    expected = expected_rows(taken_again, sim, dossier, uptime, security)
    assert not (wrong := differences(again, expected)), wrong[:5]
