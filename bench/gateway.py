"""Gateway throughput and request latency: 1,000-event NDJSON batches pushed over HTTP.

``--gateways`` real ``ioc gateway`` processes (each with its own broker producer; the
embedded broker; a fresh database for the integrations) receive ``--events`` security events
in batches of ``--batch`` from ``--clients`` concurrent keep-alive connections of this
process, spread over the gateways as a load balancer would. Each request is timed from send
to its 202, which the gateway gives only after the broker acknowledged every event of the
batch. This process freezes its own heap first, so its garbage collections stay out of the
timings of both sides.

Baseline in the same run: the same events produced straight to the broker from this process
in the same batches, each awaited until acknowledged (aiokafka, acks=all, the gateway's
producer settings) — what pushing costs without HTTP, authentication, per-item checks and
answers.

Usage: ``python bench/gateway.py [--events 100000] [--batch 1000] [--clients 2] [--gateways 1]``.
Target (issue 5): at least 20,000 events/s, and p99 under 50 ms per request.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ioc.api.push import gateway_producer_settings
from ioc.broker import ensure_topics
from ioc.gc_tuning import settle_after_startup
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


def ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


async def push_all(
    urls: list[str], token: str, bodies: list[bytes], clients: int
) -> tuple[float, list[float], int]:
    """Client ``c`` pushes to ``urls[c % len(urls)]``, as a load balancer spreading
    connections over gateway processes would."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    accepted = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}

    async def client(session: aiohttp.ClientSession, url: str) -> None:
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
        await asyncio.gather(*(client(session, urls[c % len(urls)]) for c in range(clients)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, accepted


async def baseline(stack: Stack, records: list[bytes], batch: int) -> tuple[float, list[float]]:
    """The same events in the same batches, each awaited until acknowledged, with the
    gateway's own producer settings; the elapsed time and each batch's latency."""
    producer = AIOKafkaProducer(**gateway_producer_settings(stack.settings))
    await producer.start()

    async def send(rows: list[bytes]) -> None:
        futures = [await producer.send(TOPIC, key=b"soc-tinh", value=r) for r in rows]
        await asyncio.gather(*futures)

    try:
        await send(records[:1])  # warm-up: connection and metadata
        latencies = []
        started = time.perf_counter()
        for i in range(0, len(records), batch):
            t0 = time.perf_counter()
            await send(records[i : i + batch])
            latencies.append(time.perf_counter() - t0)
        return time.perf_counter() - started, latencies
    finally:
        await producer.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--gateways", type=int, default=1, help="gateway processes")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ioc-bench-gateway-"))
    stack = start_stack(tmp)
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        migrate(stack.database_url)
        asyncio.run(ensure_topics(stack.settings))
        token = create_integration(
            stack.database_url, "soc-tinh", streams=["security"], rate=1e7, burst=1e7
        )
        for n in range(args.gateways):
            port = free_port()
            env = {
                **stack.env,
                "IOC_GATEWAY_PORT": str(port),
                "IOC_SYSLOG_UDP_PORT": "0",
                "IOC_SYSLOG_TCP_PORT": "0",
                "IOC_LOG_LEVEL": "warning",
            }
            log = open(tmp / f"gateway{n}.log", "wb")  # noqa: SIM115 - the child's, for its life
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ioc.cli", "gateway"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=child_dies_with_parent,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for base in urls:
            wait_for(functools.partial(ready, base), timeout=60, what="the gateway to be ready")
        run = uuid.uuid4().hex[:8]
        records = events(run, args.events)
        bodies = [
            b"\n".join(records[i : i + args.batch]) + b"\n"
            for i in range(0, len(records), args.batch)
        ]
        warm = events(run + "w", args.batch * args.clients)
        direct = events(run + "b", args.events)
        settle_after_startup()  # this process's own full collections out of the timings
        targets = [u + "/v1/events/security" for u in urls]
        for url in targets:
            asyncio.run(push_all([url], token, [b"\n".join(warm)], 1))
        elapsed, latencies, accepted = asyncio.run(push_all(targets, token, bodies, args.clients))
        base_elapsed, base_latencies = asyncio.run(baseline(stack, direct, args.batch))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        stack.close()
    rate = accepted / elapsed
    base_rate = args.events / base_elapsed
    ms = [x * 1000 for x in latencies]
    base_ms = [x * 1000 for x in base_latencies]
    print(
        f"{args.events} security events, {len(bodies)} requests of {args.batch},"
        f" {args.clients} clients, {args.gateways} gateway process(es)"
    )
    print(
        f"baseline (produce straight to the broker): {base_rate:,.0f} events/s;"
        f" batch p50 {statistics.median(base_ms):.1f} ms, p90 {percentile(base_ms, 0.9):.1f} ms,"
        f" p99 {percentile(base_ms, 0.99):.1f} ms"
    )
    print(
        f"gateway: {rate:,.0f} events/s ({rate / base_rate:.2f}x of baseline);"
        f" request p50 {statistics.median(ms):.1f} ms, p90 {percentile(ms, 0.9):.1f} ms,"
        f" p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
    )
    if os.environ.get("IOC_BENCH_KEEP"):
        print(f"gateway logs: {tmp}/gateway*.log")


if __name__ == "__main__":
    main()
