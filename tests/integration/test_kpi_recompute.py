"""Live KPIs and ``ioc kpi recompute`` agree on a simulated month.

The live side is the worker's engine fed incrementally: half a month of a simulated province
goes through the real broker, the engine refreshes on it, then the rest arrives and it goes on
from its own state (dossier book, incident tracker) and the summaries the writer kept. The
recomputed side is the real CLI: it throws nothing away but the summary buckets, which we
delete first to prove they are re-derived from the raw events by SQL, and reads every input as
it stood at the live snapshot's time. Every series must carry the same values, and the values
the pure functions give on the same events. Recomputing as of a past instant gives what the
pure functions give on the events up to that instant.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ioc.events import DossierEvent, SecurityEvent, UptimeEvent, partition_key
from ioc.kpi.uptime import MaintenanceWindow
from ioc.producer import encode, stream_of
from ioc.simulator import ProvinceSimulator
from ioc.storage.kpi_store import save_catalogue
from ioc.storage.migrations import migrate
from tests.support.kpi import Series, differences, expected_rows, latest
from tests.support.services import Stack, WorkerProcess, count, produce, wait_for

pytestmark = pytest.mark.integration


def test_live_and_recomputed_kpis_agree_on_a_simulated_month(
    kpi_stack: Stack, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    start = now - timedelta(days=33)  # crosses a month end whatever today is
    sim = ProvinceSimulator(
        seed=11,
        start=start,
        dossiers_per_day=120,
        services=5,
        probe_interval=timedelta(minutes=10),
        security_events_per_minute=1,
    )
    first = sim.advance(now - timedelta(days=12))
    rest = sim.advance(now - timedelta(seconds=5))
    migrate(kpi_stack.database_url)
    maintenance_on = sim.service_ids[0]
    maintenance = [
        MaintenanceWindow(
            now - timedelta(days=20, hours=3), now - timedelta(days=20), maintenance_on
        ),
        MaintenanceWindow(
            now - timedelta(hours=7, minutes=30), now - timedelta(hours=6, seconds=1)
        ),
    ]
    with psycopg.connect(kpi_stack.database_url) as conn:
        for w in maintenance:
            conn.execute(
                "INSERT INTO maintenance_windows (service_id, starts_at, ends_at, author)"
                " VALUES (%s, %s, %s, 'test')",
                (w.service_id, w.start, w.end),
            )

    async def seed() -> None:
        async with await psycopg.AsyncConnection.connect(kpi_stack.database_url) as conn:
            await save_catalogue(conn, sim.tree, sim.procedures)

    asyncio.run(seed())

    def records(events: list[Any]) -> list[tuple[str, bytes | None, bytes]]:
        return [(stream_of(e).topic, partition_key(e).encode(), encode(e)) for e in events]

    def stored() -> int:
        return sum(
            count(kpi_stack, t) for t in ("dossier_events", "uptime_checks", "security_events")
        )

    worker = WorkerProcess(kpi_stack, tmp_path / "worker.log")
    produce(kpi_stack, records(first))
    worker.start()
    try:
        for events, total in ((first, len(first)), (rest, len(first) + len(rest))):
            if events is rest:
                produce(kpi_stack, records(rest))
            wait_for(
                lambda total=total: stored() == total,  # type: ignore[misc]
                timeout=180,
                what=f"{total} events stored",
                on_fail=lambda: f"{stored()}\n{worker.log_tail()}",
            )
            worker.wait_for_kpi_refresh(after=datetime.now(UTC).timestamp() + 0.5)
        taken, live = latest(kpi_stack.database_url)
    finally:
        worker.stop()

    with psycopg.connect(kpi_stack.database_url, autocommit=True) as conn:
        for table in ("uptime_5m", "security_5m", "security_targets_1h"):
            conn.execute(f"DELETE FROM {table}")  # recompute must re-derive them
    hour = timedelta(hours=1)
    lo = datetime.fromtimestamp(start.timestamp() // 3600 * 3600, UTC) - hour
    hi = datetime.fromtimestamp(now.timestamp() // 3600 * 3600, UTC) + 2 * hour
    # The walls' table gone wrong: a value changed, a series that no longer exists.
    with psycopg.connect(kpi_stack.database_url, autocommit=True) as conn:
        conn.execute("UPDATE kpi_current SET \"values\" = '{}'")
        conn.execute(
            'INSERT INTO kpi_current (taken_at, scope, key, period, "values")'
            " VALUES (%s, 'service', 'svc-gone', '24h', '{}')",
            (taken - timedelta(minutes=1),),
        )
    recomputed = recompute(kpi_stack, lo, hi, taken, write=True)

    assert set(recomputed) == set(live)
    assert not (wrong := differences(recomputed, live)), wrong[:5]
    # --write put the snapshot back where the walls read it, and dropped the stale series.
    assert latest(kpi_stack.database_url) == (taken, recomputed)

    events = first + rest
    oracle = expected_rows(taken, sim, *by_stream(events), maintenance)
    assert set(live) >= set(oracle)
    assert not (wrong := differences(live, oracle)), wrong[:5]

    # As of a past instant: just before an hour, so every open summary bucket (5 minutes, an
    # hour) holds only events at or before it; events after it must not count.
    hour_ago = datetime.fromtimestamp((now - timedelta(days=9)).timestamp() // 3600 * 3600, UTC)
    past = hour_ago - timedelta(microseconds=1)
    then = recompute(kpi_stack, lo, hi, past, write=True)
    assert latest(kpi_stack.database_url) == (taken, recomputed)  # the past is history only
    with psycopg.connect(kpi_stack.database_url) as conn:
        kept = conn.execute("SELECT count(*) FROM kpi_snapshots WHERE taken_at = %s", (past,))
        assert kept.fetchone() == (len(then),)
    before = [e for e in events if e.event_time <= past]
    oracle = expected_rows(past, sim, *by_stream(before), maintenance)
    assert set(then) == set(oracle)
    assert not (wrong := differences(then, oracle)), wrong[:5]
    assert (
        then[("agency", sim.tree.root.code, "year")] != live[("agency", sim.tree.root.code, "year")]
    )

    # The month carried what the comparison is about.
    root = sim.tree.root.code
    assert live[("agency", root, "month")]["counted"] > 500
    assert live[("agency", root, "quarter")]["counted"] > live[("agency", root, "today")]["counted"]
    assert sum(isinstance(e, DossierEvent) for e in events) > 10_000
    month = live[("service", maintenance_on, "30d")]
    assert month["checks"] > 3000 and month["incidents"] >= 1
    assert {s[0] for s in live} >= {"agency", "service", "security_severity", "security_source"}
    with psycopg.connect(kpi_stack.database_url) as conn:
        rebuilt = conn.execute("SELECT count(*) FROM security_5m").fetchone()
    assert rebuilt is not None and rebuilt[0] > 1000


def by_stream(
    events: list[Any],
) -> tuple[list[DossierEvent], list[UptimeEvent], list[SecurityEvent]]:
    return (
        [e for e in events if isinstance(e, DossierEvent)],
        [e for e in events if isinstance(e, UptimeEvent)],
        [e for e in events if isinstance(e, SecurityEvent)],
    )


def recompute(
    kpi_stack: Stack, lo: datetime, hi: datetime, at: datetime, *, write: bool = False
) -> dict[Series, Any]:
    """Run the real CLI and parse its NDJSON."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ioc.cli",
            "kpi",
            "recompute",
            "--from",
            lo.isoformat(),
            "--to",
            hi.isoformat(),
            "--at",
            at.isoformat(),
            *(["--write"] if write else []),
        ],
        env=kpi_stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[Series, Any] = {}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        out[(row["scope"], row["key"], row["period"])] = row["values"]
    return out
