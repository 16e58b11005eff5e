"""Summary tables kept by the writer equal the pure KPI functions over the distinct events,
and equal a rebuild from the raw rows by SQL (``ioc kpi recompute``), through replays,
redeliveries, repeats inside a batch and late events."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ioc.events import SecurityEvent, UptimeEvent
from ioc.kpi.security import category_counts, source_activity, target_counts
from ioc.kpi.uptime import bucket_counts
from ioc.simulator import ProvinceSimulator
from ioc.storage.summaries import ROLLUPS, SUMMARY_TABLES, SummaryTable, rebuild
from ioc.storage.writer import EventWriter
from ioc.storage_types import Consumed
from ioc.streams import SECURITY, UPTIME

pytestmark = pytest.mark.integration

START = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def simulated(hours: int) -> tuple[list[UptimeEvent], list[SecurityEvent]]:
    sim = ProvinceSimulator(seed=7, start=START, security_events_per_minute=40)
    events = sim.advance(START + timedelta(hours=hours))
    uptime = [e for e in events if isinstance(e, UptimeEvent)]
    security = [e for e in events if isinstance(e, SecurityEvent)]
    return uptime, security


def delivered(events: list[Any], rnd: random.Random) -> list[list[Any]]:
    """Batches as a consumer might see them: shuffled a little, some records twice, whole
    batches replayed after a crash, and one late batch from an hour before."""
    batches = [events[i : i + 500] for i in range(0, len(events), 500)]
    out: list[list[Any]] = []
    for batch in batches:
        batch = list(batch)
        rnd.shuffle(batch)
        if rnd.random() < 0.3:
            batch += rnd.sample(batch, min(5, len(batch)))  # repeats inside the batch
        out.append(batch)
        if rnd.random() < 0.2:
            out.append(list(batch))  # replayed after a crash before the offset commit
    late = out.pop(1)
    out.append(late)
    return out


def write(database: str, stream: Any, batches: list[list[Any]]) -> None:
    async def run() -> None:
        writer = EventWriter(database, stream, lambda: datetime.now(UTC))
        try:
            for n, batch in enumerate(batches):
                await writer.write([Consumed(e, 0, n * 1000 + i) for i, e in enumerate(batch)])
        finally:
            await writer.close()

    asyncio.run(run())


def table(conn: psycopg.Connection, name: str) -> set[tuple[Any, ...]]:
    return set(conn.execute(f"SELECT * FROM {name}").fetchall())


def test_summaries_equal_pure_functions_and_a_rebuild_from_raw_rows(database: str) -> None:
    uptime, security = simulated(hours=3)
    assert len(uptime) > 1000 and len(security) > 5000
    rnd = random.Random(3)
    write(database, UPTIME, delivered(uptime, rnd))
    write(database, SECURITY, delivered(security, rnd))

    with psycopg.connect(database) as conn:
        buckets = {(*r[:6], round(r[6], 6), r[7]) for r in table(conn, "uptime_5m")}
        assert buckets == {
            (
                s,
                b,
                c.checks,
                c.up,
                c.degraded,
                c.down,
                round(c.latency_ms_sum, 6),
                c.latency_samples,
            )
            for (s, b), c in bucket_counts(uptime).items()
        }
        assert table(conn, "security_5m") == {(*k, n) for k, n in category_counts(security).items()}
        assert table(conn, "security_targets_1h") == {
            (*k, n) for k, n in target_counts(security).items()
        }
        assert table(conn, "security_sources") == {
            (s, a.first_event_at, a.last_event_at) for s, a in source_activity(security).items()
        }
        latest = {}
        for e in sorted(uptime, key=lambda e: (e.event_time, e.status)):
            latest[e.service_id] = e
        services = {r[0]: r for r in table(conn, "uptime_services")}
        assert {s: (r[2], r[3]) for s, r in services.items()} == {
            s: (e.event_time, e.status) for s, e in latest.items()
        }

        for rollup in ROLLUPS:  # each tier sums the finer one, as the panels read them
            assert rolled_up(conn, rollup) == rounded(table(conn, rollup.name)), rollup.name

        live = {t.name: table(conn, t.name) for t in SUMMARY_TABLES}

    async def recompute() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as aconn:
            return await rebuild(aconn, START - timedelta(hours=1), START + timedelta(hours=4))

    written = asyncio.run(recompute())
    assert written["security_5m"] == len(live["security_5m"])
    with psycopg.connect(database) as conn:
        for t in SUMMARY_TABLES:
            rebuilt = table(conn, t.name)
            if t.name.startswith("uptime_") and t.bucket:  # float sums may differ in the last bit
                assert {r[:6] + r[7:] for r in rebuilt} == {r[:6] + r[7:] for r in live[t.name]}
            else:
                assert rebuilt == live[t.name], t.name


def rounded(rows: set[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    return {tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows}


def rolled_up(conn: psycopg.Connection, t: SummaryTable) -> set[tuple[Any, ...]]:
    """The rows of rollup ``t`` summed in Python from the finer table, in its column order."""
    names = [c.name for c in conn.execute(f"SELECT * FROM {t.rolls_up} LIMIT 0").description or []]
    width = 86400 if t.bucket == "1 day" else 3600
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for row in conn.execute(f"SELECT * FROM {t.rolls_up}"):
        r = dict(zip(names, row, strict=True))
        ts = int(r["bucket"].timestamp())
        key = (datetime.fromtimestamp(ts - ts % width, UTC), *(r[k] for k in t.keys))
        acc = sums.setdefault(key, [0] * len(t.sums))
        for i, c in enumerate(t.sums):
            acc[i] += r[c]
    order = [c.name for c in conn.execute(f"SELECT * FROM {t.name} LIMIT 0").description or []]
    out = set()
    for (bucket, *keys), values in sums.items():
        r = {"bucket": bucket, **dict(zip(t.keys, keys, strict=True))}
        r.update(zip(t.sums, values, strict=True))
        out.add(tuple(r[c] for c in order))
    return rounded(out)


def test_recompute_refuses_bounds_that_would_cut_a_bucket(database: str) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            await rebuild(conn, START + timedelta(minutes=5), START + timedelta(hours=1))

    with pytest.raises(ValueError, match="whole hours"):
        asyncio.run(run())
