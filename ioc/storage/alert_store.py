"""Alert state in PostgreSQL: occurrences, state changes, silences, the two outboxes and the
queue of people's actions. Only the alert evaluator writes alert state (one writer, no
conflicting updates); the API queues actions here and reads the result.

``save_cycle`` writes one evaluation cycle atomically: the alerts it touched, their state
changes (``alert_events``, also the outbox of ``ioc.alerts.v1``), the notifications it planned
(the ``notifications`` outbox) and the actions it applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from ioc.alerts.actions import ActionOutcome, QueuedAction
from ioc.alerts.model import Alert, AlertChange, DeliveryResult, Notification
from ioc.alerts.routing import Matcher, Silence

_alert_decoder = msgspec.json.Decoder(Alert)
_notification_decoder = msgspec.json.Decoder(Notification)


async def load_open_alerts(conn: psycopg.AsyncConnection) -> list[Alert]:
    cur = await conn.execute("SELECT doc::text FROM alerts WHERE state <> 'resolved'")
    return [_alert_decoder.decode(row[0]) for row in await cur.fetchall()]


async def load_silences(conn: psycopg.AsyncConnection, now: datetime) -> list[Silence]:
    """Silences not expired by hand and not over: active ones and those still to come."""
    cur = await conn.execute(
        "SELECT id, matchers, starts_at, ends_at, author, comment FROM silences"
        " WHERE expired_at IS NULL AND ends_at > %s",
        (now,),
    )
    return [
        Silence(
            id=sid,
            matchers=tuple(Matcher.parse(m) for m in matchers),
            starts_at=starts,
            ends_at=ends,
            author=author,
            comment=comment,
        )
        for sid, matchers, starts, ends, author, comment in await cur.fetchall()
    ]


MAINTENANCE_PREFIX = "maintenance-"


async def load_maintenance_silences(conn: psycopg.AsyncConnection, now: datetime) -> list[Silence]:
    """Declared maintenance windows (``ioc maintenance``) as silences of their service's alerts
    (every service's when the window names none): planned work pages nobody."""
    cur = await conn.execute(
        "SELECT id, service_id, starts_at, ends_at, author, comment FROM maintenance_windows"
        " WHERE ends_at > %s AND ends_at > starts_at",
        (now,),
    )
    return [
        Silence(
            id=f"{MAINTENANCE_PREFIX}{wid}",
            matchers=(
                Matcher("service_id", "=", service)
                if service
                else Matcher("service_id", "=~", ".+"),
            ),
            starts_at=starts,
            ends_at=ends,
            author=author,
            comment=comment or "maintenance window",
        )
        for wid, service, starts, ends, author, comment in await cur.fetchall()
    ]


_UPSERT_ALERT = """
INSERT INTO alerts (id, fingerprint, rule, state, severity, summary, labels, starts_at, ends_at,
    fired_at, updated_at, acknowledged_by, acknowledged_at, resolved_by, escalation_level,
    event_count, muted, doc)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET state = excluded.state, severity = excluded.severity,
    summary = excluded.summary, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
    fired_at = excluded.fired_at, updated_at = excluded.updated_at,
    acknowledged_by = excluded.acknowledged_by, acknowledged_at = excluded.acknowledged_at,
    resolved_by = excluded.resolved_by, escalation_level = excluded.escalation_level,
    event_count = excluded.event_count, muted = excluded.muted, doc = excluded.doc
"""


def _alert_params(a: Alert) -> tuple[object, ...]:
    return (
        a.id,
        a.fingerprint,
        a.rule,
        a.state,
        a.severity,
        a.summary,
        Jsonb(a.labels),
        a.starts_at,
        a.ends_at,
        a.fired_at,
        a.updated_at,
        a.acknowledged_by,
        a.acknowledged_at,
        a.resolved_by,
        a.escalation_level,
        a.event_count,
        a.muted,
        msgspec.json.encode(a).decode(),
    )


async def save_cycle(
    conn: psycopg.AsyncConnection,
    changes: Sequence[AlertChange],
    current: dict[str, Alert],
    notifications: Sequence[Notification],
    outcomes: Sequence[ActionOutcome] = (),
    silences_added: Sequence[Silence] = (),
    silences_expired: Sequence[tuple[str, str, datetime]] = (),
) -> None:
    """Write one cycle in one transaction (the caller opens it).

    ``current`` is the book's open alerts; each touched alert is written once, in its final
    state of the cycle (the open one, or the resolved copy). "updated" changes (more evidence)
    update the row but are not state changes: no ``alert_events`` row, no topic record.
    """
    final: dict[str, Alert] = {}
    for change in changes:
        live = current.get(change.fingerprint)
        final[change.alert.id] = (
            live if live is not None and live.id == change.alert.id else change.alert
        )
    async with conn.cursor() as cur:
        if final:
            await cur.executemany(_UPSERT_ALERT, [_alert_params(a) for a in final.values()])
        events = [c for c in changes if c.kind != "updated"]
        if events:
            await cur.executemany(
                "INSERT INTO alert_events (alert_id, fingerprint, kind, at, actor, comment, record)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)",
                [
                    (
                        c.alert.id,
                        c.fingerprint,
                        c.kind,
                        c.at,
                        c.actor,
                        c.comment,
                        msgspec.json.encode(c).decode(),
                    )
                    for c in events
                ],
            )
        if notifications:
            await cur.executemany(
                "INSERT INTO notifications (id, receiver, reason, group_key, payload, created_at)"
                " VALUES (%s, %s, %s, %s, %s::jsonb, %s)",
                [
                    (
                        n.id,
                        n.receiver,
                        n.reason,
                        n.group_key,
                        msgspec.json.encode(n).decode(),
                        n.created_at,
                    )
                    for n in notifications
                ],
            )
        for s in silences_added:
            await cur.execute(
                "INSERT INTO silences (id, matchers, starts_at, ends_at, author, comment)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    s.id,
                    Jsonb([str(m) for m in s.matchers]),
                    s.starts_at,
                    s.ends_at,
                    s.author,
                    s.comment,
                ),
            )
        for sid, user, when in silences_expired:
            await cur.execute(
                "UPDATE silences SET expired_at = %s, expired_by = %s"
                " WHERE id = %s AND expired_at IS NULL",
                (when, user, sid),
            )
        for o in outcomes:
            await cur.execute(
                "UPDATE alert_actions SET status = %s, result = %s, done_at = now()"
                " WHERE id = %s AND status = 'pending'",
                (o.status, Jsonb(o.result), o.id),
            )


