"""Declared maintenance windows: the ``ioc maintenance`` commands, and the live KPIs taking a
window into account at their next refresh, also when it is declared after the fact."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.events import UptimeEvent
from ioc.kpi.calendar import WorkCalendar
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS
from ioc.kpi.uptime import BUCKET, floor_to
from ioc.kpi_live import LiveKpis
from ioc.storage.maintenance_windows import outside_maintenance
from ioc.storage.writer import EventWriter
from ioc.storage_types import Consumed
from ioc.streams import BY_NAME

pytestmark = pytest.mark.integration


def ioc(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc.cli", "maintenance", *args],
        env={**os.environ, "IOC_DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_operators_declare_list_and_end_windows(database: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    running = ioc(
        database,
        "add",
        "--from",
        (now - timedelta(hours=1)).isoformat(),
        "--to",
        (now + timedelta(hours=1)).isoformat(),
        "--author",
        "Nguyễn Văn A",
        "--service",
        "svc-dvc",
        "--comment",
        "nâng cấp cổng DVC",
    )
    assert running.returncode == 0, running.stderr
    running_id = running.stdout.split("\t")[0]
    later = ioc(
        database,
        "add",
        "--from",
        (now + timedelta(days=2)).isoformat(),
        "--to",
        (now + timedelta(days=2, hours=2)).isoformat(),
        "--author",
        "Trần Thị B",
    )
    assert later.returncode == 0, later.stderr
    later_id = later.stdout.split("\t")[0]

    listing = ioc(database, "list").stdout.splitlines()
    assert [line.split("\t")[0] for line in listing][-2:] == [running_id, later_id]
    assert listing[-2].split("\t")[1:] == [
        "svc-dvc",
        (now - timedelta(hours=1)).isoformat(),
        (now + timedelta(hours=1)).isoformat(),
        "Nguyễn Văn A",
        "nâng cấp cổng DVC",
    ]
    assert listing[-1].split("\t")[1] == "*"  # every service

    assert ioc(database, "end", running_id).stdout.strip() == f"{running_id}: ended"
    assert ioc(database, "end", later_id).stdout.strip() == f"{later_id}: withdrawn"
    assert ioc(database, "end", running_id).stdout.strip() == f"{running_id}: already over"
    current = [line.split("\t")[0] for line in ioc(database, "list").stdout.splitlines()]
    assert running_id not in current and later_id not in current
    every = [line.split("\t")[0] for line in ioc(database, "list", "--all").stdout.splitlines()]
    assert running_id in every and later_id not in every


@pytest.mark.parametrize(
    ("start", "end", "author", "message"),
    [
        ("2026-11-21T08:00:00", "2026-11-21T09:00:00+07:00", "a", "needs a UTC offset"),
        ("2026-11-21T09:00:00+07:00", "2026-11-21T08:00:00+07:00", "a", "must end after"),
        ("2026-11-21T08:00:00+07:00", "2026-11-21T09:00:00+07:00", " ", "who declares"),
    ],
)
def test_a_bad_window_is_refused_with_the_reason(
    database: str, start: str, end: str, author: str, message: str
) -> None:
    done = ioc(database, "add", "--from", start, "--to", end, "--author", author)
    assert done.returncode == 2
    assert message in done.stderr


def test_ending_an_unknown_window_says_so(database: str) -> None:
    done = ioc(database, "end", "987654")
    assert done.returncode == 1 and "no maintenance window 987654" in done.stderr


def test_a_window_declared_after_the_fact_clears_the_outage_it_covers(database: str) -> None:
    now = datetime.now(UTC)
    start = floor_to(now, BUCKET) - timedelta(minutes=50)  # the outage fills two buckets
    statuses = ["up"] * 10 + ["down"] * 10 + ["up"] * 20  # one check a minute, 40 minutes
    checks = [
        UptimeEvent(
            event_id=f"mw-{i}",
            event_time=start + timedelta(minutes=i, seconds=5),
            service_id="svc-motcua",
            status=status,  # type: ignore[arg-type]
            latency_ms=80.0,
        )
        for i, status in enumerate(statuses)
    ]

    async def run() -> tuple[dict[str, object], dict[str, object]]:
        writer = EventWriter(database, BY_NAME["uptime"], lambda: datetime.now(UTC))
        await writer.write([Consumed(e, 0, i) for i, e in enumerate(checks)])
        await writer.close()
        live = LiveKpis(WorkCalendar(VN_PUBLIC_HOLIDAYS))
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            before = hour_values(await live.refresh(conn, now))
            await conn.execute(
                "INSERT INTO maintenance_windows (service_id, starts_at, ends_at, author)"
                " VALUES ('svc-motcua', %s, %s, 'test')",
                (start + timedelta(minutes=10), start + timedelta(minutes=20)),
            )
            after = hour_values(await live.refresh(conn, now + timedelta(seconds=15)))
            await conn.execute("DELETE FROM maintenance_windows")
        return before, after

    before, after = asyncio.run(run())
    assert (before["checks"], before["down"], before["incidents"]) == (40, 10, 1)
    assert before["mttr_seconds"] == 600.0
    assert (after["checks"], after["down"], after["incidents"]) == (30, 0, 0)
    assert after["availability"] == 1.0


def hour_values(rows: list) -> dict[str, object]:  # type: ignore[type-arg]
    (row,) = [r for r in rows if r.series == ("service", "svc-motcua", "1h")]
    return dict(row.values)


_EPOCH = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
_SERVICES = ("svc-a", "svc-b", "svc-c")
# The definition: a bucket is out when a window of its service, or of every service,
# overlaps its five minutes.
_OVERLAP = """NOT EXISTS (SELECT 1 FROM maintenance_windows m
    WHERE (m.service_id IS NULL OR m.service_id = u.service_id)
      AND m.starts_at < u.bucket + interval '5 minutes' AND m.ends_at > u.bucket)"""

_window = st.tuples(
    st.sampled_from((None, *_SERVICES)),
    st.integers(min_value=-120 * 60, max_value=8 * 3600),  # start, seconds from the grid's
    st.integers(min_value=1, max_value=5 * 3600),  # length, seconds
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    windows=st.lists(_window, max_size=6),
    lo=st.integers(min_value=-600, max_value=3 * 3600),
    span=st.one_of(st.none(), st.integers(min_value=0, max_value=5 * 3600)),
)
def test_availability_leaves_out_exactly_the_buckets_a_window_touches(
    database: str, windows: list[tuple[str | None, int, int]], lo: int, span: int | None
) -> None:
    """The hash-joined form the panels and the KPIs use (``outside_maintenance``) keeps the
    same buckets as the overlap definition, for windows of one service or all, starting and
    ending anywhere, and read bounds on or off a bucket edge, open-ended or not."""
    low = _EPOCH + timedelta(seconds=lo)
    high = None if span is None else low + timedelta(seconds=span)
    with psycopg.connect(database) as conn:
        conn.execute(
            "CREATE TEMP TABLE grid AS SELECT s AS service_id, b AS bucket"
            " FROM unnest(%s::text[]) s, generate_series(%s::timestamptz,"
            " %s::timestamptz, interval '5 minutes') b",
            (list(_SERVICES), _EPOCH - timedelta(hours=1), _EPOCH + timedelta(hours=9)),
        )
        for service, start, length in windows:
            begin = _EPOCH + timedelta(seconds=start)
            conn.execute(
                "INSERT INTO maintenance_windows (service_id, starts_at, ends_at, author)"
                " VALUES (%s, %s, %s, 'test')",
                (service, begin, begin + timedelta(seconds=length)),
            )
        read = "u.bucket >= %(lo)s AND u.bucket <= coalesce(%(hi)s::timestamptz, 'infinity')"
        bounds = {"lo": low, "hi": high}
        fast = outside_maintenance(
            "u.service_id", "u.bucket", "%(lo)s", "coalesce(%(hi)s::timestamptz, 'infinity')"
        )
        kept = {}
        for name, condition in (("fast", fast), ("definition", _OVERLAP)):
            cur = conn.execute(
                f"SELECT service_id, bucket FROM grid u WHERE {read} AND {condition}", bounds
            )
            kept[name] = set(cur.fetchall())
        conn.rollback()
    assert kept["fast"] == kept["definition"]
