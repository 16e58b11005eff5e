"""What the acknowledgement API accepts from people: every refusal names the field and the
reason, anything a client can send is either accepted or refused that way (never a crash),
and what it accepts the evaluator accepts too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.alerts.actions import QueuedAction, apply_actions
from ioc.alerts.lifecycle import AlertBook
from ioc.api.alerts import (
    BodyError,
    CommentBody,
    DeniedAuditBound,
    ResolveBody,
    SilenceBody,
    decode_body,
    silence_params,
)
from ioc.cli_alerts import parse_duration

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội


def refused(raw: bytes | str, kind: type[Any]) -> str:
    with pytest.raises(BodyError) as info:
        decode_body(raw.encode() if isinstance(raw, str) else raw, kind)
    return str(info.value)


def test_an_empty_body_is_an_acknowledgement_without_comment() -> None:
    assert decode_body(b"", CommentBody) == CommentBody()
    assert decode_body(b"  \n", CommentBody) == CommentBody()
    assert decode_body('{"comment": "đang xử lý"}'.encode(), CommentBody).comment == "đang xử lý"


def test_unknown_fields_are_refused_by_name() -> None:
    assert refused('{"comment": "x", "user": "admin"}', CommentBody) == (
        "Object contains unknown field `user`"
    )


def test_comments_are_bounded_but_kept_verbatim() -> None:
    assert refused(msgspec.json.encode({"comment": "x" * 2001}), CommentBody) == (
        "Expected `str` of length <= 2000 - at `$.comment`"
    )
    odd = "'; DROP TABLE alerts; --\t\x1b[31m\r\n\x07"
    assert decode_body(msgspec.json.encode({"comment": odd}), CommentBody).comment == odd
    assert "NUL" in refused('{"comment": "a\\u0000b"}', CommentBody)


def test_resolving_needs_a_reason() -> None:
    assert refused(b"", ResolveBody) == "Object missing required field `comment`"
    assert refused('{"comment": "  "}', ResolveBody) == (
        "say why: the comment must not be blank - at `$.comment`"
    )
    assert refused('{"comment": 3}', ResolveBody) == "Expected `str`, got `int` - at `$.comment`"


def test_not_json_or_not_an_object() -> None:
    assert refused(b"\xff", CommentBody) == "JSON is malformed: invalid character (byte 0)"
    assert refused(b'{"comment": "\xff"}', CommentBody).startswith("'utf-8' codec can't decode")
    assert refused(b"[1]", CommentBody) == "Expected `object`, got `array`"
    assert refused(b"{", CommentBody) == "Input data was truncated"


def silence(**fields: Any) -> SilenceBody:
    body = {
        "matchers": ['service_id="portal"'],
        "ends_at": "2026-11-20T10:00:00+07:00",
        "comment": "nâng cấp cổng",
        **fields,
    }
    return decode_body(msgspec.json.encode(body), SilenceBody)


def silence_refused(now: datetime = NOW, **fields: Any) -> str:
    with pytest.raises(BodyError) as info:
        body = silence(**fields)
        silence_params(body.matchers, body.starts_at, body.ends_at, now)
    return str(info.value)


def test_silence_times_need_an_offset() -> None:
    assert silence_refused(ends_at="2026-11-20T10:00:00") == (
        "Expected `datetime` with a timezone component - at `$.ends_at`"
    )
    assert silence_refused(starts_at="2026-11-20T09:00:00") == (
        "Expected `datetime` with a timezone component - at `$.starts_at`"
    )
    assert (
        silence_refused(ends_at="tomorrow") == "Invalid RFC3339 encoded datetime - at `$.ends_at`"
    )


def test_silence_must_end_after_it_starts_and_in_the_future() -> None:
    assert silence_refused(
        starts_at="2026-11-20T10:00:00+07:00", ends_at="2026-11-20T09:00:00+07:00"
    ) == ("a silence must end after it starts - at `$.ends_at`")
    assert silence_refused(now=NOW + timedelta(days=1)) == (
        "a silence must end after it starts - at `$.ends_at`"
    )
    assert silence_refused(now=NOW + timedelta(days=1), starts_at="2026-11-20T01:00:00+07:00") == (
        "a silence must end in the future - at `$.ends_at`"
    )


def test_bad_matchers_are_named_by_position() -> None:
    assert silence_refused(matchers=['a="1"', "no matcher here"]) == (
        "not a label matcher: 'no matcher here' (expected name=value, name=~regex…)"
        " - at `$.matchers[1]`"
    )
    assert silence_refused(matchers=['site=~"dc-("']).startswith(
        "bad regular expression in 'site=~\"dc-(\"'"
    )
    assert silence_refused(matchers=[]) == ("Expected `array` of length >= 1 - at `$.matchers`")
    assert silence_refused(matchers=["a=" + "x" * 300]) == (
        "Expected `str` of length <= 256 - at `$.matchers[0]`"
    )


def test_a_silence_that_would_mute_everything_is_refused() -> None:
    for matchers in (['team=""'], ['alertname=~".*"'], ['severity!="critical"', 'x=~".*"']):
        assert "would mute every alert" in silence_refused(matchers=matchers)
    silence_params(['team=""', 'site="dc-1"'], None, NOW + timedelta(hours=1), NOW)


def test_what_the_api_accepts_the_evaluator_applies() -> None:
    body = silence(matchers=['service_id="portal"', "site=~dc-.*"])
    params = silence_params(body.matchers, body.starts_at, body.ends_at, NOW)
    assert params["matchers"] == ['service_id="portal"', 'site=~"dc-.*"']
    action = QueuedAction(
        id=1, action="silence", target=None, user_name="an", comment=body.comment, params=params
    )
    applied = apply_actions(AlertBook(), [action], NOW, lambda: "s1")
    assert applied.outcomes[0].status == "done", applied.outcomes[0].result
    added = applied.silences_added[0]
    assert added.ends_at == datetime(2026, 11, 20, 10, tzinfo=timezone(timedelta(hours=7)))
    assert [str(m) for m in added.matchers] == params["matchers"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(
    json_values,
    st.text(max_size=40),
    st.lists(st.text(max_size=30), max_size=4),
    st.datetimes(timezones=st.none() | st.just(UTC)).map(lambda d: d.isoformat()),
    st.sampled_from(['a="b"', 'x=~"(("', 'x=~".*"', "k!~v", '="x"', "a=\x00", ""]),
)
bodies = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(["matchers", "ends_at", "starts_at", "comment", "other"]),
        field_values,
        max_size=5,
    ),
)


@settings(max_examples=400, deadline=None)
@given(body=bodies, kind=st.sampled_from([CommentBody, ResolveBody, SilenceBody]))
def test_any_json_body_is_accepted_or_refused_with_a_reason(body: Any, kind: type[Any]) -> None:
    raw = msgspec.json.encode(body)
    try:
        decoded = decode_body(raw, kind)
        if isinstance(decoded, SilenceBody):
            silence_params(decoded.matchers, decoded.starts_at, decoded.ends_at, NOW)
    except BodyError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200), kind=st.sampled_from([CommentBody, ResolveBody, SilenceBody]))
def test_any_bytes_are_accepted_or_refused_with_a_reason(raw: bytes, kind: type[Any]) -> None:
    try:
        decode_body(raw, kind)
    except BodyError as exc:
        assert str(exc)


def test_denied_requests_are_audited_within_bounds() -> None:
    t = [0.0]
    bound = DeniedAuditBound(per_remote=2, total=3, clock=lambda: t[0])
    assert [bound.admit("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert bound.admit("10.0.0.2") is True
    assert bound.admit("10.0.0.3") is False  # the minute's total is spent
    assert len(bound.counts) <= 3
    t[0] = 60.0
    assert bound.admit("10.0.0.1") is True  # a new minute


def test_durations() -> None:
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1d12h30m") == timedelta(days=1, hours=12, minutes=30)
    for bad in ("", "2", "h", "2x", "0m", "-1h", "1h two"):
        with pytest.raises(ValueError):
            parse_duration(bad)
