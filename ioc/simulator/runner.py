"""Drive a :class:`ProvinceSimulator` in (compressed) real time and publish to Kafka.

Simulated time starts ``backfill`` before now (moved to the next working-day morning) and
runs ``speedup`` times faster than the wall clock until it catches up with now; from then on
it follows the wall clock. So a demo shows a
busy province at once, and event times are never in the future (the worker refuses those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from ioc.clock import Clock, SystemClock
from ioc.config import Settings
from ioc.events import partition_key
from ioc.partitioning import REPORTING_TZ
from ioc.producer import EventProducer, encode, stream_of
from ioc.simulator.invalid import invalid_records
from ioc.simulator.province import ProvinceSimulator

log = logging.getLogger(__name__)


@dataclass
class SimulationStats:
    produced: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    sim_time: datetime | None = None


@dataclass(frozen=True)
class SimulationPlan:
    seed: int = 7
    speedup: float = 720.0
    backfill: timedelta = timedelta(days=7)
    invalid_ratio: float = 0.002
    two_level: bool = False
    security_per_minute: float = 20.0
    tick_seconds: float = 0.2
    max_events: int | None = None
    duration_seconds: float | None = None


def next_working_morning(when: datetime) -> datetime:
    """The first Monday–Friday 07:00 in Asia/Ho_Chi_Minh at or after ``when``: a demo that
    starts on a Sunday night would show no dossiers for a long while."""
    local = when.astimezone(REPORTING_TZ)
    morning = local.replace(hour=7, minute=0, second=0, microsecond=0)
    if morning < local:
        morning += timedelta(days=1)
    while morning.weekday() >= 5:
        morning += timedelta(days=1)
    return morning.astimezone(UTC)


def simulated_now(
    start: datetime, real_start: datetime, real_now: datetime, speedup: float
) -> datetime:
    """Compressed time, never ahead of the wall clock."""
    return min(real_now, start + (real_now - real_start) * speedup)


async def run_simulation(
    settings: Settings,
    plan: SimulationPlan,
    stats: SimulationStats | None = None,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
) -> SimulationStats:
    clock = clock or SystemClock()
    stats = stats or SimulationStats()
    stop = stop or asyncio.Event()
    real_start = clock.now()
    start = next_working_morning(real_start - plan.backfill)
    if start > real_start:  # a short backfill: no working morning before now
        start = real_start - plan.backfill
    sim = ProvinceSimulator(
        seed=plan.seed,
        start=start,
        two_level=plan.two_level,
        security_events_per_minute=plan.security_per_minute,
    )
    await _publish_catalogue(settings, sim)
    rng = random.Random(plan.seed ^ 0x5EED)
    producer = EventProducer(settings)
    await producer.start()
    total = 0
    try:
        while not stop.is_set():
            now = clock.now()
            if plan.duration_seconds is not None and (
                (now - real_start).total_seconds() >= plan.duration_seconds
            ):
                break
            until = simulated_now(start, real_start, now, plan.speedup)
            events = sim.advance(until)
            stats.sim_time = until
            if plan.max_events is not None:
                events = events[: max(0, plan.max_events - total)]
            items: list[tuple[str, bytes | None, bytes]] = []
            for e in events:
                s = stream_of(e)
                if plan.invalid_ratio and rng.random() < plan.invalid_ratio:
                    items.append((s.topic, None, invalid_records(rng, s.name)))
                    stats.invalid[s.name] += 1
                else:
                    items.append((s.topic, partition_key(e).encode(), encode(e)))
                stats.produced[s.name] += 1
            total += await producer.send_many(items)
            if plan.max_events is not None and total >= plan.max_events:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), plan.tick_seconds)
    finally:
        await producer.stop()
    return stats


async def _publish_catalogue(settings: Settings, sim: ProvinceSimulator) -> None:
    """Store the simulated province's agency tree and procedures, as an operator would load
    theirs, so the live KPIs roll up by agency and know each procedure's legal duration."""
    from ioc.storage.kpi_store import save_catalogue

    try:
        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            await save_catalogue(conn, sim.tree, sim.procedures)
    except psycopg.Error as exc:
        log.warning("catalogue not stored (run `ioc migrate` first?): %s", exc)
