"""The current state of a dossier does not depend on arrival order or duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ioc.dossier_state import DossierState, fold
from ioc.events import DossierEvent

T0 = datetime(2026, 3, 30, 16, 30, tzinfo=UTC)  # 23:30 in Asia/Ho_Chi_Minh, month end


def event(i: int, status: int, minutes: int, **kw: object) -> DossierEvent:
    return DossierEvent(
        event_id=f"e{i}",
        event_time=T0 + timedelta(minutes=minutes),
        dossier_id="H1",
        status=status,
        procedure_code="1.000001",
        agency_code="SO-01",
        **kw,  # type: ignore[arg-type]
    )


LIFECYCLE = [
    event(0, 1, 0),
    event(1, 2, 10, channel=2),
    event(2, 4, 20, channel=2),
    event(3, 5, 30, channel=2),
    event(4, 4, 90, channel=2),
    event(5, 9, 120, channel=2, e_result=True),
    event(6, 10, 130, channel=2, e_result=True, rating="satisfied"),
]


def test_in_order_lifecycle_ends_returned_with_its_milestones() -> None:
    state = fold(LIFECYCLE)["H1"]
    assert state.status == 10
    assert state.received_at == T0 + timedelta(minutes=10)
    assert state.processed_at == T0 + timedelta(minutes=120)
    assert state.returned_at == T0 + timedelta(minutes=130)
    assert state.supplement_requests == 1
    assert state.rating == "satisfied"
    assert state.event_count == 7
    assert state.first_event_at == T0


def test_late_arriving_old_event_does_not_roll_back_the_status() -> None:
    state = fold([LIFECYCLE[6], LIFECYCLE[5], LIFECYCLE[2]])["H1"]
    assert state.status == 10
    assert state.processed_at == T0 + timedelta(minutes=120)


def test_duplicate_events_count_once() -> None:
    state = fold(LIFECYCLE + LIFECYCLE[3:5])["H1"]
    assert state.supplement_requests == 1
    assert state.event_count == 7


def test_an_event_id_reused_at_another_time_is_another_event() -> None:
    again = event(3, 5, 45)  # same id as the first supplement request, later time
    state = fold([*LIFECYCLE, again])["H1"]
    assert state.supplement_requests == 2
    assert state.event_count == 8


def test_received_at_from_the_event_field_or_the_received_status_whichever_is_earlier() -> None:
    early = T0 - timedelta(days=1)
    state = fold([event(1, 4, 20, received_at=early), event(2, 2, 10)])["H1"]
    assert state.received_at == early


def test_two_events_at_the_same_instant_resolve_the_same_way_in_any_order() -> None:
    a, b = event(1, 4, 5), event(2, 5, 5)
    assert fold([a, b]) == fold([b, a])
    assert fold([a, b])["H1"].status == 5


def test_merging_states_of_different_dossiers_is_refused() -> None:
    other = DossierState.from_event(
        DossierEvent(
            event_id="x",
            event_time=T0,
            dossier_id="H2",
            status=2,
            procedure_code="p",
            agency_code="a",
        )
    )
    try:
        DossierState.from_event(LIFECYCLE[0]).merge(other)
    except ValueError as exc:
        assert "different dossiers" in str(exc)
    else:
        raise AssertionError("merge of two dossiers must fail")


@given(st.permutations(LIFECYCLE), st.lists(st.sampled_from(LIFECYCLE), max_size=5))
def test_any_arrival_order_with_any_duplicates_gives_the_same_state(
    order: list[DossierEvent], dupes: list[DossierEvent]
) -> None:
    assert fold(order + dupes) == fold(LIFECYCLE)
