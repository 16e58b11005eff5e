"""The rule engine: events, KPI rows and the clock in, :class:`Signal` objects out.

Pure and single-threaded: the pipeline feeds it each event (``observe``), each batch of KPI
rows (``observe_kpis``) and its clock about once a second (``tick``), and hands the signals
to the alert lifecycle, which deduplicates them by fingerprint. Conditions are judged on
event time; the clock only decides what is *absent* or *over* (silences, auto-clear, window
expiry). The semantics of each kind are documented in its module under
:mod:`ioc.alerts.kinds`.

State is bounded: each rule keeps at most ``defaults.max_groups_per_rule`` groups (new ones
beyond are refused and counted in :attr:`RuleEngine.dropped_groups`), windows keep only what
``window + lateness`` needs, and idle groups are pruned. The counters are plain dicts the
pipeline exports as metrics.

After a takeover the pipeline rebuilds the state by replaying stored events (their signals
dropped: they were acted on), then passes each open alert to :meth:`RuleEngine.adopt`, so that
one whose group the rebuilt state does not hold as firing is still resolved by its rule's
usual clear instead of staying open for ever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from ioc.alerts.kinds.absence import AbsenceState
from ioc.alerts.kinds.base import EngineClock, RuleState, to_dt
from ioc.alerts.kinds.correlation import CorrelationState
from ioc.alerts.kinds.kpi import KpiRisingState, KpiThresholdState
from ioc.alerts.kinds.match import MatchState
from ioc.alerts.kinds.uptime import BurnRateState, ConsecutiveState
from ioc.alerts.model import Signal, fingerprint
from ioc.alerts.rules import (
    AbsenceRule,
    AlertConfig,
    BurnRateRule,
    ConsecutiveRule,
    CorrelationRule,
    KpiRisingRule,
    KpiThresholdRule,
    MatchRule,
    Rule,
)
from ioc.events import DossierEvent, SecurityEvent, UptimeEvent
from ioc.kpi.snapshot import KpiRow

EventState = MatchState | CorrelationState | AbsenceState | ConsecutiveState | BurnRateState
KpiState = KpiThresholdState | KpiRisingState

# Consecutive rules have no window: their look-back must hold the newest ``count`` checks of
# each service. Probe intervals are not in the rule files; probes check every 30-60 s, so
# ``count`` checks at the slowest of those, and never less than an hour.
PROBE_INTERVAL: Final = timedelta(seconds=60)
CONSECUTIVE_LOOK_BACK: Final = timedelta(hours=1)


def _state(rule: Rule, config: AlertConfig, clock: EngineClock) -> EventState | KpiState:
    if isinstance(rule, MatchRule):
        return MatchState(rule, config, clock)
    if isinstance(rule, CorrelationRule):
        return CorrelationState(rule, config, clock)
    if isinstance(rule, AbsenceRule):
        return AbsenceState(rule, config, clock)
    if isinstance(rule, ConsecutiveRule):
        return ConsecutiveState(rule, config, clock)
    if isinstance(rule, BurnRateRule):
        return BurnRateState(rule, config, clock)
    if isinstance(rule, KpiThresholdRule):
        return KpiThresholdState(rule, config, clock)
    if isinstance(rule, KpiRisingRule):
        return KpiRisingState(rule, config, clock)
    raise TypeError(f"unknown rule type {type(rule).__name__}")


def _aware(now: datetime) -> float:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"the engine needs timezone-aware times, got {now!r}")
    return now.timestamp()


class RuleEngine:
    """Evaluates the enabled rules of ``config``."""

    def __init__(self, config: AlertConfig) -> None:
        self.config = config
        self.clock = EngineClock()
        self.states: list[RuleState] = []
        self._security: list[EventState] = []
        self._uptime: list[EventState] = []
        self._kpi: list[KpiState] = []
        self._by_id: dict[str, RuleState] = {}
        for rule in config.enabled_rules:
            state = _state(rule, config, self.clock)
            self.states.append(state)
            self._by_id[rule.id] = state
            if isinstance(state, KpiThresholdState | KpiRisingState):
                self._kpi.append(state)
            elif state.rule.stream == "security":
                self._security.append(state)
            else:
                self._uptime.append(state)

    @property
    def started_at(self) -> datetime | None:
        """The first tick's time: where ``expect``ed silences are measured from."""
        t = self.clock.started_at
        return None if t is None else to_dt(t)

    def observe(
        self, event: SecurityEvent | UptimeEvent | DossierEvent, received_at: datetime | None = None
    ) -> list[Signal]:
        """One event; ``received_at`` (when it was accepted) is passed through to signals."""
        if isinstance(event, SecurityEvent):
            states = self._security
        elif isinstance(event, UptimeEvent):
            states = self._uptime
        else:
            return []
        out: list[Signal] = []
        for state in states:
            signals = state.observe(event, received_at)
            if signals:
                out += signals
        return out

    def observe_kpis(self, rows: Sequence[KpiRow], now: datetime) -> list[Signal]:
        _aware(now)
        out: list[Signal] = []
        for state in self._kpi:
            out += state.observe_rows(rows, now)
        return out

    def tick(self, now: datetime) -> list[Signal]:
        """The clock moved: silences, auto-clears, expired windows, ``for:`` promotions."""
        t = _aware(now)
        if self.clock.started_at is None:
            self.clock.started_at = t
        self.clock.now = t
        out: list[Signal] = []
        for state in self.states:
            out += state.tick(t)
            out += state.promote(t)
        return out

    def group_of(self, rule_id: str, labels: Mapping[str, str]) -> dict[str, str] | None:
        """The group of an alert of ``rule_id`` from its labels (those are the group, the
        inventory's and the rule's labels, ``alertname`` and ``severity``): the labels of the
        rule's group fields, so that ``fingerprint(rule_id, group)`` is the alert's. None when
        the rule is not evaluated (removed or disabled) or a group field is missing."""
        state = self._by_id.get(rule_id)
        if state is None or any(f not in labels for f in state.fields):
            return None
        return {f: labels[f] for f in state.fields}

    def adopt(self, rule_id: str, group: Mapping[str, str], since: datetime, now: datetime) -> bool:
        """Take ``group`` of ``rule_id`` as firing: an open alert loaded after a takeover that
        the rebuilt state may not hold. From then on the engine emits its cleared signal (same
        fingerprint) when the rule finds its condition no longer holds, as for a group it
        fired itself; each kind's module says how it judges an adopted group.

        ``group`` is exactly the rule's group fields (see :meth:`group_of`); ``since`` is the
        event time of the alert's newest evidence (``last_event_at``, else ``starts_at``);
        ``now`` the clock. Call it after the warm-up (replay and its tick, whose signals are
        dropped) and before the first ``tick`` whose signals reach the lifecycle: adopt emits
        nothing, and a clear already due comes from that tick. A group the engine already
        announces is left as it is, one pending behind ``for:`` becomes announced (people
        were told already). Returns False when the rule is not evaluated (removed or
        disabled: the caller resolves such alerts itself), else True."""
        state = self._by_id.get(rule_id)
        if state is None:
            return False
        if set(group) != set(state.fields):
            raise ValueError(
                f"group {dict(group)!r} does not have the fields of rule {rule_id!r}: "
                f"{', '.join(state.fields) or '(none)'}"
            )
        key = tuple(str(group[f]) for f in state.fields)
        state.adopt(key, _aware(since), _aware(now))
        return True

    def look_back(self, stream: str) -> timedelta:
        """How much event-time history of ``stream`` rebuilds the state after a restart
        (replayed through ``observe`` before the first ``tick``): the longest window plus
        lateness, ``resolve_after`` of match rules, the windows of absence rules, the longest
        long window of burn-rate rules, and for consecutive rules ``count`` checks at
        :data:`PROBE_INTERVAL`, at least :data:`CONSECUTIVE_LOOK_BACK`."""
        spans = [timedelta(0)]
        for rule in self.config.enabled_rules:
            if isinstance(rule, KpiThresholdRule | KpiRisingRule) or rule.stream != stream:
                continue
            if isinstance(rule, MatchRule):
                spans.append(rule.resolve_after or self.config.defaults.resolve_after)
            elif isinstance(rule, CorrelationRule):
                lateness = rule.lateness
                spans.append(rule.window + (lateness or self.config.defaults.lateness))
            elif isinstance(rule, AbsenceRule):
                spans.append(rule.window)
            elif isinstance(rule, BurnRateRule):
                spans.append(max(w.long for w in rule.windows))
            elif isinstance(rule, ConsecutiveRule):
                spans.append(max(CONSECUTIVE_LOOK_BACK, rule.count * PROBE_INTERVAL))
        return max(spans)

    def firing(self) -> set[str]:
        """Fingerprints of every group the engine currently announces as firing."""
        return {fingerprint(s.id, g) for s in self.states for g in s.firing_groups()}

    def firing_groups(self, rule_id: str) -> list[dict[str, str]]:
        return [g for s in self.states if s.id == rule_id for g in s.firing_groups()]

    @property
    def dropped_groups(self) -> dict[str, int]:
        return {s.id: s.dropped_groups for s in self.states}

    @property
    def late_events(self) -> dict[str, int]:
        return {s.id: s.late_events for s in self.states}

    @property
    def duplicates(self) -> dict[str, int]:
        return {s.id: s.duplicates for s in self.states}
