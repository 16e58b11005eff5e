"""Gateway throughput and request latency: 1,000-event NDJSON batches pushed over HTTP.

A real ``ioc gateway`` process (its own broker producer, the embedded broker, a fresh
database for its integrations) receives ``--events`` security events in batches of
``--batch`` from ``--clients`` concurrent keep-alive connections of this process. Each
request is timed from send to its 202, which the gateway gives only after the broker
acknowledged every event of the batch.

Baseline in the same run: the same events produced straight to the broker from this process
in the same batches, each awaited until acknowledged (aiokafka, acks=all, the gateway's
producer settings) — what pushing costs without HTTP, authentication, per-item checks and
answers.

Usage: ``python bench/gateway.py [--events 100000] [--batch 1000] [--clients 2]``.
Target (issue 5): at least 20,000 events/s, and p99 under 50 ms per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ioc.api.push import gateway_producer_settings
from ioc.broker import ensure_topics
from ioc.services.processes import child_dies_with_parent
from ioc.storage.migrations import migrate
from tests.support.gateway import create_integration
from tests.support.services import Stack, free_port, start_stack, wait_for

CATEGORIES = ("malware", "intrusion", "ddos", "phishing", "brute_force", "policy", "other")
SEVERITIES = ("info", "low", "medium", "high", "critical")
TOPIC = "ioc.security.v1"


def events(run: str, n: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    return [
        json.dumps(
            {
                "event_id": f"{run}-{i}",
                "event_time": now,
                "source": "soc-tinh",
                "severity": SEVERITIES[i % 5],
                "category": CATEGORIES[i % 7],
                "src_ip": f"198.51.100.{i % 250}",
                "dst_ip": f"10.20.{i % 4}.{i % 250}",
                "asset_id": f"asset-{i % 300}",
                "rule_id": f"R{i % 40}",
                "message": "SSH authentication failure for root from 198.51.100.7",
            }
        ).encode()
        for i in range(n)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def push_all(
    url: str, token: str, bodies: list[bytes], clients: int
) -> tuple[float, list[float], int]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    accepted = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while not queue.empty():
            body = queue.get_nowait()
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as r:
                answer = await r.json()
                latencies.append(time.perf_counter() - t0)
                if r.status != 202:
                    raise RuntimeError(f"{r.status}: {str(answer)[:300]}")
                accepted += answer["accepted"]

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, accepted


async def baseline(stack: Stack, records: list[bytes], batch: int) -> float:
    """The same events in the same batches, each awaited until acknowledged, with the
    gateway's own producer settings."""
    producer = AIOKafkaProducer(**gateway_producer_settings(stack.settings))
    await producer.start()

    async def send(rows: list[bytes]) -> None:
        futures = [await producer.send(TOPIC, key=b"soc-tinh", value=r) for r in rows]
        await asyncio.gather(*futures)

    try:
        await send(records[:1])  # warm-up: connection and metadata
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            await send(records[i : i + batch])
        return time.perf_counter() - started
    finally:
        await producer.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ioc-bench-gateway-"))
    stack = start_stack(tmp)
    proc = None
    try:
        migrate(stack.database_url)
        asyncio.run(ensure_topics(stack.settings))
        token = create_integration(
            stack.database_url, "soc-tinh", streams=["security"], rate=1e7, burst=1e7
        )
        port = free_port()
        env = {
            **stack.env,
            "IOC_GATEWAY_PORT": str(port),
            "IOC_SYSLOG_UDP_PORT": "0",
            "IOC_SYSLOG_TCP_PORT": "0",
            "IOC_LOG_LEVEL": "warning",
        }
        log = open(tmp / "gateway.log", "wb")  # noqa: SIM115 - the child's for its lifetime
        proc = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "gateway"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=child_dies_with_parent,
        )
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            import urllib.request

            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(ready, timeout=60, what="the gateway to be ready")
        run = uuid.uuid4().hex[:8]
        records = events(run, args.events)
        bodies = [
            b"\n".join(records[i : i + args.batch]) + b"\n"
            for i in range(0, len(records), args.batch)
        ]
        warm = events(run + "w", args.batch * args.clients)
        asyncio.run(push_all(base + "/v1/events/security", token, [b"\n".join(warm)], 1))
        elapsed, latencies, accepted = asyncio.run(
            push_all(base + "/v1/events/security", token, bodies, args.clients)
        )
        base_elapsed = asyncio.run(baseline(stack, events(run + "b", args.events), args.batch))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        stack.close()
    rate = accepted / elapsed
    base_rate = args.events / base_elapsed
    ms = [x * 1000 for x in latencies]
    print(
        f"{args.events} security events, {len(bodies)} requests of {args.batch},"
        f" {args.clients} clients"
    )
    print(f"baseline (produce straight to the broker): {base_rate:,.0f} events/s")
    print(
        f"gateway: {rate:,.0f} events/s ({rate / base_rate:.2f}x of baseline);"
        f" request p50 {statistics.median(ms):.1f} ms, p90 {percentile(ms, 0.9):.1f} ms,"
        f" p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
    )
    if os.environ.get("IOC_BENCH_KEEP"):
        print(f"gateway log: {tmp / 'gateway.log'}")


if __name__ == "__main__":
    main()
