"""Ingest throughput: the Faust pipeline against a framework-free consumer + COPY baseline.

One run, same pre-loaded topic, same database server, fresh tables for each contender:

1. baseline   aiokafka ``getmany`` → msgspec decode → ``COPY`` straight into the table
              (no validation beyond decoding, no idempotency, no dead letters);
2. handler    aiokafka ``getmany`` → the pipeline's own ``IngestHandler`` (validation,
              dead letters, idempotent COPY + merge) without Faust: the cost of our logic;
3. pipeline   a real ``ioc worker`` process, once per ingest engine (the batched consumer and
              the Faust agents), measured from the first stored row to the last, so its
              start-up and group join are not counted.

Usage: ``python bench/ingest.py [--events 100000] [--stream security]``. Prints events/s and
the ratio pipeline / baseline. Needs the local PostgreSQL (``make services``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import psycopg
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import make_conninfo

from ioc.batch import RawRecord
from ioc.broker import consumer_settings, ensure_topics
from ioc.clock import SystemClock
from ioc.config import Settings
from ioc.metrics import PipelineMetrics
from ioc.producer import EventProducer, encode
from ioc.services.postgres import drop_database, ensure_database
from ioc.services.processes import child_dies_with_parent
from ioc.services.tansu import TansuBroker
from ioc.storage.migrations import migrate
from ioc.storage.writer import _ROW, EventWriter
from ioc.streams import BY_NAME, Stream
from ioc.validation import EventParser
from pipelines.ingest import IngestHandler
from tests.support import events as ev
from tests.support.services import SERVER_URL, free_port


def make_events(stream: Stream, n: int) -> list[tuple[str, bytes | None, bytes]]:
    start = datetime.now(UTC) - timedelta(hours=48)
    if stream.name == "security":
        events = ev.security_events(n, start)
    elif stream.name == "uptime":
        # 30 services every 30 s: one second of event time per event, all of it in the past.
        start = min(start, datetime.now(UTC) - timedelta(seconds=n, hours=1))
        events = ev.uptime_events(n, start)  # type: ignore[assignment]
    else:
        import random

        events = []
        rng = random.Random(1)
        while len(events) < n:
            events += ev.dossier_events(1000, rng, start, prefix=f"b{len(events)}")  # type: ignore[arg-type]
        events = events[:n]
    return [(stream.topic, None, encode(e)) for e in events]


def stored(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def median_run(runs: list[PipelineRun]) -> PipelineRun:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def empty(url: str) -> None:
    """Every table a worker writes, emptied (partitions kept)."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                " AND c.relname <> 'ioc_schema_migrations'"
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)}")


def fresh_db(tag: str) -> str:
    url = make_conninfo(SERVER_URL, dbname=f"ioc_bench_{tag}_{os.getpid()}")
    drop_database(url)
    ensure_database(url)
    migrate(url)
    return url


async def consume_all(
    settings: Settings,
    stream: Stream,
    n: int,
    group: str,
    handle: Callable[[list], Awaitable[None]],  # type: ignore[type-arg]
) -> tuple[float, float]:
    """getmany until n records were handled; returns (first fetch time, end time)."""
    consumer = AIOKafkaConsumer(
        stream.topic, group_id=group, max_poll_records=5000, **consumer_settings(settings)
    )
    await consumer.start()
    seen = 0
    first = 0.0
    try:
        while seen < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for _tp, msgs in batches.items():
                if not first:
                    first = time.perf_counter()
                await handle(msgs)
                seen += len(msgs)
            if batches:
                await consumer.commit()
        return first, time.perf_counter()
    finally:
        await consumer.stop()


