"""Webhook signatures (timestamped HMAC) and the retry schedule, without a network."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.alerts.receivers import WebhookReceiver
from ioc.notify import full_jitter
from ioc.notify.webhook import WebhookSender, retry_after, sign, verify

SECRET = "s3cr3t-khóa"
NOW = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
BODY = b'{"id":"n1","summary":"M\xe1\xba\xa5t k\xe1\xba\xbft n\xe1\xbb\x91i"}'


def headers(body: bytes = BODY, ts: int = TS, secret: str = SECRET) -> dict[str, str]:
    return {"X-IOC-Timestamp": str(ts), "X-IOC-Signature": sign(secret, ts, body)}


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, TS, BODY) == f"sha256={expected}"
    assert sign(SECRET.encode(), TS, BODY) == sign(SECRET, TS, BODY)


def test_verify_accepts_a_fresh_signature_and_header_case_does_not_matter() -> None:
    assert verify(SECRET, headers(), BODY, NOW)
    lower = {k.lower(): v for k, v in headers().items()}
    assert verify(SECRET, lower, BODY, NOW + timedelta(seconds=299))


@pytest.mark.parametrize(
    ("hdrs", "body", "now"),
    [
        (headers(), BODY + b" ", NOW),  # tampered body
        (headers(secret="wrong"), BODY, NOW),  # signed with another secret
        (headers(ts=TS - 301), BODY, NOW),  # stale: replayed after the tolerance
        (headers(ts=TS + 301), BODY, NOW),  # from too far in the future
        ({**headers(), "X-IOC-Timestamp": str(TS + 1)}, BODY, NOW),  # timestamp swapped
        ({"X-IOC-Signature": sign(SECRET, TS, BODY)}, BODY, NOW),  # no timestamp
        ({"X-IOC-Timestamp": str(TS)}, BODY, NOW),  # no signature
        ({**headers(), "X-IOC-Timestamp": f" {TS}"}, BODY, NOW),  # not plain digits
        ({**headers(), "X-IOC-Timestamp": "+" + str(TS)}, BODY, NOW),
        ({**headers(), "X-IOC-Signature": "sha256=ünïcode"}, BODY, NOW),
    ],
)
def test_verify_refuses(hdrs: dict[str, str], body: bytes, now: datetime) -> None:
    assert not verify(SECRET, hdrs, body, now)


def test_verify_tolerance_is_configurable_and_needs_an_aware_now() -> None:
    assert not verify(SECRET, headers(ts=TS - 61), BODY, NOW, tolerance=timedelta(seconds=60))
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(SECRET, headers(), BODY, NOW.replace(tzinfo=None))


@given(body=st.binary(max_size=4096), secret=st.text(min_size=1), ts=st.integers(0, 2**33))
def test_verify_accepts_what_sign_made(body: bytes, secret: str, ts: int) -> None:
    now = datetime.fromtimestamp(ts, UTC)
    assert verify(secret, headers(body, ts, secret), body, now)


@given(body=st.binary(min_size=1, max_size=512), flip=st.integers(0, 511))
def test_any_changed_byte_is_refused(body: bytes, flip: int) -> None:
    i = flip % len(body)
    tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    assert not verify(SECRET, headers(body), tampered, NOW)


def test_full_jitter_stays_under_the_doubling_cap() -> None:
    rng = random.Random(7)
    for retry, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (30, 30.0)]:
        delays = [full_jitter(retry, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # really spread over the whole range


def test_retry_after_seconds_or_http_date() -> None:
    assert retry_after("7", NOW) == 7.0
    assert retry_after("Fri, 20 Mar 2026 02:00:30 GMT", NOW) == 30.0
    assert retry_after("Fri, 20 Mar 2026 01:00:00 GMT", NOW) == 0.0
    assert retry_after(None, NOW) is None
    assert retry_after("soon", NOW) is None


def test_a_webhook_without_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="unsigned"):
        WebhookSender(WebhookReceiver(name="ops", url="http://127.0.0.1:1/"), None)  # type: ignore[arg-type]
    assert "s3cr3t" not in repr(WebhookReceiver(name="ops", url="http://x/", secret="s3cr3t"))
