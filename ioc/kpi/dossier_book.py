"""Live dossier KPIs for every reporting period, kept up to date without recounting the year.

A province receives ~170k dossiers a year, and a live value is wanted every few seconds. Every
reporting period ends *now*, so a dossier's judgement is the same in all of them; a period's
start only decides whether the dossier is in it (received before now, not ended before the
start) and whether it was received inside it. The book therefore judges each dossier once,
keeps that contribution and a running total per period and agency, and on each
:meth:`DossierBook.counts` re-judges only

- dossiers that changed (new events) since the last call, and
- open dossiers whose judgement may have moved with the clock: at the next Vietnamese midnight
  (at-risk counts working days) or at their deadline (on time → overdue).

A period whose start moved (a new day, month, quarter or year) is re-summed from the kept
contributions without judging; the rolling 24 h, whose start moves on every call, is re-summed
over its candidates (open, or ended or received within it).

The answer is always exactly :func:`ioc.kpi.dossier_kpis.counts_by_agency` over all the
dossiers (the unit tests compare both); this class only avoids the work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ioc.kpi.calendar import (
    PERIOD_NAMES,
    REPORTING_TZ,
    Period,
    PeriodName,
    WorkCalendar,
    local_midnight,
    periods_at,
)
from ioc.kpi.dossier_kpis import EMPTY, DossierCounts, MaxLegalDays, count_dossier
from ioc.kpi.dossier_rules import DossierFacts

_BEGINNING = datetime(1970, 1, 1, tzinfo=REPORTING_TZ)


@dataclass(frozen=True, slots=True)
class _Judged:
    """One dossier's contribution to any period that contains it."""

    agency: str
    counts: DossierCounts | None  # None: not received (yet), counts in no period
    received_at: datetime | None
    ended_at: datetime | None  # the terminal time, for finished dossiers
    valid_until: datetime  # re-judge at or after this time even without new events

    def contribution(self, period: Period) -> DossierCounts:
        received = int(self.received_at is not None and period.contains(self.received_at))
        if self.counts is None or (self.ended_at is not None and self.ended_at < period.start):
            return DossierCounts(received_in_period=received) if received else EMPTY
        return replace(self.counts, received_in_period=received)


class DossierBook:
    """Dossier facts, one judgement per dossier, and per-period, per-agency running totals."""

    def __init__(
        self,
        calendar: WorkCalendar,
        max_legal_days: MaxLegalDays = lambda _code: None,
        at_risk_working_days: int = 2,
    ) -> None:
        self.calendar = calendar
        self.max_legal_days = max_legal_days
        self.at_risk_working_days = at_risk_working_days
        self._facts: dict[str, DossierFacts] = {}
        self._judged: dict[str, _Judged] = {}
        self._dirty: set[str] = set()
        self._periods: dict[PeriodName, Period] = {}
        self._totals: dict[PeriodName, dict[str, DossierCounts]] = {p: {} for p in PERIOD_NAMES}
        self.judgements = 0  # how many dossiers were (re-)judged: for tests and the benchmark

    def __len__(self) -> int:
        return len(self._facts)

    def upsert(self, facts: Iterable[DossierFacts]) -> None:
        """Replace the facts of these dossiers (built from all their events)."""
        for f in facts:
            self._facts[f.dossier_id] = f
            self._dirty.add(f.dossier_id)

    def counts(self, now: datetime) -> dict[PeriodName, dict[str, DossierCounts]]:
        """Per period, the counts of every agency with dossiers, as of ``now``."""
        periods = periods_at(now)
        stale = {d for d, j in self._judged.items() if j.valid_until <= now} | self._dirty
        self._dirty = set()
        fresh = {d: self._judge(self._facts[d], now) for d in stale}
        for name, period in periods.items():
            old = self._periods.get(name)
            if name == "rolling_24h" or old is None or old.start != period.start:
                continue  # re-summed below
            totals = self._totals[name]
            for dossier_id, new in fresh.items():
                before = self._judged.get(dossier_id)
                if before is not None:
                    self._add(totals, before.agency, before.contribution(old), -1)
                self._add(totals, new.agency, new.contribution(period), 1)
        self._judged.update(fresh)
        for name, period in periods.items():
            old = self._periods.get(name)
            if name == "rolling_24h" or old is None or old.start != period.start:
                self._resum(name, period)
        self._periods = periods
        return {name: dict(self._totals[name]) for name in PERIOD_NAMES}

    def evict_finished_before(self, when: datetime) -> int:
        """Forget dossiers that ended before ``when``; call with a time no period reaches."""
        gone = [d for d, j in self._judged.items() if j.ended_at is not None and j.ended_at < when]
        for dossier_id in gone:
            del self._facts[dossier_id], self._judged[dossier_id]
        if gone:
            self._periods = {}  # re-sum everything next time
        return len(gone)

    # -- internals ---------------------------------------------------------------------------

    def _judge(self, facts: DossierFacts, now: datetime) -> _Judged:
        self.judgements += 1
        whole = Period("year", _BEGINNING, now)
        counts = count_dossier(
            facts, whole, self.calendar, self.max_legal_days, self.at_risk_working_days
        )
        end = facts.end(now)
        return _Judged(
            agency=facts.latest.agency_code,
            counts=counts if counts.counted else None,
            received_at=facts.received_at,
            ended_at=end[0] if end else None,
            valid_until=self._valid_until(facts, now, end is not None),
        )

    def _valid_until(self, facts: DossierFacts, now: datetime, finished: bool) -> datetime:
        """When an open dossier's judgement can next change without a new event."""
        later = [t for t in self._pending_times(facts) if t > now]
        if finished:
            return min(later, default=datetime.max.replace(tzinfo=REPORTING_TZ))
        midnight = local_midnight(now.astimezone(REPORTING_TZ).date() + timedelta(days=1))
        deadline = facts.latest.due_at
        received = facts.received_at
        if deadline is None and received is not None:
            days = self.max_legal_days(facts.latest.procedure_code)
            if days is not None:
                deadline = self.calendar.add_working_days(received, days)
        if deadline is not None:
            waiting = sum(
                (s.answered_at - s.requested_at for s in facts.supplements if s.answered_at),
                timedelta(0),
            )
            later += [t for t in (deadline, deadline + waiting) if t >= now]
        return min([midnight, *later])

    @staticmethod
    def _pending_times(facts: DossierFacts) -> list[datetime]:
        """Event times still ahead of the clock (a future-dated event takes effect then)."""
        times = [t for t, _ in facts.terminal]
        times += [s.requested_at for s in facts.supplements]
        times += [s.answered_at for s in facts.supplements if s.answered_at]
        if facts.received_at is not None:
            times.append(facts.received_at)
        return times

    def _resum(self, name: PeriodName, period: Period) -> None:
        totals: dict[str, DossierCounts] = {}
        for j in self._judged.values():
            if j.received_at is not None and j.received_at >= period.end:
                continue
            if (
                j.ended_at is not None
                and j.ended_at < period.start
                and not (j.received_at is not None and j.received_at >= period.start)
            ):
                continue
            self._add(totals, j.agency, j.contribution(period), 1)
        self._totals[name] = totals

    @staticmethod
    def _add(totals: dict[str, DossierCounts], agency: str, c: DossierCounts, sign: int) -> None:
        if c == EMPTY:
            return
        left = totals.get(agency, EMPTY) + c if sign > 0 else totals[agency] - c
        if left.counted == 0 and left.received_in_period == 0:
            # Nothing left (every other count comes with ``counted``); drop the float residue.
            totals.pop(agency, None)
        else:
            totals[agency] = left
