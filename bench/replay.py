"""``ioc replay file`` throughput: how long closing a gap or loading an archive takes.

Three runs over the same NDJSON file, into fresh tables of one database:

1. baseline   read the lines → msgspec decode → raw ``COPY`` into the table (no validation,
              no idempotency, no summaries, no dead letters): the floor;
2. replay     what ``ioc replay file`` does (``pipelines.replay``): the worker's handler with
              validation, the idempotent write and the KPI summaries in the same transaction;
3. again      the same replay once more: every event is already stored (the report's
              "already stored"), which is what a replay that starts early pays for the overlap.

    .venv/bin/python bench/replay.py --events 200000 --stream security
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import empty, fresh_db, make_events, warm_partitions
from ioc.config import Settings
from ioc.services.postgres import drop_database
from ioc.storage.tables import EVENT_TABLES
from ioc.storage.writer import _ROW
from ioc.streams import BY_NAME, Stream
from pipelines.replay import Replayer, batches, file_records


async def baseline(url: str, stream: Stream, path: Path, batch: int) -> float:
    decoder = msgspec.json.Decoder(stream.event_type)
    row = _ROW[stream.table]
    cols = ", ".join(EVENT_TABLES[stream.table].columns)
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for records in batches(file_records(path), batch):
            async with (
                conn.cursor() as cur,
                cur.copy(f"COPY {stream.table} ({cols}) FROM STDIN") as copy,
            ):
                for r in records:
                    await copy.write_row(row(decoder.decode(r.value or b""), r.partition, r.offset))
            await conn.commit()
    return time.perf_counter() - started


async def replay(url: str, stream: Stream, path: Path, batch: int) -> tuple[float, str]:
    settings = Settings.from_env({"IOC_DATABASE_URL": url})
    replayer = Replayer(settings, stream)
    started = time.perf_counter()
    try:
        for records in batches(file_records(path), batch):
            await replayer.feed(records)
    finally:
        await replayer.close()
    return time.perf_counter() - started, replayer.report.line()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--stream", choices=sorted(BY_NAME), default="security")
    parser.add_argument("--batch", type=int, default=1000, help="records per write (the CLI's)")
    args = parser.parse_args()
    stream = BY_NAME[args.stream]
    url = fresh_db("replay")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{stream.name}.ndjson"
            records = make_events(stream, args.events)
            path.write_bytes(b"\n".join(value for _, _, value in records) + b"\n")
            size = path.stat().st_size
            print(f"{args.events:,} {stream.name} events, {size / args.events:.0f} bytes a line")
            asyncio.run(warm_partitions(url, stream, records))
            empty(url)
            base = asyncio.run(baseline(url, stream, path, args.batch))
            empty(url)
            first, report = asyncio.run(replay(url, stream, path, args.batch))
            print(f"  replay: {report}")
            again, report = asyncio.run(replay(url, stream, path, args.batch))
            print(f"  again:  {report}")
        n = args.events
        print(f"baseline (decode + raw COPY)                {n / base:>10,.0f} events/s")
        print(f"replay   (validation, idempotent, summaries) {n / first:>9,.0f} events/s")
        print(f"again    (every event already stored)        {n / again:>9,.0f} events/s")
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
