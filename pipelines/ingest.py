"""Ingest agents: topic → batch → validate → dead letters + idempotent write → ack.

One Faust agent per stream takes batches bounded in size and time (``stream.take_events``).
Faust acknowledges a batch's offsets when the agent asks for the next batch, so the agent only
asks after the batch is committed to the database. It therefore never raises on input or on a
database failure: bad records are dead-lettered, a failing database is retried with backoff
(consumption pauses, nothing is acknowledged), and a record the database itself refuses is
isolated by bisecting the batch and dead-lettered alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import msgspec
import psycopg

from ioc.batch import RawRecord, split_batch
from ioc.clock import Clock
from ioc.deadletter import DeadLetter
from ioc.metrics import PipelineMetrics
from ioc.storage.writer import EventWriter, WriteResult
from ioc.storage_types import Consumed
from ioc.streams import Stream
from ioc.validation import EventParser

log = logging.getLogger(__name__)

SendDeadLetters = Callable[[Sequence[DeadLetter]], Awaitable[None]]

MAX_BACKOFF_SECONDS = 30.0
SHUTDOWN_GRACE_SECONDS = 10.0


class IngestHandler:
    """Stores one stream's batches; shared by the Faust agent and the benchmark."""

    def __init__(
        self,
        stream: Stream,
        parser: EventParser,  # type: ignore[type-arg]
        writer: EventWriter,
        send_dead_letters: SendDeadLetters,
        metrics: PipelineMetrics,
        clock: Clock,
    ) -> None:
        self.stream = stream
        self.parser = parser
        self.writer = writer
        self.send_dead_letters = send_dead_letters
        self.metrics = metrics
        self.clock = clock

    async def handle(self, records: Sequence[RawRecord]) -> WriteResult:
        """Store a batch; returns only once every record is stored or dead-lettered."""
        name = self.stream.name
        self.metrics.consumed.labels(name).inc(len(records))
        self.metrics.batch_size.labels(name).observe(len(records))
        valid, dead = split_batch(self.parser, records, self.clock.now())
        result = await self._write_until_done(valid, dead)
        self.metrics.stored.labels(name).inc(result.inserted)
        self.metrics.duplicates.labels(name).inc(result.duplicates)
        self.metrics.write_seconds.labels(name).observe(result.seconds)
        self.metrics.last_batch.labels(name).set(self.clock.now().timestamp())
        return result

    async def _write_until_done(self, valid: list[Consumed], dead: list[DeadLetter]) -> WriteResult:
        delay = 0.5
        while True:
            try:
                result = await self._write_isolating_bad_rows(valid, dead)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                self.metrics.database_up.set(0)
                self.metrics.write_errors.labels(self.stream.name).inc()
                log.warning(
                    "%s: database write failed (%s); retrying in %.1fs, consumption paused",
                    self.stream.name,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                continue
            self.metrics.database_up.set(1)
            return result

    async def _write_isolating_bad_rows(
        self, valid: list[Consumed], dead: list[DeadLetter]
    ) -> WriteResult:
        try:
            if dead:
                await self.send_dead_letters(dead)
            result = await self.writer.write(valid, dead)
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
            if not valid:
                # Only dead letters, and the database refuses one: keep the bytes and the
                # position, drop the parts that can hold anything (key, free-text reason).
                if all(d.key is None and d.reason_kind == "unstorable" for d in dead):
                    raise
                log.error("%s: dead letters refused by the database: %s", self.stream.name, exc)
                bare = [replace(d, key=None, reason=f"unstorable: {d.reason_kind}") for d in dead]
                return await self._write_isolating_bad_rows([], bare)
            if len(valid) <= 1:
                # The database refuses this one record: it becomes a dead letter.
                refused = [_refused(c, self.stream, str(exc), self.clock.now()) for c in valid]
                log.warning("%s: database refused a record: %s", self.stream.name, exc)
                return await self._write_isolating_bad_rows([], dead + refused)
            mid = len(valid) // 2
            first = await self._write_isolating_bad_rows(valid[:mid], dead)
            second = await self._write_isolating_bad_rows(valid[mid:], [])
            result = WriteResult(
                first.inserted + second.inserted,
                first.duplicates + second.duplicates,
                first.dead_lettered + second.dead_lettered,
                first.seconds + second.seconds,
            )
            return result
        for d in dead:
            self.metrics.dead_lettered.labels(self.stream.name, d.reason_kind).inc()
        return result


def _refused(c: Consumed, stream: Stream, error: str, now: datetime) -> DeadLetter:
    payload = msgspec.json.encode(c.event)
    reason = "rejected_by_database: " + error.splitlines()[0]
    return DeadLetter(stream.topic, c.partition, c.offset, None, payload, reason, now)


def records_of(events: Sequence[Any]) -> list[RawRecord]:
    """Faust events → plain records (topic, partition, offset, key, raw value)."""
    out = []
    for ev in events:
        m = ev.message
        out.append(RawRecord(m.topic, m.partition, m.offset, m.key, m.value))
    return out


async def run_agent_batches(
    handler: IngestHandler, stream: Any, batch_max: int, within: float
) -> None:
    """The body of an ingest agent: never raises on input or database failure.

    If the worker is stopped while a batch is still being written, the write gets a grace
    period; if it cannot finish (database down), the process exits at once *without*
    acknowledging, exactly like a crash, so the batch is read again on restart.
    """
    async for events in stream.take_events(batch_max, within=within):
        task = asyncio.ensure_future(handler.handle(records_of(events)))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            try:
                await asyncio.wait_for(task, SHUTDOWN_GRACE_SECONDS)
            except BaseException:
                log.error(
                    "%s: stopping with a batch not stored; exiting without acknowledging it",
                    handler.stream.name,
                )
                logging.shutdown()
                os._exit(75)
            raise
