"""``schemas/alerts.v1.json`` is what ``ioc.alerts.v1`` and ``alert_events.record`` carry: every
state change the real lifecycle (:class:`~ioc.alerts.lifecycle.AlertBook`) records validates,
every kind the contract lists is produced, the schema's fields, enums and limits are the code's,
and the published examples are exactly what the code writes (valid) or never writes (invalid).

"updated" changes (more evidence for an open alert) are not state changes: ``save_cycle`` writes
no ``alert_events`` row for them, so they never reach the topic and the contract refuses them.
"""

from __future__ import annotations

import json
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ioc.alerts.lifecycle import AlertBook
from ioc.alerts.model import (
    EVIDENCE_CAP,
    Alert,
    AlertChange,
    AlertState,
    ChangeKind,
    Signal,
)
from ioc.alerts.notices import plan_notifications
from ioc.alerts.routing import InhibitRule, Matcher, Route, Silence
from ioc.events import Severity

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "schemas" / "alerts.v1.json"
EXAMPLES = ROOT / "schemas" / "examples" / "alerts.v1"
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội
VN = timezone(timedelta(hours=7))
PUBLISHED_KINDS = [k for k in typing.get_args(ChangeKind) if k != "updated"]

SECURITY = Route(
    name="security",
    matchers=(Matcher.parse('team="security"'),),
    receivers=("alertmanager", "soc-phone"),
    group_by=("alertname",),
    escalate_after=timedelta(minutes=15),
    escalate_to=("ciso-mail",),
)
OPERATIONS = Route(
    name="operations",
    matchers=(Matcher.parse('team="ops"'),),
    receivers=("alertmanager", "ops-mail"),
    group_by=("alertname", "site"),
)
NETWORK_MUTES_SITE = InhibitRule(
    source=(Matcher.parse('alertname="network-down"'),),
    target=(Matcher.parse('alertname="service-down"'),),
    equal=("site",),
)
RECEIVER_KINDS = {
    "alertmanager": "alertmanager",
    "soc-phone": "webhook",
    "ciso-mail": "mail",
    "ops-mail": "mail",
}


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(schema(), format_checker=FORMAT_CHECKER)


def errors(document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator().iter_errors(document)]


def record(change: AlertChange) -> Any:
    """The change as ``save_cycle`` stores it and ``_publish`` sends it."""
    return msgspec.json.decode(msgspec.json.encode(change))


def example_files(kind: str) -> list[Path]:
    return sorted((EXAMPLES / kind).glob("*.json"))


class Evaluator:
    """The evaluator's cycle without the database: the book's changes, then the notifications
    planned from them (which record in the book whom each alert was told)."""

    def __init__(self, *, routes: tuple[Route, ...], inhibit: tuple[InhibitRule, ...] = ()):
        self.book = AlertBook(routes, inhibit)  # real occurrence ids (uuid4)
        self.changes: list[AlertChange] = []

    def cycle(self, changes: list[AlertChange], now: datetime) -> list[AlertChange]:
        plan_notifications(changes, self.book, RECEIVER_KINDS, now, lambda: str(uuid.uuid4()))
        self.changes += changes
        return changes

    def published(self) -> list[AlertChange]:
        return [c for c in self.changes if c.kind != "updated"]


# --- the schema and the code types -------------------------------------------------------------


def test_format_checker_really_checks_timestamps_and_uuids() -> None:
    assert {"date-time", "uuid"} <= set(FORMAT_CHECKER.checkers)
    assert not FORMAT_CHECKER.conforms("2026-02-30T10:00:00Z", "date-time")
    assert not FORMAT_CHECKER.conforms("2026-11-20T08:00:00", "date-time")
    assert not FORMAT_CHECKER.conforms("not-a-uuid", "uuid")


def test_schema_is_a_documented_closed_draft_2020_12_schema() -> None:
    s = schema()
    Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["$id"] == "https://ioc.example/schemas/alerts.v1.json"
    assert s["title"] and s["description"]
    for shape in (s, s["$defs"]["alert"]):
        assert shape["type"] == "object"
        assert shape["additionalProperties"] is False
        assert shape["description"]
        undocumented = [k for k, p in shape["properties"].items() if not p.get("description")]
        assert undocumented == [], "every property needs a description"
    assert "Kafka partition key of ioc.alerts.v1" in s["properties"]["fingerprint"]["description"]


