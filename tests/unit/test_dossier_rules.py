"""Hand-computed cases of the national on-time rules (766 indicator 2.1), one per rule edge."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ioc.events import DossierEvent
from ioc.kpi.calendar import REPORTING_TZ, Period, WorkCalendar
from ioc.kpi.dossier_rules import DossierFacts, judge
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS

CAL = WorkCalendar(VN_PUBLIC_HOLIDAYS)
_ids = itertools.count()


def vn(m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(2026, m, d, h, mi, tzinfo=REPORTING_TZ)


DUE = vn(3, 20, 17)  # Friday 20 March 2026, 17:00 in Hanoi


def ev(status: int, when: datetime, due: datetime | None = DUE, **kw: object) -> DossierEvent:
    return DossierEvent(
        event_id=f"e{next(_ids)}",
        event_time=when,
        dossier_id="H1",
        status=status,
        procedure_code="1.000001",
        agency_code="SO-01",
        due_at=due,
        **kw,  # type: ignore[arg-type]
    )


MARCH = Period("month", vn(3, 1, 0), vn(4, 1, 0))


def verdict(*events: DossierEvent, period: Period = MARCH, max_days: int | None = None):  # type: ignore[no-untyped-def]
    return judge(DossierFacts.from_events(events), period, CAL, max_legal_days=max_days)


def test_finished_before_due_is_on_time() -> None:
    j = verdict(ev(2, vn(3, 2)), ev(4, vn(3, 3)), ev(9, vn(3, 19)), ev(10, vn(3, 25)))
    assert j.counted and j.finished and j.on_time
    assert j.end == vn(3, 19), "ends at the first 9, not at the later 10"


def test_first_nine_wins_over_an_earlier_ten() -> None:
    # 10 recorded first (a data-entry slip), 9 after due: the 9 is the end, so late.
    j = verdict(ev(2, vn(3, 2)), ev(10, vn(3, 18)), ev(9, vn(3, 23)))
    assert j.end == vn(3, 23) and not j.on_time


def test_late_then_resolved_is_late() -> None:
    j = verdict(ev(2, vn(3, 2)), ev(4, vn(3, 3)), ev(9, vn(3, 24)))
    assert j.finished and not j.on_time and not j.overdue


def test_answered_supplement_waiting_time_is_subtracted() -> None:
    # Due 20 Mar 17:00; waited 10 → 15 Mar (5 days) for the citizen; finished 24 Mar 09:00.
    j = verdict(ev(2, vn(3, 2)), ev(5, vn(3, 10)), ev(4, vn(3, 15)), ev(9, vn(3, 24)))
    assert j.waiting == timedelta(days=5)
    assert j.on_time, "24 Mar − 5 days = 19 Mar ≤ 20 Mar"


def test_unanswered_supplement_request_ends_the_dossier_at_the_request() -> None:
    j = verdict(ev(2, vn(3, 2)), ev(5, vn(3, 10)))
    assert j.end == vn(3, 10) and j.on_time
    assert not j.overdue and not j.at_risk, "the clock stops while the citizen owes papers"


def test_two_supplement_requests_make_the_dossier_late() -> None:
    j = verdict(
        ev(2, vn(3, 2)),
        ev(5, vn(3, 4)),
        ev(4, vn(3, 5)),
        ev(5, vn(3, 6)),
        ev(4, vn(3, 7)),
        ev(9, vn(3, 9)),
    )
    assert j.finished and not j.on_time


def test_withdrawn_and_stopped_dossiers_end_at_that_status() -> None:
    assert verdict(ev(2, vn(3, 2)), ev(7, vn(3, 5))).end == vn(3, 5)
    assert verdict(ev(2, vn(3, 2)), ev(8, vn(3, 25))).on_time is False


def test_paused_then_resumed_ends_at_the_later_result() -> None:
    j = verdict(ev(2, vn(3, 2)), ev(8, vn(3, 5)), ev(4, vn(3, 6)), ev(9, vn(3, 10)))
    assert j.end == vn(3, 10) and j.on_time


def test_never_received_does_not_count() -> None:
    assert not verdict(ev(1, vn(3, 2)), ev(3, vn(3, 3))).counted


def test_rejected_after_reception_counts_and_ends_at_the_rejection() -> None:
    j = verdict(ev(2, vn(3, 2)), ev(3, vn(3, 3)))
    assert j.counted and j.finished and j.end == vn(3, 3)


def test_no_due_time_uses_the_procedures_legal_duration_in_working_days() -> None:
    received = vn(3, 2)  # Monday
    done = vn(3, 13)  # 9 working days later
    assert verdict(ev(2, received, due=None), ev(9, done, due=None), max_days=10).on_time
    assert not verdict(ev(2, received, due=None), ev(9, done, due=None), max_days=8).on_time
    assert verdict(ev(2, received, due=None), ev(9, done, due=None)).on_time, "unknown: not late"


def test_open_dossier_is_judged_at_the_period_end() -> None:
    early = Period("month", vn(3, 1, 0), vn(3, 18, 12))
    late = Period("month", vn(3, 1, 0), vn(3, 23, 12))
    events = (ev(2, vn(3, 2)), ev(4, vn(3, 3)))
    assert verdict(*events, period=early).on_time
    j = verdict(*events, period=late)
    assert not j.on_time and j.overdue


def test_due_within_two_working_days_is_at_risk() -> None:
    # As of Wednesday 18 Mar noon, due Friday 20 Mar 17:00: 2 working days.
    j = verdict(ev(2, vn(3, 2)), period=Period("today", vn(3, 18, 0), vn(3, 18, 12)))
    assert j.at_risk and not j.overdue


def test_dossier_finished_before_the_period_does_not_count() -> None:
    april = Period("month", vn(4, 1, 0), vn(5, 1, 0))
    assert not verdict(ev(2, vn(3, 2)), ev(9, vn(3, 10)), period=april).counted
    # ... but one still open at the start of April does.
    assert verdict(ev(2, vn(3, 2)), ev(9, vn(4, 2)), period=april).counted


def test_midnight_and_month_end_follow_vietnamese_time() -> None:
    # Received 31 Mar 23:30 in Hanoi = 16:30 UTC: a March dossier, not an April one.
    late_night = vn(3, 31, 23, 30)
    assert verdict(ev(2, late_night)).counted
    april = Period("month", vn(4, 1, 0), vn(5, 1, 0))
    assert verdict(ev(2, late_night), period=april).counted, "still open in April"
    assert not verdict(ev(2, vn(4, 1, 0, 1)), period=MARCH).counted


def test_arrival_order_and_repeats_do_not_change_the_verdict() -> None:
    events = [ev(2, vn(3, 2)), ev(5, vn(3, 10)), ev(4, vn(3, 15)), ev(9, vn(3, 24))]
    a = verdict(*events)
    b = verdict(*reversed(events), events[1])
    assert a == b


@given(
    st.lists(
        st.tuples(st.integers(1, 10), st.integers(0, 40 * 24)),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 45 * 24),
)
def test_any_history_gives_a_consistent_verdict(steps: list[tuple[int, int]], as_of_h: int) -> None:
    start = vn(3, 1, 0)
    events = [ev(s, start + timedelta(hours=h)) for s, h in steps]
    period = Period("month", start, start + timedelta(hours=as_of_h))
    j = verdict(*events, period=period)
    if not j.counted:
        return
    assert not (j.overdue and j.at_risk)
    assert not (j.finished and (j.overdue or j.at_risk))
    assert j.waiting >= timedelta(0)
    if j.processing_time is not None:
        assert j.finished
