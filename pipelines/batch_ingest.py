"""The high-volume ingest path: one batched consumer inside the Faust app.

Why not a Faust agent per event: Faust's per-message conductor caps a worker at a few
thousand events per second (measured in ``bench/ingest.py``), far below what Kafka and COPY
allow. So the three ingest topics are read with aiokafka's ``getmany`` in a task the Faust app
runs and stops; Faust agents and tables stay for the low-volume, stateful streams.

Offsets are committed explicitly, and only for records whose batch is stored: a batch is
handed to each stream's :class:`~pipelines.ingest.IngestHandler` (concurrently, one database
connection each), and the commit follows. A crash or a stop before the commit means the batch
is read again and deduplicated by the idempotent write. If the group rebalanced meanwhile the
commit fails; the new owner re-reads those records, with the same result.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    RebalanceInProgressError,
)

from ioc.batch import RawRecord
from ioc.broker import consumer_settings
from ioc.config import Settings
from pipelines.ingest import IngestHandler

log = logging.getLogger(__name__)


async def run_batch_ingest(settings: Settings, handlers: Mapping[str, IngestHandler]) -> None:
    """Consume the topics of ``handlers`` (keyed by topic) until cancelled."""
    consumer = AIOKafkaConsumer(
        *handlers,
        group_id=f"{settings.app_id}-ingest",
        max_poll_records=settings.batch_max,
        **consumer_settings(settings),
    )
    await consumer.start()
    log.info("batch ingest consuming %s", ", ".join(handlers))
    stored: dict[TopicPartition, int] = {}
    lag = asyncio.create_task(_report_lag(consumer, handlers, stored), name="consumer-lag")
    try:
        while True:
            batches = await consumer.getmany(
                timeout_ms=int(settings.batch_seconds * 1000), max_records=settings.batch_max
            )
            if not batches:
                continue
            by_topic: dict[str, list[RawRecord]] = defaultdict(list)
            offsets: dict[TopicPartition, int] = {}
            for tp, messages in batches.items():
                by_topic[tp.topic].extend(RawRecord.from_message(m) for m in messages)
                offsets[tp] = messages[-1].offset + 1
            try:
                await asyncio.gather(
                    *(handlers[topic].handle(records) for topic, records in by_topic.items())
                )
            except Exception:
                # The handlers retry every failure of a service; what reaches here is a bug.
                # Exit without committing, like a crash: the batch is read again on restart.
                log.critical(
                    "ingest failed unexpectedly; exiting without committing", exc_info=True
                )
                logging.shutdown()
                os._exit(70)
            stored.update(offsets)
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError, RebalanceInProgressError) as exc:
                log.warning(
                    "offset commit refused after a rebalance (%s); the new owner will "
                    "re-read and deduplicate those records",
                    exc,
                )
    finally:
        lag.cancel()
        await asyncio.gather(lag, return_exceptions=True)
        await consumer.stop()


LAG_SECONDS = 5.0


async def _report_lag(
    consumer: AIOKafkaConsumer,
    handlers: Mapping[str, IngestHandler],
    stored: dict[TopicPartition, int],
) -> None:
    """``ioc_consumer_lag{stream}`` every few seconds: the log end the fetcher last saw minus
    the offset after the last stored batch, over the partitions this worker owns.

    A task of its own, so the gauge keeps growing while a batch waits out a database outage;
    a partition not stored from yet counts from its committed offset.
    """
    while True:
        await asyncio.sleep(LAG_SECONDS)
        totals: dict[str, int] = dict.fromkeys(handlers, 0)
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is None or tp.topic not in handlers:
                continue
            done = stored.get(tp)
            if done is None:
                try:
                    done = await consumer.committed(tp)
                except KafkaError:
                    continue
                if done is None:
                    continue
                stored.setdefault(tp, done)
            totals[tp.topic] += max(0, end - done)
        for topic, behind in totals.items():
            handler = handlers[topic]
            handler.metrics.consumer_lag.labels(handler.stream.name).set(behind)