@pytest.mark.parametrize(("path", "struct"), [((), AlertChange), (("$defs", "alert"), Alert)])
def test_schema_lists_every_field_of_the_struct_in_order_all_required(
    path: tuple[str, ...], struct: type[msgspec.Struct]
) -> None:
    shape = schema()
    for key in path:
        shape = shape[key]
    fields = [f.name for f in msgspec.structs.fields(struct)]
    assert list(shape["properties"]) == fields, "same fields, in the Struct's order"
    # msgspec writes every field, defaults included: a consumer may rely on each being present.
    assert shape["required"] == fields


def test_enums_are_the_code_literals_in_the_same_order() -> None:
    top, alert = schema()["properties"], schema()["$defs"]["alert"]["properties"]
    assert top["kind"]["enum"] == PUBLISHED_KINDS
    assert "updated" not in top["kind"]["enum"]
    assert alert["state"]["enum"] == list(typing.get_args(AlertState))
    severities = list(typing.get_args(Severity))
    assert alert["severity"]["enum"] == severities
    assert alert["labels"]["properties"]["severity"]["enum"] == severities
    for kind in PUBLISHED_KINDS:
        assert kind in top["kind"]["description"], kind
    for state in typing.get_args(AlertState):
        assert state in alert["state"]["description"], state


def test_evidence_limit_is_the_lifecycle_cap() -> None:
    assert schema()["$defs"]["alert"]["properties"]["evidence"]["maxItems"] == EVIDENCE_CAP


# --- examples ----------------------------------------------------------------------------------


def test_examples_show_the_main_kinds_in_utc_and_vietnam_time() -> None:
    valid = [json.loads(p.read_bytes()) for p in example_files("valid")]
    assert {"fired", "acknowledged", "resolved"} <= {doc["kind"] for doc in valid}
    assert any(doc["at"].endswith("Z") for doc in valid)
    assert any(doc["at"].endswith("+07:00") for doc in valid)
    assert any(doc["actor"] and doc["comment"] for doc in valid if doc["kind"] == "acknowledged")
    assert len(example_files("invalid")) >= 5


@pytest.mark.parametrize("path", example_files("valid"), ids=lambda p: p.name)
def test_valid_example_follows_the_contract_and_is_exactly_what_the_code_writes(
    path: Path,
) -> None:
    raw = path.read_bytes()
    doc = json.loads(raw)
    assert errors(doc) == []
    change = msgspec.json.decode(raw, type=AlertChange)  # strict: the code's own type
    assert record(change) == doc, "the example is not in the form msgspec writes"
    assert doc["fingerprint"] == doc["alert"]["fingerprint"]
    assert doc["at"] == doc["alert"]["updated_at"]


def offending_path(path: Path) -> list[str]:
    """Invalid examples are named ``<offending field>-<why>.json``, nested fields dotted."""
    return path.stem.split("-", 1)[0].split(".")


@pytest.mark.parametrize("path", example_files("invalid"), ids=lambda p: p.name)
def test_invalid_example_is_refused_at_the_field_its_name_gives(path: Path) -> None:
    doc = json.loads(path.read_bytes())
    found = list(validator().iter_errors(doc))
    assert found, "the schema accepts it"
    field = offending_path(path)
    for error in found:  # one fault per example, and the schema points at it
        at = list(error.absolute_path)
        at_field = at[: len(field)] == field
        named_by_parent = at == field[:-1] and repr(field[-1]) in error.message
        assert at_field or named_by_parent, (at, error.message)


# --- what the real lifecycle records -----------------------------------------------------------


def intrusion(at: datetime, firing: bool = True) -> Signal:
    return Signal(
        rule="intrusion",
        group={"src_ip": "203.0.113.7"},
        firing=firing,
        at=at,
        severity="critical",
        summary="Xâm nhập từ 203.0.113.7 vào Cổng dịch vụ công",
        labels={"team": "security"},
        evidence=(f"wazuh:{at.timestamp():.0f}",),
        value=3.0,
        received_at=at + timedelta(milliseconds=120),
    )


def service_down(firing: bool = True) -> Signal:
    return Signal(
        rule="service-down",
        group={"service_id": "motcua", "site": "dc-tinh"},
        firing=firing,
        at=T0,
        severity="high",
        summary="Một cửa điện tử không phản hồi",
        labels={"team": "ops"},
    )


def network_down(firing: bool = True) -> Signal:
    return Signal(
        rule="network-down",
        group={"site": "dc-tinh"},
        firing=firing,
        at=T0,
        severity="critical",
        summary="Mất kết nối mạng tại dc-tinh",
        labels={"team": "ops"},
    )