async def run_baseline(settings: Settings, stream: Stream, n: int, url: str) -> float:
    decoder = msgspec.json.Decoder(stream.event_type)
    row = _ROW[stream.table]
    cols = ", ".join(EventWriter(url, stream, SystemClock().now).table.columns)
    conn = await psycopg.AsyncConnection.connect(url)

    async def handle(msgs: list) -> None:  # type: ignore[type-arg]
        copy_sql = f"COPY {stream.table} ({cols}) FROM STDIN"
        async with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for m in msgs:
                await copy.write_row(row(decoder.decode(m.value), m.partition, m.offset))
        await conn.commit()

    # Partitions for the data's time range exist already (created by a warm-up write).
    first, end = await consume_all(settings, stream, n, "bench-baseline", handle)
    await conn.close()
    return n / (end - first)


async def run_handler(settings: Settings, stream: Stream, n: int, url: str) -> float:
    clock = SystemClock()
    metrics = PipelineMetrics(CollectorRegistry())

    async def no_dead_letters(_: object) -> None:
        return None

    handler = IngestHandler.build(stream, url, no_dead_letters, metrics, clock)

    async def handle(msgs: list) -> None:  # type: ignore[type-arg]
        await handler.handle([RawRecord.from_message(m) for m in msgs])

    first, end = await consume_all(settings, stream, n, "bench-handler", handle)
    await handler.writer.close()
    return n / (end - first)


@dataclass(frozen=True)
class PipelineRun:
    rate: float  # events/s from the first stored row to the last
    mean_batch: float  # records per batch, from the worker's own histogram
    write_share: float  # time in batch writes (COPY, summaries, commit) over the run

    def detail(self) -> str:
        return f"(mean batch {self.mean_batch:,.0f}, writes {self.write_share:.0%} of the run)"


