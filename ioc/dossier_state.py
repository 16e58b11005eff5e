"""Current state of a dossier, derived from its events in any order.

Events of one dossier can arrive late, out of order, or twice (a producer retry, a replay).
The state is therefore a *commutative merge* of distinct events: the latest event by the
ordering key ``(event_time, status, event_id)`` sets status and attributes, earliest-times and
counts are mins and sums. Duplicates are removed by ``(event_id, event_time)`` before merging,
the key of the history table (a hypertable's unique key must contain its time column); in the
database the history insert's ``ON CONFLICT DO NOTHING`` does that. A producer that reuses an
``event_id`` with another time has sent a different event. The SQL upsert in
:mod:`ioc.storage.writer` implements the same merge; an integration test compares both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from ioc.events import DossierEvent, DossierStatus


def ordering_key(event: DossierEvent) -> tuple[datetime, int, str]:
    """Which of two events is 'later'; ties on time are broken deterministically."""
    return (event.event_time, event.status, event.event_id)


@dataclass(frozen=True, slots=True)
class DossierState:
    dossier_id: str
    status: int
    status_at: datetime
    last_event_id: str
    procedure_code: str
    agency_code: str
    channel: int | None
    due_at: datetime | None
    online_level: str
    fee_required: bool
    paid_online: bool
    e_result: bool
    e_result_required: bool
    received_at: datetime | None
    processed_at: datetime | None  # first 9 (Đã xử lý xong)
    returned_at: datetime | None  # first 10 (Đã trả kết quả)
    supplement_requests: int
    rating: str | None
    rated_at: datetime | None
    first_event_at: datetime
    event_count: int

    @classmethod
    def from_event(cls, e: DossierEvent) -> DossierState:
        received = e.received_at
        if e.status == DossierStatus.RECEIVED:
            received = _least(received, e.event_time)
        return cls(
            dossier_id=e.dossier_id,
            status=e.status,
            status_at=e.event_time,
            last_event_id=e.event_id,
            procedure_code=e.procedure_code,
            agency_code=e.agency_code,
            channel=e.channel,
            due_at=e.due_at,
            online_level=e.online_level,
            fee_required=e.fee_required,
            paid_online=e.paid_online,
            e_result=e.e_result,
            e_result_required=e.e_result_required,
            received_at=received,
            processed_at=e.event_time if e.status == DossierStatus.PROCESSED else None,
            returned_at=e.event_time if e.status == DossierStatus.RETURNED else None,
            supplement_requests=1 if e.status == DossierStatus.SUPPLEMENT_REQUESTED else 0,
            rating=e.rating,
            rated_at=e.event_time if e.rating is not None else None,
            first_event_at=e.event_time,
            event_count=1,
        )

    def merge(self, other: DossierState) -> DossierState:
        """Combine two states of disjoint event sets; commutative and associative."""
        if self.dossier_id != other.dossier_id:
            raise ValueError("cannot merge states of different dossiers")
        mine = (self.status_at, self.status, self.last_event_id)
        theirs = (other.status_at, other.status, other.last_event_id)
        latest = self if mine >= theirs else other
        rated = _later_rated(self, other)
        return replace(
            latest,
            received_at=_least(self.received_at, other.received_at),
            processed_at=_least(self.processed_at, other.processed_at),
            returned_at=_least(self.returned_at, other.returned_at),
            supplement_requests=self.supplement_requests + other.supplement_requests,
            rating=rated.rating if rated else None,
            rated_at=rated.rated_at if rated else None,
            first_event_at=min(self.first_event_at, other.first_event_at),
            event_count=self.event_count + other.event_count,
        )


def fold(events: Iterable[DossierEvent]) -> dict[str, DossierState]:
    """The state of every dossier in ``events``; an event repeated (same ``event_id`` and
    ``event_time``, the storage key) counts once."""
    seen: set[tuple[str, datetime]] = set()
    states: dict[str, DossierState] = {}
    for event in events:
        key = (event.event_id, event.event_time)
        if key in seen:
            continue
        seen.add(key)
        new = DossierState.from_event(event)
        old = states.get(event.dossier_id)
        states[event.dossier_id] = old.merge(new) if old else new
    return states


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _later_rated(a: DossierState, b: DossierState) -> DossierState | None:
    if a.rated_at is None:
        return b if b.rated_at is not None else None
    if b.rated_at is None:
        return a
    return a if (a.rated_at, a.rating or "") >= (b.rated_at, b.rating or "") else b
