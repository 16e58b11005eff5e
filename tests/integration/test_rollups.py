"""Reading a range through the rollups gives exactly what the finest summary holds for it.

The panels ask ``uptime_in_range``, ``security_in_range`` and ``security_targets_in_range``
for any range Grafana sends (edges anywhere, not on bucket boundaries) and group the rows by
any ``$__interval``; an operator must see the same numbers as over the five-minute rows, also
with maintenance windows left out of availability.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.storage.summaries import ROLLUPS, roll_up

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 9
SERVICES = ("svc-a", "svc-b", "svc-c")
GRAINS = (None, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 43_200_000, 86_400_000,
          604_800_000)  # fmt: skip

# The overlap definition the availability KPI counts by (test_maintenance_windows.py).
IN_MAINTENANCE = """EXISTS (SELECT 1 FROM maintenance_windows w
    WHERE (w.service_id IS NULL OR w.service_id = u.service_id)
      AND w.starts_at < u.bucket + interval '5 minutes' AND w.ends_at > u.bucket)"""


@pytest.fixture(scope="module")
def seeded(database: str) -> Iterator[str]:
    """Nine days of sparse, uneven summaries and a few maintenance windows, rolled up."""
    rnd = random.Random(11)
    uptime, security, targets = [], [], []
    for i in range(DAYS * 288):
        at = DAY0 + timedelta(minutes=5 * i)
        for s in SERVICES:
            if rnd.random() < 0.9:
                checks = rnd.randint(1, 10)
                down = rnd.randint(0, checks) if rnd.random() < 0.1 else 0
                uptime.append((s, at, checks, checks - down, 0, down, float(rnd.randint(0, 9000)),
                               checks))  # fmt: skip
        for _ in range(rnd.randint(0, 4)):
            key = (rnd.choice("xyz"), rnd.choice(["low", "high"]), rnd.choice(["ddos", "malware"]))
            security.append((at, *key, rnd.randint(1, 50)))
        if i % 12 == 0:
            for _ in range(rnd.randint(0, 5)):
                key = (rnd.choice(["A", "B", ""]), f"asset-{rnd.randint(0, 6)}",
                       rnd.choice(["low", "high"]))  # fmt: skip
                targets.append((at, *key, rnd.randint(1, 20)))
    windows = [
        (None, DAY0 + timedelta(days=2, hours=1, minutes=7), DAY0 + timedelta(days=2, hours=3)),
        ("svc-b", DAY0 + timedelta(days=4, minutes=3), DAY0 + timedelta(days=5, hours=2)),
        ("svc-b", DAY0 + timedelta(days=4, hours=5), DAY0 + timedelta(days=4, hours=6)),
        ("svc-c", DAY0 + timedelta(days=7, hours=22, minutes=59), DAY0 + timedelta(days=8)),
    ]
    with psycopg.connect(database) as conn:
        with conn.cursor().copy("COPY uptime_5m FROM STDIN") as copy:
            for row in uptime:
                copy.write_row(row)
        security = list({r[:4]: r for r in security}.values())
        with conn.cursor().copy("COPY security_5m FROM STDIN") as copy:
            for row in security:
                copy.write_row(row)
        targets = list({r[:4]: r for r in targets}.values())
        with conn.cursor().copy("COPY security_targets_1h FROM STDIN") as copy:
            for row in targets:
                copy.write_row(row)
        conn.execute("INSERT INTO uptime_services SELECT DISTINCT service_id, now(), now(), 'up'"
                     " FROM uptime_5m")  # fmt: skip
        for service, lo, hi in windows:
            conn.execute(
                "INSERT INTO maintenance_windows (service_id, starts_at, ends_at, author)"
                " VALUES (%s, %s, %s, 'test')",
                (service, lo, hi),
            )

    async def roll() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(database) as aconn:
            return await roll_up(aconn, DAY0, DAY0 + timedelta(days=DAYS))

    written = asyncio.run(roll())
    assert all(written[t.name] > 0 for t in ROLLUPS), written
    yield database


moments = st.integers(min_value=-3600, max_value=(DAYS + 1) * 86400).map(
    lambda s: DAY0 + timedelta(seconds=s, milliseconds=s % 1000)
)


def _group(grain_ms: int | None) -> str:
    if grain_ms is None:
        return "0"
    seconds = grain_ms // 1000
    return f"floor(extract(epoch FROM u.bucket) / {seconds}) * {seconds}"  # $__timeGroup


def _rows(conn: psycopg.Connection, query: str, params: tuple[object, ...]) -> list[object]:
    return conn.execute(query, params).fetchall()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=moments, b=moments, grain=st.sampled_from(GRAINS), maintenance=st.booleans())
def test_uptime_in_range_sums_like_the_five_minute_rows(
    seeded: str, a: datetime, b: datetime, grain: int | None, maintenance: bool
) -> None:
    lo, hi = min(a, b), max(a, b)
    sums = "sum(u.checks), sum(u.up), sum(u.degraded), sum(u.down), sum(u.latency_ms_sum)," \
           " sum(u.latency_samples)"  # fmt: skip
    group = _group(grain)
    with psycopg.connect(seeded) as conn:
        got = _rows(
            conn,
            f"SELECT {group} AS t, u.service_id, {sums}"
            " FROM uptime_in_range(%s, %s, %s, %s) u GROUP BY 1, 2 ORDER BY 1, 2",
            (lo, hi, grain, maintenance),
        )
        want = _rows(
            conn,
            f"SELECT {group} AS t, u.service_id, {sums} FROM uptime_5m u"
            f" WHERE u.bucket BETWEEN %s AND %s AND NOT (%s AND {IN_MAINTENANCE})"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (lo, hi, maintenance),
        )
    # A group whose rows all fell under maintenance sums to zero instead of being absent.
    assert [r for r in got if r[2] != 0] == want


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=moments, b=moments, grain=st.sampled_from(GRAINS))
def test_security_in_range_sums_like_the_five_minute_rows(
    seeded: str, a: datetime, b: datetime, grain: int | None
) -> None:
    lo, hi = min(a, b), max(a, b)
    group = _group(grain)
    with psycopg.connect(seeded) as conn:
        got = _rows(
            conn,
            f"SELECT {group} AS t, u.severity, u.category, sum(u.events)"
            " FROM security_in_range(%s, %s, %s) u WHERE u.source = ANY(ARRAY['x', 'z'])"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            (lo, hi, grain),
        )
        want = _rows(
            conn,
            f"SELECT {group} AS t, u.severity, u.category, sum(u.events) FROM security_5m u"
            " WHERE u.bucket BETWEEN %s AND %s AND u.source = ANY(ARRAY['x', 'z'])"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            (lo, hi),
        )
    assert got == want


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=moments, b=moments)
def test_security_targets_in_range_ranks_like_the_hourly_rows(
    seeded: str, a: datetime, b: datetime
) -> None:
    lo, hi = min(a, b), max(a, b)
    with psycopg.connect(seeded) as conn:
        got = _rows(
            conn,
            "SELECT agency_code, asset_id, sum(events) FROM security_targets_in_range(%s, %s)"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (lo, hi),
        )
        want = _rows(
            conn,
            "SELECT agency_code, asset_id, sum(events) FROM security_targets_1h"
            " WHERE bucket BETWEEN %s AND %s GROUP BY 1, 2 ORDER BY 1, 2",
            (lo, hi),
        )
    assert got == want


def _rows_read(conn: psycopg.Connection, query: str, params: tuple[object, ...]) -> dict[str, int]:
    """Rows each table returned to the query (EXPLAIN ANALYZE), by table; on TimescaleDB a
    chunk counts for its hypertable."""
    owner: dict[str, str] = {}
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        owner = dict(
            conn.execute(  # type: ignore[arg-type]
                "SELECT chunk_name, hypertable_name FROM timescaledb_information.chunks"
            ).fetchall()
        )
    read: dict[str, int] = {}
    for (line,) in conn.execute(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + query, params
    ):
        if " on " in line and "rows=" in line:
            table = line.split(" on ")[1].split()[0].split(".")[-1]
            table = owner.get(table, table)
            rows = int(line.split("rows=")[1].split()[0])
            loops = int(line.split("loops=")[1].split(")")[0])
            read[table] = read.get(table, 0) + rows * loops
    return read


def test_a_long_range_reads_the_coarse_rows(seeded: str) -> None:
    """The point of the tiers: a week grouped by day reads five-minute rows only at its
    edges, and ten-minute groups never read an hourly or daily row."""
    lo, hi = DAY0 + timedelta(hours=5, minutes=2), DAY0 + timedelta(days=8, hours=2)
    query = "SELECT sum(events) FROM security_in_range(%s, %s, %s)"
    with psycopg.connect(seeded) as conn:
        daily = _rows_read(conn, query, (lo, hi, 86_400_000))
        fine = _rows_read(conn, query, (lo, hi, 600_000))
        (edges,) = conn.execute(
            "SELECT count(*) FROM security_5m WHERE bucket BETWEEN %s AND %s"
            " AND date_trunc('day', bucket, 'UTC') IN (%s, %s)",
            (lo, hi, lo.replace(hour=0, minute=0), hi.replace(hour=0, minute=0)),
        ).fetchone() or (0,)
    assert daily["security_1d"] > 0 and daily["security_1h"] > 0
    assert 0 < daily["security_5m"] < edges / 4, daily
    assert fine.get("security_1h", 0) == 0 and fine.get("security_1d", 0) == 0
    assert fine["security_5m"] > edges
