"""``absence``: a source, probe or service that has gone quiet.

A group is known once it has sent a matching event, or from the start when listed in
``expect`` (a SOC feed that must report even if it never did since the worker started).
In ``tick(now)`` it fires when ``now − newest event time ≥ window`` (exactly at ``window``
fires); an expected group never seen fires once ``window`` has passed since the engine's
first tick. ``at`` is the event time the silence reached ``window``. It clears when an event
arrives whose event time is within ``window`` of the clock (an old, replayed event does not
end a silence). A group not in ``expect`` that stays silent for ``forget_after`` (default
7 days: a decommissioned probe) is cleared and forgotten, which bounds memory.

An adopted group (an open alert loaded after a takeover, :meth:`RuleState.adopt`) is taken as
silent. It clears by the same rule: on its first event within ``window`` of the clock; and
when the stored events replayed before adoption already hold one (the source came back
while no evaluator ran), at the next tick, ``at`` that newest event time. If nothing comes it
stays firing, and an unexpected group is forgotten (and cleared) ``forget_after`` after its
newest event, or after the engine's first tick when none is known.

Per event: a dict look-up and a comparison; deadlines sit in a heap, so a tick costs only
the groups whose deadline passed.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

from ioc.alerts.kinds.base import (
    EngineClock,
    GroupKey,
    RuleState,
    StreamEvent,
    compile_where,
    key_getter,
    to_dt,
)
from ioc.alerts.model import Signal
from ioc.alerts.rules import AbsenceRule, AlertConfig, format_duration
from ioc.events import Severity

_NEVER = float("-inf")


class _Group:
    __slots__ = ("expected", "firing", "newest", "next")

    def __init__(self, expected: bool = False) -> None:
        self.newest = _NEVER
        self.firing = False
        self.expected = expected
        self.next: float | None = None  # the deadline queued in the heap


class AbsenceState(RuleState):
    rule: AbsenceRule

    def __init__(self, rule: AbsenceRule, config: AlertConfig, clock: EngineClock) -> None:
        super().__init__(rule, config, clock)
        self.predicate = compile_where(rule.where)
        self.key_of = key_getter(rule.group_by, missing=None)
        self.w = rule.window.total_seconds()
        self.forget = rule.forget_after.total_seconds()
        self.groups: dict[GroupKey, _Group] = {}
        self.heap: list[tuple[float, GroupKey]] = []
        self.started = False

    def _schedule(self, key: GroupKey, g: _Group, at: float) -> None:
        if g.next is None or at < g.next:
            g.next = at
            heapq.heappush(self.heap, (at, key))

    def observe(self, ev: StreamEvent, received_at: datetime | None) -> list[Signal]:
        if not self.predicate(ev):
            return []
        key = self.key_of(ev)
        if key is None:
            return []
        g = self.bounded_group(self.groups, key, _Group)
        if g is None:
            return []
        t = ev.event_time.timestamp()
        if t <= g.newest:
            return []
        g.newest = t
        out: list[Signal] = []
        if g.firing:
            now = self.clock.now
            if now is not None and t < now - self.w:
                return []  # still silent as of now: an old event does not end it
            g.firing = False
            out = self.clear(key, at=ev.event_time, received_at=received_at)
        self._schedule(key, g, t + self.w)
        return out

    def adopt_group(self, key: GroupKey, since: float, now: float) -> Severity:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group()
        g.firing = True
        self._schedule(key, g, now)  # the next tick judges it
        return self.rule.severity

    def tick(self, now: float) -> list[Signal]:
        if not self.started:
            self.started = True
            for key in self.rule.expect:
                g = self.groups.setdefault(key, _Group())
                g.expected = True
                self._schedule(key, g, self._base(g) + self.w)
        out: list[Signal] = []
        heap = self.heap
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            queued = self.groups.get(key)
            if queued is None or queued.next != at:
                continue  # stale entry
            queued.next = None
            out += self._evaluate(key, queued, now)
        return out

    def _base(self, g: _Group) -> float:
        if g.newest != _NEVER:
            return g.newest
        started = self.clock.started_at
        assert started is not None
        return started

    def _evaluate(self, key: GroupKey, g: _Group, now: float) -> list[Signal]:
        base = self._base(g)
        if not g.firing:
            if now - base < self.w:
                self._schedule(key, g, base + self.w)
                return []
            g.firing = True
            if not g.expected:
                self._schedule(key, g, base + self.forget)
            silent = timedelta(seconds=int(now - base))
            values = {
                "window": format_duration(self.rule.window),
                "silent": format_duration(silent),
                "last_seen": to_dt(g.newest) if g.newest != _NEVER else "never",
            }
            return self.fire(
                key,
                at=to_dt(base + self.w),
                severity=self.rule.severity,
                values=values,
                value=float(int(now - base)),
            )
        if g.newest != _NEVER and now - g.newest < self.w:
            # Heard from within the window: only an adopted group gets here firing (a live
            # one is cleared by the event itself in ``observe``).
            g.firing = False
            self._schedule(key, g, g.newest + self.w)
            return self.clear(key, at=to_dt(g.newest))
        if g.expected:
            return []
        if now - base >= self.forget:
            del self.groups[key]
            return self.clear(key, at=to_dt(base + self.forget))
        self._schedule(key, g, base + self.forget)
        return []
