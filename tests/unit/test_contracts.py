"""The published contracts (``schemas/*.json``) and the code (``ioc.events``) are one contract.

A producer validates against the JSON Schema; the pipeline decodes with the msgspec types and
``EventParser``. If the two drift apart, a producer that follows the published contract gets
its events dead-lettered, or the pipeline accepts what the contract promises to refuse. These
tests pin them together: field lists, required fields, defaults, every range / enum / length /
pattern, every example file, and a property test over generated documents.

What a schema cannot say (event time plausible against the clock) is tested here as a documented
boundary, not as a disagreement.
"""

from __future__ import annotations

import json
import re
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ioc import events
from ioc.clock import ManualClock
from ioc.events import Channel, DossierStatus
from ioc.streams import DEADLETTER_TOPIC, KPI_TOPIC, STREAMS, Stream
from ioc.validation import EventParser, Rejection, TimeBounds

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
EXAMPLES = SCHEMAS / "examples"

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER
ID_BASE = "https://ioc.example/schemas/"

# The one timestamp pattern every schema uses: RFC 3339 with a mandatory Z or ±hh:mm offset.
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)

DEADLETTER = DEADLETTER_TOPIC.removeprefix("ioc.")  # "deadletter.v1"
KPI = KPI_TOPIC.removeprefix("ioc.")  # "kpi.v1": its own tests in test_kpi_contract.py


def contract_name(stream: Stream) -> str:
    """``ioc.dossier.v1`` -> ``dossier.v1``: the topic names its schema and example folder."""
    return stream.topic.removeprefix("ioc.")


CONTRACTS = [contract_name(s) for s in STREAMS]
STREAM_BY_CONTRACT = {contract_name(s): s for s in STREAMS}


@cache
def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name), format_checker=FORMAT_CHECKER)


def parser(stream: Stream) -> EventParser[Any]:
    return EventParser(stream.event_type, ManualClock(NOW))


def example(relative: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / relative).read_bytes())


def example_files(name: str, kind: str) -> list[Path]:
    return sorted((EXAMPLES / name / kind).glob("*.json"))


def example_params(names: list[str], kind: str) -> list[Any]:
    return [
        pytest.param(name, path, id=f"{name}/{kind}/{path.name}")
        for name in names
        for path in example_files(name, kind)
    ]


def struct_fields(stream: Stream) -> dict[str, msgspec.structs.FieldInfo]:
    return {f.name: f for f in msgspec.structs.fields(stream.event_type)}