@cache
def lifecycle_changes() -> tuple[AlertChange, ...]:
    """One security shift: every kind of change the lifecycle records, in Hà Nội time."""
    ev = Evaluator(routes=(SECURITY, OPERATIONS), inhibit=(NETWORK_MUTES_SITE,))
    book = ev.book
    t = T0.astimezone(VN)
    ev.cycle(book.apply(intrusion(T0), t), t)
    ev.cycle(book.apply(intrusion(T0 + timedelta(minutes=1)), t + timedelta(minutes=1)), t)
    fp = intrusion(T0).fingerprint
    ev.cycle(book.tick(t + timedelta(minutes=16)), t + timedelta(minutes=16))  # escalated
    ev.cycle(book.acknowledge(fp, "nguyen.van.an", "Đang chặn IP", t + timedelta(minutes=18)), t)
    ev.cycle(book.unacknowledge(fp, "nguyen.van.an", "Chuyển ca", t + timedelta(minutes=20)), t)
    silence = Silence(
        id=str(uuid.uuid4()),
        matchers=(Matcher.parse('team="security"'),),
        starts_at=t + timedelta(minutes=21),
        ends_at=t + timedelta(hours=2),
        author="tran.thi.binh",
        comment="Kiểm thử xâm nhập theo kế hoạch",
    )
    ev.cycle(book.add_silence(silence, t + timedelta(minutes=22)), t)
    ev.cycle(book.expire_silence(silence.id, "tran.thi.binh", t + timedelta(minutes=40)), t)
    ev.cycle(book.apply(service_down(), t + timedelta(minutes=41)), t)
    worse = msgspec.structs.replace(service_down(), severity="critical")
    ev.cycle(book.apply(worse, t + timedelta(minutes=41)), t)  # severity_raised
    ev.cycle(book.apply(network_down(), t + timedelta(minutes=42)), t)  # inhibits service-down
    ev.cycle(book.apply(network_down(False), t + timedelta(minutes=50)), t)  # uninhibited
    down = service_down().fingerprint
    ev.cycle(book.resolve(down, "le.van.cuong", "Đã khởi động lại", t + timedelta(minutes=55)), t)
    ev.cycle(book.apply(intrusion(T0 + timedelta(hours=1), False), t + timedelta(hours=1)), t)
    return tuple(ev.changes)


def test_every_state_change_of_the_lifecycle_follows_the_contract() -> None:
    changes = lifecycle_changes()
    published = [c for c in changes if c.kind != "updated"]
    assert [c.kind for c in changes if c.kind == "updated"], "the scenario adds evidence too"
    bad = [(c.kind, errors(record(c))) for c in published if errors(record(c))]
    assert bad == []
    assert {c.kind for c in published} == set(PUBLISHED_KINDS), "every kind is produced"


def test_what_the_descriptions_promise_holds_for_the_lifecycle() -> None:
    published = [record(c) for c in lifecycle_changes() if c.kind != "updated"]
    for doc in published:
        alert = doc["alert"]
        assert doc["fingerprint"] == alert["fingerprint"]
        assert doc["at"] == alert["updated_at"]
        assert (alert["state"] == "resolved") == (doc["kind"] == "resolved")
        assert alert["labels"]["alertname"] == alert["rule"]
        assert alert["labels"]["severity"] == alert["severity"]
    resolved = [d for d in published if d["kind"] == "resolved"]
    by_hand = [d for d in resolved if d["actor"] is not None]
    assert by_hand and all(d["actor"] == d["alert"]["resolved_by"] for d in by_hand)
    automatic = [d for d in resolved if d["actor"] is None]
    assert automatic and all(d["alert"]["resolved_by"] is None for d in automatic)
    assert all(d["alert"]["ends_at"] for d in resolved)
    fired = [d for d in published if d["kind"] == "fired"]
    assert all(d["alert"]["notified"] == [] for d in fired)
    security = [d for d in resolved if d["alert"]["rule"] == "intrusion"]
    assert security[0]["alert"]["notified"] == ["alertmanager", "soc-phone", "ciso-mail"]
    ids = {d["alert"]["id"] for d in published if d["alert"]["rule"] == "intrusion"}
    assert len(ids) == 1, "one occurrence keeps one id from fired to resolved"


def test_updated_changes_are_refused_only_for_their_kind() -> None:
    updated = [record(c) for c in lifecycle_changes() if c.kind == "updated"]
    assert updated
    for doc in updated:
        assert [list(e.absolute_path) for e in validator().iter_errors(doc)] == [["kind"]]
        assert errors({**doc, "kind": "fired"}) == []


