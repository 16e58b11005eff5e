"""The national on-time rules (766 indicator 2.1) for one dossier, and its live status.

A dossier's events (any order, repeats allowed) become :class:`DossierFacts`; a
:class:`Judgement` of those facts for a reporting period says whether the dossier counts, and
whether it is on time, finished, overdue or at risk. The rules, from DESIGN.md:

- Only dossiers that were received count (status 2, or an explicit ``received_at``).
- A dossier ends at its first terminal status by priority: the first 9 (Đã xử lý xong) if any,
  else the first 10 (Đã trả kết quả), else the first of 8 / 3 / 7 (dừng, từ chối, rút).
- A supplement request (5) is answered by the next event that resumes the file (2, 4, 6, 9 or
  10). While unanswered, the request time is the end. Once answered, the waiting time is
  subtracted: on time when ``end − waiting ≤ due``. Two or more requests make the dossier late.
- No due time: on time when the working days from reception to ``end − waiting`` are within
  the procedure's maximum legal duration (no known duration: it cannot be late).
- Still open at the period end: the period end is the end.
- Counted in a period: received before its end and not ended before its start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ioc.events import DossierEvent, DossierStatus
from ioc.kpi.calendar import Period, WorkCalendar

S = DossierStatus
END_PRIORITY: tuple[frozenset[int], ...] = (
    frozenset({S.PROCESSED}),
    frozenset({S.RETURNED}),
    frozenset({S.STOPPED, S.NOT_RECEIVED, S.WITHDRAWN}),
)
RESUMES = frozenset({S.RECEIVED, S.PROCESSING, S.FINANCIAL_OBLIGATION, S.PROCESSED, S.RETURNED})


@dataclass(frozen=True, slots=True)
class Supplement:
    requested_at: datetime
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DossierFacts:
    """What the rules need from one dossier's history; attributes from its latest event."""

    dossier_id: str
    latest: DossierEvent
    received_at: datetime | None
    terminal: tuple[tuple[datetime, int], ...]  # (time, status) of every terminal event
    supplements: tuple[Supplement, ...]

    @classmethod
    def from_events(cls, events: Iterable[DossierEvent]) -> DossierFacts:
        unique = {(e.event_id, e.event_time): e for e in events}
        history = sorted(unique.values(), key=lambda e: (e.event_time, e.status, e.event_id))
        if not history:
            raise ValueError("a dossier needs at least one event")
        received = [e.received_at for e in history if e.received_at is not None]
        received += [e.event_time for e in history if e.status == S.RECEIVED]
        supplements = []
        for i, e in enumerate(history):
            if e.status != S.SUPPLEMENT_REQUESTED:
                continue
            answer = next(
                (later.event_time for later in history[i + 1 :] if later.status in RESUMES), None
            )
            supplements.append(Supplement(e.event_time, answer))
        end_statuses = frozenset().union(*END_PRIORITY)
        return cls(
            dossier_id=history[0].dossier_id,
            latest=history[-1],
            received_at=min(received) if received else None,
            terminal=tuple((e.event_time, e.status) for e in history if e.status in end_statuses),
            supplements=tuple(supplements),
        )

    def end(self, before: datetime) -> tuple[datetime, int] | None:
        """The first terminal status by priority among events before ``before``."""
        seen = [(t, s) for t, s in self.terminal if t < before]
        for statuses in END_PRIORITY:
            matching = [(t, s) for t, s in seen if s in statuses]
            if matching:
                return min(matching)
        return None


@dataclass(frozen=True, slots=True)
class Judgement:
    counted: bool
    on_time: bool
    finished: bool
    overdue: bool
    at_risk: bool
    end: datetime | None  # the end the rule used (terminal, unanswered request or period end)
    waiting: timedelta
    processing_time: timedelta | None  # finished dossiers: end − received − waiting


NOT_COUNTED = Judgement(False, False, False, False, False, None, timedelta(0), None)


def judge(
    facts: DossierFacts,
    period: Period,
    calendar: WorkCalendar,
    *,
    max_legal_days: int | None = None,
    at_risk_working_days: int = 2,
) -> Judgement:
    """Apply the national rules to one dossier for ``period`` (its end is the as-of time)."""
    received = facts.received_at
    as_of = period.end
    if received is None or received >= as_of:
        return NOT_COUNTED
    terminal = facts.end(as_of)
    if terminal is not None and terminal[0] < period.start:
        return NOT_COUNTED
    stop = terminal[0] if terminal else as_of
    requests = [s for s in facts.supplements if s.requested_at < stop]
    answered = [
        (s.requested_at, s.answered_at)
        for s in requests
        if s.answered_at is not None and s.answered_at < as_of
    ]
    unanswered = [
        s.requested_at for s in requests if s.answered_at is None or s.answered_at >= as_of
    ]
    waiting = sum((answer - asked for asked, answer in answered), timedelta(0))
    end = min(unanswered) if unanswered else stop
    finished = terminal is not None
    deadline = _deadline(facts, received, calendar, max_legal_days)
    late_by_requests = len(requests) >= 2
    on_time = not late_by_requests and (deadline is None or end - waiting <= deadline)
    open_and_running = not finished and not unanswered
    overdue = open_and_running and deadline is not None and as_of - waiting > deadline
    at_risk = (
        open_and_running
        and not overdue
        and deadline is not None
        and calendar.working_days_between(as_of, deadline + waiting) <= at_risk_working_days
    )
    processing = end - received - waiting if finished else None
    return Judgement(True, on_time, finished, overdue, at_risk, end, waiting, processing)


def _deadline(
    facts: DossierFacts, received: datetime, calendar: WorkCalendar, max_legal_days: int | None
) -> datetime | None:
    if facts.latest.due_at is not None:
        return facts.latest.due_at
    if max_legal_days is None:
        return None
    return calendar.add_working_days(received, max_legal_days)
