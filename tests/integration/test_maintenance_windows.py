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

from ioc.events import UptimeEvent
from ioc.kpi.calendar import WorkCalendar
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS
from ioc.kpi.uptime import BUCKET, floor_to
from ioc.kpi_live import LiveKpis
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
