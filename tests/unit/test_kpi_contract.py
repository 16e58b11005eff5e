"""``schemas/kpi.v1.json`` is what ``ioc.kpi.v1``, ``kpi_snapshots`` and ``ioc kpi recompute``
carry: every row the snapshot builders produce validates, every shape in the schema is produced,
and the schema's limits are the code's (the 766 maxima come from the scoring table)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator

from ioc.events import SEVERITY_RANK, DossierEvent, SecurityEvent, UptimeEvent
from ioc.kpi.scoring import BY_CODE
from ioc.kpi.snapshot import KpiRow
from ioc.kpi_live import CATEGORIES
from ioc.simulator import ProvinceSimulator
from tests.support.kpi import expected_rows

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "kpi.v1.json"
NOW = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)  # a Saturday, 16:30 in Hà Nội


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@cache
def province_rows() -> tuple[bytes, ...]:
    """Every row of a simulated province's snapshot, as the worker encodes it on the topic."""
    sim = ProvinceSimulator(
        seed=5,
        start=NOW - timedelta(days=4),
        dossiers_per_day=150,
        services=4,
        probe_interval=timedelta(minutes=3),
        security_events_per_minute=3,
    )
    events = sim.advance(NOW - timedelta(minutes=40))  # sources and probes gone quiet since
    values = expected_rows(
        NOW,
        sim,
        [e for e in events if isinstance(e, DossierEvent)],
        [e for e in events if isinstance(e, UptimeEvent)],
        [e for e in events if isinstance(e, SecurityEvent)],
    )
    return tuple(msgspec.json.encode(KpiRow(NOW, *series, v)) for series, v in values.items())


def errors(document: Any) -> list[str]:
    return [e.message for e in validator().iter_errors(document)]


def test_every_row_of_a_simulated_province_follows_the_contract() -> None:
    rows = province_rows()
    assert len(rows) > 300
    bad = [(r[:120], errors(json.loads(r))) for r in rows if errors(json.loads(r))]
    assert bad == []


def test_every_shape_the_contract_describes_is_produced() -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for raw in province_rows():
        row = json.loads(raw)
        seen[row["scope"]].add(row["period"])
    assert seen == {
        "agency": {"today", "month", "quarter", "year", "rolling_24h"},
        "service": {"1h", "24h", "30d", "now"},
        "security_severity": {"5m", "1h", "24h"},
        "security_category": {"5m", "1h", "24h"},
        "security_top": {"24h"},
        "security_source": {"now"},
    }
    assert set(seen) == set(schema()["properties"]["scope"]["enum"])


def test_quiet_sources_and_silent_probes_are_rows_of_the_contract_too() -> None:
    rows = [json.loads(r) for r in province_rows()]
    assert any(r["scope"] == "security_source" and r["values"]["quiet"] for r in rows)
    assert any(r["scope"] == "service" and r["values"].get("silent") for r in rows)


def test_every_value_shape_is_closed_fully_required_and_documented() -> None:
    for name, shape in schema()["$defs"].items():
        assert shape["additionalProperties"] is False, name
        assert set(shape["required"]) == set(shape["properties"]), name
        assert shape["description"], name
        assert all(p.get("description") for p in shape["properties"].values()), name


def test_points_maxima_are_the_scoring_tables() -> None:
    agency = schema()["$defs"]["agency"]["properties"]
    points = {k.removeprefix("points_"): v for k, v in agency.items() if k.startswith("points_")}
    assert points
    for code, prop in points.items():
        assert prop["maximum"] == BY_CODE[code].max_points, code


def test_security_keys_are_the_severity_and_category_names() -> None:
    keys: dict[str, set[str]] = defaultdict(set)
    for raw in province_rows():
        row = json.loads(raw)
        keys[row["scope"]].add(row["key"])
    assert keys["security_severity"] == set(SEVERITY_RANK)
    assert keys["security_category"] == set(CATEGORIES)
    assert keys["security_top"] == {"assets", "agencies"}


def _row(scope: str, period: str, values: dict[str, Any], key: str = "X") -> dict[str, Any]:
    return {
        "taken_at": "2026-11-21T09:30:00Z",
        "scope": scope,
        "key": key,
        "period": period,
        "values": values,
    }


def _valid(scope: str, period: str) -> dict[str, Any]:
    for raw in province_rows():
        row = json.loads(raw)
        if (row["scope"], row["period"]) == (scope, period):
            return row
    raise AssertionError((scope, period))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda r: r.update(scope="weather"), "unknown scope"),
        (lambda r: r.update(period="5m"), "agency rows have calendar periods"),
        (lambda r: r["values"].pop("on_time_ratio"), "a value left out"),
        (lambda r: r["values"].update(extra=1), "an unknown value"),
        (lambda r: r["values"].update(on_time_ratio=1.5), "a ratio above 1"),
        (lambda r: r["values"].update({"points_2.1": 21}), "more points than the indicator has"),
        (lambda r: r.update(taken_at="2026-11-21T16:30:00"), "a time without offset"),
    ],
)
def test_the_contract_refuses_rows_the_pipeline_never_sends(change: Any, why: str) -> None:
    row = _valid("agency", "month")
    assert errors(row) == []
    change(row)
    assert errors(row), why


def test_service_now_and_window_rows_are_told_apart_by_period() -> None:
    now, window = _valid("service", "now"), _valid("service", "30d")
    assert errors({**now, "period": "30d"}) and errors({**window, "period": "now"})
    assert errors(_row("security_top", "24h", {"items": []}, key="services"))
