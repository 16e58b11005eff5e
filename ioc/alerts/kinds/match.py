"""``match``: every matching event is evidence; a group fires on its first one.

Each matching event gives one firing signal (the lifecycle folds them into one alert by
fingerprint and counts them). A group clears ``resolve_after`` after its newest matching
event's event time, checked on the clock in ``tick``. The hold also lasts ``resolve_after``
after the engine last saw evidence on its own clock, so a replayed backlog (old event times
arriving now) keeps one alert open instead of firing and clearing on every tick; for live
events the two deadlines coincide. A late event for a cleared group fires it again (nobody has
been told about that event yet), and clears on the next ticks.

An adopted group (an open alert loaded after a takeover, :meth:`RuleState.adopt`) counts as
evidence at the alert's newest event time ``since`` seen on the clock at adoption: it clears
``resolve_after`` after the later of its newest matching event and the adoption time, with
``at`` = newest evidence + ``resolve_after`` (an alert whose events are long gone clears one
``resolve_after`` after adoption, so a backlog still to be consumed can extend it instead of
resolving it and firing it again); new matching events keep it open as usual.

Duplicate event ids (at-least-once delivery) are ignored among the last ``DEDUP_IDS`` matching
events of the rule. Missing group fields read as ``""``: a critical event without an asset id
still alerts.
"""

from __future__ import annotations

import heapq
from collections import deque
from datetime import datetime
from typing import Final

from ioc.alerts.kinds.base import (
    EngineClock,
    GroupKey,
    RuleState,
    StreamEvent,
    compile_where,
    key_getter,
    to_dt,
    worse,
)
from ioc.alerts.model import Signal
from ioc.alerts.rules import AlertConfig, MatchRule
from ioc.events import SecurityEvent, Severity

DEDUP_IDS: Final = 100_000
_CONTEXT_SKIP: Final = frozenset({"raw", "event_time"})


class RecentIds:
    """The last ``cap`` ids, for duplicate detection in O(1) with bounded memory."""

    __slots__ = ("_cap", "_order", "_set")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._order: deque[str] = deque()
        self._set: set[str] = set()

    def add(self, event_id: str) -> bool:
        """True when new; False for a duplicate."""
        if event_id in self._set:
            return False
        self._set.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self._cap:
            self._set.discard(self._order.popleft())
        return True


class _Group:
    __slots__ = ("count", "deadline", "newest", "queued", "severity")

    def __init__(self, severity: Severity) -> None:
        self.count = 0
        self.newest = float("-inf")
        self.deadline = float("-inf")
        self.queued = False
        self.severity = severity


class MatchState(RuleState):
    rule: MatchRule

    def __init__(self, rule: MatchRule, config: AlertConfig, clock: EngineClock) -> None:
        super().__init__(rule, config, clock)
        self.predicate = compile_where(rule.where)
        self.key_of = key_getter(rule.group_by, missing="")
        resolve = rule.resolve_after or config.defaults.resolve_after
        self.resolve = resolve.total_seconds()
        # from_event: the worst severity seen in the alert's episode (a low event after a
        # critical one does not downgrade it). Uptime checks have no severity: high.
        self.from_event = rule.severity == "from_event" and rule.stream == "security"
        self.severity: Severity = (
            "info"
            if self.from_event
            else "high"
            if rule.severity == "from_event"
            else rule.severity
        )
        self.groups: dict[GroupKey, _Group] = {}  # the groups currently firing
        self.heap: list[tuple[float, GroupKey]] = []  # (deadline, key), one entry per group
        self.seen = RecentIds(DEDUP_IDS)

    def observe(self, ev: StreamEvent, received_at: datetime | None) -> list[Signal]:
        if not self.predicate(ev):
            return []
        if not self.seen.add(ev.event_id):
            self.duplicates += 1
            return []
        key = self.key_of(ev)
        assert key is not None
        g = self.bounded_group(self.groups, key, lambda: _Group(self.severity))
        if g is None:
            return []
        t = ev.event_time.timestamp()
        g.count += 1
        g.newest = max(g.newest, t)
        seen = self.clock.now if self.clock.now is not None else t
        g.deadline = max(g.deadline, g.newest + self.resolve, seen + self.resolve)
        if not g.queued:
            heapq.heappush(self.heap, (g.deadline, key))
            g.queued = True
        if self.from_event and isinstance(ev, SecurityEvent):
            g.severity = worse(g.severity, ev.severity)
        values: dict[str, object] = {
            f: v
            for f in ev.__struct_fields__
            if f not in _CONTEXT_SKIP and (v := getattr(ev, f)) is not None
        }
        values["count"] = g.count
        values["event_time"] = ev.event_time
        return self.fire(
            key,
            at=ev.event_time,
            severity=g.severity,
            values=values,
            value=float(g.count),
            evidence=(ev.event_id,),
            received_at=received_at,
        )

    def adopt_group(self, key: GroupKey, since: float, now: float) -> Severity:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group(self.severity)
        g.newest = max(g.newest, since)
        g.deadline = max(g.deadline, g.newest + self.resolve, now + self.resolve)
        if not g.queued:
            heapq.heappush(self.heap, (g.deadline, key))
            g.queued = True
        return g.severity

    def tick(self, now: float) -> list[Signal]:
        out: list[Signal] = []
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            g = self.groups.get(key)
            if g is None:
                continue
            if g.deadline > now:  # extended since it was queued
                heapq.heappush(heap, (g.deadline, key))
                continue
            del self.groups[key]
            out += self.clear(key, at=to_dt(g.newest + self.resolve))
        return out
