"""The worker against the real embedded broker and the real PostgreSQL.

These tests drive a real ``ioc worker`` process: what they prove is what an operator relies on
— every distinct valid event stored exactly once, dossiers in the right state whatever the
arrival order, every bad record dead-lettered with its reason, and no loss or duplication when
the worker is killed mid-stream.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import msgspec
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer

from ioc.broker import consumer_settings
from ioc.clock import SystemClock
from ioc.dossier_state import fold
from ioc.streams import BY_NAME, DEADLETTER_TOPIC
from ioc.validation import EventParser, Rejection
from tests.support import events as ev
from tests.support.services import Stack, WorkerProcess, count, counts, produce, wait_for

pytestmark = pytest.mark.integration


def dead_letter_topic_messages(stack: Stack) -> list[bytes]:
    async def go() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            DEADLETTER_TOPIC, **consumer_settings(stack.settings), group_id=None
        )
        await consumer.start()
        out: list[bytes] = []
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=1500)
                if not batch:
                    return out
                for msgs in batch.values():
                    out.extend(m.value for m in msgs if m.value is not None)
        finally:
            await consumer.stop()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def worker(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = WorkerProcess(stack, Path(tmp_path_factory.mktemp("worker")) / "worker.log")
    yield w
    w.stop()


def test_worker_stores_each_distinct_valid_event_once_and_dead_letters_the_rest(
    stack: Stack, worker: WorkerProcess
) -> None:
    rng = random.Random(20261121)
    start = ev.recent_start()
    dossiers = ev.dossier_events(120, rng, start)
    uptime = ev.uptime_events(900, start)
    security = ev.security_events(1500, start)
    valid = [*dossiers, *uptime, *security]
    # Out of order within each dossier, and a tenth of everything sent twice.
    wave = ev.shuffled_within_key(valid, rng) + rng.sample(valid, len(valid) // 10)
    records = ev.as_records(wave)
    for stream, payloads in ev.BAD_RECORDS.items():
        for p in payloads:
            records.insert(rng.randrange(len(records)), (BY_NAME[stream].topic, b"bad", p))
    produce(stack, records)

    worker.start()
    n_bad = sum(len(v) for v in ev.BAD_RECORDS.values())
    wait_for(
        lambda: (
            count(stack, "dossier_events") == len(dossiers)
            and count(stack, "uptime_checks") == len(uptime)
            and count(stack, "security_events") == len(security)
            and count(stack, "dead_letters") == n_bad
        ),
        timeout=120,
        what="all events stored and dead-lettered",
        on_fail=lambda: f"{counts(stack)}\n{worker.log_tail()}",
    )

    # Each dossier's current state equals the pure merge of its distinct events.
    expected = {k: asdict(v) for k, v in fold(dossiers).items()}
    with psycopg.connect(stack.database_url) as conn:
        cur = conn.execute("SELECT * FROM dossiers")
        cols = [c.name for c in cur.description or ()]
        stored = {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
        stored_reasons = sorted(
            (topic, reason)
            for topic, reason in conn.execute("SELECT source_topic, reason FROM dead_letters")
        )
    assert stored.keys() == expected.keys()
    for dossier_id, state in expected.items():
        row = stored[dossier_id]
        assert {k: row[k] for k in state} == state, dossier_id

    # Every bad record is in dead_letters with the parser's precise reason.
    clock = SystemClock()
    expected_reasons = []
    for stream, payloads in ev.BAD_RECORDS.items():
        parser = EventParser(BY_NAME[stream].event_type, clock)
        for p in payloads:
            rejection = parser.parse(p)
            assert isinstance(rejection, Rejection)
            expected_reasons.append((BY_NAME[stream].topic, rejection.reason))
    assert stored_reasons == sorted(expected_reasons)

    # ... and on the dead-letter topic, for whoever consumes it, once each.
    messages = [msgspec.json.decode(m) for m in dead_letter_topic_messages(stack)]
    published = sorted((m["source_topic"], m["reason"]) for m in messages)
    assert published == sorted(expected_reasons)
    positions = {(m["source_topic"], m["partition"], m["offset"]) for m in messages}
    assert len(positions) == n_bad


def test_worker_killed_mid_stream_resumes_without_loss_or_duplicates(
    stack: Stack, worker: WorkerProcess
) -> None:
    before = count(stack, "security_events")
    start = ev.recent_start(24)
    wave = ev.security_events(30_000, start, prefix="kill")
    produce(stack, ev.as_records(wave))  # type: ignore[arg-type]
    # Replay part of it again: a producer retry after a timeout.
    produce(stack, ev.as_records(wave[:3000]))  # type: ignore[arg-type]

    wait_for(
        lambda: count(stack, "security_events") > before + 1000,
        timeout=60,
        what="the worker to be mid-stream",
        on_fail=worker.log_tail,
    )
    worker.kill_hard()
    mid = count(stack, "security_events")
    assert mid < before + len(wave), "the worker finished before it could be killed"

    worker.start()
    wait_for(
        lambda: count(stack, "security_events") == before + len(wave),
        timeout=120,
        what="every event stored after restart",
        on_fail=worker.log_tail,
    )
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM security_events"
            " WHERE event_id LIKE 'kill-%'"
        ).fetchone()
    assert row == (len(wave), len(wave))
