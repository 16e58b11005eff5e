"""Bad records get a precise, categorised reason; nothing raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from ioc.batch import RawRecord, split_batch
from ioc.clock import ManualClock
from ioc.events import DossierEvent, SecurityEvent
from ioc.validation import EventParser, Rejection, TimeBounds

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
clock = ManualClock(NOW)
dossiers = EventParser(DossierEvent, clock)
security = EventParser(SecurityEvent, clock)

GOOD = (
    b'{"event_id":"e1","event_time":"2026-11-21T08:00:00+07:00","dossier_id":"H1",'
    b'"status":4,"procedure_code":"1.000001","agency_code":"SO-01","channel":2}'
)


def test_a_valid_dossier_event_is_accepted_with_its_timezone() -> None:
    event = dossiers.parse(GOOD)
    assert isinstance(event, DossierEvent)
    assert event.event_time == datetime(2026, 11, 21, 1, tzinfo=UTC)


def reason(parser: EventParser, payload: bytes | None) -> str:  # type: ignore[type-arg]
    result = parser.parse(payload)
    assert isinstance(result, Rejection), result
    return result.reason


def test_rejection_reasons_name_the_problem_and_the_field() -> None:
    assert reason(dossiers, GOOD.replace(b'"status":4', b'"status":11')).startswith("invalid:")
    assert "$.status" in reason(dossiers, GOOD.replace(b'"status":4', b'"status":11'))
    assert "timezone" in reason(dossiers, GOOD.replace(b"+07:00", b""))
    assert reason(dossiers, GOOD[:-1]).startswith("malformed:")
    assert reason(dossiers, None).startswith("empty:")
    assert "unknown field" in reason(dossiers, GOOD[:-1] + b',"colour":"red"}').lower()


def test_event_times_far_in_the_future_are_implausible() -> None:
    soon = GOOD.replace(b"2026-11-21T08:00:00+07:00", b"2026-11-21T19:30:00+07:00")
    assert isinstance(dossiers.parse(soon), DossierEvent), "30 min ahead is clock skew, fine"
    future = GOOD.replace(b"2026-11-21T08:00:00+07:00", b"2026-11-22T08:00:00+07:00")
    assert reason(dossiers, future).startswith("implausible_time:")
    ancient = GOOD.replace(b"2026-11-21", b"1999-11-21")
    assert reason(dossiers, ancient).startswith("implausible_time:")


def test_security_addresses_must_be_ip_addresses() -> None:
    base = (
        b'{"event_id":"s1","event_time":"2026-11-21T10:00:00Z","source":"ids",'
        b'"severity":"high","category":"intrusion","src_ip":"%s"}'
    )
    assert isinstance(security.parse(base % b"2001:db8::1"), SecurityEvent)
    assert "$.src_ip" in reason(security, base % b"999.1.1.1")


def test_nul_characters_are_refused_before_they_reach_the_database() -> None:
    assert reason(dossiers, GOOD.replace(b'"H1"', b'"H\\u00001"')).startswith("invalid:")


def test_a_bad_record_does_not_spoil_its_batch() -> None:
    records = [
        RawRecord("ioc.dossier.v1", 0, 10, b"H1", GOOD),
        RawRecord("ioc.dossier.v1", 0, 11, b"H1", b"{"),
        RawRecord("ioc.dossier.v1", 1, 5, b"H2", GOOD.replace(b'"e1"', b'"e2"')),
    ]
    valid, dead = split_batch(dossiers, records, NOW)
    assert [(c.partition, c.offset) for c in valid] == [(0, 10), (1, 5)]
    assert [(d.partition, d.offset, d.reason_kind) for d in dead] == [(0, 11, "malformed")]
    message = msgspec.json.decode(dead[0].to_message())
    assert message["payload"] == "{" and message["source_topic"] == "ioc.dossier.v1"


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    result = dossiers.parse(payload)
    assert isinstance(result, Rejection | DossierEvent)


def test_events_older_than_the_streams_retention_are_refused_not_silently_dropped() -> None:
    bounds = TimeBounds.for_retention(30, timedelta(hours=1))
    parser = EventParser(SecurityEvent, clock, bounds)
    base = (
        b'{"event_id":"s1","event_time":"%s","source":"ids",'
        b'"severity":"high","category":"intrusion"}'
    )
    assert isinstance(parser.parse(base % b"2026-10-25T00:00:00Z"), SecurityEvent)
    assert reason(parser, base % b"2026-10-20T00:00:00Z").startswith("expired:")
