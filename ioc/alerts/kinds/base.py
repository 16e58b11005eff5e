"""What every rule kind shares: event filters, group keys, labels, summaries, the ``for:``
gate and the set of groups announced as firing.

A kind decides when its condition starts and stops holding for a group and calls
:meth:`RuleState.fire` / :meth:`RuleState.clear`; this module turns those calls into
:class:`Signal` objects. With ``for:``, a start is held back (pending) until the condition has
held that long, and a clear during that time is silent, so a blip notifies nobody.

After a takeover, :meth:`RuleState.adopt` takes a group with an open alert as announced even
when the rebuilt state does not hold it, so that the kind clears it by its usual rule (each
kind documents how it judges an adopted group).

Times inside the kinds are float seconds since the epoch: a comparison of floats costs a
fraction of one of datetimes on the per-event path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from ioc.alerts.kinds.template import Template
from ioc.alerts.model import EVIDENCE_CAP, Signal
from ioc.alerts.rules import AlertConfig, Rule, Where, group_fields
from ioc.events import SEVERITY_RANK, SecurityEvent, Severity, UptimeEvent

StreamEvent = SecurityEvent | UptimeEvent
GroupKey = tuple[str, ...]
Predicate = Callable[[Any], bool]

DEFAULT_SUMMARY: Final[dict[str, str]] = {
    "match": "{rule}: {severity} event on {group}",
    "correlation": "{rule}: {count} events from {group} within {window}",
    "absence": "{rule}: nothing from {group} for {silent}",
    "consecutive": "{rule}: {group} — last {count} checks {status}",
    "burn_rate": "{rule}: {group} burning its error budget {value:.1f}× ({pair})",
    "kpi_threshold": "{rule}: {value_name} of {group} is {value} ({op} {threshold})",
    "kpi_rising": "{rule}: {value_name} of {group} rose by {rise_by} to {value} within {over}",
}


G = TypeVar("G")  # a rule kind's per-group state


class EngineClock:
    """The pipeline's clock as last seen in ``tick``: when the engine itself is, as opposed
    to the event times it reads. Kinds use it to tell a replayed backlog (old event times,
    seen just now) from a real silence."""

    __slots__ = ("now", "started_at")

    def __init__(self) -> None:
        self.now: float | None = None
        self.started_at: float | None = None


def to_dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def compile_where(where: Where) -> Predicate:
    """One closure per rule: field-in-set tests, then the severity floor."""
    checks = tuple((name, frozenset(values)) for name, values in where.fields)
    floor = SEVERITY_RANK[where.severity_at_least] if where.severity_at_least else None
    if not checks and floor is None:
        return lambda _ev: True

    def predicate(ev: Any) -> bool:
        for name, allowed in checks:
            if getattr(ev, name) not in allowed:
                return False
        return floor is None or SEVERITY_RANK[ev.severity] >= floor

    return predicate


def key_getter(fields: tuple[str, ...], missing: str | None) -> Callable[[Any], GroupKey | None]:
    """The group key of an event. A field the event lacks becomes ``missing``, or, when that
    is None, makes the event unattributable (the rule skips it)."""
    if missing is not None:
        return lambda ev: tuple(
            missing if (v := getattr(ev, f)) is None else str(v) for f in fields
        )

    def strict(ev: Any) -> GroupKey | None:
        out = []
        for f in fields:
            v = getattr(ev, f)
            if v is None:
                return None
            out.append(str(v))
        return tuple(out)

    return strict


def worse(a: Severity, b: Severity) -> Severity:
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


class _Announced:
    __slots__ = ("severity", "summary")

    def __init__(self, severity: Severity, summary: str) -> None:
        self.severity = severity
        self.summary = summary


class RuleState:
    """One rule's evaluator: the shared half. Subclasses implement ``observe`` (events or KPI
    rows) and ``tick`` and call :meth:`fire` and :meth:`clear`."""

    def __init__(self, rule: Rule, config: AlertConfig, clock: EngineClock) -> None:
        self.rule = rule
        self.id = rule.id
        self.clock = clock
        self.fields = group_fields(rule)
        self.template = Template(rule.summary or DEFAULT_SUMMARY[rule.kind])
        self.for_s = rule.for_.total_seconds() if rule.for_ else 0.0
        self.max_groups = config.defaults.max_groups_per_rule
        self.inventory = config.inventory
        self.defaults = config.defaults
        self.announced: dict[GroupKey, _Announced] = {}
        self.pending: dict[GroupKey, tuple[float, Signal]] = {}
        self.dropped_groups = 0  # new groups refused at max_groups_per_rule
        self.late_events = 0  # events beyond the lateness allowance, ignored
        self.duplicates = 0  # event ids seen before, ignored

    def bounded_group(
        self, groups: dict[GroupKey, G], key: GroupKey, make: Callable[[], G]
    ) -> G | None:
        """The group's state, made on first sight, unless the rule already tracks
        ``max_groups_per_rule`` groups: then None, counted in ``dropped_groups``, so a flood
        of distinct keys cannot grow memory without bound."""
        g = groups.get(key)
        if g is None:
            if len(groups) >= self.max_groups:
                self.dropped_groups += 1
                return None
            g = groups[key] = make()
        return g

    # -- labels and text --------------------------------------------------------------------

    def group(self, key: GroupKey) -> dict[str, str]:
        return dict(zip(self.fields, key, strict=True))

    def labels(self, key: GroupKey) -> dict[str, str]:
        """Inventory labels of the group's things, then the rule's static labels (which win)."""
        out: dict[str, str] = {}
        for field, value in zip(self.fields, key, strict=True):
            out.update(self.inventory.labels(field, value))
        out.update(self.rule.labels)
        return out

    def render(self, key: GroupKey, severity: Severity, values: Mapping[str, object]) -> str:
        group = self.group(key)
        ctx: dict[str, object] = {
            **self.labels(key),
            **values,
            **group,
            "rule": self.id,
            "description": self.rule.description,
            "severity": severity,
            "group": ", ".join(f"{k}={v}" for k, v in group.items()) or "all",
        }
        return " ".join(self.template.render(ctx).splitlines())  # one line, always

    # -- transitions ------------------------------------------------------------------------

    def is_firing(self, key: GroupKey) -> bool:
        return key in self.announced

    def fire(
        self,
        key: GroupKey,
        *,
        at: datetime,
        severity: Severity,
        values: Mapping[str, object],
        value: float | None = None,
        evidence: Iterable[str] = (),
        received_at: datetime | None = None,
    ) -> list[Signal]:
        """The condition holds for ``key`` at event time ``at`` (first time, or new evidence)."""
        evidence = tuple(evidence)[-EVIDENCE_CAP:]
        signal = Signal(
            rule=self.id,
            group=self.group(key),
            firing=True,
            at=at,
            severity=severity,
            summary=self.render(key, severity, values),
            labels=self.labels(key),
            evidence=evidence,
            value=value,
            received_at=received_at,
        )
        if key not in self.announced and self.for_s:
            t = at.timestamp()
            since = self.pending[key][0] if key in self.pending else t
            if t - since < self.for_s:
                self.pending[key] = (since, signal)
                return []
            self.pending.pop(key, None)
        self.announced[key] = _Announced(severity, signal.summary)
        return [signal]

    def clear(
        self, key: GroupKey, *, at: datetime, received_at: datetime | None = None
    ) -> list[Signal]:
        """The condition stopped holding for ``key`` at event time ``at``."""
        self.pending.pop(key, None)
        state = self.announced.pop(key, None)
        if state is None:
            return []
        return [
            Signal(
                rule=self.id,
                group=self.group(key),
                firing=False,
                at=at,
                severity=state.severity,
                summary=state.summary,
                labels=self.labels(key),
                received_at=received_at,
            )
        ]

    def adopt(self, key: GroupKey, since: float, now: float) -> None:
        """Take ``key`` as announced (an open alert loaded after a takeover): from now on its
        cleared signal comes by the kind's usual rule. ``since`` is the event time of the
        alert's newest evidence, ``now`` the clock. A group already announced is left alone;
        one pending behind ``for:`` (its condition holds, and people were told already) is
        marked announced as it is; otherwise :meth:`adopt_group` makes the kind's own state
        hold it. Never signals: a clear that is already due comes from the next ``tick``."""
        if key in self.announced:
            return
        held = self.pending.pop(key, None)
        if held is not None:
            self.announced[key] = _Announced(held[1].severity, held[1].summary)
            return
        severity = self.adopt_group(key, since, now)
        # What the cleared signal carries; the lifecycle resolves by fingerprint and keeps the
        # alert's own summary, so placeholders without a value may show as ``{count?}``.
        self.announced[key] = _Announced(severity, self.render(key, severity, {}))

    def adopt_group(self, key: GroupKey, since: float, now: float) -> Severity:
        """The kind's half of :meth:`adopt`: hold ``key`` as firing (not bounded by
        ``max_groups_per_rule``: there is at most one adopted group per open alert); returns
        the severity the cleared signal carries."""
        raise NotImplementedError

    def promote(self, now: float) -> list[Signal]:
        """``for:`` on the clock: pending groups whose condition has held long enough."""
        if not self.pending:
            return []
        out = []
        for key, (since, signal) in list(self.pending.items()):
            if now - since >= self.for_s:
                del self.pending[key]
                at = to_dt(since + self.for_s)
                promoted = Signal(
                    rule=signal.rule,
                    group=signal.group,
                    firing=True,
                    at=at,
                    severity=signal.severity,
                    summary=signal.summary,
                    labels=signal.labels,
                    evidence=signal.evidence,
                    value=signal.value,
                )
                self.announced[key] = _Announced(signal.severity, signal.summary)
                out.append(promoted)
        return out

    def firing_groups(self) -> list[dict[str, str]]:
        return [self.group(k) for k in self.announced]

    def tick(self, now: float) -> list[Signal]:
        return []
