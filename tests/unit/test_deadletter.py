"""Dead-letter messages follow their published contract, whatever the refused bytes were."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from ioc.deadletter import DeadLetter

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "deadletter.v1.json").read_text(encoding="utf-8")
)
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
WHEN = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)


def test_a_dead_letter_keeps_its_position_reason_and_original_text() -> None:
    d = DeadLetter("ioc.dossier.v1", 3, 1234, b"H1", b'{"status": 11}', "invalid: x", WHEN)
    message = msgspec.json.decode(d.to_message())
    VALIDATOR.validate(message)
    assert message == {
        "source_topic": "ioc.dossier.v1",
        "partition": 3,
        "offset": 1234,
        "key": "H1",
        "reason": "invalid: x",
        "payload": '{"status": 11}',
        "payload_truncated": False,
        "payload_bytes": 14,
        "received_at": "2026-11-21T08:30:00+00:00",
    }
    assert d.reason_kind == "invalid"


@given(st.binary(max_size=200), st.one_of(st.none(), st.binary(max_size=40)))
def test_any_refused_bytes_give_a_valid_nul_free_message(payload: bytes, key: bytes | None) -> None:
    d = DeadLetter("ioc.security.v1", 0, 7, key, payload, "malformed: broken", WHEN)
    message = msgspec.json.decode(d.to_message())
    VALIDATOR.validate(message)
    assert "\x00" not in message["payload"]
    assert message["key"] is None or "\x00" not in message["key"]


def test_the_digest_tells_apart_different_records_at_a_reused_offset() -> None:
    a = DeadLetter("t", 0, 1, None, b"one", "empty: x", WHEN)
    b = DeadLetter("t", 0, 1, None, b"two", "empty: x", WHEN)
    assert a.digest != b.digest


def test_a_huge_record_is_cut_in_the_message_but_fits_the_broker() -> None:
    huge = b"\x01" * 900_000  # each byte becomes a six-byte JSON escape
    d = DeadLetter("ioc.security.v1", 0, 7, None, huge, "too_large: x", WHEN)
    message = d.to_message()
    assert len(message) < 500_000
    decoded = msgspec.json.decode(message)
    VALIDATOR.validate(decoded)
    assert decoded["payload_truncated"] is True and decoded["payload_bytes"] == 900_000
