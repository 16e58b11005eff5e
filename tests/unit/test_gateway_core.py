"""The gateway's pure core: rates and token buckets, integration scopes and syslog owners,
and the item reader that answers every pushed item (accepted, or rejected with a pointer)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.clock import ManualClock
from ioc.gateway.integrations import (
    Integration,
    check_name,
    parse_networks,
    parse_streams,
    syslog_owner,
)
from ioc.gateway.items import (
    Accepted,
    ItemReader,
    Rejected,
    formats_of,
    rejection_parts,
    split_items,
    split_lines,
)
from ioc.gateway.ratelimit import Rate, TokenBucket, retry_after_seconds

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def soc(**kw: object) -> Integration:
    fields: dict[str, object] = {
        "name": "soc-tinh",
        "streams": frozenset({"security", "uptime", "dossier"}),
        "rate": 100.0,
        "burst": 1000.0,
    }
    fields.update(kw)
    return Integration(**fields)  # type: ignore[arg-type]


# -- rates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("500/s", 500), ("30000/min", 500), ("3600/h", 1), ("0.5/s", 0.5), (" 10 / second ", 10)],
)
def test_rates_are_read_in_any_unit(text: str, per_second: float) -> None:
    assert Rate.parse(text).per_second == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["500", "fast", "0/s", "-1/s", "5/day", "1e3/s", ""])
def test_bad_rates_say_what_a_rate_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match=r"500/s|positive"):
        Rate.parse(text)


def test_bucket_takes_whole_requests_or_nothing_and_says_how_long_to_wait() -> None:
    t = [0.0]
    bucket = TokenBucket(rate=10, burst=20, clock=lambda: t[0])
    assert bucket.take(15) == 0
    assert bucket.take(10) == pytest.approx(0.5)  # 5 left, 5 more take half a second
    assert bucket.tokens == pytest.approx(5)  # the refused request took nothing
    t[0] = 0.5
    assert bucket.take(10) == 0
    assert math.isinf(bucket.take(21))  # never fits the burst
    assert retry_after_seconds(0.01) == 1 and retry_after_seconds(1.2) == 2


@given(
    rate=st.floats(1, 1000),
    burst=st.floats(1, 5000),
    steps=st.lists(st.tuples(st.floats(0, 2), st.integers(1, 500)), max_size=60),
)
def test_a_bucket_never_admits_more_than_its_burst_plus_its_rate(
    rate: float, burst: float, steps: list[tuple[float, int]]
) -> None:
    t = [0.0]
    bucket = TokenBucket(rate, burst, clock=lambda: t[0])
    admitted = 0
    for dt, n in steps:
        t[0] += dt
        wait = bucket.take(n)
        if wait == 0:
            admitted += n
        else:
            assert wait > 0
    assert admitted <= burst + rate * t[0] + 1e-6


def test_reconfigured_bucket_keeps_earned_tokens_within_the_new_burst() -> None:
    t = [0.0]
    bucket = TokenBucket(rate=10, burst=100, clock=lambda: t[0])
    bucket.reconfigure(rate=1, burst=30)
    assert bucket.tokens == 30 and bucket.take(31) == math.inf


# -- integrations ------------------------------------------------------------------------


def test_names_streams_and_networks_are_checked() -> None:
    assert check_name("wazuh-mgr-01") == "wazuh-mgr-01"
    for bad in ("", "Wazuh", "-x", "a b", "x" * 65, "đà-nẵng"):
        with pytest.raises(ValueError):
            check_name(bad)
    assert parse_streams(["security", " uptime "]) == {"security", "uptime"}
    with pytest.raises(ValueError, match="logs"):
        parse_streams(["security", "logs"])
    with pytest.raises(ValueError):
        parse_streams([])
    assert [str(n) for n in parse_networks(["10.0.0.5", "10.1.0.0/16", "fd00::/8"])] == [
        "10.0.0.5/32",
        "10.1.0.0/16",
        "fd00::/8",
    ]
    with pytest.raises(ValueError, match="not an address"):
        parse_networks(["10.0.0.300"])


def test_syslog_sender_belongs_to_the_narrowest_block_with_security() -> None:
    net = parse_networks
    lan = soc(name="soc-lan", syslog_sources=net(["10.20.0.0/16"]))
    fw = soc(name="fw-01", syslog_sources=net(["10.20.1.5/32"]))
    probes = soc(name="probes", streams=frozenset({"uptime"}), syslog_sources=net(["10.30.0.0/16"]))
    everyone = [lan, fw, probes]
    assert syslog_owner(everyone, "10.20.1.5") is fw
    assert syslog_owner(everyone, "10.20.9.9") is lan
    assert syslog_owner(everyone, "::ffff:10.20.1.5") is fw  # IPv4 on a dual-stack socket
    assert syslog_owner(everyone, "10.30.0.1") is None  # its integration may not push security
    assert syslog_owner(everyone, "192.0.2.1") is None
    assert syslog_owner(everyone, "not-an-address") is None


def test_scopes_source_and_agencies() -> None:
    reader = ItemReader("dossier", "native", ManualClock(NOW))
    scoped = soc(agencies=frozenset({"000.00.01.H57"}))
    doc = {
        "event_id": "d-1",
        "event_time": NOW.isoformat(),
        "dossier_id": "H57-1",
        "status": 2,
        "procedure_code": "1.001",
        "agency_code": "000.00.01.H57",
    }
    assert isinstance(reader.read_one(0, json.dumps(doc).encode(), scoped, NOW), Accepted)
    other = json.dumps({**doc, "agency_code": "000.00.02.H57"}).encode()
    out = reader.read_one(0, other, scoped, NOW)
    assert isinstance(out, Rejected) and (out.kind, out.pointer) == ("scope", "/agency_code")
    sec = ItemReader("security", "native", ManualClock(NOW))
    event = {"event_id": "s", "event_time": NOW.isoformat(), "severity": "low", "category": "other"}
    none = sec.read_one(0, json.dumps({**event, "source": "soc-tinh"}).encode(), scoped, NOW)
    assert isinstance(none, Rejected) and none.pointer == "/agency_code"
    impostor = sec.read_one(0, json.dumps({**event, "source": "fw-01"}).encode(), soc(), NOW)
    assert isinstance(impostor, Rejected) and impostor.pointer == "/source"


# -- items -------------------------------------------------------------------------------


def test_rejection_reasons_become_kind_text_and_pointer() -> None:
    assert rejection_parts("invalid: Expected `int`, got `str` - at `$.status`") == (
        "invalid",
        "Expected `int`, got `str`",
        "/status",
    )
    assert rejection_parts("invalid: bad - at `$.raw.a/b[3]`") == ("invalid", "bad", "/raw/a~1b/3")
    assert rejection_parts("malformed: truncated") == ("malformed", "truncated", "")


def test_lines_keep_their_numbers_and_lose_carriage_returns() -> None:
    assert split_lines(b"a\r\n\n  \nb\nc") == [(0, b"a"), (3, b"b"), (4, b"c")]
    assert split_items(b"{}\n{}", "application/json") == [(0, b"{}\n{}")]
    assert split_items(b"", "application/x-ndjson") == []


def test_native_items_are_forwarded_as_sent_and_checked_as_the_worker_checks() -> None:
    reader = ItemReader("uptime", "native", ManualClock(NOW))
    raw = json.dumps(
        {"event_id": "u-1", "event_time": NOW.isoformat(), "service_id": "dvc", "status": "up"}
    ).encode()
    out = reader.read_one(3, raw, soc(), NOW)
    assert isinstance(out, Accepted) and out.records[0].value == raw
    assert out.records[0].key == b"dvc" and out.event_ids == ("u-1",)
    ahead = raw.replace(NOW.isoformat().encode(), (NOW + timedelta(hours=2)).isoformat().encode())
    late = reader.read_one(0, ahead, soc(), NOW)
    assert isinstance(late, Rejected) and (late.kind, late.pointer) == (
        "implausible_time",
        "/event_time",
    )
    big = reader.read_one(0, b" " * (256 * 1024 + 1), soc(), NOW)
    assert isinstance(big, Rejected) and big.kind == "too_large"


def test_converted_events_are_keyed_and_checked_in_their_native_form() -> None:
    reader = ItemReader("security", "wazuh", ManualClock(NOW))
    doc = (SAMPLES / "formats/wazuh/sshd_brute_force.json").read_bytes()
    at = datetime.fromisoformat(json.loads(doc)["timestamp"].replace("+0700", "+07:00"))
    out = reader.read_one(0, doc, soc(), at + timedelta(minutes=1))
    assert isinstance(out, Accepted), out
    event = json.loads(out.records[0].value)
    assert event["source"] == "soc-tinh" and out.records[0].key == b"soc-tinh"
    assert event["raw"] is not None and event["severity"] in ("high", "medium", "critical", "low")
    not_json = reader.read_one(0, b"{", soc(), NOW)
    assert isinstance(not_json, Rejected) and not_json.kind == "malformed"
    wrong = reader.read_one(0, b'{"rule": {"level": "high"}}', soc(), NOW)
    assert isinstance(wrong, Rejected) and wrong.kind == "invalid" and wrong.pointer.startswith("/")


def test_lines_may_carry_a_syslog_header() -> None:
    reader = ItemReader("security", "cef", ManualClock(NOW))
    line = (SAMPLES / "lines/cef_ids_alert.log").read_bytes().strip()
    out = reader.read_one(0, line, soc(), datetime(2026, 3, 10, 9, tzinfo=UTC))
    assert isinstance(out, Accepted)
    assert json.loads(out.records[0].value)["raw"]["syslog"]["hostname"] == "ids-dmz-01"
    bare = reader.read_one(
        0, line[line.index(b"CEF:") :], soc(), datetime(2026, 3, 10, 9, tzinfo=UTC)
    )
    assert isinstance(bare, Accepted) and bare.event_ids == out.event_ids
    nul = reader.read_one(0, b"CEF:0|a|b|1|x|y|5|msg=\x00", soc(), NOW)
    assert isinstance(nul, Rejected)


@pytest.mark.parametrize("stream", ["dossier", "uptime", "security"])
def test_a_reader_exists_for_every_published_format(stream: str) -> None:
    for fmt in formats_of(stream):
        assert ItemReader(stream, fmt, ManualClock(NOW)).format == fmt
    with pytest.raises(ValueError):
        ItemReader(stream, "syslog-ng", ManualClock(NOW))


@given(st.binary(max_size=2000))
def test_no_body_makes_the_reader_raise(body: bytes) -> None:
    for stream in ("dossier", "uptime", "security"):
        for fmt in formats_of(stream):
            reader = ItemReader(stream, fmt, ManualClock(NOW))
            for out in reader.read(split_lines(body), soc(), NOW):
                assert isinstance(out, Accepted | Rejected)
