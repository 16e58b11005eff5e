"""The agency tree and procedure catalogue: reference sizes, tree invariants, clear errors."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.catalogue import (
    PROVINCE_CODE,
    Agency,
    AgencyTree,
    build_procedures,
    build_province,
)


def test_reference_province_has_18_departments_8_districts_and_145_communes() -> None:
    tree = build_province(7)

    assert dict(tree.levels) == {"province": 1, "department": 18, "district": 8, "commune": 145}
    assert tree.root.code == PROVINCE_CODE
    assert tree.depth == 3
    assert not tree.is_two_level
    assert tree["SO-01"].level == "department"
    assert tree["HUYEN-08"].level == "district"
    assert tree["XA-145"].level == "commune"


def test_three_level_communes_roll_up_through_their_district_to_the_province() -> None:
    tree = build_province(7)

    for commune in tree.by_level("commune"):
        chain = tree.ancestors(commune.code)
        assert [a.level for a in chain] == ["district", "province"]  # nearest first
        assert commune.code in tree.subtree(chain[0].code)
    assert sum(len(tree.children(d.code)) for d in tree.by_level("district")) == 145


def test_two_level_province_puts_communes_directly_under_the_province() -> None:
    tree = build_province(7, two_level=True)

    assert dict(tree.levels) == {"province": 1, "department": 18, "commune": 145}
    assert tree.is_two_level
    assert tree.depth == 2
    assert all(tree.ancestors(c.code) == (tree.root,) for c in tree.by_level("commune"))


def test_district_subtree_is_the_district_and_its_communes() -> None:
    tree = build_province(3)
    district = tree["HUYEN-02"]

    subtree = tree.subtree(district.code)

    assert subtree[0] == district.code
    assert set(subtree[1:]) == {c.code for c in tree.children(district.code)}
    assert tree.subtree(PROVINCE_CODE) == tuple(a.code for a in tree)
    assert tree.ancestors(PROVINCE_CODE) == ()


def test_same_seed_builds_the_same_province_and_codes_do_not_depend_on_the_seed() -> None:
    assert list(build_province(11)) == list(build_province(11))
    assert [a.code for a in build_province(11, two_level=True)] == [
        a.code for a in build_province(12, two_level=True)
    ]


def test_agency_names_are_vietnamese_and_unique_among_communes() -> None:
    tree = build_province(5)
    names = [c.name for c in tree.by_level("commune")]

    assert len(set(names)) == len(names)
    assert all(re.match(r"^(Xã|Phường|Thị trấn) ", n) for n in names)
    assert all(d.name.startswith(("Huyện", "Thành phố")) for d in tree.by_level("district"))


def test_unknown_agency_code_raises_a_clear_key_error() -> None:
    tree = build_province(1)

    with pytest.raises(KeyError, match="XA-999"):
        tree.ancestors("XA-999")
    assert tree.get("XA-999") is None
    assert "XA-999" not in tree


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(-(2**31), 2**31),
    two_level=st.booleans(),
    departments=st.integers(0, 25),
    districts=st.integers(1, 12),
    communes=st.integers(0, 300),
)
def test_any_province_size_builds_a_consistent_tree(
    seed: int, two_level: bool, departments: int, districts: int, communes: int
) -> None:
    tree = build_province(
        seed, two_level=two_level, departments=departments, districts=districts, communes=communes
    )

    codes = [a.code for a in tree]
    assert len(codes) == len(set(codes)) == len(tree)
    assert set(tree.subtree(PROVINCE_CODE)) == set(codes)
    assert tree.levels.get("commune", 0) == communes
    assert tree.levels.get("department", 0) == departments
    assert tree.levels.get("district", 0) == (0 if two_level else districts)
    for agency in tree:
        for child in tree.children(agency.code):
            assert child.parent_code == agency.code
        chain = tree.ancestors(agency.code)
        assert (chain[-1] if chain else agency) == tree.root


def _agencies(*rows: tuple[str, str, str | None]) -> list[Agency]:
    levels = {"T": "province", "S": "department", "H": "district", "X": "commune"}
    return [Agency(code, code, levels[code[0]], parent) for code, _, parent in rows]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ((("T", "", None), ("S1", "", "T"), ("S1", "", "T")), "duplicate agency code 'S1'"),
        ((("T", "", None), ("X1", "", "H9")), "parent 'H9', which is not in the tree"),
        ((("T", "", None), ("T2", "", None)), "exactly one root; found 'T', 'T2'"),
        ((("H1", "", "X1"), ("X1", "", "H1")), "exactly one root; found none"),
        ((("T", "", None), ("H1", "", "X1"), ("X1", "", "H1")), "cycle"),
        ((("S1", "", None), ("X1", "", "S1")), "must be at level 'province'"),
        ((("T", "", None), ("T2", "", "T")), "only the root may be at level 'province'"),
        ((), "exactly one root"),
    ],
)
def test_invalid_agency_tree_is_refused_with_a_clear_message(
    rows: tuple[tuple[str, str, str | None], ...], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        AgencyTree(_agencies(*rows))


def test_unknown_agency_level_is_refused() -> None:
    bad = Agency("Q1", "Quận 1", "ward", "T")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown level 'ward'"):
        AgencyTree([Agency("T", "Tỉnh", "province"), bad])


def test_catalogue_has_1937_procedures_1539_province_281_district_117_commune() -> None:
    procedures = build_procedures(7)

    assert len(procedures) == 1937
    assert Counter(p.level for p in procedures) == {
        "province": 1539,
        "district": 281,
        "commune": 117,
    }


def test_procedure_codes_are_unique_national_style_codes() -> None:
    codes = [p.code for p in build_procedures(7)]

    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[12]\.00\d{4}", c) for c in codes)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(-(2**31), 2**31))
def test_procedure_mix_is_realistic_for_any_seed(seed: int) -> None:
    procedures = build_procedures(seed)
    n = len(procedures)
    online = Counter(p.online_level for p in procedures)

    assert 0.38 <= online["full"] / n <= 0.42
    assert 0.33 <= online["partial"] / n <= 0.37
    assert 0.28 <= sum(p.fee_required for p in procedures) / n <= 0.32
    assert all(p.max_days >= 1 for p in procedures)
    full = [p for p in procedures if p.online_level == "full"]
    assert sum(p.e_result_required for p in full) / len(full) > 0.8


def test_same_seed_builds_the_same_procedures() -> None:
    assert build_procedures(3) == build_procedures(3)
    assert build_procedures(3) != build_procedures(4)