def resolve(prop: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Merge a local ``$ref`` target with its sibling keywords (siblings are annotations here)."""
    if "$ref" not in prop:
        return prop
    ref = prop["$ref"]
    assert ref.startswith("#/$defs/"), f"only local $defs references are expected, got {ref}"
    target = resolve(root["$defs"][ref.removeprefix("#/$defs/")], root)
    return {**target, **{k: v for k, v in prop.items() if k != "$ref"}}


def is_type_union(prop: dict[str, Any]) -> bool:
    """``anyOf`` of typed alternatives (nullable timestamps), as opposed to ``anyOf`` of formats."""
    return "anyOf" in prop and all("type" in b or "$ref" in b for b in prop["anyOf"])


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# --- one normal form for both sides ------------------------------------------------------------
# A field's accepted values are described as a set of alternatives ("variants"), each a tuple
# naming a JSON kind and its constraints. The schema property and the msgspec type of the same
# field must produce the same set.


def schema_variants(prop: dict[str, Any], root: dict[str, Any]) -> set[tuple[Any, ...]]:
    prop = resolve(prop, root)
    if is_type_union(prop):
        out: set[tuple[Any, ...]] = set()
        for branch in prop["anyOf"]:
            out |= schema_variants(branch, root)
        return out
    out = set()
    for kind in as_list(prop["type"]):
        if kind == "null":
            if "enum" not in prop or None in prop["enum"]:
                out.add(("null",))
        elif "enum" in prop:
            out.add(("enum", frozenset(v for v in prop["enum"] if v is not None)))
        elif kind == "string" and prop.get("format") == "date-time":
            out.add(
                ("datetime", "tz-required" if prop.get("pattern") == TIMESTAMP_PATTERN else prop)
            )
        elif kind == "string":
            out.add(("string", prop.get("minLength"), prop.get("maxLength"), prop.get("pattern")))
        elif kind in ("integer", "number"):
            out.add(
                (
                    kind,
                    prop.get("minimum"),
                    prop.get("maximum"),
                    prop.get("exclusiveMinimum"),
                    prop.get("exclusiveMaximum"),
                    prop.get("multipleOf"),
                )
            )
        elif kind in ("boolean", "object"):
            out.add((kind,))
        else:
            raise AssertionError(f"unexpected JSON type {kind!r}")
    return out


def code_variants(t: mi.Type) -> set[tuple[Any, ...]]:
    match t:
        case mi.UnionType():
            out: set[tuple[Any, ...]] = set()
            for member in t.types:
                out |= code_variants(member)
            return out
        case mi.NoneType():
            return {("null",)}
        case mi.LiteralType():
            return {("enum", frozenset(t.values))}
        case mi.DateTimeType():
            return {("datetime", "tz-required" if t.tz is True else f"tz={t.tz}")}
        case mi.StrType():
            return {("string", t.min_length, t.max_length, t.pattern)}
        case mi.IntType():
            return {("integer", t.ge, t.le, t.gt, t.lt, t.multiple_of)}
        case mi.FloatType():
            return {("number", t.ge, t.le, t.gt, t.lt, t.multiple_of)}
        case mi.BoolType():
            return {("boolean",)}
        case mi.DictType(key_type=mi.StrType()):
            return {("object",)}
        case _:
            raise AssertionError(f"no JSON Schema mapping for {t!r}: extend the contract test")


def code_field_types(stream: Stream) -> dict[str, mi.Type]:
    info = mi.type_info(stream.event_type)
    assert isinstance(info, mi.StructType)
    return {f.name: f.type for f in info.fields}


# --- the schemas themselves --------------------------------------------------------------------


def test_format_checker_really_checks_timestamps_and_addresses() -> None:
    # Without rfc3339-validator, jsonschema silently skips "date-time": every test below would
    # then prove less than it claims.
    assert {"date-time", "ipv4", "ipv6"} <= set(FORMAT_CHECKER.checkers)
    assert not FORMAT_CHECKER.conforms("2026-02-30T10:00:00Z", "date-time")
    assert not FORMAT_CHECKER.conforms("999.1.1.1", "ipv4")


@pytest.mark.parametrize("name", [*CONTRACTS, DEADLETTER, KPI])
def test_every_published_schema_is_a_documented_closed_draft_2020_12_schema(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"{ID_BASE}{name}.json"
    assert schema["title"] and schema["description"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    undocumented = [k for k, p in schema["properties"].items() if not p.get("description")]
    assert undocumented == [], "every property needs a description"
    assert set(schema["required"]) <= set(schema["properties"])


@pytest.mark.parametrize("name", CONTRACTS)
def test_schema_lists_exactly_the_fields_of_the_event_type(name: str) -> None:
    stream = STREAM_BY_CONTRACT[name]
    schema = load_schema(name)
    fields = struct_fields(stream)
    assert list(schema["properties"]) == list(fields), "same fields, in the Struct's order"
    assert set(schema["required"]) == {n for n, f in fields.items() if f.required}


@pytest.mark.parametrize("name", CONTRACTS)
def test_schema_defaults_are_the_values_the_parser_fills_in(name: str) -> None:
    stream = STREAM_BY_CONTRACT[name]
    schema = load_schema(name)
    for field_name, field in struct_fields(stream).items():
        prop = schema["properties"][field_name]
        if field.required:
            assert "default" not in prop, f"{field_name} is required: it has no default"
        else:
            assert field.default_factory is msgspec.NODEFAULT
            assert "default" in prop, f"{field_name} needs a documented default"
            assert prop["default"] == field.default, field_name


@pytest.mark.parametrize(
    ("name", "field_name"),
    [
        pytest.param(name, field_name, id=f"{name}.{field_name}")
        for name in CONTRACTS
        for field_name in code_field_types(STREAM_BY_CONTRACT[name])
    ],
)
def test_schema_constraints_equal_the_event_type_constraints(name: str, field_name: str) -> None:
    schema = load_schema(name)
    code = code_field_types(STREAM_BY_CONTRACT[name])[field_name]
    assert schema_variants(schema["properties"][field_name], schema) == code_variants(code)


def test_dossier_status_and_channel_are_the_national_codes() -> None:
    schema = load_schema("dossier.v1")
    status = schema["properties"]["status"]
    assert set(range(status["minimum"], status["maximum"] + 1)) == {s.value for s in DossierStatus}
    for code in DossierStatus:
        assert f"{code.value} = " in status["description"], f"status {code.value} is undocumented"
    channel = schema["properties"]["channel"]
    assert set(range(channel["minimum"], channel["maximum"] + 1)) == {c.value for c in Channel}
    for code, name in ((1, "trực tiếp"), (2, "trực tuyến"), (3, "bưu chính công ích")):
        assert f"{code} = {name}" in channel["description"]
    level = schema["properties"]["online_level"]["description"]
    assert "full = toàn trình" in level and "partial = một phần" in level


@pytest.mark.parametrize(
    ("name", "field_name", "literal"),
    [
        ("dossier.v1", "online_level", events.OnlineLevel),
        ("dossier.v1", "rating", events.Rating),
        ("uptime.v1", "status", events.ProbeStatus),
        ("uptime.v1", "kind", events.ProbeKind),
        ("security.v1", "severity", events.Severity),
        ("security.v1", "category", events.SecurityCategory),
    ],
)
def test_schema_enums_are_the_code_literals_in_the_same_order(
    name: str, field_name: str, literal: Any
) -> None:
    enum = [v for v in load_schema(name)["properties"][field_name]["enum"] if v is not None]
    assert enum == list(typing.get_args(literal))
    for value in enum:
        assert value in load_schema(name)["properties"][field_name]["description"]


def test_severity_enum_is_listed_from_least_to_most_severe() -> None:
    enum = load_schema("security.v1")["properties"]["severity"]["enum"]
    assert sorted(enum, key=events.SEVERITY_RANK.__getitem__) == enum


def test_address_fields_accept_only_ipv4_or_ipv6_in_the_schema_too() -> None:
    props = load_schema("security.v1")["properties"]
    for field_name in ("src_ip", "dst_ip"):
        assert props[field_name]["anyOf"] == [{"format": "ipv4"}, {"format": "ipv6"}]


@pytest.mark.parametrize("name", [*CONTRACTS, DEADLETTER, KPI])
def test_every_timestamp_in_the_contracts_requires_an_explicit_offset(name: str) -> None:
    schema = load_schema(name)
    timestamps = [
        resolve(p, schema)
        for prop in schema["properties"].values()
        for p in (prop["anyOf"] if is_type_union(prop) else [prop])
        if resolve(p, schema).get("format") == "date-time"
    ]
    assert timestamps, "every contract has at least one timestamp"
    for ts in timestamps:
        assert ts["pattern"] == TIMESTAMP_PATTERN
    pattern = re.compile(TIMESTAMP_PATTERN)
    for good in (
        "2026-11-20T08:00:00+07:00",
        "2026-11-20T01:00:00Z",
        "2026-11-20T01:00:00.5-03:30",
    ):
        assert pattern.search(good), good
    for naive in (
        "2026-11-20T08:00:00",
        "2026-11-20T08:00:00+07",
        "2026-11-20",
        "2026-11-20T08:00Z",
    ):
        assert not pattern.search(naive), naive


@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: s.name)
def test_kafka_key_field_is_a_required_documented_property(stream: Stream) -> None:
    schema = load_schema(contract_name(stream))
    assert stream.key_field in schema["required"]
    assert (
        f"Kafka partition key of {stream.topic}"
        in schema["properties"][stream.key_field]["description"]
    )


# --- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONTRACTS)
def test_each_stream_publishes_enough_realistic_examples(name: str) -> None:
    schema = load_schema(name)
    valid = [json.loads(p.read_text(encoding="utf-8")) for p in example_files(name, "valid")]
    invalid = example_files(name, "invalid")
    assert len(valid) >= 3 and len(invalid) >= 5
    optional = set(schema["properties"]) - set(schema["required"])
    for field_name in optional:
        assert any(field_name in doc for doc in valid), f"no valid example shows {field_name}"
        assert any(field_name not in doc for doc in valid), f"no valid example omits {field_name}"
    times = [doc["event_time"] for doc in valid]
    assert any(t.endswith("Z") for t in times), "a valid example in UTC (Z)"
    assert any(t.endswith("+07:00") for t in times), "a valid example in Vietnam time (+07:00)"
    for t in times:
        when = datetime.fromisoformat(t)
        assert NOW - timedelta(days=5 * 366) <= when <= NOW, f"{t} is not a recent past time"


@pytest.mark.parametrize(("name", "path"), example_params(CONTRACTS, "valid"))
def test_published_schema_and_parser_both_accept_every_valid_example(name: str, path: Path) -> None:
    payload = path.read_bytes()
    doc = json.loads(payload)
    errors = [e.message for e in validator(name).iter_errors(doc)]
    assert errors == []
    event = parser(STREAM_BY_CONTRACT[name]).parse(payload)
    assert not isinstance(event, Rejection), event.reason
    assert msgspec.to_builtins(event).keys() >= doc.keys()


def offending_field(path: Path) -> str:
    """Invalid examples are named ``<offending field>-<why>.json``."""
    return path.stem.split("-", 1)[0]


@pytest.mark.parametrize(("name", "path"), example_params(CONTRACTS, "invalid"))
def test_published_schema_and_parser_both_reject_every_invalid_example(
    name: str, path: Path
) -> None:
    payload = path.read_bytes()
    assert not validator(name).is_valid(json.loads(payload)), "the schema accepts it"
    outcome = parser(STREAM_BY_CONTRACT[name]).parse(payload)
    assert isinstance(outcome, Rejection), "the parser accepts it"


@pytest.mark.parametrize(("name", "path"), example_params(CONTRACTS, "invalid"))
def test_rejection_reason_names_the_offending_field(name: str, path: Path) -> None:
    field_name = offending_field(path)
    doc = json.loads(path.read_bytes())
    known = field_name in load_schema(name)["properties"]
    assert known or field_name in doc, f"{path.name}: name it <offending field>-<why>.json"

    reason = parser(STREAM_BY_CONTRACT[name]).parse(path.read_bytes())
    assert isinstance(reason, Rejection)
    assert reason.reason.startswith("invalid: ")
    if known and field_name in doc:  # a bad value: msgspec gives the JSON path
        assert f"`$.{field_name}`" in reason.reason
    else:  # a missing or unknown field: msgspec names it at the top level
        assert f"`{field_name}`" in reason.reason

    errors = list(validator(name).iter_errors(doc))
    assert errors
    for error in errors:  # one fault per example, and the schema points at it too
        at_field = list(error.absolute_path)[:1] == [field_name]
        assert at_field or repr(field_name) in error.message, error.message


@pytest.mark.parametrize(("kind", "expected"), [("valid", True), ("invalid", False)])
def test_dead_letter_examples_follow_the_dead_letter_schema(kind: str, expected: bool) -> None:
    paths = example_files(DEADLETTER, kind)
    assert paths
    for path in paths:
        doc = json.loads(path.read_bytes())
        assert validator(DEADLETTER).is_valid(doc) is expected, path.name
        if not expected:
            field_name = offending_field(path)
            for error in validator(DEADLETTER).iter_errors(doc):
                assert (
                    list(error.absolute_path)[:1] == [field_name]
                    or repr(field_name) in error.message
                )


def test_parser_refuses_implausible_event_times_that_no_schema_can_express() -> None:
    doc = example("uptime.v1/valid/qlvb-heartbeat-required-fields-only.json")
    bounds = TimeBounds()
    for when in (
        NOW + bounds.max_ahead + timedelta(minutes=1),
        NOW - bounds.max_age - timedelta(days=1),
    ):
        doc["event_time"] = when.isoformat()
        assert validator("uptime.v1").is_valid(doc)
        outcome = parser(STREAM_BY_CONTRACT["uptime.v1"]).parse(json.dumps(doc).encode())
        assert isinstance(outcome, Rejection)
        assert outcome.reason.startswith("implausible_time: ")
        assert "`$.event_time`" in outcome.reason


def test_parser_refuses_nul_characters_that_the_database_cannot_store() -> None:
    doc = example("security.v1/valid/soc-malware-required-fields-only.json")
    doc["message"] = "trojan dropped\x00"
    assert validator("security.v1").is_valid(doc), "the schema leaves NUL to the parser"
    assert "U+0000" in load_schema("security.v1")["description"], "and says so"
    outcome = parser(STREAM_BY_CONTRACT["security.v1"]).parse(json.dumps(doc).encode())
    assert isinstance(outcome, Rejection)
    assert outcome.reason.startswith("invalid: ")


def test_text_that_merely_mentions_backslash_u0000_is_accepted() -> None:
    doc = example("security.v1/valid/soc-malware-required-fields-only.json")
    doc["message"] = "WAF blocked null-byte injection: GET /index.php?file=shell.php\\u0000.jpg"
    assert "\x00" not in doc["message"]
    assert validator("security.v1").is_valid(doc)
    outcome = parser(STREAM_BY_CONTRACT["security.v1"]).parse(json.dumps(doc).encode())
    assert not isinstance(outcome, Rejection), outcome.reason
    assert outcome.message == doc["message"]


def test_event_id_with_a_trailing_newline_is_refused_as_the_schema_says() -> None:
    doc = example("uptime.v1/valid/qlvb-heartbeat-required-fields-only.json")
    # Python's re (jsonschema, msgspec) lets `$` match before a final newline; ECMA-262, the
    # schema's regex dialect, does not. The parser must side with the published meaning.
    doc["event_id"] = "qlvb-agent-01/hb/1795581600\n"
    assert not re.search(r"^[A-Za-z0-9._:@/-]+$(?![\s\S])", doc["event_id"])
    outcome = parser(STREAM_BY_CONTRACT["uptime.v1"]).parse(json.dumps(doc).encode())
    assert isinstance(outcome, Rejection)
    assert "`$.event_id`" in outcome.reason


# --- property test: schema validity == parser acceptance ---------------------------------------
# Documents are built from each schema's own choices: in-range and out-of-range numbers, enum
# members and near misses, strings at and past their length limits, timestamps with and without
# offsets, real and bogus IP addresses, wrong JSON types, missing and unknown fields.

# No NUL: a parser-only rule, tested above.
TEXT = 'aăâbdđeêghiklmnoôơpqrstuưvxyàảãáạềểễếệọộớờởỡợữựỹ ABCĐ0123456789.-_/:@#,\n\t"\\😀'
# Text that only looks like a NUL escape once serialised: the parser must not be fooled.
NUL_LOOKALIKES = ["shell.php\\u0000.jpg", "\\\\u0000", "C:\\", "\\u00000"]
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(TEXT, max_size=8)
)
WRONG_TYPE = {
    "string": [7, 1.5, True, [], {}],
    "integer": ["4", 1.5, True, [], {}],
    "number": ["1.5", True, [], {}],
    "boolean": [0, 1, "true", [], {}],
    "object": ["{}", 1, [], True],
}
NOT_ADDRESSES = [
    "999.1.1.1",
    "10.0.0.256",
    "01.2.3.4",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.4 ",
    "",
    "::g",
    "1::2::3",
    "fe80::1%eth0",
    "localhost",
    "١.٢.٣.٤",
]
OFFSETS = [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3, minutes=-30))]
# Times inside the parser's plausibility window; the boundary itself is tested above.
# (Hypothesis takes naive bounds and attaches the zone itself.)
PLAUSIBLE = st.datetimes(
    min_value=datetime(2017, 1, 1, tzinfo=UTC).replace(tzinfo=None),
    max_value=NOW.replace(tzinfo=None),
    timezones=st.just(UTC),
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    when = draw(PLAUSIBLE).astimezone(draw(st.sampled_from(OFFSETS)))
    text = when.isoformat()
    style = draw(st.sampled_from(["offset", "Z", "lowercase"]))
    if style != "offset" and text.endswith("+00:00"):
        text = text.removesuffix("+00:00") + "Z"
    return text.lower() if style == "lowercase" else text


@st.composite
def bad_timestamps(draw: st.DrawFn) -> str:
    text = draw(timestamps())
    return draw(
        st.sampled_from(
            [
                re.sub(r"([Zz]|[+-]\d\d:\d\d)$", "", text),  # naive
                re.sub(r":(\d\d)$", "", text) if text[-6] in "+-" else text[:-1] + "+07",  # ±hh
                text[:10],  # a date only
                "2026-02-29T10:00:00+07:00",  # not a leap year
                "2026-11-20T24:00:00Z",
                "2026-11-20T23:59:60Z",  # leap second: neither side takes it
                "2026-11-20T10:00:00+24:00",
                "2026-11-20T10:00Z",
                "hôm qua",
            ]
        )
    )


def branches(prop: dict[str, Any], root: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """A property's non-null alternatives, and whether null is allowed."""
    prop = resolve(prop, root)
    if is_type_union(prop):
        alts = [resolve(b, root) for b in prop["anyOf"]]
        return [a for a in alts if a.get("type") != "null"], any(
            a.get("type") == "null" for a in alts
        )
    kinds = as_list(prop["type"])
    return [{**prop, "type": k} for k in kinds if k != "null"], "null" in kinds


@st.composite
def with_foreign_character(draw: st.DrawFn, pattern: str, max_size: int) -> str:
    """A string matching ``pattern`` with one character it does not allow slipped in."""
    text = draw(st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) < max_size))
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.sampled_from(" #ễ\t+,")) + text[at:]


