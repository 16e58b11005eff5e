"""Uptime kinds: ``consecutive`` failed checks and SLO ``burn_rate``.

Both read probe results by event time, so a check that arrives late lands where it belongs
and a backfill evaluates as it would have live.

``consecutive``: the newest ``count`` checks of a service (by event time) all have a status
in ``status`` → fire, ``at`` the newest of them. Clears when the newest check is not in
``status``, so a late, older good check never clears what newer failures raised (it only
takes its place in the order). A check older than the ``count`` kept, or with an event id
already kept, changes nothing. An adopted group (an open alert loaded after a takeover,
:meth:`RuleState.adopt`) clears by the same rule: at the next tick when the newest check the
rebuilt state holds is not in ``status`` (``at`` that check), else on the first newer check
that is not; with no check held it stays firing until one comes.

``burn_rate`` (Google SRE, multi-window multi-burn-rate): for each pair, the error ratio
(checks not up or degraded ÷ checks) in the long window and in the short window are both
strictly greater than ``factor × (1 − objective)`` (a ratio mathematically equal to the
threshold does not fire; comparisons allow 1e-9 of float rounding). Windows end at the
service's newest check by event time and are made of whole ``BUCKET``-second buckets, the
newest one included. A short window with fewer than ``min_checks`` checks does not fire (one
failed probe right after a start does not page). When both pairs hold, the alert carries
the more severe pair's severity (one fingerprint per rule and service; a change of severity
is signalled). It clears when no pair holds after a check, or in ``tick`` once the clock is
a whole longest short window past the newest check (the short windows are empty).
Duplicates are dropped by event id within the longest window. An adopted group clears when no
pair holds at its next evaluation: the next check, or the next tick, which judges the checks
the rebuilt state holds (``at`` the newest of them; with none, ``since + longest short
window``, capped at the clock); while a pair holds it is kept, and clears by the rules above.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
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
)
from ioc.alerts.model import EVIDENCE_CAP, Signal
from ioc.alerts.rules import AlertConfig, BurnRateRule, ConsecutiveRule, format_duration
from ioc.events import SEVERITY_RANK, Severity, UptimeEvent

BUCKET: Final = 10.0  # seconds per burn-rate bucket
GOOD: Final = frozenset({"up", "degraded"})
EPSILON: Final = 1e-9
PRUNE_EVERY: Final = 10.0


class _Checks:
    __slots__ = ("checks", "firing")

    def __init__(self) -> None:
        self.checks: list[tuple[float, str, str, datetime]] = []  # (t, id, status, time)
        self.firing = False


class ConsecutiveState(RuleState):
    rule: ConsecutiveRule

    def __init__(self, rule: ConsecutiveRule, config: AlertConfig, clock: EngineClock) -> None:
        super().__init__(rule, config, clock)
        self.predicate = compile_where(rule.where)
        self.key_of = key_getter(rule.group_by, missing=None)
        self.count = rule.count
        self.bad = frozenset(rule.status)
        self.groups: dict[GroupKey, _Checks] = {}
        self.adopted: dict[GroupKey, None] = {}  # adopted groups the next tick judges

    def observe(self, ev: StreamEvent, received_at: datetime | None) -> list[Signal]:
        if not isinstance(ev, UptimeEvent) or not self.predicate(ev):
            return []
        key = self.key_of(ev)
        if key is None:
            return []
        g = self.bounded_group(self.groups, key, _Checks)
        if g is None:
            return []
        checks = g.checks
        eid = ev.event_id
        if any(c[1] == eid for c in checks):
            self.duplicates += 1
            return []
        t = ev.event_time.timestamp()
        if len(checks) >= self.count and t < checks[0][0]:
            return []  # older than every check kept: cannot change the newest ``count``
        insort(checks, (t, eid, ev.status, ev.event_time))
        if len(checks) > self.count:
            del checks[0]
        newest = checks[-1]
        values = {"count": self.count, "status": "/".join(self.rule.status)}
        if not g.firing:
            if len(checks) == self.count and all(c[2] in self.bad for c in checks):
                g.firing = True
                return self.fire(
                    key,
                    at=newest[3],
                    severity=self.rule.severity,
                    values=values,
                    value=float(self.count),
                    evidence=[c[1] for c in checks],
                    received_at=received_at,
                )
            return []
        if newest[2] not in self.bad:
            g.firing = False
            return self.clear(key, at=newest[3], received_at=received_at)
        if ev.status in self.bad:  # more evidence for the open alert
            return self.fire(
                key,
                at=ev.event_time,
                severity=self.rule.severity,
                values=values,
                value=float(self.count),
                evidence=(eid,),
                received_at=received_at,
            )
        return []

    def adopt_group(self, key: GroupKey, since: float, now: float) -> Severity:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Checks()
        g.firing = True
        self.adopted[key] = None
        return self.rule.severity

    def tick(self, now: float) -> list[Signal]:
        if not self.adopted:
            return []
        out: list[Signal] = []
        for key in self.adopted:
            g = self.groups.get(key)
            if g is not None and g.firing and g.checks and g.checks[-1][2] not in self.bad:
                g.firing = False
                out += self.clear(key, at=g.checks[-1][3])
        self.adopted.clear()
        return out


class _Pair:
    __slots__ = ("factor", "label", "long", "severity", "short", "short_s", "threshold")

    def __init__(
        self,
        long: int,
        short: int,
        short_s: float,
        factor: float,
        threshold: float,
        severity: Severity,
        label: str,
    ) -> None:
        self.long, self.short, self.short_s = long, short, short_s
        self.factor, self.threshold = factor, threshold
        self.severity, self.label = severity, label


class _Burn:
    __slots__ = (
        "anchor",
        "bad",
        "buckets",
        "firing",
        "ids",
        "newest",
        "newest_dt",
        "order",
        "seen",
        "severity",
        "sums",
    )

    def __init__(self, windows: int) -> None:
        self.buckets: dict[int, tuple[list[int], list[str]]] = {}  # b → ([good, total], ids)
        self.order: list[int] = []  # live bucket indices, sorted
        self.ids: set[str] = set()
        self.anchor: int | None = None  # bucket of the newest check
        self.newest = float("-inf")
        self.newest_dt: datetime | None = None
        self.sums = [[0, 0] for _ in range(windows)]  # per window length: [good, total]
        self.bad: deque[tuple[float, str]] = deque(maxlen=EVIDENCE_CAP)
        self.firing = False
        self.severity: Severity = "info"
        self.seen = float("-inf")


class BurnRateState(RuleState):
    rule: BurnRateRule

    def __init__(self, rule: BurnRateRule, config: AlertConfig, clock: EngineClock) -> None:
        super().__init__(rule, config, clock)
        self.predicate = compile_where(rule.where)
        self.key_of = key_getter(rule.group_by, missing=None)
        lengths = sorted(
            {math.ceil(d.total_seconds() / BUCKET) for w in rule.windows for d in (w.long, w.short)}
        )
        self.lengths = lengths
        budget = 1 - rule.objective
        self.pairs = [
            _Pair(
                lengths.index(math.ceil(w.long.total_seconds() / BUCKET)),
                lengths.index(math.ceil(w.short.total_seconds() / BUCKET)),
                w.short.total_seconds(),
                w.factor,
                w.factor * budget,
                w.severity,
                f"{format_duration(w.long)}/{format_duration(w.short)}",
            )
            for w in rule.windows
        ]
        self.longest = lengths[-1]
        self.quiet_after = max(p.short_s for p in self.pairs)
        self.budget = budget
        self.groups: dict[GroupKey, _Burn] = {}
        self.firing_keys: set[GroupKey] = set()
        self.adopted: dict[GroupKey, float] = {}  # adopted groups the next tick judges → since
        self.watermark = float("-inf")
        self.last_prune: float | None = None

    def observe(self, ev: StreamEvent, received_at: datetime | None) -> list[Signal]:
        if not isinstance(ev, UptimeEvent) or not self.predicate(ev):
            return []
        key = self.key_of(ev)
        if key is None:
            return []
        g = self.bounded_group(self.groups, key, lambda: _Burn(len(self.lengths)))
        if g is None:
            return []
        eid = ev.event_id
        if eid in g.ids:
            self.duplicates += 1
            return []
        t = ev.event_time.timestamp()
        b = int(t // BUCKET)
        if g.anchor is None:
            g.anchor = b
        elif b > g.anchor:
            self._advance(g, b)
        elif b <= g.anchor - self.longest:
            self.late_events += 1  # older than the longest window: cannot matter
            return []
        good = ev.status in GOOD
        entry = g.buckets.get(b)
        if entry is None:
            entry = g.buckets[b] = ([0, 0], [])
            insort(g.order, b)
        entry[0][0] += good
        entry[0][1] += 1
        entry[1].append(eid)
        g.ids.add(eid)
        for idx, n in enumerate(self.lengths):
            if b > g.anchor - n:
                g.sums[idx][0] += good
                g.sums[idx][1] += 1
        if t > g.newest:
            g.newest, g.newest_dt = t, ev.event_time
        if t > self.watermark:
            self.watermark = t
        if not good:
            g.bad.append((t, eid))
        g.seen = self.clock.now if self.clock.now is not None else t
        return self._evaluate(key, g, None if good else eid, received_at)

    def _advance(self, g: _Burn, b: int) -> None:
        """Move the windows' end to bucket ``b``: buckets falling out leave the sums."""
        assert g.anchor is not None
        order = g.order
        for idx, n in enumerate(self.lengths):
            i = bisect_left(order, g.anchor - n + 1)
            j = bisect_left(order, b - n + 1)
            for k in order[i:j]:
                counts = g.buckets[k][0]
                g.sums[idx][0] -= counts[0]
                g.sums[idx][1] -= counts[1]
        g.anchor = b
        cut = bisect_left(order, b - self.longest + 1)
        if cut:
            for k in order[:cut]:
                g.ids.difference_update(g.buckets.pop(k)[1])
            del order[:cut]

    def _best(self, g: _Burn) -> tuple[_Pair, float, float, int] | None:
        """The most severe pair that holds: (pair, long ratio, short ratio, short checks)."""
        best: tuple[_Pair, float, float, int] | None = None
        for p in self.pairs:
            good_s, total_s = g.sums[p.short]
            good_l, total_l = g.sums[p.long]
            if total_s < self.rule.min_checks or not total_l:
                continue
            long_ratio = (total_l - good_l) / total_l
            short_ratio = (total_s - good_s) / total_s
            holds = long_ratio - p.threshold > EPSILON and short_ratio - p.threshold > EPSILON
            if holds and (
                best is None or SEVERITY_RANK[p.severity] > SEVERITY_RANK[best[0].severity]
            ):
                best = (p, long_ratio, short_ratio, total_s)
        return best

    def _evaluate(
        self, key: GroupKey, g: _Burn, bad_id: str | None, received_at: datetime | None
    ) -> list[Signal]:
        best = self._best(g)
        assert g.newest_dt is not None
        if best is None:
            if not g.firing:
                return []
            g.firing = False
            self.firing_keys.discard(key)
            return self.clear(key, at=g.newest_dt, received_at=received_at)
        pair, long_ratio, short_ratio, checks = best
        starting = not g.firing
        if not starting and pair.severity == g.severity and bad_id is None:
            return []
        g.firing = True
        g.severity = pair.severity
        self.firing_keys.add(key)
        if starting:
            horizon = g.newest - pair.short_s
            evidence: tuple[str, ...] = tuple(i for t, i in g.bad if t > horizon)
        else:
            evidence = (bad_id,) if bad_id else ()
        values = {
            "value": long_ratio / self.budget,
            "error_ratio": long_ratio,
            "short_error_ratio": short_ratio,
            "objective": self.rule.objective,
            "pair": pair.label,
            "factor": pair.factor,
            "checks": checks,
        }
        return self.fire(
            key,
            at=g.newest_dt,
            severity=pair.severity,
            values=values,
            value=round(long_ratio / self.budget, 6),
            evidence=evidence,
            received_at=received_at,
        )

    def adopt_group(self, key: GroupKey, since: float, now: float) -> Severity:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Burn(len(self.lengths))
        best = self._best(g)
        # The severity a holding pair would signal again; an adopted alert is refreshed by the
        # next failed check (or a change of pair) rather than at once.
        g.severity = (
            best[0].severity
            if best
            else max((p.severity for p in self.pairs), key=SEVERITY_RANK.__getitem__)
        )
        g.firing = True
        self.firing_keys.add(key)
        self.adopted[key] = since
        return g.severity

    def tick(self, now: float) -> list[Signal]:
        out: list[Signal] = []
        for key, since in self.adopted.items():
            g = self.groups.get(key)
            if g is None or not g.firing or self._best(g) is not None:
                continue
            g.firing = False
            self.firing_keys.discard(key)
            if g.newest_dt is not None:
                out += self.clear(key, at=g.newest_dt)
            else:  # no check at all in the longest window
                out += self.clear(key, at=to_dt(min(since + self.quiet_after, now)))
        self.adopted.clear()
        for key in list(self.firing_keys):
            g = self.groups[key]
            if now - g.newest >= self.quiet_after and now - g.seen >= self.quiet_after:
                g.firing = False
                self.firing_keys.discard(key)
                out += self.clear(key, at=to_dt(g.newest + self.quiet_after))
        if self.last_prune is None or now - self.last_prune >= PRUNE_EVERY:
            self.last_prune = now
            horizon = self.watermark - self.longest * BUCKET
            for key in [k for k, g in self.groups.items() if not g.firing and g.newest < horizon]:
                del self.groups[key]
        return out
