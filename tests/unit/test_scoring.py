"""The 766 scoring table and its rules: maxima, targets, empty periods, rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.kpi.scoring import BY_CODE, GROUP_MAX, INDICATORS, group_points, indicator_points

D = Decimal


def test_indicator_maxima_add_up_to_each_group_and_to_100() -> None:
    for group, maximum in GROUP_MAX.items():
        assert sum(i.max_points for i in INDICATORS if i.group == group) == maximum, group
    assert sum(GROUP_MAX.values()) == 100


def test_on_time_ratio_is_linear_and_zero_without_dossiers() -> None:
    on_time = BY_CODE["2.1"]
    assert indicator_points(on_time, 95, 100) == D("19.00")
    assert indicator_points(on_time, 2, 3) == D("13.33")
    assert indicator_points(on_time, 0, 0) == D(0)


def test_partial_credit_reaches_full_marks_at_the_target() -> None:
    satisfaction = BY_CODE["5.4"]  # full 6 points at 90 %
    assert indicator_points(satisfaction, 45, 100) == D("3.00")
    assert indicator_points(satisfaction, 90, 100) == D("6.00")
    assert indicator_points(satisfaction, 99, 100) == D("6.00")
    assert indicator_points(satisfaction, 0, 0) == D(0)


def test_online_payment_rounds_the_percent_first_then_the_points() -> None:
    share = BY_CODE["3.5"]  # 2 points, full at 80 %
    # 1/3 = 33.333…% → 33.33 % → 2 × 33.33 / 80 = 0.83325 → 0.83
    assert indicator_points(share, 1, 3) == D("0.83")
    # 12.4151 % → 12.42 % → 6 × 0.1242 = 0.7452 → 0.75 (unrounded: 0.744906 → 0.74)
    assert indicator_points(BY_CODE["3.6"], 124_151, 1_000_000) == D("0.75")


def test_feedback_indicators_give_full_marks_when_there_was_no_feedback() -> None:
    assert indicator_points(BY_CODE["5.2"], 0, 0) == D(6)
    assert indicator_points(BY_CODE["5.3"], 0, 0) == D(6)


def test_transparency_with_nothing_to_count_has_no_score_rather_than_zero() -> None:
    assert indicator_points(BY_CODE["1.1"], 0, 0) is None
    groups = group_points({"1.1": None, "1.2": None, "2.1": D("18.5")})
    assert groups["transparency"] is None
    assert groups["progress"] == D("18.5")


def test_a_numerator_above_the_denominator_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match=r"2\.1"):
        indicator_points(BY_CODE["2.1"], 5, 4)


@given(st.sampled_from(INDICATORS), st.integers(0, 10_000), st.integers(0, 10_000))
def test_points_stay_between_zero_and_the_indicator_maximum(
    indicator: object, a: int, b: int
) -> None:
    num, den = min(a, b), max(a, b)
    points = indicator_points(indicator, num, den)  # type: ignore[arg-type]
    if points is not None:
        assert D(0) <= points <= indicator.max_points  # type: ignore[attr-defined]


@given(
    st.dictionaries(
        st.sampled_from([i.code for i in INDICATORS]),
        st.tuples(st.integers(0, 500), st.integers(0, 500)),
    )
)
def test_group_points_never_exceed_the_group_maximum(parts: dict[str, tuple[int, int]]) -> None:
    scores = {
        code: indicator_points(BY_CODE[code], min(a, b), max(a, b))
        for code, (a, b) in parts.items()
    }
    for group, value in group_points(scores).items():
        if value is not None:
            assert D(0) <= value <= GROUP_MAX[group]
