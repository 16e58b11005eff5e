"""Dossier KPIs per agency, per agency subtree and for the province, and their 766 points.

Counts are additive (:meth:`DossierCounts.__add__`), so an agency subtree is the sum of its
agencies and a province the sum of everything; ratios and points are derived from counts
last, never averaged. The per-dossier rules are in :mod:`ioc.kpi.dossier_rules`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from decimal import Decimal

from ioc.catalogue import AgencyTree
from ioc.events import Channel
from ioc.kpi.calendar import Period, WorkCalendar
from ioc.kpi.dossier_rules import DossierFacts, judge
from ioc.kpi.scoring import BY_CODE, indicator_points


@dataclass(frozen=True, slots=True)
class DossierCounts:
    """Additive counts of one set of dossiers over one period."""

    counted: int = 0  # received or in process in the period (2.1 denominator)
    on_time: int = 0  # 2.1 numerator
    received_in_period: int = 0  # received inside the period (additive over time splits)
    finished: int = 0
    overdue: int = 0
    at_risk: int = 0
    processing_seconds: float = 0.0  # summed over finished dossiers (end − received − waiting)
    direct: int = 0  # channel 1 or none
    online: int = 0  # channel 2 with an e-result where the procedure requires one
    online_without_e_result: int = 0  # channel 2, e-result required but missing: not online
    postal: int = 0  # channel 3
    full_online_eligible: int = 0  # dossiers of procedures eligible for toàn trình
    full_online: int = 0  # ... submitted online
    fee_bearing: int = 0  # financial obligation, zero-fee excluded (3.6 denominator)
    paid_online: int = 0
    e_result_required: int = 0  # 4.1 denominator
    e_result_issued: int = 0
    dissatisfied: int = 0  # finished dossiers rated dissatisfied
    late_finished: int = 0  # finished dossiers not on time

    def __add__(self, other: DossierCounts) -> DossierCounts:
        return DossierCounts(*[getattr(self, n) + getattr(other, n) for n in _FIELDS])

    def __sub__(self, other: DossierCounts) -> DossierCounts:
        return DossierCounts(*[getattr(self, n) - getattr(other, n) for n in _FIELDS])

    @property
    def on_time_ratio(self) -> float | None:
        return self.on_time / self.counted if self.counted else None

    @property
    def online_share(self) -> float | None:
        total = self.direct + self.online + self.online_without_e_result + self.postal
        return self.online / total if total else None

    @property
    def average_processing(self) -> timedelta | None:
        return timedelta(seconds=self.processing_seconds / self.finished) if self.finished else None

    @property
    def satisfied_finished(self) -> int:
        """5.4 numerator: finished minus dissatisfied minus late (complaints are not in
        the dossier stream yet), never below zero."""
        return max(0, self.finished - self.dissatisfied - self.late_finished)

    def points(self) -> dict[str, Decimal | None]:
        """Projected 766 points of the indicators the dossier stream can compute."""
        channels = self.direct + self.online + self.online_without_e_result + self.postal
        return {
            "2.1": indicator_points(BY_CODE["2.1"], self.on_time, self.counted),
            "3.3": indicator_points(BY_CODE["3.3"], self.online, channels),
            "3.6": indicator_points(BY_CODE["3.6"], self.paid_online, self.fee_bearing),
            "4.1": indicator_points(BY_CODE["4.1"], self.e_result_issued, self.e_result_required),
            "5.4": indicator_points(BY_CODE["5.4"], self.satisfied_finished, self.finished),
        }


_FIELDS = tuple(f.name for f in fields(DossierCounts))
EMPTY = DossierCounts()
MaxLegalDays = Callable[[str], int | None]


def count_dossier(
    facts: DossierFacts,
    period: Period,
    calendar: WorkCalendar,
    max_legal_days: MaxLegalDays = lambda _code: None,
    at_risk_working_days: int = 2,
) -> DossierCounts:
    """One dossier's contribution to its agency's counts for ``period``."""
    j = judge(
        facts,
        period,
        calendar,
        max_legal_days=max_legal_days(facts.latest.procedure_code),
        at_risk_working_days=at_risk_working_days,
    )
    received = facts.received_at
    received_in_period = int(received is not None and period.contains(received))
    if not j.counted:
        # Reception counts are kept apart from the 2.1 rules, so they add up over time.
        return DossierCounts(received_in_period=received_in_period)
    d = facts.latest
    channel = d.channel or Channel.DIRECT
    online_ok = channel == Channel.ONLINE and (d.e_result or not d.e_result_required)
    fee_bearing = d.fee_required and d.fee_amount != 0
    return DossierCounts(
        counted=1,
        on_time=int(j.on_time),
        received_in_period=received_in_period,
        finished=int(j.finished),
        overdue=int(j.overdue),
        at_risk=int(j.at_risk),
        processing_seconds=j.processing_time.total_seconds() if j.processing_time else 0.0,
        direct=int(channel == Channel.DIRECT),
        online=int(online_ok),
        online_without_e_result=int(channel == Channel.ONLINE and not online_ok),
        postal=int(channel == Channel.POSTAL),
        full_online_eligible=int(d.online_level == "full"),
        full_online=int(d.online_level == "full" and channel == Channel.ONLINE),
        fee_bearing=int(fee_bearing),
        paid_online=int(fee_bearing and d.paid_online),
        e_result_required=int(d.e_result_required),
        e_result_issued=int(d.e_result_required and d.e_result),
        dissatisfied=int(j.finished and d.rating == "dissatisfied"),
        late_finished=int(j.finished and not j.on_time),
    )


def counts_by_agency(
    dossiers: Iterable[DossierFacts],
    period: Period,
    calendar: WorkCalendar,
    max_legal_days: MaxLegalDays = lambda _code: None,
    at_risk_working_days: int = 2,
) -> dict[str, DossierCounts]:
    """Counts per receiving agency (the agency of each dossier's latest event)."""
    out: dict[str, DossierCounts] = {}
    for facts in dossiers:
        c = count_dossier(facts, period, calendar, max_legal_days, at_risk_working_days)
        if c != EMPTY:
            code = facts.latest.agency_code
            out[code] = out.get(code, DossierCounts()) + c
    return out


def rollup(tree: AgencyTree, by_agency: Mapping[str, DossierCounts]) -> dict[str, DossierCounts]:
    """Counts of every agency's subtree (itself and everything under it), province included.

    Dossiers of agencies the tree does not know are added to the province only, so the
    province total always equals the sum of all dossiers.
    """
    out: dict[str, DossierCounts] = {}
    for agency in tree:
        total = DossierCounts()
        for code in tree.subtree(agency.code):
            total = total + by_agency.get(code, DossierCounts())
        out[agency.code] = total
    unknown = [c for code, c in by_agency.items() if code not in tree]
    root = tree.root.code
    for c in unknown:
        out[root] = out[root] + c
    return out