def scrape(port: int, stream: str) -> dict[str, float]:
    """The worker's batch-size and write-time sums for ``stream``."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("stream") == stream and sample.name in (
                "ioc_batch_size_sum",
                "ioc_batch_size_count",
                "ioc_batch_write_seconds_sum",
            ):
                out[sample.name] = sample.value
    return out


def run_pipeline(
    broker: TansuBroker,
    stream: Stream,
    n: int,
    url: str,
    state: Path,
    engine: str,
    batch_max: int,
    kpi: bool = True,
    run: int = 0,
) -> PipelineRun:
    port = free_port()
    env = {
        **os.environ,
        "IOC_KAFKA_URL": broker.url,
        "IOC_BROKER_FLAVOR": "tansu",
        "IOC_DATABASE_URL": url,
        "IOC_STATE_DIR": str(state),
        "IOC_METRICS_PORT": str(port),
        "IOC_APP_ID": f"bench-{engine}-kpi-{'on' if kpi else 'off'}-{run}",
        "IOC_KPI": "on" if kpi else "off",
        "IOC_LOG_LEVEL": "warning",
        "IOC_INGEST_ENGINE": engine,
        "IOC_BATCH_MAX": str(batch_max),
    }
    with open(state / "worker.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=child_dies_with_parent,
        )
    try:
        first = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            c = stored(url, stream.table)
            if c and not first:
                first = time.perf_counter()
            if c >= n:
                elapsed = time.perf_counter() - first
                m = scrape(port, stream.name)
                batches = m.get("ioc_batch_size_count", 0) or 1
                return PipelineRun(
                    n / elapsed,
                    m.get("ioc_batch_size_sum", 0) / batches,
                    m.get("ioc_batch_write_seconds_sum", 0) / elapsed,
                )
            time.sleep(0.05)
        raise RuntimeError("pipeline did not finish; see worker.log")
    finally:
        proc.terminate()
        proc.wait(30)


async def preload(settings: Settings, records: list[tuple[str, bytes | None, bytes]]) -> float:
    await ensure_topics(settings)
    producer = EventProducer(settings)
    await producer.start()
    t = time.perf_counter()
    for i in range(0, len(records), 5000):
        await producer.send_many(records[i : i + 5000])
    rate = len(records) / (time.perf_counter() - t)
    await producer.stop()
    return rate


async def warm_partitions(url: str, stream: Stream, records: list) -> None:  # type: ignore[type-arg]
    """Create the partitions the data needs, so the baseline's raw COPY has somewhere to go."""
    clock = SystemClock()
    writer = EventWriter(url, stream, clock.now)
    parser = EventParser(stream.event_type, clock)
    from ioc.storage_types import Consumed

    sample = [parser.parse(records[0][2]), parser.parse(records[-1][2])]
    await writer.write([Consumed(e, 0, 0) for e in sample])  # type: ignore[arg-type]
    await writer.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {stream.table}, dossiers")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--stream", choices=sorted(BY_NAME), default="security")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch-max", type=int, default=5000, help="IOC_BATCH_MAX for the worker")
    ap.add_argument("--repeat", type=int, default=3, help="KPI off/on runs, alternated")
    args = ap.parse_args()
    stream = BY_NAME[args.stream]
    state = Path(tempfile.mkdtemp(prefix="ioc-bench-"))
    broker = TansuBroker(port=free_port(), state_dir=state)
    broker.start(tied_to_parent=True)
    settings = Settings.from_env(
        {
            "IOC_KAFKA_URL": broker.url,
            "IOC_BROKER_FLAVOR": "tansu",
            "IOC_PARTITIONS": str(args.partitions),
        }
    )
    urls = {k: fresh_db(k) for k in ("baseline", "handler", "batch", "agents", "kpi_off")}
    try:
        records = make_events(stream, args.events)
        size = sum(len(r[2]) for r in records) / len(records)
        produce_rate = asyncio.run(preload(settings, records))
        print(
            f"stream={stream.name} events={args.events:,} avg_bytes={size:.0f} "
            f"partitions={args.partitions} (produced at {produce_rate:,.0f}/s)"
        )
        for url in urls.values():
            asyncio.run(warm_partitions(url, stream, records))
        base = asyncio.run(run_baseline(settings, stream, args.events, urls["baseline"]))
        print(f"baseline  (aiokafka getmany + raw COPY)          {base:>10,.0f} events/s")
        hand = asyncio.run(run_handler(settings, stream, args.events, urls["handler"]))
        print(
            f"handler   (getmany + validation + idempotent COPY) {hand:>8,.0f} events/s"
            f"  = {hand / base:.2f}x baseline"
        )
        # KPI off and on alternate, each run on emptied tables: this machine's spread between
        # runs is larger than the effect, so the medians are compared.
        off_runs: list[PipelineRun] = []
        on_runs: list[PipelineRun] = []
        for run in range(args.repeat):
            for kpi, runs, url in (
                (False, off_runs, urls["kpi_off"]),
                (True, on_runs, urls["batch"]),
            ):
                empty(url)
                runs.append(
                    run_pipeline(
                        broker, stream, args.events, url, state, "batch", args.batch_max, kpi, run
                    )
                )
        for label, runs in (
            ("batched, IOC_KPI=off", off_runs),
            ("batched, IOC_KPI=on (default)", on_runs),
        ):
            mid = median_run(runs)
            print(
                f"pipeline  ioc worker, {label:<34} {mid.rate:>8,.0f} events/s"
                f"  = {mid.rate / base:.2f}x baseline {mid.detail()}"
            )
            print(f"          runs: {', '.join(f'{r.rate:,.0f}' for r in runs)}")
        off, on = median_run(off_runs), median_run(on_runs)
        print(f"          KPI cost: {1 - on.rate / off.rate:.0%} of throughput (medians)")
        empty(urls["agents"])
        pipe = run_pipeline(
            broker, stream, args.events, urls["agents"], state, "agents", args.batch_max
        )
        print(
            f"pipeline  ioc worker, {'one Faust agent per stream':<34} {pipe.rate:>8,.0f} events/s"
            f"  = {pipe.rate / base:.2f}x baseline {pipe.detail()}"
        )
    finally:
        for url in urls.values():
            drop_database(url)
        broker.stop()


if __name__ == "__main__":
    main()
