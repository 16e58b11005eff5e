"""Which notifications a set of alert changes causes, grouped per receiver. Pure.

- A new, unmuted alert notifies its route's receivers ("firing"); one that was muted is
  notified when the mute ends while it still fires. Receivers told once are not told again.
- Escalation notifies the route's ``escalate_to`` receivers ("escalated"); a raised severity
  is sent again ("firing") to those already told (Alertmanager, which keys alerts on their
  labels, keeps the old-severity copy until it expires, at most its resolve timeout).
- An acknowledgement is passed to the receivers that keep state (Alertmanager, webhooks), so
  a phone app or Alertmanager's UI shows who took it; mail is not sent for it.
- A resolution goes to exactly the receivers that were told the alert fired.

Changes of one cycle that go to the same receiver for the same reason and the same route
group are one notification: a burst of related alerts is one message, not fifty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from ioc.alerts.lifecycle import AlertBook
from ioc.alerts.model import Alert, AlertChange, AlertNotice, NoticeReason, Notification

STATEFUL_KINDS = frozenset({"alertmanager", "webhook"})  # told about acknowledgements

LinkFor = Callable[[Alert], str | None]


def plan_notifications(
    changes: Iterable[AlertChange],
    book: AlertBook,
    receiver_kinds: Mapping[str, str],
    now: datetime,
    new_id: Callable[[], str],
    link_for: LinkFor = lambda _: None,
) -> list[Notification]:
    """Notifications for ``changes``; records in ``book`` whom each open alert was told."""
    groups: dict[tuple[str, NoticeReason, str], list[tuple[AlertNotice, datetime | None]]] = {}

    def add(receiver: str, reason: NoticeReason, alert: Alert, change: AlertChange) -> None:
        if receiver not in receiver_kinds:
            return  # a receiver dropped from the configuration (reported at load time)
        key = (receiver, reason, alert.group_key)
        groups.setdefault(key, []).append(
            (AlertNotice.of(alert, link_for(alert)), change.received_at)
        )

    for change in changes:
        live = book.alerts.get(change.fingerprint)
        alert = live if live is not None and live.id == change.alert.id else change.alert
        route = book.route_of(alert)
        if change.kind == "resolved":
            for receiver in change.alert.notified:
                add(receiver, "resolved", change.alert, change)
            continue
        if live is None or live.id != change.alert.id or alert.muted:
            continue  # resolved later in the same cycle, or muted: nothing to say now
        if change.kind in ("fired", "unsilenced", "uninhibited", "unacknowledged"):
            targets = list(route.receivers) if route else []
            if route and alert.escalation_level > 0:
                targets += route.escalate_to
            for receiver in targets:
                if receiver not in alert.notified and receiver in receiver_kinds:
                    add(receiver, "firing", alert, change)
                    alert.notified = (*alert.notified, receiver)
        elif change.kind == "severity_raised":
            for receiver in alert.notified:
                add(receiver, "firing", alert, change)
        elif change.kind == "escalated" and route:
            for receiver in route.escalate_to:
                add(receiver, "escalated", alert, change)
                if receiver not in alert.notified and receiver in receiver_kinds:
                    alert.notified = (*alert.notified, receiver)
        elif change.kind == "acknowledged":
            for receiver in alert.notified:
                if receiver_kinds.get(receiver) in STATEFUL_KINDS:
                    add(receiver, "acknowledged", alert, change)

    out = []
    for (receiver, reason, group_key), items in groups.items():
        received = [r for _, r in items if r is not None]
        out.append(
            Notification(
                id=new_id(),
                receiver=receiver,
                reason=reason,
                group_key=group_key,
                alerts=tuple(n for n, _ in items),
                created_at=now,
                received_at=min(received) if received else None,
            )
        )
    return out
