"""``ioc replay``: load events into storage again, from NDJSON files or a range of a topic.

For restoring what a database lost (a restore from an older backup, a table dropped by
mistake), loading an archive, or re-reading a topic after fixing a bug. Records go through
the worker's own path (:class:`~pipelines.ingest.IngestHandler`): the same validation, bad
records to the ``dead_letters`` table with their reason, the same idempotent write keyed on
the event id, and the KPI summaries kept in the same transaction. So replaying twice, or
replaying what the workers already stored, stores nothing twice: the report counts those
records as duplicates.

What a replay does not do: publish to the ingest topics (live workers would store the events
anyway, and the alert rules would see months-old events as news), or re-run the alert rules.

Positions: a topic's records keep their partition and offset; a file's records get partition
``-1`` and their line number, and dead letters name the file (``file:<name>``) as their
source, so a refused line can be found and fixed.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from ioc.batch import RawRecord
from ioc.broker import consumer_settings
from ioc.clock import Clock, SystemClock
from ioc.config import Settings
from ioc.deadletter import DeadLetter
from ioc.metrics import PipelineMetrics
from ioc.storage.tables import ingest_bounds
from ioc.streams import Stream
from pipelines.ingest import IngestHandler

log = logging.getLogger(__name__)

FILE_PARTITION = -1
IDLE_POLLS = 3  # empty one-second fetches in a row: the partition is read to its end


@dataclass(slots=True)
class ReplayReport:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0

    def line(self) -> str:
        return (
            f"read {self.read}, stored {self.stored}, already stored {self.duplicates},"
            f" dead-lettered {self.dead_lettered}"
        )


@dataclass(frozen=True, slots=True)
class TopicRange:
    """Which records of a topic: offsets (per partition) or Kafka timestamps, or both.

    ``since``/``from_offset`` are included, ``until``/``until_offset`` excluded; without an
    end the range stops at each partition's end as found when the replay starts (on the
    embedded broker: at the records appended before it started), so a replay ends even while
    producers keep writing.
    """

    partitions: tuple[int, ...] | None = None
    from_offset: int | None = None
    until_offset: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for t in (self.since, self.until):
            if t is not None and t.tzinfo is None:
                raise ValueError("replay times need a UTC offset")
        if self.since and self.until and self.until <= self.since:
            raise ValueError("--until must be after --since")
        if (
            self.from_offset is not None
            and self.until_offset is not None
            and self.until_offset <= self.from_offset
        ):
            raise ValueError("--until-offset must be after --from-offset")

    def admits(self, offset: int, timestamp_ms: int) -> bool:
        """Whether a record read at ``offset`` with this broker timestamp is in the range."""
        if self.from_offset is not None and offset < self.from_offset:
            return False
        if self.until_offset is not None and offset >= self.until_offset:
            return False
        if self.since is not None and timestamp_ms < _ms(self.since):
            return False
        return not (self.until is not None and timestamp_ms >= _ms(self.until))


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def file_records(path: Path) -> Iterator[RawRecord]:
    """Each non-blank line of an NDJSON file (gzip when it ends in ``.gz``) as a record,
    positioned at its line number. A line is passed on as bytes, whatever it holds: the
    parser, not the reader, decides what is valid, so a bad line becomes a dead letter with
    its reason instead of stopping the replay."""
    source = f"file:{path.name}"
    with _open(path) as f:
        for number, line in enumerate(f, 1):
            value = line.rstrip(b"\r\n")
            if value.strip():
                yield RawRecord(source, FILE_PARTITION, number, None, value)


def batches(records: Iterable[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    batch: list[RawRecord] = []
    for r in records:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def topic_batches(
    settings: Settings, stream: Stream, wanted: TopicRange, size: int
) -> AsyncIterator[list[RawRecord]]:
    """The records of ``wanted`` on the stream's topic, in batches, read without a consumer
    group (nothing is committed, the workers' offsets are untouched)."""
    consumer = AIOKafkaConsumer(**consumer_settings(settings), group_id=None)
    try:
        await consumer.start()
        await consumer.topics()  # metadata for every topic
        known = consumer.partitions_for_topic(stream.topic)
        if not known:
            raise LookupError(f"topic {stream.topic} does not exist on {settings.kafka_bootstrap}")
        chosen = sorted(known if wanted.partitions is None else set(wanted.partitions))
        if missing := set(chosen) - known:
            raise LookupError(f"{stream.topic} has no partition {sorted(missing)}")
        tps = [TopicPartition(stream.topic, p) for p in chosen]
        consumer.assign(tps)
        starts = await _start_offsets(consumer, tps, wanted)
        stops: dict[TopicPartition, int | None] = dict.fromkeys(tps)
        until = wanted.until
        if settings.broker_flavor == "kafka":
            stops.update(await consumer.end_offsets(tps))
            if until is not None:
                # The first record at or after --until ends the range (None: none yet).
                found = await consumer.offsets_for_times({tp: _ms(until) for tp in tps})
                for tp, hit in found.items():
                    if hit is not None and stops[tp] is not None:
                        stops[tp] = min(stops[tp], hit.offset)  # type: ignore[type-var]
        elif until is None:
            # The embedded broker reports a partition's end as its last batch's first
            # offset + 1: there a partition is read until it stays empty, and records
            # appended after the replay began are left out, so it ends while producers write.
            until = datetime.now(UTC)
        if wanted.until_offset is not None:
            stops = {
                tp: min(s, wanted.until_offset) if s is not None else wanted.until_offset
                for tp, s in stops.items()
            }
        open_ = {tp for tp in tps if _before(starts[tp], stops[tp])}
        for tp in open_:
            consumer.seek(tp, starts[tp])  # type: ignore[arg-type]
        log.info(
            "replaying %s: %s",
            stream.topic,
            {tp.partition: (starts[tp], stops[tp]) for tp in sorted(open_)},
        )
        idle = 0
        while open_:
            fetched = await consumer.getmany(*open_, timeout_ms=1000, max_records=size)
            # Only a fetch that found nothing anywhere counts: a partition without records in
            # a busy fetch may just not have been fetched yet.
            idle = 0 if fetched else idle + 1
            batch: list[RawRecord] = []
            for tp in sorted(open_):
                messages = fetched.get(tp, [])
                stop = stops[tp]
                batch += [
                    RawRecord.from_message(m)
                    for m in messages
                    if (stop is None or m.offset < stop)
                    and wanted.admits(m.offset, m.timestamp)
                    and not _past(m.timestamp, until)
                ]
                if stop is not None:
                    # A known end: read to it, however long the broker takes (a slow fetch
                    # is not the end); the position also passes gaps in the offsets.
                    done = await consumer.position(tp) >= stop
                else:
                    done = idle >= IDLE_POLLS or bool(
                        messages and _past(messages[-1].timestamp, until)
                    )
                if done:
                    open_.discard(tp)
                    consumer.pause(tp)
            if batch:
                yield batch
    finally:
        await consumer.stop()


def _before(start: int | None, stop: int | None) -> bool:
    return start is not None and (stop is None or start < stop)


def _past(timestamp_ms: int, until: datetime | None) -> bool:
    """A fetch ending past ``until`` ends the partition's range: broker timestamps follow
    offsets (LogAppendTime, or producers' clocks close enough for a replay's purpose)."""
    return until is not None and timestamp_ms >= _ms(until)


async def _start_offsets(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition], wanted: TopicRange
) -> dict[TopicPartition, int | None]:
    begin = await consumer.beginning_offsets(tps)
    starts: dict[TopicPartition, int | None] = {tp: begin[tp] for tp in tps}
    if wanted.from_offset is not None:
        starts = {tp: max(begin[tp], wanted.from_offset) for tp in tps}
    if wanted.since is not None:
        found = await consumer.offsets_for_times({tp: _ms(wanted.since) for tp in tps})
        for tp in tps:
            hit = found.get(tp)
            # None: no record at or after --since on this partition.
            starts[tp] = None if hit is None else max(starts[tp] or 0, hit.offset)
    return starts


class Replayer:
    """Feeds batches to the stream's ingest handler and adds up what happened to them."""

    def __init__(self, settings: Settings, stream: Stream, clock: Clock | None = None) -> None:
        clock = clock or SystemClock()
        self.stream = stream
        self.report = ReplayReport()
        self.handler = IngestHandler.build(
            stream,
            settings.database_url,
            self._keep_dead_letters,
            PipelineMetrics(CollectorRegistry()),
            clock,
            ingest_bounds(stream.table, settings),
            summaries=settings.kpi_enabled,
        )

    async def _keep_dead_letters(self, dead: Sequence[DeadLetter]) -> None:
        """Dead letters of a replay are kept in the table (written with the batch), not
        published again to ``ioc.deadletter.v1``."""
        for d in dead[:5]:
            log.warning("refused %s:%s:%s: %s", d.source_topic, d.partition, d.offset, d.reason)

    async def feed(self, batch: Sequence[RawRecord]) -> None:
        result = await self.handler.handle(batch)
        self.report.read += len(batch)
        self.report.stored += result.inserted
        self.report.duplicates += result.duplicates
        self.report.dead_lettered += result.dead_lettered

    async def close(self) -> None:
        await self.handler.writer.close()
