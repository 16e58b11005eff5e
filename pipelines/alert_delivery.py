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
RETRY_INITIAL_SECONDS = 1.0  # a receiver that is down is retried with backoff up to
RETRY_MAX_SECONDS = 60.0  # a minute apart, for as long as it takes


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
        # Every receiver's series exist from the start at 0, so the first failure is an
        # increase Prometheus can see (IocNotificationFailed), not a series appearing at 1.
        for name, receiver in self.receivers.items():
            for counter in (
                metrics.notifications_sent,
                metrics.notifications_failed,
                metrics.notification_retries,
            ):
                counter.labels(name, receiver.kind)
        self.clock = clock
        self._queues: dict[str, asyncio.Queue[Notification]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._senders: dict[str, Sender] = {}
        self._session: aiohttp.ClientSession | None = None
        self._conn: psycopg.AsyncConnection | None = None
        self._conn_lock = asyncio.Lock()
        self._queued: set[str] = set()  # ids queued or in flight, so a re-scan skips them
        self._transient: set[str] = set()  # re-sends: not in the outbox, nothing to record
        self._finished: set[str] = set()  # done since the last outbox scan began

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

    def begin_scan(self) -> None:
        """Call before reading the outbox: a notification finished while the read runs is
        remembered, so the read's stale 'pending' copy of it is not sent twice."""
        self._finished.clear()

    def submit(self, notification: Notification, *, record: bool = True) -> bool:
        """Queue one notification; False if it stays in the outbox for later (queue full or
        receiver unknown — the latter is recorded as a failure by :meth:`drop_unknown`).
        ``record=False`` for a notification that is not in the outbox (a re-send)."""
        if notification.id in self._queued or notification.id in self._finished:
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
        """Send this receiver's notifications in order. A transient failure (receiver down,
        timeouts, 5xx after the sender's own retries) keeps the notification pending and is
        retried here with backoff, holding the queue: a later "resolved" must never overtake
        its "firing"."""
        queue = self._queues[name]
        while True:
            notification = await queue.get()
            delay = RETRY_INITIAL_SECONDS
            try:
                while True:
                    result = await self._send_once(name, notification)
                    if result.ok or result.permanent or notification.id in self._transient:
                        break  # a failed re-send is dropped: the next one is fresher
                    if notification.id not in self._transient:
                        await self._record(notification, result)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                if notification.id not in self._transient:
                    await self._record(notification, result)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one notification stop this receiver's queue
                log.exception("delivering %s to %s failed unexpectedly", notification.id, name)
            finally:
                self._transient.discard(notification.id)
                self._queued.discard(notification.id)
                self._finished.add(notification.id)

    async def _send_once(self, name: str, notification: Notification) -> DeliveryResult:
        kind = self.receivers[name].kind
        try:
            result = await self._senders[name].send(notification)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a sender bug: kept as a permanent failure, visible
            log.exception("sender %s failed unexpectedly", name)
            result = DeliveryResult(ok=False, attempts=1, permanent=True, error=repr(exc))
        if result.ok:
            self.metrics.notifications_sent.labels(name, kind).inc()
            if notification.received_at is not None:
                latency = (self.clock.now() - notification.received_at).total_seconds()
                self.metrics.notification_latency.labels(kind).observe(max(latency, 0.0))
        elif result.permanent:
            self.metrics.notifications_failed.labels(name, kind).inc()
            log.warning(
                "notification %s to %s failed for good after %d attempts: %s",
                notification.id,
                name,
                result.attempts,
                result.error,
            )
        else:
            self.metrics.notification_retries.labels(name, kind).inc()
        return result

    async def _record(
        self, notification: Notification, result: DeliveryResult, when: datetime | None = None
    ) -> None:
        """Write the outcome; retried until the database answers (the delivery happened).
        Should the process die first, the notification is still pending and is sent again
        (receivers drop the repeat by its ``X-IOC-Delivery`` id)."""
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
