"""The alert lifecycle: firing → acknowledged → resolved, with escalation, silences and
inhibition. Pure: every method takes the time it acts at and returns the changes it made.

- **Deduplication.** One open alert per fingerprint (rule + grouping labels). A firing signal
  for an open fingerprint adds evidence and counts the event; it does not notify again,
  unless it is more severe (``severity_raised``: the receivers told before are told again).
- **Resolution.** A cleared signal resolves the alert (``resolved_by`` None); a person may
  resolve it too. A resolved fingerprint that fires again is a new occurrence (new ``id``).
- **Escalation.** An alert still ``firing`` (nobody acknowledged) ``escalate_after`` after it
  opened (or after a silence or inhibition muting it ended) is escalated once to its route's
  ``escalate_to`` receivers. Acknowledging stops it.
- **Silences** mute matching alerts while active; **inhibition** mutes alerts that an open
  alert inhibits (Alertmanager's source/target/equal). Muted alerts are kept, recorded and
  shown; they are not notified, and when the mute ends while they still fire, they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from ioc.alerts.model import EVIDENCE_CAP, Alert, AlertChange, ChangeKind, Signal
from ioc.alerts.routing import InhibitRule, Route, Silence, routes_for
from ioc.events import SEVERITY_RANK


class AlertActionError(ValueError):
    """A user action that cannot apply (unknown alert, already resolved…); says why."""


def _new_id() -> str:
    return str(uuid.uuid4())


class AlertBook:
    """The open alerts and the silences, and every rule about how they change."""

    def __init__(
        self,
        routes: tuple[Route, ...] = (),
        inhibit: tuple[InhibitRule, ...] = (),
        *,
        alerts: Iterable[Alert] = (),
        silences: Iterable[Silence] = (),
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.routes = routes
        self.inhibit = inhibit
        self.new_id = new_id
        self.alerts: dict[str, Alert] = {a.fingerprint: a for a in alerts if a.open}
        self.silences: dict[str, Silence] = {s.id: s for s in silences}

    # -- the stream --------------------------------------------------------------------

    def apply(self, signal: Signal, now: datetime) -> list[AlertChange]:
        """Fold one rule verdict into the book."""
        fp = signal.fingerprint
        alert = self.alerts.get(fp)
        if not signal.firing:
            if alert is None:
                return []
            alert.state = "resolved"
            alert.ends_at = signal.at
            alert.updated_at = now
            changes = [self._change(alert, "resolved", now, received_at=signal.received_at)]
            del self.alerts[fp]
            return changes + self._release(fp, now)
        if alert is not None:
            raised = SEVERITY_RANK[signal.severity] > SEVERITY_RANK[alert.severity]
            alert.event_count += 1
            alert.evidence = _merge_evidence(alert.evidence, signal.evidence)
            alert.value = signal.value if signal.value is not None else alert.value
            alert.summary = signal.summary
            if alert.last_event_at is None or signal.at > alert.last_event_at:
                alert.last_event_at = signal.at
            if signal.at < alert.starts_at:  # a late event shows it began earlier
                alert.starts_at = signal.at
            alert.updated_at = now
            if raised:  # routes and Alertmanager group on severity: say so
                alert.severity = signal.severity
                alert.labels = {**alert.labels, "severity": signal.severity}
                return [self._change(alert, "severity_raised", now, received_at=signal.received_at)]
            return [self._change(alert, "updated", now, received_at=signal.received_at)]
        labels = signal.all_labels()
        routes = routes_for(self.routes, labels)
        alert = Alert(
            id=self.new_id(),
            fingerprint=fp,
            rule=signal.rule,
            labels=labels,
            severity=signal.severity,
            summary=signal.summary,
            state="firing",
            starts_at=signal.at,
            updated_at=now,
            fired_at=now,
            event_count=1,
            last_event_at=signal.at,
            value=signal.value,
            evidence=signal.evidence[:EVIDENCE_CAP],
            group_key=routes[0].group_key(labels) if routes else "",
        )
        alert.silenced_by = self._silences_for(alert, now)
        alert.inhibited_by = self._inhibitors_for(alert)
        self.alerts[fp] = alert
        changes = [self._change(alert, "fired", now, received_at=signal.received_at)]
        for other in self.alerts.values():  # what the new alert inhibits
            if other is not alert and not other.inhibited_by and self._inhibits(alert, other):
                other.inhibited_by = (fp,)
                other.updated_at = now
                changes.append(self._change(other, "inhibited", now))
        return changes

    def tick(self, now: datetime) -> list[AlertChange]:
        """What the clock alone changes: silences starting or ending, escalations."""
        changes = self._refresh_mutes(now)
        for alert in list(self.alerts.values()):
            if alert.state != "firing" or alert.escalation_level > 0 or alert.muted:
                continue
            route = self.route_of(alert)
            if route is None or route.escalate_after is None or not route.escalate_to:
                continue
            if now - alert.fired_at >= route.escalate_after:
                alert.escalation_level = 1
                alert.updated_at = now
                changes.append(self._change(alert, "escalated", now))
        for sid, silence in list(self.silences.items()):
            if silence.ends_at <= now:
                del self.silences[sid]  # expired: its effect was undone above
        return changes

    # -- people ------------------------------------------------------------------------

    def acknowledge(
        self, ref: str, user: str, comment: str | None, now: datetime
    ) -> list[AlertChange]:
        alert = self._open(ref)
        if alert.state == "acknowledged":
            return []  # idempotent: a second tap on the phone changes nothing
        alert.state = "acknowledged"
        alert.acknowledged_by = user
        alert.acknowledged_at = now
        alert.updated_at = now
        return [self._change(alert, "acknowledged", now, actor=user, comment=comment)]

    def unacknowledge(
        self, ref: str, user: str, comment: str | None, now: datetime
    ) -> list[AlertChange]:
        """Hand an acknowledged alert back: it fires again and escalation restarts."""
        alert = self._open(ref)
        if alert.state != "acknowledged":
            return []
        alert.state = "firing"
        alert.acknowledged_by = None
        alert.acknowledged_at = None
        alert.escalation_level = 0
        alert.fired_at = now
        alert.updated_at = now
        return [self._change(alert, "unacknowledged", now, actor=user, comment=comment)]

    def resolve(self, ref: str, user: str, comment: str | None, now: datetime) -> list[AlertChange]:
        """Resolve by hand. If the condition still holds, the rule fires a new occurrence."""
        alert = self._open(ref)
        alert.state = "resolved"
        alert.ends_at = now
        alert.resolved_by = user
        alert.updated_at = now
        changes = [self._change(alert, "resolved", now, actor=user, comment=comment)]
        del self.alerts[alert.fingerprint]
        return changes + self._release(alert.fingerprint, now)

    def add_silence(self, silence: Silence, now: datetime) -> list[AlertChange]:
        self.silences[silence.id] = silence
        return self._refresh_mutes(now, actor=silence.author, comment=silence.comment)

    def expire_silence(
        self, silence_id: str, user: str, now: datetime, comment: str | None = None
    ) -> list[AlertChange]:
        if silence_id not in self.silences:
            raise AlertActionError(f"no active or pending silence {silence_id!r}")
        del self.silences[silence_id]
        return self._refresh_mutes(now, actor=user, comment=comment)

    # -- reading -----------------------------------------------------------------------

    def route_of(self, alert: Alert) -> Route | None:
        routes = routes_for(self.routes, alert.labels)
        return routes[0] if routes else None

    def find(self, ref: str) -> Alert | None:
        """An open alert by fingerprint or occurrence id."""
        if ref in self.alerts:
            return self.alerts[ref]
        return next((a for a in self.alerts.values() if a.id == ref), None)

    # -- internals ---------------------------------------------------------------------

    def _open(self, ref: str) -> Alert:
        alert = self.find(ref)
        if alert is None:
            raise AlertActionError(f"no open alert {ref!r} (resolved, or never fired)")
        return alert

    def _silences_for(self, alert: Alert, now: datetime) -> tuple[str, ...]:
        return tuple(sorted(s.id for s in self.silences.values() if s.mutes(alert.labels, now)))

    def _inhibits(self, source: Alert, target: Alert) -> bool:
        # A muted alert still inhibits (Alertmanager does the same): a silenced network
        # outage should not let a hundred service alerts through.
        return source.fingerprint != target.fingerprint and any(
            rule.inhibits(source.labels, target.labels) for rule in self.inhibit
        )

    def _inhibitors_for(self, alert: Alert) -> tuple[str, ...]:
        if not self.inhibit:
            return ()
        return tuple(
            sorted(s.fingerprint for s in self.alerts.values() if self._inhibits(s, alert))
        )

    def _release(self, gone: str, now: datetime) -> list[AlertChange]:
        """Alerts that ``gone`` inhibited: inhibited by another, or free again."""
        changes: list[AlertChange] = []
        for alert in self.alerts.values():
            if gone in alert.inhibited_by:
                alert.inhibited_by = self._inhibitors_for(alert)
                if not alert.inhibited_by:
                    alert.updated_at = now
                    if not alert.muted:
                        alert.fired_at = now
                    changes.append(self._change(alert, "uninhibited", now))
        return changes

    def _refresh_mutes(
        self, now: datetime, actor: str | None = None, comment: str | None = None
    ) -> list[AlertChange]:
        """Recompute which open alerts are silenced now; record the ones that moved."""
        changes: list[AlertChange] = []
        if not self.silences and not any(a.silenced_by for a in self.alerts.values()):
            return changes
        for alert in self.alerts.values():
            silenced = self._silences_for(alert, now)
            moved = bool(silenced) != bool(alert.silenced_by)
            alert.silenced_by = silenced
            if moved:
                alert.updated_at = now
                if not alert.muted:
                    alert.fired_at = now  # escalation counts from when people are told
                kind: ChangeKind = "silenced" if silenced else "unsilenced"
                changes.append(self._change(alert, kind, now, actor=actor, comment=comment))
        return changes

    @staticmethod
    def _change(
        alert: Alert,
        kind: ChangeKind,
        now: datetime,
        *,
        actor: str | None = None,
        comment: str | None = None,
        received_at: datetime | None = None,
    ) -> AlertChange:
        return AlertChange(
            fingerprint=alert.fingerprint,
            kind=kind,
            at=now,
            alert=alert.copy(),
            actor=actor,
            comment=comment,
            received_at=received_at,
        )


def _merge_evidence(have: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    """Keep the first evidence (what started it) and the newest, up to the cap, no repeats."""
    merged = list(have)
    for eid in new:
        if eid not in merged:
            merged.append(eid)
    if len(merged) <= EVIDENCE_CAP:
        return tuple(merged)
    head = EVIDENCE_CAP // 2
    return tuple(merged[:head] + merged[-(EVIDENCE_CAP - head) :])
