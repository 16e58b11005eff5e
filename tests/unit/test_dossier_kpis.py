"""Dossier KPIs per agency and subtree: additive counts, ratios in range, 766 points."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ioc.catalogue import Agency, AgencyTree
from ioc.events import DossierEvent
from ioc.kpi.calendar import REPORTING_TZ, Period, WorkCalendar
from ioc.kpi.dossier_kpis import DossierCounts, count_dossier, counts_by_agency, rollup
from ioc.kpi.dossier_rules import DossierFacts
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS

CAL = WorkCalendar(VN_PUBLIC_HOLIDAYS)
_ids = itertools.count()
MARCH = Period(
    "month",
    datetime(2026, 3, 1, tzinfo=REPORTING_TZ),
    datetime(2026, 4, 1, tzinfo=REPORTING_TZ),
)


def vn(d: int, h: int = 9) -> datetime:
    return datetime(2026, 3, d, h, tzinfo=REPORTING_TZ)


def dossier(agency: str, *steps: tuple[int, datetime], **attrs: object) -> DossierFacts:
    dossier_id = f"H{next(_ids)}"
    return DossierFacts.from_events(
        DossierEvent(
            event_id=f"{dossier_id}-{i}",
            event_time=t,
            dossier_id=dossier_id,
            status=s,
            procedure_code="1.000001",
            agency_code=agency,
            due_at=vn(20, 17),
            **attrs,  # type: ignore[arg-type]
        )
        for i, (s, t) in enumerate(steps)
    )


def tree(two_level: bool) -> AgencyTree:
    agencies = [
        Agency("TINH", "Tỉnh", "province"),
        Agency("SO-01", "Sở Tư pháp", "department", "TINH"),
    ]
    if two_level:
        agencies += [
            Agency("XA-001", "Xã A", "commune", "TINH"),
            Agency("XA-002", "Xã B", "commune", "TINH"),
        ]
    else:
        agencies += [
            Agency("HUYEN-01", "Huyện 1", "district", "TINH"),
            Agency("XA-001", "Xã A", "commune", "HUYEN-01"),
            Agency("XA-002", "Xã B", "commune", "HUYEN-01"),
        ]
    return AgencyTree(agencies)


ON_TIME = ((2, vn(2)), (9, vn(10)))
LATE = ((2, vn(2)), (9, vn(25)))
OPEN_OVERDUE = ((2, vn(2)), (4, vn(3)))


def test_channel_online_counts_only_with_an_e_result_where_required() -> None:
    ok = count_dossier(
        dossier("SO-01", *ON_TIME, channel=2, e_result_required=True, e_result=True), MARCH, CAL
    )
    missing = count_dossier(
        dossier("SO-01", *ON_TIME, channel=2, e_result_required=True), MARCH, CAL
    )
    unknown = count_dossier(dossier("SO-01", *ON_TIME, channel=None), MARCH, CAL)
    assert (ok.online, missing.online, missing.online_without_e_result) == (1, 0, 1)
    assert unknown.direct == 1, "no channel counts as direct"


def test_zero_fee_dossiers_are_not_in_the_online_payment_ratio() -> None:
    zero = count_dossier(
        dossier("SO-01", *ON_TIME, fee_required=True, fee_amount=0, paid_online=True), MARCH, CAL
    )
    paid = count_dossier(
        dossier("SO-01", *ON_TIME, fee_required=True, fee_amount=50_000, paid_online=True),
        MARCH,
        CAL,
    )
    assert (zero.fee_bearing, paid.fee_bearing, paid.paid_online) == (0, 1, 1)


def test_satisfaction_subtracts_dissatisfied_and_late_dossiers() -> None:
    counts = (
        count_dossier(dossier("SO-01", *ON_TIME, rating="satisfied"), MARCH, CAL)
        + count_dossier(dossier("SO-01", *ON_TIME, rating="dissatisfied"), MARCH, CAL)
        + count_dossier(dossier("SO-01", *LATE), MARCH, CAL)
        + count_dossier(dossier("SO-01", *ON_TIME), MARCH, CAL)
    )
    assert counts.finished == 4 and counts.satisfied_finished == 2
    # 2/4 = 50 %, full marks at 90 %: 6 × 50 / 90 = 3.33
    assert counts.points()["5.4"] == Decimal("3.33")


def test_province_points_from_hand_counted_dossiers() -> None:
    dossiers = [
        dossier("SO-01", *ON_TIME),
        dossier("XA-001", *ON_TIME),
        dossier("XA-002", *LATE),
        dossier("XA-002", *OPEN_OVERDUE),
    ]
    totals = rollup(tree(False), counts_by_agency(dossiers, MARCH, CAL))
    province = totals["TINH"]
    assert (province.counted, province.on_time, province.overdue) == (4, 2, 1)
    assert province.points()["2.1"] == Decimal("10.00")
    assert totals["HUYEN-01"].counted == 3 and totals["XA-002"].on_time == 0
    assert province.average_processing == timedelta(days=(8 + 8 + 23) / 3)


def test_two_level_and_three_level_trees_give_the_same_province_and_commune_totals() -> None:
    dossiers = [dossier("SO-01", *ON_TIME), dossier("XA-001", *LATE), dossier("XA-002", *ON_TIME)]
    by_agency = counts_by_agency(dossiers, MARCH, CAL)
    three, two = rollup(tree(False), by_agency), rollup(tree(True), by_agency)
    assert three["TINH"] == two["TINH"]
    assert three["XA-001"] == two["XA-001"]
    assert "HUYEN-01" in three and "HUYEN-01" not in two


def test_a_commune_moved_to_another_parent_counts_under_its_new_parent() -> None:
    by_agency = counts_by_agency([dossier("XA-002", *ON_TIME)], MARCH, CAL)
    moved = AgencyTree(
        [
            Agency("TINH", "Tỉnh", "province"),
            Agency("HUYEN-01", "Huyện 1", "district", "TINH"),
            Agency("HUYEN-02", "Huyện 2", "district", "TINH"),
            Agency("XA-002", "Xã B", "commune", "HUYEN-02"),
        ]
    )
    totals = rollup(moved, by_agency)
    assert (totals["HUYEN-01"].counted, totals["HUYEN-02"].counted) == (0, 1)


def test_dossiers_of_unknown_agencies_still_count_for_the_province() -> None:
    totals = rollup(tree(True), counts_by_agency([dossier("PHUONG-99", *ON_TIME)], MARCH, CAL))
    assert totals["TINH"].counted == 1


steps = st.lists(st.tuples(st.integers(1, 10), st.integers(0, 60 * 24)), min_size=1, max_size=6)
attrs = st.fixed_dictionaries(
    {
        "channel": st.sampled_from([None, 1, 2, 3]),
        "fee_required": st.booleans(),
        "fee_amount": st.sampled_from([None, 0, 20_000]),
        "paid_online": st.booleans(),
        "e_result": st.booleans(),
        "e_result_required": st.booleans(),
        "online_level": st.sampled_from(["full", "partial", "none"]),
        "rating": st.sampled_from([None, "satisfied", "dissatisfied"]),
    }
)


def build(history: list[tuple[int, int]], a: dict[str, object]) -> DossierFacts:
    start = datetime(2026, 2, 20, tzinfo=REPORTING_TZ)
    return dossier(
        a.get("agency", "SO-01"),
        *((s, start + timedelta(hours=h)) for s, h in history),  # type: ignore[arg-type]
        **{k: v for k, v in a.items() if k != "agency"},
    )


@given(st.lists(st.tuples(steps, attrs), max_size=15))
def test_ratios_stay_between_zero_and_one_and_points_within_maxima(
    population: list[tuple[list[tuple[int, int]], dict[str, object]]],
) -> None:
    total = sum((count_dossier(build(h, a), MARCH, CAL) for h, a in population), DossierCounts())
    for ratio in (total.on_time_ratio, total.online_share):
        assert ratio is None or 0 <= ratio <= 1
    assert total.on_time <= total.counted and total.overdue + total.finished <= total.counted
    for code, points in total.points().items():
        assert (
            points is None
            or Decimal(0) <= points <= {"2.1": 20, "3.3": 6, "3.6": 6, "4.1": 6, "5.4": 6}[code]
        )


@given(st.lists(st.tuples(steps, attrs), max_size=15), st.integers(1, 30))
def test_received_counts_of_two_halves_add_up_to_the_whole_period(
    population: list[tuple[list[tuple[int, int]], dict[str, object]]], cut_day: int
) -> None:
    facts = [build(h, a) for h, a in population]
    cut = MARCH.start + timedelta(days=cut_day)
    first = Period("month", MARCH.start, cut)
    second = Period("month", cut, MARCH.end)

    def received(period: Period) -> int:
        return sum(count_dossier(f, period, CAL).received_in_period for f in facts)

    assert received(first) + received(second) == received(MARCH)
