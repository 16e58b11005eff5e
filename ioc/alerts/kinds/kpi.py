"""KPI kinds, on the rows the KPI refresh publishes (``ioc.kpi.v1``).

``kpi_threshold``: ``below`` is strictly less than, ``above`` strictly greater than: "on-time
ratio below 0.9" fires at 0.8999 and not at 0.9, "overdue above 20" fires at 21. A row whose
value is missing, None or not a number (a bool, a text) neither fires nor clears: a KPI that
cannot be computed says nothing about the condition. While firing, a new row signals again
only when it changes the alert's summary (``{value:.1f}`` days of TLS left do not re-signal
at every refresh); ``at`` is the row's ``taken_at``. An adopted key (an open alert loaded after
a takeover, :meth:`RuleState.adopt`) clears on the next row showing the value back; when the
newest row already seen for the key (``kpi_current``, fed at warm-up) shows it back, at the
next tick, ``at`` that row's ``taken_at``. A row that still breaches re-signals once (its
summary was not known).

``kpi_rising``: the newest value minus the lowest value of the last ``over`` (the value in
effect at the start of the window included, since rows are only published on change) is at
least ``rise``. Re-checked on the clock in ``tick``, so a rise that ages out of the window
clears even when no new row comes. History is per key, bounded to ``MAX_HISTORY`` rows. An
adopted key is judged the same way, except that while its history does not reach back to the
start of the window (the rows before a takeover are lost; the warm-up only has the current
one) a judgement of "no rise" cannot be trusted, so it is kept: it clears at the first tick
or row where the known rows cover the whole window and show no rise (for a current value
taken at ``t`` and no new row, the first tick at or after ``t + over``), and stays firing
while no row for it is known.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from ioc.alerts.kinds.base import EngineClock, GroupKey, RuleState, to_dt
from ioc.alerts.model import Signal
from ioc.alerts.rules import AlertConfig, KpiRisingRule, KpiRule, KpiThresholdRule, format_duration
from ioc.events import Severity
from ioc.kpi.snapshot import KpiRow

MAX_HISTORY: Final = 4096


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
        return None
    return float(v)


class _KpiState(RuleState):
    rule: KpiRule

    def __init__(self, rule: KpiRule, config: AlertConfig, clock: EngineClock) -> None:
        super().__init__(rule, config, clock)
        self.keys = frozenset(rule.keys) if rule.keys else None
        self.holding: dict[GroupKey, str] = {}  # keys whose condition holds → last summary
        # Adopted keys: a threshold judges them at the next tick, a rise until the rows known
        # cover its whole window.
        self.adopted: dict[GroupKey, None] = {}

    def _values(self, rows: Sequence[KpiRow]) -> list[tuple[KpiRow, float]]:
        rule, keys = self.rule, self.keys
        out = []
        for row in rows:
            if row.scope != rule.scope or row.period != rule.period:
                continue
            if keys is not None and row.key not in keys:
                continue
            v = _number(row.values.get(rule.value))
            if v is not None:
                out.append((row, v))
        return out

    def _verdict(
        self, key: GroupKey, holds: bool, at: datetime, v: float, values: dict[str, object]
    ) -> list[Signal]:
        if holds:
            values = {
                "value": v,
                "value_name": self.rule.value,
                "period": self.rule.period,
                "scope": self.rule.scope,
                **values,
            }
            summary = self.render(key, self.rule.severity, values)
            if self.holding.get(key) == summary:
                return []  # nothing a reader would see changed
            if key not in self.holding and len(self.holding) >= self.max_groups:
                self.dropped_groups += 1
                return []
            self.holding[key] = summary
            return self.fire(key, at=at, severity=self.rule.severity, values=values, value=v)
        if key in self.holding:
            del self.holding[key]
            return self.clear(key, at=at)
        return []

    def adopt_group(self, key: GroupKey, since: float, now: float) -> Severity:
        self.holding[key] = ""  # no summary known: the next breaching row signals
        self.adopted[key] = None
        return self.rule.severity


class KpiThresholdState(_KpiState):
    rule: KpiThresholdRule

    def __init__(self, rule: KpiThresholdRule, config: AlertConfig, clock: EngineClock) -> None:
        super().__init__(rule, config, clock)
        # Per key, the verdict of the newest row: (holds, taken_at), for adopted keys.
        self.latest: dict[GroupKey, tuple[bool, datetime]] = {}

    def observe_rows(self, rows: Sequence[KpiRow], now: datetime) -> list[Signal]:
        below, above = self.rule.below, self.rule.above
        out: list[Signal] = []
        for row, v in self._values(rows):
            if below is not None:
                holds, op, threshold = v < below, "<", below
            else:
                assert above is not None
                holds, op, threshold = v > above, ">", above
            key = (row.key,)
            if key in self.latest or len(self.latest) < self.max_groups:
                self.latest[key] = (holds, row.taken_at)
            values: dict[str, object] = {"op": op, "threshold": threshold}
            out += self._verdict(key, holds, row.taken_at, v, values)
        return out

    def tick(self, now: float) -> list[Signal]:
        if not self.adopted:
            return []
        out: list[Signal] = []
        for key in self.adopted:
            latest = self.latest.get(key)
            if latest is not None and not latest[0] and key in self.holding:
                del self.holding[key]
                out += self.clear(key, at=latest[1])
        self.adopted.clear()
        return out


class KpiRisingState(_KpiState):
    rule: KpiRisingRule

    def __init__(self, rule: KpiRisingRule, config: AlertConfig, clock: EngineClock) -> None:
        super().__init__(rule, config, clock)
        self.over = rule.over.total_seconds()
        self.history: dict[GroupKey, deque[tuple[float, float]]] = {}

    def observe_rows(self, rows: Sequence[KpiRow], now: datetime) -> list[Signal]:
        out: list[Signal] = []
        for row, v in self._values(rows):
            key = (row.key,)
            h = self.history.get(key)
            if h is None:
                if len(self.history) >= self.max_groups:
                    self.dropped_groups += 1
                    continue
                h = self.history[key] = deque(maxlen=MAX_HISTORY)
            t = row.taken_at.timestamp()
            if h and t <= h[-1][0]:
                continue  # an older snapshot than one already seen
            h.append((t, v))
            out += self._judge(key, h, t, row.taken_at)
        return out

    def _judge(
        self, key: GroupKey, h: deque[tuple[float, float]], at: float, at_dt: datetime
    ) -> list[Signal]:
        while len(h) >= 2 and h[1][0] <= at - self.over:
            h.popleft()  # superseded before the window began
        low = min(v for _, v in h)
        current = h[-1][1]
        holds = current - low >= self.rule.rise
        if key in self.adopted:
            if h[0][0] > at - self.over:  # the window starts before the first row known
                if not holds:
                    return []  # the lower value may be among the rows lost: keep it
            else:
                del self.adopted[key]  # the whole window is known from here on
        values: dict[str, object] = {
            "rise_by": current - low,
            "from": low,
            "rise": self.rule.rise,
            "over": format_duration(self.rule.over),
        }
        return self._verdict(key, holds, at_dt, current, values)

    def tick(self, now: float) -> list[Signal]:
        out: list[Signal] = []
        for key in list(self.holding):
            h = self.history.get(key)
            if h:  # an adopted key without a row yet waits for one
                out += self._judge(key, h, now, to_dt(now))
        return out
