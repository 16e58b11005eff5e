"""The vocabulary of alerting, shared by the rules, the lifecycle and the notifiers.

A rule's verdict about one fingerprint is a :class:`Signal` (firing or cleared, at an event
time). The lifecycle turns signals, user actions and the clock into :class:`Alert` state and
records each state change as an :class:`AlertChange`. What a receiver is sent is a
:class:`Notification` carrying :class:`AlertNotice` items. All are msgspec structs so that the
same object is stored, put on ``ioc.alerts.v1`` and posted to a webhook without a second shape.

Times are timezone-aware; the core never reads a clock of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import msgspec

from ioc.events import Severity

AlertState = Literal["firing", "acknowledged", "resolved"]
ChangeKind = Literal[
    "fired",  # a new alert (or one resolved before fired again)
    "updated",  # more evidence for an open alert; no notification
    "acknowledged",
    "unacknowledged",
    "escalated",
    "severity_raised",  # new evidence is more severe (burn-rate pair, event severity)
    "resolved",
    "silenced",
    "unsilenced",
    "inhibited",
    "uninhibited",
]
NoticeReason = Literal["firing", "escalated", "acknowledged", "resolved"]

EVIDENCE_CAP = 20  # event ids kept per alert: enough to follow, bounded in memory and rows


def fingerprint(rule: str, group: Mapping[str, str]) -> str:
    """Stable identity of an alert: the rule and its grouping labels, order-insensitive.

    The same rule over the same group always gives the same fingerprint, across restarts,
    workers and versions, so it deduplicates: fifty related events make one alert.
    """
    h = hashlib.sha256(rule.encode())
    for key in sorted(group):
        h.update(b"\x00" + key.encode() + b"\x01" + group[key].encode())
    return h.hexdigest()[:16]


class Signal(msgspec.Struct, frozen=True, kw_only=True):
    """A rule's verdict for one group at an event time.

    ``firing`` True says the condition holds (again, or still), False that it cleared.
    ``received_at`` is when the record that caused it was accepted (the broker timestamp), so
    the time from event to notification can be measured end to end.
    """

    rule: str
    group: dict[str, str]
    firing: bool
    at: datetime
    severity: Severity
    summary: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)  # rule's static labels
    evidence: tuple[str, ...] = ()
    value: float | None = None
    received_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.group)

    def all_labels(self) -> dict[str, str]:
        """Routing labels: static labels, the group, then alertname and severity (these win)."""
        return {**self.labels, **self.group, "alertname": self.rule, "severity": self.severity}


class Alert(msgspec.Struct, kw_only=True):
    """One alert's current state (mutable inside the lifecycle, copied out in changes).

    ``id`` names one occurrence: a fingerprint that resolves and fires again is a new alert
    with a new id (so time to acknowledge and to resolve are measured per occurrence), while
    the fingerprint stays the same.
    """

    id: str
    fingerprint: str
    rule: str
    labels: dict[str, str]
    severity: Severity
    summary: str
    state: AlertState
    starts_at: datetime  # event time the condition began
    updated_at: datetime  # last state change or evidence (clock time)
    fired_at: datetime  # clock time people were (or would be) told: escalation counts from here
    ends_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None  # None: resolved automatically
    escalation_level: int = 0
    event_count: int = 0  # firing verdicts folded in: a match rule's matching events
    last_event_at: datetime | None = None  # newest event time seen for it
    value: float | None = None
    evidence: tuple[str, ...] = ()
    silenced_by: tuple[str, ...] = ()  # silence ids
    inhibited_by: tuple[str, ...] = ()  # fingerprints of inhibiting alerts
    group_key: str = ""  # notification group (route + its group_by labels)
    notified: tuple[str, ...] = ()  # receivers told it fires: they are told when it resolves

    @property
    def open(self) -> bool:
        return self.state != "resolved"

    @property
    def muted(self) -> bool:
        """Silenced or inhibited: recorded and visible, but nobody is notified."""
        return bool(self.silenced_by or self.inhibited_by)

    def copy(self) -> Alert:
        """A snapshot for a change record (labels copied too: they are the one mutable
        field that a later change replaces)."""
        return msgspec.structs.replace(self, labels=dict(self.labels))


class AlertChange(msgspec.Struct, frozen=True, kw_only=True):
    """A state change: a record on ``ioc.alerts.v1`` and a row in ``alert_events``."""

    fingerprint: str
    kind: ChangeKind
    at: datetime  # clock time of the change
    alert: Alert  # the alert after the change
    actor: str | None = None  # user for manual actions, None for the pipeline
    comment: str | None = None
    received_at: datetime | None = None  # the triggering record's acceptance time, if any


class AlertNotice(msgspec.Struct, frozen=True, kw_only=True):
    """One alert as a receiver sees it (Alertmanager, webhook, mail)."""

    id: str
    fingerprint: str
    status: Literal["firing", "resolved"]
    state: AlertState
    rule: str
    severity: Severity
    summary: str
    labels: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    acknowledged_by: str | None = None
    escalation_level: int = 0
    event_count: int = 0
    value: float | None = None
    evidence: tuple[str, ...] = ()
    link: str | None = None  # where the evidence is shown (dashboard / API URL)

    @classmethod
    def of(cls, alert: Alert, link: str | None = None) -> AlertNotice:
        return cls(
            id=alert.id,
            fingerprint=alert.fingerprint,
            status="resolved" if alert.state == "resolved" else "firing",
            state=alert.state,
            rule=alert.rule,
            severity=alert.severity,
            summary=alert.summary,
            labels=dict(alert.labels),
            starts_at=alert.starts_at,
            ends_at=alert.ends_at,
            acknowledged_by=alert.acknowledged_by,
            escalation_level=alert.escalation_level,
            event_count=alert.event_count,
            value=alert.value,
            evidence=alert.evidence,
            link=link,
        )


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One message to one receiver about one group of alerts.

    ``id`` is unique per notification and is sent along (webhook header ``X-IOC-Delivery``) so
    a receiver can drop a retried duplicate.
    """

    id: str
    receiver: str
    reason: NoticeReason
    group_key: str
    alerts: tuple[AlertNotice, ...]
    created_at: datetime
    received_at: datetime | None = None  # earliest triggering record's acceptance time


class DeliveryResult(msgspec.Struct, frozen=True, kw_only=True):
    """How a delivery went. ``permanent`` failures are not retried again and are kept."""

    ok: bool
    attempts: int
    permanent: bool = False
    status: int | None = None  # HTTP status or SMTP reply code of the last attempt
    error: str | None = None