def test_the_contract_refuses_what_the_lifecycle_never_records() -> None:
    doc = next(record(c) for c in lifecycle_changes() if c.kind == "acknowledged")
    assert errors(doc) == []
    for change, why in [
        ({"alert": {**doc["alert"], "state": "firing"}}, "acknowledged but firing"),
        ({"alert": {**doc["alert"], "acknowledged_by": None}}, "acknowledged by nobody"),
        ({"alert": {**doc["alert"], "ends_at": doc["at"]}}, "open with an end"),
        ({"kind": "escalated"}, "escalated but acknowledged"),
        ({"kind": "silenced"}, "silenced by no silence"),
        ({"kind": "resolved", "actor": None}, "resolved but open"),
        ({"alert": {**doc["alert"], "inhibited_by": ["not-a-fingerprint"]}}, "bad inhibitor"),
        ({"alert": {**doc["alert"], "notified": ["alertmanager"] * 2}}, "told twice"),
    ]:
        assert errors({**doc, **change}), why


# --- a property over generated signals ---------------------------------------------------------

VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợ"
    "ùủũúụừửữứựỳỷỹýỵĐĂÂÊÔƠƯ .,:-/()0123456789"
)
texts = st.one_of(st.text(alphabet=VIETNAMESE, max_size=40), st.text(max_size=20))
label_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
# A few groups recur, so alerts gain evidence, resolve and fire again; others are one-offs.
group_values = st.sampled_from(["Sở Tư pháp", "UBND huyện Đông Anh", "dc-tinh", "10.0.0.7"]) | texts
groups = st.dictionaries(
    st.sampled_from(["site", "agency_code", "src_ip"]), group_values, max_size=2
)
ZONES = [UTC, VN, timezone(timedelta(hours=-3, minutes=-30))]


@st.composite
def signals(draw: st.DrawFn) -> Signal:
    return Signal(
        rule=draw(st.sampled_from(["network-down", "brute-force-ssh", "service-down"])),
        group=draw(groups | st.dictionaries(label_names, texts, max_size=2)),
        firing=draw(st.sampled_from([True, True, True, False])),  # mostly firing
        # hypothesis takes naive bounds and adds one of the zones
        at=draw(
            st.datetimes(
                min_value=datetime(2026, 1, 1),  # noqa: DTZ001
                max_value=datetime(2026, 12, 31),  # noqa: DTZ001
                timezones=st.sampled_from(ZONES),
            )
        ),
        severity=draw(st.sampled_from(typing.get_args(Severity))),
        summary=draw(texts),
        labels=draw(st.dictionaries(label_names, texts, max_size=3)),
        evidence=tuple(draw(st.lists(st.text(min_size=1, max_size=30), max_size=EVIDENCE_CAP + 5))),
        value=draw(st.none() | st.floats() | st.integers(-(10**6), 10**6).map(float)),
        received_at=draw(st.none() | st.just(T0)),
    )


ACTIONS = ["none", "acknowledge", "unacknowledge", "resolve", "silence", "tick"]
steps = st.lists(
    st.tuples(signals(), st.sampled_from(ACTIONS), st.integers(0, 40), texts, texts),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=steps, zone=st.sampled_from(ZONES))
def test_every_published_change_of_generated_signals_follows_the_contract(
    steps: list[tuple[Signal, str, int, str, str]], zone: timezone
) -> None:
    route = Route(
        name="all",
        receivers=("alertmanager", "soc-phone"),
        group_by=("alertname", "severity"),
        escalate_after=timedelta(minutes=10),
        escalate_to=("ciso-mail",),
    )
    ev = Evaluator(routes=(route,), inhibit=(NETWORK_MUTES_SITE,))
    book = ev.book
    now = T0.astimezone(zone)
    for signal, action, minutes, user, comment in steps:
        now += timedelta(minutes=minutes)
        ev.cycle(book.apply(signal, now), now)
        fp = signal.fingerprint
        if action == "tick":  # long enough to escalate what still fires
            now += timedelta(minutes=11)
            ev.cycle(book.tick(now), now)
        elif action == "silence":
            silence = Silence(
                id=str(uuid.uuid4()),
                matchers=(Matcher("alertname", "=", signal.rule),),
                starts_at=now,
                ends_at=now + timedelta(minutes=30),
                author=user,
                comment=comment,
            )
            ev.cycle(book.add_silence(silence, now), now)
        elif action != "none" and book.alerts:  # a person acts on an open alert
            target = fp if fp in book.alerts else sorted(book.alerts)[minutes % len(book.alerts)]
            act = getattr(book, action)
            ev.cycle(act(target, user, comment or None, now), now)
    for change in ev.published():
        doc = record(change)
        assert errors(doc) == [], (change.kind, doc)