async def claim_actions(conn: psycopg.AsyncConnection, limit: int = 100) -> list[QueuedAction]:
    """Pending actions, locked until the caller's transaction ends (the API's timeout waits
    on that lock, so an action is either applied or refused, never both)."""
    cur = await conn.execute(
        "SELECT id, action, target, user_name, comment, params FROM alert_actions"
        " WHERE status = 'pending' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    return [
        QueuedAction(id=i, action=a, target=t, user_name=u or "", comment=c, params=p or {})
        for i, a, t, u, c, p in await cur.fetchall()
    ]


async def pending_notifications(
    conn: psycopg.AsyncConnection, limit: int = 1000
) -> list[Notification]:
    cur = await conn.execute(
        "SELECT payload::text FROM notifications WHERE state = 'pending'"
        " ORDER BY created_at LIMIT %s",
        (limit,),
    )
    return [_notification_decoder.decode(r[0]) for r in await cur.fetchall()]


async def record_delivery(
    conn: psycopg.AsyncConnection, notification_id: str, result: DeliveryResult, when: datetime
) -> None:
    """Sent; failed for good (kept, with the reason, for people to see); or still pending
    after a transient failure (the attempts and the last error are kept meanwhile)."""
    state = "sent" if result.ok else "failed" if result.permanent else "pending"
    await conn.execute(
        "UPDATE notifications SET state = %s, attempts = attempts + %s, last_status = %s,"
        " last_error = %s, done_at = CASE WHEN %s = 'pending' THEN NULL ELSE %s END"
        " WHERE id = %s",
        (state, result.attempts, result.status, result.error, state, when, notification_id),
    )


async def unpublished_changes(
    conn: psycopg.AsyncConnection, limit: int = 1000
) -> list[tuple[int, str, bytes]]:
    """``(row id, key, record)`` of state changes not yet on ``ioc.alerts.v1``."""
    cur = await conn.execute(
        "SELECT id, fingerprint, record::text FROM alert_events WHERE NOT published"
        " ORDER BY id LIMIT %s",
        (limit,),
    )
    return [(i, fp, rec.encode()) for i, fp, rec in await cur.fetchall()]


async def mark_published(conn: psycopg.AsyncConnection, ids: Iterable[int]) -> None:
    await conn.execute("UPDATE alert_events SET published = true WHERE id = ANY(%s)", (list(ids),))
