"""The KPI work on its own, without the broker: one EventWriter storing the same batches with
summaries off and then on, and the live engine refreshing every few batches.

Prints wall time and CPU time split between this Python process and its PostgreSQL backend
(CPU time is steadier than throughput on a shared machine), and the time spent in refreshes
with PostgreSQL's JIT at its default and off (the pipeline's setting)::

    .venv/bin/python bench/kpi_writer.py --events 300000 --stream uptime
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from ioc.kpi.calendar import WorkCalendar
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS
from ioc.kpi_live import LiveKpis
from ioc.services.postgres import drop_database, ensure_database
from ioc.storage.migrations import migrate
from ioc.storage.writer import EventWriter, with_connection_defaults
from ioc.storage_types import Consumed
from ioc.streams import BY_NAME
from tests.support import events as ev
from tests.support.services import SERVER_URL

TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run(
    url: str, stream: str, events: list, batch: int, summaries: bool, refresh_every: int, jit: bool
) -> str:
    writer = EventWriter(url, BY_NAME[stream], lambda: datetime.now(UTC), summaries=summaries)
    engine = LiveKpis(WorkCalendar(VN_PUBLIC_HOLIDAYS))
    conninfo = with_connection_defaults(url) if not jit else url
    refreshing = 0.0
    conn = await writer._connection()  # the writer's own, to read its backend's CPU time
    pid_row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    assert pid_row is not None
    backend0, own0, wall0 = backend_cpu(pid_row[0]), own_cpu(), time.perf_counter()
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as kpi:
        for n, i in enumerate(range(0, len(events), batch)):
            await writer.write([Consumed(e, 0, i + j) for j, e in enumerate(events[i : i + batch])])
            if summaries and refresh_every and n % refresh_every == 0:
                t = time.perf_counter()
                await engine.refresh(kpi, datetime.now(UTC))
                refreshing += time.perf_counter() - t
    wall = time.perf_counter() - wall0 - refreshing
    backend = backend_cpu(pid_row[0]) - backend0
    await writer.close()
    line = (
        f"writes {len(events) / wall:>9,.0f} events/s  wall {wall:5.2f} s"
        f"  python+refresh cpu {own_cpu() - own0:5.2f} s  writer backend cpu {backend:5.2f} s"
    )
    if summaries and refresh_every:
        line += f"  refreshes {refreshing:5.2f} s (JIT {'default' if jit else 'off'})"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--stream", choices=["uptime", "security"], default="uptime")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--refresh-every", type=int, default=3, help="batches between refreshes")
    args = ap.parse_args()
    start = datetime.now(UTC) - timedelta(seconds=args.events, hours=1)
    if args.stream == "uptime":
        events: list = ev.uptime_events(args.events, start)
    else:
        events = ev.security_events(args.events, datetime.now(UTC) - timedelta(hours=48))
    url = make_conninfo(SERVER_URL, dbname=f"ioc_bench_kpi_writer_{os.getpid()}")
    print(f"stream={args.stream} events={args.events:,} batch={args.batch:,}")
    try:
        for label, summaries, jit in (
            ("summaries off        ", False, False),
            ("summaries on, JIT off", True, False),
            ("summaries on, JIT on ", True, True),
        ):
            drop_database(url)
            ensure_database(url)
            migrate(url)
            line = asyncio.run(
                run(url, args.stream, events, args.batch, summaries, args.refresh_every, jit)
            )
            print(f"{label}  {line}")
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
