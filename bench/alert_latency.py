"""Alert latency: a critical event produced → the alert visible in Alertmanager.

With ``--rate`` background security events per second flowing (default 1,000: medium and
high events of every category, so the correlation rules work too), the bench injects
``--criticals`` critical events, each on an asset of its own, and measures from just before
each is produced until Alertmanager's API lists its alert (polled every 10 ms by a separate
task). A real ``ioc worker`` (ingest, KPIs, the committed rule set) runs against a real
Alertmanager, broker and database.

Baseline in the same run: the same number of alerts POSTed straight to Alertmanager from this
process, measured the same way: the floor our pipeline adds its time to.

Usage: ``python bench/alert_latency.py [--rate 1000] [--criticals 200] [--every 0.25]``.
Target (DESIGN.md): p99 under 1 s. Prints p50, p90, p99 and max of both.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ioc.broker import ensure_topics
from ioc.events import SecurityEvent
from ioc.producer import EventProducer, encode
from ioc.services.alertmanager import LocalAlertmanager
from tests.support.alertmanager import running_alertmanager
from tests.support.services import Stack, WorkerProcess, start_stack, wait_for

CATEGORIES = ("malware", "intrusion", "ddos", "phishing", "brute_force", "policy", "other")
RULE = "security-critical"  # the committed rule that pages on a critical event


def background_event(rng: random.Random, i: int) -> bytes:
    return encode(
        SecurityEvent(
            event_id=f"bg-{i}",
            event_time=datetime.now(UTC),
            source=f"sensor-{rng.randrange(8)}",
            severity=rng.choice(("info", "low", "medium", "medium", "high")),
            category=rng.choice(CATEGORIES),  # type: ignore[arg-type]
            src_ip=f"198.51.100.{rng.randrange(250)}",
            dst_ip=f"10.20.{rng.randrange(4)}.{rng.randrange(250)}",
            asset_id=f"asset-{rng.randrange(300)}",
            message="background",
        )
    )


def critical_event(run: str, n: int) -> bytes:
    return encode(
        SecurityEvent(
            event_id=f"crit-{run}-{n}",
            event_time=datetime.now(UTC),
            source="soc-tinh",
            severity="critical",
            category="intrusion",
            asset_id=f"bench-{run}-{n}",
            message="injected",
        )
    )


class Poller:
    """When each asset's alert first appears in Alertmanager (monotonic seconds)."""

    def __init__(self, am: LocalAlertmanager, alertname: str) -> None:
        self.am = am
        self.alertname = alertname
        self.seen: dict[str, float] = {}

    async def run(self, session: aiohttp.ClientSession) -> None:
        url = f"{self.am.url}/api/v2/alerts"
        params = {"filter": f'alertname="{self.alertname}"'}
        while True:
            async with session.get(url, params=params) as r:
                alerts = await r.json()
            now = time.monotonic()
            for a in alerts:
                asset = a["labels"].get("asset_id", "")
                self.seen.setdefault(asset, now)
            await asyncio.sleep(0.01)


async def until(condition: Callable[[], bool], seconds: float, step: float = 0.05) -> None:
    for _ in range(int(seconds / step)):
        if condition():
            return
        await asyncio.sleep(step)


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<10} no samples"
    v = sorted(values)
    q = statistics.quantiles(v, n=100, method="inclusive")
    return (
        f"{name:<10} n={len(v):>4}  p50={q[49] * 1000:7.1f} ms  p90={q[89] * 1000:7.1f} ms"
        f"  p99={q[98] * 1000:7.1f} ms  max={v[-1] * 1000:7.1f} ms"
    )


async def pipeline_run(
    stack: Stack, am: LocalAlertmanager, rate: int, criticals: int, every: float
) -> tuple[list[float], int]:
    settings = stack.settings
    await ensure_topics(settings)
    producer = EventProducer(settings)
    await producer.start()
    rng = random.Random(7)
    run = datetime.now(UTC).strftime("%H%M%S")
    sent: dict[str, float] = {}
    produced = 0

    async def background() -> None:
        nonlocal produced
        tick = 0.05  # 20 small batches a second, as many integrations push
        next_at = time.monotonic()
        while True:
            batch = [
                ("ioc.security.v1", None, background_event(rng, produced + j))
                for j in range(int(rate * tick))
            ]
            await producer.send_many(batch)
            produced += len(batch)
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async with aiohttp.ClientSession() as session:
        poller = Poller(am, RULE)
        tasks = [asyncio.create_task(poller.run(session)), asyncio.create_task(background())]
        await asyncio.sleep(5.0)  # let the background settle in
        for n in range(criticals):
            asset = f"bench-{run}-{n}"
            sent[asset] = time.monotonic()
            await producer.send_many([("ioc.security.v1", None, critical_event(run, n))])
            await asyncio.sleep(every)
        await until(lambda: set(sent) <= set(poller.seen), 30)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await producer.stop()
    missing = len(set(sent) - set(poller.seen))
    return [poller.seen[a] - t for a, t in sent.items() if a in poller.seen], missing


async def baseline_run(am: LocalAlertmanager, criticals: int, every: float) -> list[float]:
    """POST each alert straight to Alertmanager: the floor of 'visible in Alertmanager'."""
    async with aiohttp.ClientSession() as session:
        poller = Poller(am, "bench-baseline")
        task = asyncio.create_task(poller.run(session))
        sent: dict[str, float] = {}
        for n in range(criticals):
            asset = f"base-{n}"
            sent[asset] = time.monotonic()
            alert = {
                "labels": {"alertname": "bench-baseline", "asset_id": asset},
                "startsAt": datetime.now(UTC).isoformat(),
                "endsAt": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
            }
            async with session.post(f"{am.url}/api/v2/alerts", json=[alert]) as r:
                r.raise_for_status()
            await asyncio.sleep(every)
        await until(lambda: set(sent) <= set(poller.seen), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return [poller.seen[a] - t for a, t in sent.items() if a in poller.seen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="background events per second")
    parser.add_argument("--criticals", type=int, default=200, help="critical events injected")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between them")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, running_alertmanager(Path(tmp) / "am") as am:
        stack = start_stack(Path(tmp))
        stack.extra_env.update(IOC_ALERTMANAGER_URL=am.url)
        worker = WorkerProcess(stack, Path(tmp) / "worker.log")
        worker.start()
        try:
            wait_for(
                lambda: worker.sample("ioc_alert_evaluator_leader") == 1.0,
                120,
                "the alert evaluator",
                worker.log_tail,
            )
            base = asyncio.run(baseline_run(am, args.criticals, args.every))
            latencies, missing = asyncio.run(
                pipeline_run(stack, am, args.rate, args.criticals, args.every)
            )
            stored = worker.sample("ioc_events_stored_total", stream="security") or 0
        finally:
            worker.stop()
            stack.close()
    print(f"background {args.rate} ev/s; {args.criticals} critical events, one per {args.every}s")
    print(f"security events stored by the worker: {stored:.0f}")
    print(summary("baseline", base))
    print(summary("pipeline", latencies))
    if missing:
        print(f"MISSING: {missing} alerts never appeared in Alertmanager")
    p99 = statistics.quantiles(sorted(latencies), n=100, method="inclusive")[98] if latencies else 0
    print(
        f"target p99 < 1000 ms: {'met' if latencies and p99 < 1.0 and not missing else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
