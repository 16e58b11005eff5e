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
from typing import Any, TypeVar

import msgspec
import psycopg
from aiokafka.errors import KafkaError

from ioc.batch import RawRecord, split_batch
from ioc.clock import Clock
from ioc.deadletter import DeadLetter
from ioc.metrics import PipelineMetrics
from ioc.storage.writer import (
    DeadLettersRejected,
    EventWriter,
    RowsRejected,
    StorageNotReady,
    WriteResult,
)
from ioc.storage_types import Consumed
from ioc.streams import Stream
from ioc.validation import EventParser, TimeBounds

log = logging.getLogger(__name__)

T = TypeVar("T")
SendDeadLetters = Callable[[Sequence[DeadLetter]], Awaitable[None]]

MAX_BACKOFF_SECONDS = 30.0
SHUTDOWN_GRACE_SECONDS = 10.0


class IngestHandler:
    """Stores one stream's batches; shared by both ingest engines and the benchmark."""

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
        # "Nothing stored since" counts from start-up until the first batch, so a worker that
        # starts while the database is down is seen as stalled (IocIngestStalled).
        metrics.last_batch.labels(stream.name).set(clock.now().timestamp())

    @classmethod
    def build(
        cls,
        stream: Stream,
        database_url: str,
        send_dead_letters: SendDeadLetters,
        metrics: PipelineMetrics,
        clock: Clock,
        bounds: TimeBounds | None = None,
        *,
        summaries: bool = True,
    ) -> IngestHandler:
        """A handler with its own parser and database writer for ``stream``; ``summaries``
        keeps the KPI summary tables in the same transaction (IOC_KPI)."""
        return cls(
            stream,
            EventParser.for_stream(stream, clock, bounds),
            EventWriter(database_url, stream, clock.now, summaries=summaries),
            send_dead_letters,
            metrics,
            clock,
        )

    async def handle(self, records: Sequence[RawRecord]) -> WriteResult:
        """Store a batch; returns only once every record is stored or dead-lettered.

        Order: rows and dead letters commit in the database first, then the dead letters go
        to their topic, then the caller acknowledges. A crash in between replays the batch;
        the database ignores what it has, the topic may see a dead letter twice.
        """
        name = self.stream.name
        self.metrics.consumed.labels(name).inc(len(records))
        self.metrics.batch_size.labels(name).observe(len(records))
        valid, dead = split_batch(self.parser, records, self.clock.now())
        result, dead = await self._store(valid, dead)
        if dead:
            await self._until_done("publish dead letters", lambda: self.send_dead_letters(dead))
        self.metrics.stored.labels(name).inc(result.inserted)
        self.metrics.duplicates.labels(name).inc(result.duplicates)
        self.metrics.write_seconds.labels(name).observe(result.seconds)
        self.metrics.last_batch.labels(name).set(self.clock.now().timestamp())
        for d in dead:
            self.metrics.dead_lettered.labels(name, d.reason_kind).inc()
        return result

    async def _store(
        self, valid: list[Consumed], dead: list[DeadLetter]
    ) -> tuple[WriteResult, list[DeadLetter]]:
        """Write, isolating rows the database refuses by bisecting the batch; returns the
        result and every dead letter actually stored (the parser's and the database's)."""
        try:
            result = await self._until_done(
                "write", lambda: self.writer.write(valid, dead), database=True
            )
            return result, dead
        except DeadLettersRejected as exc:
            # Only the dead letters' key or reason can be refused: keep bytes and position.
            log.error("%s: dead letters refused by the database: %s", self.stream.name, exc)
            bare = [replace(d, key=None, reason=f"unstorable: {d.reason_kind}") for d in dead]
            if bare == dead:
                raise
            return await self._store(valid, bare)
        except RowsRejected as exc:
            if len(valid) == 1:
                log.warning("%s: database refused a record: %s", self.stream.name, exc)
                refused = _refused(valid[0], self.stream, exc, self.clock.now())
                return await self._store([], [*dead, refused])
            mid = len(valid) // 2
            first, first_dead = await self._store(valid[:mid], dead)
            second, second_dead = await self._store(valid[mid:], [])
            combined = WriteResult(
                first.inserted + second.inserted,
                first.duplicates + second.duplicates,
                first.dead_lettered + second.dead_lettered,
                first.seconds + second.seconds,
            )
            return combined, first_dead + second_dead

    async def _until_done(
        self, what: str, attempt: Callable[[], Awaitable[T]], *, database: bool = False
    ) -> T:
        """Retry a database or broker operation with capped backoff until it succeeds.

        Everything but a refused row is treated as the service being unavailable: the batch
        waits (consumption pauses) and nothing is acknowledged meanwhile.
        """
        delay = 0.5
        while True:
            try:
                outcome = await attempt()
            except RowsRejected:
                raise
            except (psycopg.Error, StorageNotReady, KafkaError, OSError, TimeoutError) as exc:
                if database:
                    self.metrics.database_up.set(0)
                    self.metrics.write_errors.labels(self.stream.name).inc()
                log.warning(
                    "%s: %s failed (%s: %s); retrying in %.1fs, consumption paused",
                    self.stream.name,
                    what,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                continue
            if database:
                self.metrics.database_up.set(1)
            return outcome


def _refused(c: Consumed, stream: Stream, exc: RowsRejected, now: datetime) -> DeadLetter:
    """A valid-by-contract event the database refused; the payload is the re-encoded event
    (the original bytes are not kept past parsing), the reason the database's message."""
    first_line = (str(exc.cause).splitlines() or [""])[0]
    reason = f"rejected_by_database: {first_line}"
    payload = msgspec.json.encode(c.event)
    return DeadLetter(stream.topic, c.partition, c.offset, None, payload, reason, now)


async def run_agent_batches(
    handler: IngestHandler, stream: Any, batch_max: int, within: float
) -> None:
    """The body of an ingest agent: never raises on input or database failure.

    If the worker is stopped while a batch is still being written, the write gets a grace
    period; if it cannot finish (database down), the process exits at once *without*
    acknowledging, exactly like a crash, so the batch is read again on restart.
    """
    async for events in stream.take_events(batch_max, within=within):
        task = asyncio.ensure_future(
            handler.handle([RawRecord.from_message(e.message) for e in events])
        )
        try:
            await asyncio.shield(task)
        except Exception:
            # Leaving this loop with an error would let Faust acknowledge the batch.
            log.critical(
                "%s: unexpected error; exiting without acknowledging",
                handler.stream.name,
                exc_info=True,
            )
            logging.shutdown()
            os._exit(70)
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
