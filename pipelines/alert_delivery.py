"""Delivering notifications: one queue and one task per receiver, results kept in storage.

A notification is already in the ``notifications`` outbox (written with the alert change that
caused it) before it gets here, so a crash loses nothing: the next evaluator sends whatever is
still pending. Each receiver has its own bounded queue and task, so a webhook retrying with
backoff for minutes never delays a page through Alertmanager. A delivery's outcome (sent, or a
permanent failure with its reason) is written back and counted per receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime

import aiohttp
import psycopg

from ioc.alerts.model import DeliveryResult, Notification
from ioc.alerts.receivers import Receiver
from ioc.clock import Clock
from ioc.metrics import AlertMetrics
from ioc.notify import Sender, sender_for
from ioc.storage.alert_store import record_delivery
from ioc.storage.writer import with_connection_defaults

log = logging.getLogger(__name__)

QUEUE_BOUND = 10_000  # per receiver; beyond it, notifications stay pending in the outbox


class Delivery:
    def __init__(
        self,
        receivers: Mapping[str, Receiver],
        database_url: str,
        metrics: AlertMetrics,
        clock: Clock,
    ) -> None:
        self.receivers = dict(receivers)
        self.database_url = database_url
        self.metrics = metrics
        self.clock = clock
        self._queues: dict[str, asyncio.Queue[Notification]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._senders: dict[str, Sender] = {}
        self._session: aiohttp.ClientSession | None = None
        self._conn: psycopg.AsyncConnection | None = None
        self._conn_lock = asyncio.Lock()
        self._queued: set[str] = set()  # ids queued or in flight, so a re-scan skips them
        self._transient: set[str] = set()  # re-sends: not in the outbox, nothing to record

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=60)
        )
        for name, receiver in self.receivers.items():
            self._senders[name] = sender_for(receiver, self._session)
            self._queues[name] = asyncio.Queue(QUEUE_BOUND)
            self._tasks.append(asyncio.create_task(self._drain(name), name=f"deliver-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for sender in self._senders.values():
            with contextlib.suppress(Exception):
                await sender.close()
        if self._session is not None:
            await self._session.close()
        if self._conn is not None and not self._conn.closed:
            await self._conn.close()

    def submit(self, notification: Notification, *, record: bool = True) -> bool:
        """Queue one notification; False if it stays in the outbox for later (queue full or
        receiver unknown — the latter is recorded as a failure by :meth:`drop_unknown`).
        ``record=False`` for a notification that is not in the outbox (a re-send)."""
        if notification.id in self._queued:
            return True
        queue = self._queues.get(notification.receiver)
        if queue is None or queue.full():
            return False
        self._queued.add(notification.id)
        if not record:
            self._transient.add(notification.id)
        queue.put_nowait(notification)
        return True

    async def drop_unknown(self, notification: Notification) -> None:
        """A pending notification for a receiver no longer configured: failed, kept, visible."""
        await self._record(
            notification,
            DeliveryResult(
                ok=False,
                attempts=0,
                permanent=True,
                error=f"receiver {notification.receiver!r} is not configured any more",
            ),
        )

    async def _drain(self, name: str) -> None:
        queue, sender = self._queues[name], self._senders[name]
        kind = self.receivers[name].kind
        while True:
            notification = await queue.get()
            try:
                result = await sender.send(notification)
            except Exception as exc:  # a sender bug must not stop this receiver's queue
                log.exception("sender %s failed unexpectedly", name)
                result = DeliveryResult(ok=False, attempts=1, permanent=True, error=repr(exc))
            now = self.clock.now()
            if result.ok:
                self.metrics.notifications_sent.labels(name, kind).inc()
                if notification.received_at is not None:
                    latency = (now - notification.received_at).total_seconds()
                    self.metrics.notification_latency.labels(kind).observe(max(latency, 0.0))
            else:
                self.metrics.notifications_failed.labels(name, kind).inc()
                log.warning(
                    "notification %s to %s failed for good after %d attempts: %s",
                    notification.id,
                    name,
                    result.attempts,
                    result.error,
                )
            if notification.id in self._transient:
                self._transient.discard(notification.id)
            else:
                await self._record(notification, result, now)
            self._queued.discard(notification.id)

    async def _record(
        self, notification: Notification, result: DeliveryResult, when: datetime | None = None
    ) -> None:
        """Write the outcome; retried until the database answers (the delivery happened)."""
        delay = 0.5
        while True:
            try:
                async with self._conn_lock:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(
                            with_connection_defaults(self.database_url), autocommit=True
                        )
                    await record_delivery(
                        self._conn, notification.id, result, when or self.clock.now()
                    )
                return
            except (psycopg.Error, OSError) as exc:
                log.warning("could not record delivery of %s: %s", notification.id, exc)
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                self._conn = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
