"""``correlation``: at least N matching events of one group within a sliding window of event
time, optionally against at least M distinct values of a field.

Semantics (tested in ``tests/unit/test_alert_kinds.py``):

* A window is ``[e − window, e]`` with both ends included, for every event time ``e``; the
  rule holds when some window has ``count ≥ min_events`` and ``distinct ≥ min_distinct``
  (exactly at the threshold fires). An event without the ``distinct`` field counts as an
  event but adds no distinct value; an event without a ``group_by`` field is skipped.
* Event time decides, not arrival: an event up to ``lateness`` behind its group's newest
  event time is placed where it belongs, and a window in the past that it completes fires
  with ``at`` = that window's end. Events later than that are ignored and counted in
  ``late_events``. A repeated event id is ignored (``duplicates``).
* While firing, new evidence is signalled at most once per ``min(window, 60 s)`` of event
  time, carrying the ids that arrived since the last signal.
* It clears, in ``tick(now)``, once ``now − lateness ≥ last qualifying window end + window``:
  no window that could still change overlaps a qualifying one. It also stays up for one
  ``window`` after the engine last saw a qualifying window on its own clock, so a replayed
  backlog keeps one alert open instead of flapping; ``at`` of the clear is the event time
  ``last qualifying window end + window``.
* An adopted group (an open alert loaded after a takeover, :meth:`RuleState.adopt`) is held
  as if the engine had just seen a qualifying window ending at the alert's newest evidence
  ``since``: the rule above with ``last qualifying window end = since`` and the clock's
  "just seen" at adoption. So it clears at the first tick at or after
  ``max(since + window + lateness, adoption + window)`` unless events in the meantime make a
  window qualify (which extends it as usual), with ``at`` = ``since + window``. The
  ``window`` of clock after adoption is the same allowance a replayed backlog gets: events
  still to be consumed that complete a window keep the alert instead of resolving and firing
  it again.

Per event the work is amortised O(1) for in-order events (two pointers over a sorted list
and a counter of the current window's distinct values). A late event that does not
complete the current window rescans only the windows that contain it, and only when the
group holds enough events and distinct values overall to possibly qualify; when that scan
would read more than ``SCAN_NOW`` events, it waits for the next ``tick``, which rescans the
group once for all its late events since (a disordered flood costs one scan per group per
tick, not one per event; such a signal comes up to a tick later). Memory: a group
keeps its events of the last ``window + lateness`` (at most ``MAX_EVENTS_PER_GROUP``; beyond,
the oldest go: a window that large has long passed any threshold), and groups idle for
longer than that behind the rule's newest event time are pruned.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
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
from ioc.alerts.kinds.template import Template
from ioc.alerts.model import EVIDENCE_CAP, Signal
from ioc.alerts.rules import AlertConfig, CorrelationRule, format_duration
from ioc.events import Severity

MAX_EVENTS_PER_GROUP: Final = 50_000
PRUNE_EVERY: Final = 10.0  # seconds of clock between sweeps of idle groups
SCAN_NOW: Final = 512  # a late event's rescan reading more events than this waits for tick
DISTINCT_SUMMARY: Final = (
    "{rule}: {count} events against {distinct} distinct {distinct_field} from {group}"
    " within {window}"
)


class _Group:
    __slots__ = (
        "cur",
        "deadline",
        "dirty_hi",
        "dirty_lo",
        "dirty_received",
        "dvs",
        "eids",
        "firing",
        "fresh",
        "head",
        "hold_end",
        "ids",
        "last_emit",
        "newest",
        "queued",
        "retained",
        "ts",
        "window",
    )

    def __init__(self) -> None:
        self.ts: list[float] = []  # sorted event times; live from ``head``
        self.eids: list[str] = []  # parallel: event ids
        self.dvs: list[str | None] = []  # parallel: values of the distinct field
        self.head = 0
        self.cur = 0  # first index of the current window [newest − W, newest]
        self.window: dict[str, int] = {}  # distinct values in the current window
        self.retained: dict[str, int] = {}  # distinct values among all live events
        self.ids: set[str] = set()
        self.newest = float("-inf")
        self.firing = False
        self.hold_end = float("-inf")  # end of the newest qualifying window
        self.deadline = float("-inf")
        self.queued = False
        self.last_emit = float("-inf")
        self.fresh: deque[str] = deque(maxlen=EVIDENCE_CAP)  # ids since the last signal
        self.dirty_lo = float("inf")  # late events awaiting a rescan at the next tick
        self.dirty_hi = float("-inf")
        self.dirty_received: datetime | None = None


def _inc(d: dict[str, int], v: str | None) -> None:
    if v is not None:
        d[v] = d.get(v, 0) + 1


def _dec(d: dict[str, int], v: str | None) -> None:
    if v is not None:
        n = d[v] - 1
        if n:
            d[v] = n
        else:
            del d[v]


class CorrelationState(RuleState):
    rule: CorrelationRule

    def __init__(self, rule: CorrelationRule, config: AlertConfig, clock: EngineClock) -> None:
        super().__init__(rule, config, clock)
        self.predicate = compile_where(rule.where)
        self.key_of = key_getter(rule.group_by, missing=None)
        self.w = rule.window.total_seconds()
        lateness = rule.lateness if rule.lateness is not None else config.defaults.lateness
        self.lateness = lateness.total_seconds()
        self.min_events = rule.min_events
        self.distinct = rule.distinct
        self.min_distinct = rule.min_distinct if rule.distinct else 0
        self.refresh = min(self.w, 60.0)
        if rule.summary is None and rule.distinct:
            self.template = Template(DISTINCT_SUMMARY)
        self.groups: dict[GroupKey, _Group] = {}
        self.heap: list[tuple[float, GroupKey]] = []
        self.watermark = float("-inf")
        self.last_prune: float | None = None
        self.overflow = 0  # events dropped from groups above MAX_EVENTS_PER_GROUP
        self.dirty: dict[GroupKey, None] = {}  # groups with a deferred rescan

    def observe(self, ev: StreamEvent, received_at: datetime | None) -> list[Signal]:
        if not self.predicate(ev):
            return []
        key = self.key_of(ev)
        if key is None:
            return []
        g = self.bounded_group(self.groups, key, _Group)
        if g is None:
            return []
        eid = ev.event_id
        if eid in g.ids:
            self.duplicates += 1
            return []
        t = ev.event_time.timestamp()
        if t < g.newest - self.lateness:
            self.late_events += 1
            return []
        dv = getattr(ev, self.distinct) if self.distinct else None
        in_order = t >= g.newest
        self._insert(g, t, eid, dv)
        if t > self.watermark:
            self.watermark = t
        if g.firing:
            g.fresh.append(eid)
        # The current window only changed if the event landed in it.
        found = self._current(g) if t >= g.newest - self.w else None
        if found is None and not in_order and (not g.firing or t + self.w > g.hold_end):
            # A late event may complete a window in the past: those ending in [t, t + W].
            hi_t = min(t + self.w, g.newest)
            if self._could_qualify(g, t, hi_t):
                if self._span(g, t, hi_t) <= SCAN_NOW:
                    found = self._scan(g, t, hi_t, latest=g.firing)
                else:  # a big group: one rescan per tick covers all its late events
                    g.dirty_lo = min(g.dirty_lo, t)
                    g.dirty_hi = max(g.dirty_hi, hi_t)
                    g.dirty_received = received_at
                    self.dirty[key] = None
        if found is None:
            return []
        return self._hold(key, g, *found, received_at)

    # -- the window book ---------------------------------------------------------------------

    def _insert(self, g: _Group, t: float, eid: str, dv: str | None) -> None:
        ts = g.ts
        if t >= g.newest:
            ts.append(t)
            g.eids.append(eid)
            g.dvs.append(dv)
            g.newest = t
            _inc(g.window, dv)
            lo = t - self.w
            while ts[g.cur] < lo:
                _dec(g.window, g.dvs[g.cur])
                g.cur += 1
            self._forget(g, t - self.w - self.lateness)
        else:
            i = bisect_right(ts, t, g.head)
            ts.insert(i, t)
            g.eids.insert(i, eid)
            g.dvs.insert(i, dv)
            if t >= g.newest - self.w:
                _inc(g.window, dv)
            else:
                g.cur += 1
        g.ids.add(eid)
        _inc(g.retained, dv)
        if len(ts) - g.head > MAX_EVENTS_PER_GROUP:
            self.overflow += 1
            self._drop_head(g)

    def _drop_head(self, g: _Group) -> None:
        h = g.head
        g.ids.discard(g.eids[h])
        _dec(g.retained, g.dvs[h])
        if g.cur == h:
            _dec(g.window, g.dvs[h])
            g.cur += 1
        g.head += 1

    def _forget(self, g: _Group, horizon: float) -> None:
        ts = g.ts
        while g.head < g.cur and ts[g.head] < horizon:
            self._drop_head(g)
        if g.head > 256 and g.head * 2 > len(ts):
            h = g.head
            del ts[:h], g.eids[:h], g.dvs[:h]
            g.cur -= h
            g.head = 0

    def _current(self, g: _Group) -> tuple[int, int, int] | None:
        """The window ending at the group's newest event, if it qualifies."""
        n = len(g.ts) - g.cur
        if n >= self.min_events and len(g.window) >= self.min_distinct:
            return len(g.ts) - 1, n, len(g.window)
        return None

    def _span(self, g: _Group, lo_t: float, hi_t: float) -> int:
        """How many events a scan of windows ending in ``[lo_t, hi_t]`` reads."""
        ts = g.ts
        return bisect_right(ts, hi_t, g.head) - bisect_left(ts, lo_t - self.w, g.head)

    def _could_qualify(self, g: _Group, lo_t: float, hi_t: float) -> bool:
        """Cheap upper bounds: enough events around, enough distinct values retained."""
        return self._span(g, lo_t, hi_t) >= self.min_events and len(g.retained) >= self.min_distinct

    def _scan(
        self, g: _Group, lo_t: float, hi_t: float, latest: bool
    ) -> tuple[int, int, int] | None:
        """The first (or, with ``latest``, the last) qualifying window among those ending at
        an event time in ``[lo_t, hi_t]``: (index of its end, events, distinct values)."""
        ts, dvs, w = g.ts, g.dvs, self.w
        i = bisect_left(ts, lo_t, g.head)
        hi = bisect_right(ts, hi_t, g.head)
        if i >= hi:
            return None
        s = bisect_left(ts, ts[i] - w, g.head)
        counts: dict[str, int] = {}
        for k in range(s, i + 1):
            _inc(counts, dvs[k])
        n = i + 1 - s
        best = None
        j = i
        while True:
            last_of_run = j + 1 == len(ts) or ts[j + 1] != ts[j]
            if last_of_run and n >= self.min_events and len(counts) >= self.min_distinct:
                best = (j, n, len(counts))
                if not latest:
                    return best
            j += 1
            if j >= hi:
                return best
            _inc(counts, dvs[j])
            n += 1
            while ts[s] < ts[j] - w:
                _dec(counts, dvs[s])
                s += 1
                n -= 1

    # -- transitions -------------------------------------------------------------------------

    def _hold(
        self, key: GroupKey, g: _Group, j: int, n: int, distinct: int, received_at: datetime | None
    ) -> list[Signal]:
        """A window ending at ``g.ts[j]`` qualifies (``n`` events, ``distinct`` values)."""
        end = g.ts[j]
        starting = not g.firing
        if starting:
            g.firing = True
            first = max(j - EVIDENCE_CAP + 1, bisect_left(g.ts, end - self.w, g.head))
            evidence: tuple[str, ...] = tuple(g.eids[first : j + 1])
        elif end - g.last_emit >= self.refresh:
            evidence = tuple(g.fresh)
        else:
            evidence = ()
        g.hold_end = max(g.hold_end, end)
        seen = self.clock.now if self.clock.now is not None else end
        g.deadline = max(g.deadline, g.hold_end + self.w + self.lateness, seen + self.w)
        if not g.queued:
            heapq.heappush(self.heap, (g.deadline, key))
            g.queued = True
        if not starting and not evidence:
            return []
        g.last_emit = end
        g.fresh.clear()
        values = {
            "count": n,
            "distinct": distinct if self.distinct else None,
            "distinct_field": self.distinct,
            "window": format_duration(self.rule.window),
            "min_events": self.min_events,
            "min_distinct": self.min_distinct or None,
        }
        return self.fire(
            key,
            at=to_dt(end),
            severity=self.rule.severity,
            values=values,
            value=float(n),
            evidence=evidence,
            received_at=received_at,
        )

    def adopt_group(self, key: GroupKey, since: float, now: float) -> Severity:
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group()
        g.firing = True
        g.hold_end = max(g.hold_end, since)
        g.deadline = max(g.deadline, g.hold_end + self.w + self.lateness, now + self.w)
        if not g.queued:
            heapq.heappush(self.heap, (g.deadline, key))
            g.queued = True
        return self.rule.severity

    def tick(self, now: float) -> list[Signal]:
        out: list[Signal] = []
        for key in self.dirty:
            g = self.groups.get(key)
            if g is None:
                continue
            lo_t, hi_t = g.dirty_lo, g.dirty_hi
            g.dirty_lo, g.dirty_hi = float("inf"), float("-inf")
            if g.firing and hi_t <= g.hold_end:
                continue
            found = self._scan(g, lo_t, min(hi_t, g.newest), latest=g.firing)
            if found is not None:
                out += self._hold(key, g, *found, g.dirty_received)
        self.dirty.clear()
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            g = self.groups.get(key)
            if g is None or not g.firing:
                continue
            g.queued = False
            if g.deadline > now:
                heapq.heappush(heap, (g.deadline, key))
                g.queued = True
                continue
            g.firing = False
            g.fresh.clear()
            out += self.clear(key, at=to_dt(g.hold_end + self.w))
        if self.last_prune is None or now - self.last_prune >= PRUNE_EVERY:
            self.last_prune = now
            horizon = self.watermark - self.w - self.lateness
            for key in [k for k, g in self.groups.items() if not g.firing and g.newest < horizon]:
                del self.groups[key]
        return out
