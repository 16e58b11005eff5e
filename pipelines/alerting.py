"""The alert evaluator: rules in the stream, the lifecycle, its storage and its deliveries.

One evaluator per deployment: every worker runs this task and the one holding a PostgreSQL
advisory lock evaluates; the others wait and take over within seconds if it dies (the lock
goes with its session). One evaluator sees every partition, so a correlation across sources or
an absence of any service is judged on all the events, whatever the partition assignment.

A cycle: read what the security, uptime and KPI topics have (a short poll, so a critical event
is seen within ~100 ms), evaluate the rules, fold the signals and people's queued actions into
the :class:`~ioc.alerts.lifecycle.AlertBook`, plan notifications, write all of it in one
transaction (alerts, ``alert_events``, the ``notifications`` outbox, action outcomes), then
commit the offsets, hand the notifications to :mod:`pipelines.alert_delivery` and put the state
changes on ``ioc.alerts.v1``. A crash anywhere replays from the last committed offsets; the
rules ignore events they have seen, and the outboxes keep what was not sent yet.

On taking over, the evaluator loads the open alerts and silences, takes every partition of
its input topics (it is the only consumer of its group) from the committed offsets, and warms
the rules up from the stored events of their look-back that lie below those offsets (the
previous evaluator acted on them); what lies beyond comes from Kafka and is evaluated as new.
Then the rules adopt the open alerts, so each clears the normal way when its condition is
found false. A partition never committed starts at its end: a first start does not page
about last month's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from ioc.alerts.actions import apply_actions
from ioc.alerts.evaluate import RuleEngine
from ioc.alerts.lifecycle import AlertBook
from ioc.alerts.model import (
    Alert,
    AlertChange,
    AlertNotice,
    Notification,
    Signal,
    fingerprint,
)
from ioc.alerts.notices import plan_notifications
from ioc.alerts.rules import AlertConfig
from ioc.broker import consumer_settings
from ioc.clock import Clock
from ioc.config import Settings
from ioc.events import SecurityEvent, UptimeEvent
from ioc.kpi.snapshot import KpiRow
from ioc.metrics import AlertMetrics
from ioc.storage import alert_store
from ioc.storage.writer import with_connection_defaults
from ioc.streams import KPI_TOPIC, SECURITY, UPTIME
from pipelines.alert_delivery import Delivery

log = logging.getLogger(__name__)

ALERT_LOCK = 0x10C_0005
POLL_MS = 100  # the longest a new record waits before the rules see it
TICK_SECONDS = 1.0  # clock-driven rules (absence, expiry, escalation) and silences
ACTION_POLL_SECONDS = 0.2  # how often queued actions are looked for
RESEND_SECONDS = 60.0  # Alertmanager forgets alerts not re-sent (see ioc.notify.alertmanager)
MAINTENANCE_SCAN_SECONDS = 10.0  # declared maintenance windows become silences within this
OUTBOX_SCAN_SECONDS = 30.0  # pending notifications a full queue could not take, sent later
WARM_UP_ROWS = 200_000  # per stream: bounded start-up time
INGEST_WAIT_SECONDS = 60.0  # at takeover, for ingest to store what the last evaluator saw

SendRecords = Callable[[Sequence[tuple[bytes, bytes]]], Awaitable[None]]


def _new_id() -> str:
    return str(uuid.uuid4())


class AlertEvaluator:
    def __init__(
        self,
        settings: Settings,
        config: AlertConfig,
        metrics: AlertMetrics,
        clock: Clock,
        send_records: SendRecords,
    ) -> None:
        self.settings = settings
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.send_records = send_records
        self.receiver_kinds = {n: r.kind for n, r in config.receivers.items()}
        self._security = msgspec.json.Decoder(SecurityEvent)
        self._uptime = msgspec.json.Decoder(UptimeEvent)
        self._kpi = msgspec.json.Decoder(KpiRow)
        self.book: AlertBook | None = None
        self.engine: RuleEngine | None = None

    def link_for(self, alert: Alert) -> str | None:
        base = self.settings.alert_link_base
        return f"{base.rstrip('/')}/v1/alerts/{alert.id}" if base else None

    async def run(self) -> None:
        """Evaluate while this worker leads; on any service failure, start over."""
        delay = 1.0
        while True:
            began = time.monotonic()
            try:
                await self._lead()
            except asyncio.CancelledError:
                log.info("alert evaluator stopping")
                self.metrics.leader.set(0)
                raise
            except (psycopg.Error, OSError, KafkaError) as exc:
                log.warning("alert evaluator stopped (%s); retrying in %.0f s", exc, delay)
            except Exception:
                log.exception("alert evaluator failed; retrying")
            self.metrics.leader.set(0)
            if time.monotonic() - began > 60:
                delay = 1.0  # it led for a while: this is a new failure, not the same one
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _lead(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            with_connection_defaults(self.settings.database_url), autocommit=True
        ) as conn:
            await _wait_for_lock(conn)
            log.info("evaluating alert rules from this worker (backend %s)", conn.info.backend_pid)
            now = self.clock.now()
            book = AlertBook(
                self.config.routes,
                self.config.inhibit,
                alerts=await alert_store.load_open_alerts(conn),
                silences=[
                    *await alert_store.load_silences(conn, now),
                    *await alert_store.load_maintenance_silences(conn, now),
                ],
                new_id=_new_id,
            )
            engine = RuleEngine(self.config)
            consumer = AIOKafkaConsumer(
                group_id=f"{self.settings.app_id}-alerts",
                fetch_max_wait_ms=POLL_MS,
                max_poll_records=5000,
                **consumer_settings(self.settings),
            )
            delivery = Delivery(
                self.config.receivers, self.settings.database_url, self.metrics, self.clock
            )
            try:
                await consumer.start()
                boundaries = await self._take_positions(consumer)
                await self._wait_for_ingest(boundaries)
                await self._warm_up(conn, engine, now, boundaries)
                adopted = self._adopt(book, engine, now)  # the loop's first tick follows
                self.book, self.engine = book, engine
                self.metrics.leader.set(1)  # from here on, every new record is evaluated
                await delivery.start()
                await self._cycle(conn, adopted, book, delivery, now)
                await self._resume_outboxes(conn, delivery)
                await self._loop(conn, consumer, book, engine, delivery)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                await delivery.stop()

    async def _take_positions(self, consumer: AIOKafkaConsumer) -> dict[str, list[int]]:
        """Assign every partition of the input topics to this (the only) evaluator and start
        each where the previous one committed; a partition never committed starts at its end
        (the stored events before it are replayed from the database instead, so a first start
        does not page about last month). Returns the start offsets per topic and partition:
        stored events below them were evaluated before; the rest come from Kafka."""
        await consumer.topics()  # metadata
        assigned: list[TopicPartition] = []
        for topic in (SECURITY.topic, UPTIME.topic, KPI_TOPIC):
            partitions = consumer.partitions_for_topic(topic) or set()
            assigned += [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        starts: dict[str, list[int]] = {}
        for tp in assigned:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_end(tp)
                position = await consumer.position(tp)
            else:
                consumer.seek(tp, committed)
                position = committed
            row = starts.setdefault(tp.topic, [])
            row += [0] * (tp.partition + 1 - len(row))
            row[tp.partition] = position
        return starts

    async def _wait_for_ingest(self, starts: dict[str, list[int]]) -> None:
        """Until ingest has stored what the previous evaluator saw: the warm-up reads it from
        the database, and Kafka will not deliver it again. Ingest commits its offsets only
        after the rows (or their dead letters) are committed, so its committed offsets tell.
        Bounded: after ``INGEST_WAIT_SECONDS`` the evaluator starts anyway, and says so."""
        group = (
            f"{self.settings.app_id}-ingest"
            if self.settings.ingest_engine == "batch"
            else self.settings.app_id
        )
        probe = AIOKafkaConsumer(group_id=group, **consumer_settings(self.settings))
        await probe.start()
        try:
            deadline = time.monotonic() + INGEST_WAIT_SECONDS
            behind: list[str] = []
            while True:
                behind = []
                for topic in (SECURITY.topic, UPTIME.topic):
                    for partition, start in enumerate(starts.get(topic, [])):
                        if start == 0:
                            continue
                        stored = await probe.committed(TopicPartition(topic, partition))
                        if stored is None or stored < start:
                            behind.append(f"{topic}[{partition}] {stored or 0} < {start}")
                if not behind or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            if behind:
                log.warning(
                    "ingest is still behind the alert evaluator's position (%s); rules start "
                    "without those events",
                    ", ".join(behind),
                )
        finally:
            await probe.stop()

    async def _warm_up(
        self,
        conn: psycopg.AsyncConnection,
        engine: RuleEngine,
        now: datetime,
        starts: dict[str, list[int]],
    ) -> None:
        """Feed the rules the stored events of their look-back that a previous evaluator
        already saw (below its committed offsets), in event-time order. Their verdicts were
        acted on then, so the signals are dropped; only the rules' state is rebuilt. Events
        at or past the committed offsets come from Kafka and are evaluated as new."""
        started = time.perf_counter()
        fed = 0
        for table, topic, decoder, look_back in (
            ("uptime_checks", UPTIME.topic, self._uptime, engine.look_back("uptime")),
            ("security_events", SECURITY.topic, self._security, engine.look_back("security")),
        ):
            if look_back <= timedelta(0):
                continue
            # The newest rows of the look-back, streamed (a server-side cursor keeps memory
            # flat), oldest first.
            query = (
                f"SELECT row_to_json(t)::text FROM (SELECT * FROM {table}"
                " WHERE event_time >= %s AND (kafka_partition IS NULL OR kafka_offset <"
                " coalesce((%s::bigint[])[kafka_partition + 1], kafka_offset + 1))"
                " ORDER BY event_time DESC LIMIT %s) t ORDER BY t.event_time"
            )
            params = (now - look_back, starts.get(topic, []), WARM_UP_ROWS)
            async with conn.transaction(), conn.cursor(f"warm_{table}") as stream:
                await stream.execute(query, params)
                async for (doc,) in stream:
                    engine.observe(decoder.decode(_event_json(doc)))
                    fed += 1
        cur = await conn.execute('SELECT taken_at, scope, key, period, "values" FROM kpi_current')
        rows = [KpiRow(t, s, k, p, v) for t, s, k, p, v in await cur.fetchall()]
        if rows:
            engine.observe_kpis(rows, now)
        log.info(
            "alert rules warmed up from %d stored events and %d KPI rows in %.1f s",
            fed,
            len(rows),
            time.perf_counter() - started,
        )

    def _adopt(self, book: AlertBook, engine: RuleEngine, now: datetime) -> list[AlertChange]:
        """Make the rules hold every open alert as firing, so each clears the normal way when
        its condition is found false; alerts of rules no longer in the files are resolved."""
        changes: list[AlertChange] = []
        for alert in list(book.alerts.values()):
            group = engine.group_of(alert.rule, alert.labels)
            if group is not None and fingerprint(alert.rule, group) != alert.fingerprint:
                group = None  # the rule's grouping changed: this alert can never clear
            since = alert.last_event_at or alert.starts_at
            if group is None or not engine.adopt(alert.rule, group, since, now):
                changes += book.resolve(
                    alert.fingerprint, "ioc", "its rule or grouping is no longer in the files", now
                )
        return changes

    async def _cycle(
        self,
        conn: psycopg.AsyncConnection,
        changes: list[AlertChange],
        book: AlertBook,
        delivery: Delivery,
        now: datetime,
    ) -> None:
        """Record changes made outside the stream (at takeover) like any cycle's."""
        if not changes:
            return
        notifications = plan_notifications(
            changes, book, self.receiver_kinds, now, _new_id, self.link_for
        )
        async with conn.transaction():
            await alert_store.save_cycle(conn, changes, book.alerts, notifications)
        for n in notifications:
            delivery.submit(n)
        self._count(changes, book)
        await self._publish(conn)

    async def _follow_maintenance(
        self, conn: psycopg.AsyncConnection, book: AlertBook
    ) -> list[AlertChange]:
        """Mirror the declared maintenance windows as silences: new ones mute, ended or
        withdrawn ones (``ioc maintenance end``) stop muting, moved ones are replaced."""
        now = self.clock.now()
        wanted = {s.id: s for s in await alert_store.load_maintenance_silences(conn, now)}
        changes: list[AlertChange] = []
        for sid, silence in list(book.silences.items()):
            if sid.startswith(alert_store.MAINTENANCE_PREFIX) and wanted.get(sid) != silence:
                changes += book.expire_silence(sid, "ioc", now, "maintenance window changed")
        for sid, silence in wanted.items():
            if sid not in book.silences:
                changes += book.add_silence(silence, now)
        return changes

    async def _resume_outboxes(self, conn: psycopg.AsyncConnection, delivery: Delivery) -> None:
        """What is in the outboxes and not on its way: a previous evaluator's leftovers, or
        notifications a full receiver queue could not take. Queued ones are skipped."""
        delivery.begin_scan()
        for notification in await alert_store.pending_notifications(conn):
            if notification.receiver not in self.config.receivers:
                await delivery.drop_unknown(notification)
            else:
                delivery.submit(notification)
        await self._publish(conn)

    async def _loop(
        self,
        conn: psycopg.AsyncConnection,
        consumer: AIOKafkaConsumer,
        book: AlertBook,
        engine: RuleEngine,
        delivery: Delivery,
    ) -> None:
        last_tick = last_actions = last_resend = 0.0
        last_scan = last_maintenance = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=5000)
            started = time.perf_counter()
            now = self.clock.now()
            signals: list[Signal] = []
            kpi_rows: list[KpiRow] = []
            offsets: dict[TopicPartition, int] = {}
            for tp, messages in batches.items():
                offsets[tp] = messages[-1].offset + 1
                for m in messages:
                    signals += self._observe(tp.topic, m.value, m.timestamp, engine, kpi_rows)
            if kpi_rows:
                signals += engine.observe_kpis(kpi_rows, now)
            changes: list[AlertChange] = []
            mono = time.monotonic()
            if mono - last_tick >= TICK_SECONDS:
                last_tick = mono
                signals += engine.tick(now)
                changes += book.tick(now)
            for signal in signals:
                changes += book.apply(signal, now)
            async with conn.transaction():
                applied = None
                if mono - last_actions >= ACTION_POLL_SECONDS:
                    last_actions = mono
                    actions = await alert_store.claim_actions(conn)
                    if actions:
                        applied = apply_actions(book, actions, now, _new_id)
                        changes += applied.changes
                        for o, a in zip(applied.outcomes, actions, strict=True):
                            self.metrics.actions.labels(a.action, o.status).inc()
                if not changes and applied is None:
                    notifications: list[Notification] = []
                else:
                    notifications = plan_notifications(
                        changes, book, self.receiver_kinds, now, _new_id, self.link_for
                    )
                    await alert_store.save_cycle(
                        conn,
                        changes,
                        book.alerts,
                        notifications,
                        applied.outcomes if applied else (),
                        applied.silences_added if applied else (),
                        applied.silences_expired if applied else (),
                    )
            if offsets:
                await consumer.commit(offsets)
            for n in notifications:
                delivery.submit(n)
            if changes:
                self._count(changes, book)
                await self._publish(conn)
                self.metrics.cycle_seconds.observe(time.perf_counter() - started)
            if mono - last_resend >= RESEND_SECONDS:
                last_resend = mono
                self._resend(book, delivery, now)
            if mono - last_maintenance >= MAINTENANCE_SCAN_SECONDS:
                last_maintenance = mono
                await self._cycle(
                    conn, await self._follow_maintenance(conn, book), book, delivery, now
                )
            if mono - last_scan >= OUTBOX_SCAN_SECONDS:
                last_scan = mono
                await self._resume_outboxes(conn, delivery)

    def _observe(
        self,
        topic: str,
        value: bytes | None,
        timestamp_ms: int | None,
        engine: RuleEngine,
        kpi_rows: list[KpiRow],
    ) -> list[Signal]:
        """One record into the rules; a record that does not decode is ingest's business
        (it dead-letters it), so here it is skipped."""
        if not value:
            return []
        try:
            if topic == KPI_TOPIC:
                kpi_rows.append(self._kpi.decode(value))
                return []
            decoder = self._security if topic == SECURITY.topic else self._uptime
            event = decoder.decode(value)
        except msgspec.DecodeError:
            return []
        received = (
            datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
            if timestamp_ms is not None and timestamp_ms > 0
            else None
        )
        self.metrics.events.labels("security" if topic == SECURITY.topic else "uptime").inc()
        return engine.observe(event, received)

    async def _publish(self, conn: psycopg.AsyncConnection) -> None:
        """Put recorded state changes on ``ioc.alerts.v1`` (the outbox, in order)."""
        while True:
            pending = await alert_store.unpublished_changes(conn)
            if not pending:
                return
            await self.send_records([(key.encode(), record) for _, key, record in pending])
            await alert_store.mark_published(conn, [i for i, _, _ in pending])

    def _count(self, changes: Sequence[AlertChange], book: AlertBook) -> None:
        for c in changes:
            if c.kind != "updated":
                self.metrics.changes.labels(c.kind).inc()
            if c.kind == "fired":
                self.metrics.fired.labels(c.alert.rule, c.alert.severity).inc()
        by_severity: dict[str, int] = dict.fromkeys(
            ("info", "low", "medium", "high", "critical"), 0
        )
        for a in book.alerts.values():
            by_severity[a.severity] = by_severity.get(a.severity, 0) + 1
        for severity, n in by_severity.items():
            self.metrics.open.labels(severity).set(n)

    def _resend(self, book: AlertBook, delivery: Delivery, now: datetime) -> None:
        """Re-send open, unmuted alerts to the Alertmanagers that were told, as Prometheus
        does, so Alertmanager keeps them while they last (not recorded: nothing changed)."""
        for name, kind in self.receiver_kinds.items():
            if kind != "alertmanager":
                continue
            alerts = [a for a in book.alerts.values() if name in a.notified and not a.muted]
            if alerts:
                delivery.submit(
                    Notification(
                        id=_new_id(),
                        receiver=name,
                        reason="firing",
                        group_key="resend",
                        alerts=tuple(AlertNotice.of(a, self.link_for(a)) for a in alerts),
                        created_at=now,
                    ),
                    record=False,
                )


async def _wait_for_lock(conn: psycopg.AsyncConnection, every: float = 2.0) -> None:
    """Until this session holds the evaluator lock (a polite poll: a waiting worker must stay
    able to notice its database connection dying)."""
    while True:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (ALERT_LOCK,))
        row = await cur.fetchone()
        if row and row[0]:
            return
        await asyncio.sleep(every)


def _event_json(row_json: str) -> bytes:
    """A stored row as the event's JSON: storage-only columns dropped, nulls left out."""
    doc = msgspec.json.decode(row_json)
    for col in ("kafka_partition", "kafka_offset", "ingested_at", "severity_rank"):
        doc.pop(col, None)
    return msgspec.json.encode({k: v for k, v in doc.items() if v is not None})