def good_value(alt: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = alt["type"]
    if "enum" in alt:
        return st.sampled_from([v for v in alt["enum"] if v is not None])
    if alt.get("format") == "date-time":
        return timestamps()
    if "anyOf" in alt:  # IP address formats
        return st.ip_addresses().map(str)
    if kind == "string":
        lo, hi = alt.get("minLength", 0), alt["maxLength"]
        if "pattern" in alt:
            return st.from_regex(alt["pattern"], fullmatch=True).filter(
                lambda s: lo <= len(s) <= hi
            )
        return st.one_of(
            st.text(TEXT, min_size=lo, max_size=min(hi, 24)),
            st.just("ễ" * hi),
            st.sampled_from([t for t in NUL_LOOKALIKES if lo <= len(t) <= hi]),
        )
    if kind == "integer":
        lo = alt["minimum"]
        hi = alt.get("maximum", lo + 10**12)
        return st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi))
    if kind == "number":
        lo = alt["minimum"]
        return st.one_of(
            st.just(lo),
            st.floats(lo, 1e7, allow_nan=False, allow_infinity=False),
            st.integers(lo, 10**7),
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "object":
        return st.dictionaries(st.text(TEXT, max_size=8), JSON_SCALARS, max_size=4)
    raise AssertionError(kind)


@st.composite
def bad_value(draw: st.DrawFn, alt: dict[str, Any], nullable: bool) -> Any:
    """A value just outside what ``alt`` allows: mostly at the boundary, sometimes a wrong type."""
    kind = alt["type"]
    wrong_types = WRONG_TYPE[kind] if nullable else [*WRONG_TYPE[kind], None]
    # Hypothesis favours the first choice of a sampled_from: make it the interesting one.
    if draw(st.sampled_from(["edge", "edge", "edge", "wrong type"])) == "wrong type":
        return draw(st.sampled_from(wrong_types))
    if "enum" in alt:
        members = [v for v in alt["enum"] if v is not None]
        near = [m.upper() for m in members] + [m.replace("_", " ") for m in members if "_" in m]
        return draw(st.one_of(st.sampled_from(near), st.text(TEXT, max_size=10)))
    if alt.get("format") == "date-time":
        return draw(bad_timestamps())
    if "anyOf" in alt:
        return draw(st.sampled_from(NOT_ADDRESSES))
    if kind == "string":
        lo, hi = alt.get("minLength", 0), alt["maxLength"]
        lengths = st.sampled_from(["a" * (hi + 1), "ễ" * (hi + 1), *([""] if lo else [])])
        if "pattern" in alt and draw(st.booleans()) is False:
            return draw(with_foreign_character(alt["pattern"], hi))
        return draw(lengths)
    if kind in ("integer", "number"):
        lo, hi = alt["minimum"], alt.get("maximum")
        step = 1 if kind == "integer" else draw(st.sampled_from([1, 0.5, 1e-9]))
        edges = [lo - step, *([hi + step] if hi is not None else [])]
        if draw(st.booleans()) is False:
            return draw(st.sampled_from(edges))
        beyond = draw(st.integers(1, 2**40))
        return draw(st.sampled_from([lo - beyond, *([hi + beyond] if hi is not None else [])]))
    return draw(st.sampled_from(wrong_types))  # booleans, objects: only the type can be wrong


def field_value(prop: dict[str, Any], root: dict[str, Any], bad: bool) -> st.SearchStrategy[Any]:
    alts, nullable = branches(prop, root)
    if bad:
        return st.one_of([bad_value(a, nullable) for a in alts])
    return st.one_of([*(good_value(a) for a in alts), *([st.none()] if nullable else [])])


@cache
def field_strategy(name: str, field_name: str, bad: bool) -> st.SearchStrategy[Any]:
    """Built once per field: constructing strategies costs more than drawing from them."""
    schema = load_schema(name)
    return field_value(schema["properties"][field_name], schema, bad)


@st.composite
def documents(draw: st.DrawFn, name: str, focus: str) -> dict[str, Any]:
    """A document that is valid, or has one fault in ``focus`` (the common case, so that no other
    fault hides it), or misses a required field, or has an unknown one, or several faults."""
    schema = load_schema(name)
    props = list(schema["properties"])
    plan = draw(st.sampled_from(["none", "focus", "focus", "focus", "missing", "unknown", "more"]))
    faulty: set[str] = set()
    if plan == "focus":
        faulty = {focus}
    elif plan == "more":
        faulty = {focus} | draw(st.sets(st.sampled_from(props), min_size=1, max_size=3))
    missing = None
    if plan == "missing":
        missing = (
            focus if focus in schema["required"] else draw(st.sampled_from(schema["required"]))
        )
    doc: dict[str, Any] = {}
    for field_name in props:
        if field_name in faulty:
            doc[field_name] = draw(field_strategy(name, field_name, bad=True))
        elif field_name == missing:
            continue
        elif field_name in schema["required"] or field_name == focus or draw(st.booleans()):
            doc[field_name] = draw(field_strategy(name, field_name, bad=False))
    if plan == "unknown":
        doc[draw(st.sampled_from(["extra", "ma_ho_so", "Status", "status ", "eventId"]))] = 1
    return doc


@pytest.mark.parametrize(
    ("name", "focus"),
    [
        pytest.param(name, field_name, id=f"{name}.{field_name}")
        for name in CONTRACTS
        for field_name in load_schema(name)["properties"]
    ],
)
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_schema_validity_equals_parser_acceptance_for_generated_documents(
    name: str, focus: str, data: st.DataObject
) -> None:
    doc = data.draw(documents(name, focus), label="document")
    payload = json.dumps(doc, ensure_ascii=False).encode()
    schema_errors = [e.message for e in validator(name).iter_errors(json.loads(payload))]
    outcome = parser(STREAM_BY_CONTRACT[name]).parse(payload)
    parser_reason = outcome.reason if isinstance(outcome, Rejection) else None
    assert (schema_errors == []) == (parser_reason is None), (schema_errors, parser_reason)


@settings(max_examples=500, deadline=None, database=None)
@given(
    text=st.one_of(
        timestamps(),
        bad_timestamps(),
        st.from_regex(TIMESTAMP_PATTERN, fullmatch=True),
        st.text("0123456789-:+.TZtz ", max_size=30),
    )
)
def test_timestamp_pattern_alone_keeps_out_naive_and_malformed_times(text: str) -> None:
    """Many validators treat ``format`` as a mere annotation: the pattern must then do the work.

    Only impossible calendar dates (30 February, year 0) need the format check as well.
    """
    by_pattern = re.search(TIMESTAMP_PATTERN, text) is not None
    by_format = FORMAT_CHECKER.conforms(text, "date-time")
    try:
        msgspec.json.decode(json.dumps(text).encode(), type=events.AwareDatetime)
        by_parser = True
    except msgspec.ValidationError:
        by_parser = False
    assert by_parser == (by_pattern and by_format)
    if by_pattern and not by_parser:
        with pytest.raises(ValueError):
            date.fromisoformat(text[:10])
