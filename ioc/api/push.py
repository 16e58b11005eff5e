"""What the HTTP push API and the syslog listener share: who is pushing, whether they may,
and getting their accepted events acknowledged by the broker.

- :class:`IntegrationRegistry` keeps every valid token's integration in memory, reloaded on
  ``NOTIFY ioc_integrations`` (and every 30 s), so authentication costs a hash and a dict
  lookup and keeps working through a database outage with what it last knew.
- :class:`BrokerLink` owns the producer; ``ready`` is false until the broker answered a
  metadata request in the last few seconds, which is what the readiness endpoint reports.
- :class:`PushService` takes a batch of items for one integration: rate limit, read, send,
  count, audit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg_pool import AsyncConnectionPool

from ioc.api import DeniedAuditBound
from ioc.broker import producer_settings
from ioc.clock import Clock, SystemClock
from ioc.config import Settings
from ioc.gateway.integrations import Integration
from ioc.gateway.items import Accepted, ItemReader, Outcome, Rejected
from ioc.gateway.ratelimit import TokenBucket
from ioc.storage.alert_users import hash_token
from ioc.storage.integrations import CHANNEL, AuditRow, load_active, plausible_token, write_audit
from ioc.storage.tables import ingest_bounds
from ioc.storage.writer import with_connection_defaults
from ioc.streams import BY_NAME

log = logging.getLogger(__name__)

RELOAD_SECONDS = 30.0
PROBE_SECONDS = 2.0
READY_WINDOW = 6.0  # a broker that answered this recently counts as reachable
AUDIT_QUEUE_MAX = 2000


# -- metrics -----------------------------------------------------------------------------


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "ioc_gateway_requests",
            "Push requests by stream, integration (- when unauthenticated) and HTTP status.",
            ["stream", "integration", "status"],
            registry=registry,
        )
        self.items = Counter(
            "ioc_gateway_items",
            "Pushed items by stream, integration and outcome (accepted, or the rejection kind).",
            ["stream", "integration", "outcome"],
            registry=registry,
        )
        self.events = Counter(
            "ioc_gateway_events_produced",
            "Events the broker acknowledged, by stream.",
            ["stream"],
            registry=registry,
        )
        self.latency = Histogram(
            "ioc_gateway_request_seconds",
            "Push request time, from the body read to the answer, by stream.",
            ["stream"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.broker_ready = Gauge(
            "ioc_gateway_broker_ready",
            "1 while the broker answered within the last few seconds.",
            registry=registry,
        )
        self.integrations = Gauge(
            "ioc_gateway_integrations",
            "Active integrations known to this gateway.",
            registry=registry,
        )
        self.syslog = Counter(
            "ioc_gateway_syslog_messages",
            "Syslog messages by transport and outcome (accepted, a rejection kind, unknown_sender,"
            " rate_limited and overloaded: dropped UDP messages; bad_framing: closed TCP"
            " connections; throttled: TCP reads held back for the rate).",
            ["transport", "outcome"],
            registry=registry,
        )
        self.audit_dropped = Counter(
            "ioc_gateway_audit_unwritten",
            "Refusals past the audit bound (or while the database was away): counted only.",
            registry=registry,
        )


# -- integrations ------------------------------------------------------------------------


class IntegrationRegistry:
    """Every valid token's integration, kept current from the database."""

    def __init__(self, database_url: str, metrics: GatewayMetrics | None = None) -> None:
        self.database_url = database_url
        self.metrics = metrics
        self.by_token: dict[str, Integration] = {}
        self.grace_ends: dict[str, datetime] = {}
        self.integrations: list[Integration] = []
        self.loaded = asyncio.Event()

    def authenticate(self, token: str) -> Integration | None:
        if not plausible_token(token):
            return None
        digest = hash_token(token)
        ends = self.grace_ends.get(digest)
        if ends is not None and ends <= datetime.now(UTC):
            return None
        return self.by_token.get(digest)

    async def reload(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.by_token, self.grace_ends = await load_active(conn)
        self.integrations = list({i.name: i for i in self.by_token.values()}.values())
        self.loaded.set()
        if self.metrics:
            self.metrics.integrations.set(len(self.integrations))

    async def run(self) -> None:
        """Load, then follow changes; on a lost connection keep what is known and retry."""
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    with_connection_defaults(self.database_url), autocommit=True
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self.reload(conn)
                    while True:
                        # A notice, or RELOAD_SECONDS without one: either way, reload.
                        async for _ in conn.notifies(timeout=RELOAD_SECONDS, stop_after=1):
                            pass
                        await self.reload(conn)
            except psycopg.Error as exc:
                log.warning("integrations: database unavailable (%s); retrying in 2 s", exc)
                await asyncio.sleep(2.0)


# -- broker ------------------------------------------------------------------------------


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time: nothing of the request is known stored."""


def gateway_producer_settings(settings: Settings) -> dict[str, Any]:
    """The pipeline's producer settings (acks from all replicas), tuned for whole requests:
    a request's records are all queued before any is awaited, so lingering only delays its
    last batch, and batches of 256 KiB carry a 1,000-event push in one batch per partition
    rather than twenty."""
    return {**producer_settings(settings), "linger_ms": 0, "max_batch_size": 256 * 1024}


class BrokerLink:
    """The producer, started and probed in the background so the gateway runs (and says it
    is not ready) while the broker is down."""

    def __init__(self, settings: Settings, metrics: GatewayMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.producer: AIOKafkaProducer | None = None
        self.last_ok = -1e9
        self.problem: str | None = "not connected yet"

    @property
    def ready(self) -> bool:
        return self.producer is not None and time.monotonic() - self.last_ok < READY_WINDOW

    async def run(self) -> None:
        while True:
            try:
                if self.producer is None:
                    producer = AIOKafkaProducer(**gateway_producer_settings(self.settings))
                    try:
                        await asyncio.wait_for(producer.start(), 10)
                    except BaseException:
                        with contextlib.suppress(Exception):
                            await producer.stop()
                        raise
                    self.producer = producer
                await asyncio.wait_for(self.producer.client.fetch_all_metadata(), PROBE_SECONDS)
                self.last_ok, self.problem = time.monotonic(), None
            except (KafkaError, OSError, TimeoutError) as exc:
                self.problem = f"broker unreachable: {type(exc).__name__}: {exc}"
                log.warning("%s", self.problem)
            if self.metrics:
                self.metrics.broker_ready.set(1 if self.ready else 0)
            await asyncio.sleep(PROBE_SECONDS)

    async def send(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Send and wait for every acknowledgement, or raise BrokerUnavailable."""
        producer = self.producer
        if producer is None or not self.ready:
            raise BrokerUnavailable(self.problem or "broker unreachable")
        try:
            async with asyncio.timeout(self.settings.gateway_ack_timeout_seconds):
                futures = [await producer.send(topic, key=k, value=v) for k, v in records]
                if futures:
                    await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            self.last_ok = -1e9  # not ready until the next probe succeeds
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None


# -- audit -------------------------------------------------------------------------------


class AuditWriter:
    """Refusals written in the background, bounded per key and minute, never blocking a
    request and never failing one."""

    def __init__(self, database_url: str, metrics: GatewayMetrics) -> None:
        self.database_url = database_url
        self.metrics = metrics
        self.queue: asyncio.Queue[AuditRow] = asyncio.Queue(AUDIT_QUEUE_MAX)
        self.bound = DeniedAuditBound(per_remote=20, total=1200)
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None

    def add(self, row: AuditRow, bound_key: str | None) -> None:
        if not self.bound.admit(bound_key):
            self.metrics.audit_dropped.inc()
            return
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            self.metrics.audit_dropped.inc()

    async def run(self) -> None:
        while True:
            rows = [await self.queue.get()]
            while not self.queue.empty() and len(rows) < 500:
                rows.append(self.queue.get_nowait())
            try:
                async with await psycopg.AsyncConnection.connect(
                    with_connection_defaults(self.database_url), autocommit=True
                ) as conn:
                    await write_audit(conn, rows)
            except psycopg.Error as exc:
                log.warning("could not write %d gateway audit rows: %s", len(rows), exc)
                self.metrics.audit_dropped.inc(len(rows))
            await asyncio.sleep(0.5)  # gather the next rows into one write


# -- pushing -----------------------------------------------------------------------------


class Refused(Exception):
    """A request refused as a whole, with its HTTP status."""

    def __init__(
        self, status: int, error: str, detail: Any = None, retry_after: int | None = None
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.detail, self.retry_after = status, error, detail, retry_after


@dataclass
class PushResult:
    outcomes: list[Outcome]
    accepted: int = 0
    rejected: int = 0
    events: int = 0
    rejections: list[Rejected] = field(default_factory=list)


class PushService:
    def __init__(
        self,
        settings: Settings,
        registry: IntegrationRegistry,
        broker: BrokerLink,
        metrics: GatewayMetrics,
        audit: AuditWriter,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.broker = broker
        self.metrics = metrics
        self.audit = audit
        self.clock = clock or SystemClock()
        self.buckets: dict[str, TokenBucket] = {}
        self._readers: dict[tuple[str, str], ItemReader] = {}

    def reader(self, stream: str, fmt: str) -> ItemReader:
        reader = self._readers.get((stream, fmt))
        if reader is None:
            s = BY_NAME[stream]
            bounds = ingest_bounds(s.table, self.settings)
            reader = self._readers[(stream, fmt)] = ItemReader(s, fmt, self.clock, bounds)
        return reader

    def bucket(self, integ: Integration) -> TokenBucket:
        b = self.buckets.get(integ.name)
        if b is None:
            b = self.buckets[integ.name] = TokenBucket(integ.rate, integ.burst)
        elif (b.rate, b.burst) != (integ.rate, integ.burst):
            b.reconfigure(integ.rate, integ.burst)
        return b

    def audit_rejections(
        self,
        integ: Integration,
        result: PushResult,
        *,
        transport: str,
        remote: str | None,
        target: str,
        status: int | None,
    ) -> None:
        """One audit row for a push with rejected items: how many, and the first five."""
        first = [
            {"index": r.index, "error": r.kind, "reason": r.reason[:300], "pointer": r.pointer}
            for r in result.rejections[:5]
        ]
        row = AuditRow(
            integ.name,
            remote,
            transport,
            target,
            status,
            "items_rejected",
            f"{result.rejected} of {result.accepted + result.rejected} items rejected",
            {"rejected": result.rejected, "first": first},
        )
        self.audit.add(row, integ.name)

    def take_tokens(self, integ: Integration, n: int) -> float:
        """0 when admitted, else seconds to wait (inf: larger than the burst)."""
        return self.bucket(integ).take(n)

    async def push(
        self,
        integ: Integration,
        stream: str,
        fmt: str,
        items: Sequence[tuple[int, bytes]],
        received_at: datetime | None = None,
    ) -> PushResult:
        """Read the items and get the accepted ones acknowledged; raises BrokerUnavailable."""
        outcomes = self.reader(stream, fmt).read(items, integ, received_at)
        result = PushResult(outcomes)
        records: list[tuple[bytes, bytes]] = []
        for o in outcomes:
            if isinstance(o, Accepted):
                result.accepted += 1
                records.extend((r.key, r.value) for r in o.records)
            else:
                result.rejected += 1
                result.rejections.append(o)
        result.events = len(records)
        if records:
            await self.broker.send(BY_NAME[stream].topic, records)
            self.metrics.events.labels(stream).inc(len(records))
        count = self.metrics.items.labels
        if result.accepted:
            count(stream, integ.name, "accepted").inc(result.accepted)
        for r in result.rejections:
            count(stream, integ.name, r.kind).inc()
        return result
