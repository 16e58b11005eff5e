"""Signed JSON webhooks, retried with capped exponential backoff and full jitter.

The body is the whole :class:`~ioc.alerts.model.Notification` as JSON. The signature is
HMAC-SHA256 over ``"<timestamp>." + body`` (the scheme Stripe uses): because the timestamp is
signed, a captured request cannot be replayed once it is older than the receiver's tolerance,
and ``X-IOC-Delivery`` (the same on every retry) lets a receiver drop duplicates inside it.
Unsigned webhooks are refused at construction: a receiver with no secret cannot tell our alerts
from anyone's.

:func:`sign` and :func:`verify` are pure, for receivers written in Python and for our tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
import msgspec

from ioc.alerts.model import DeliveryResult, Notification
from ioc.alerts.receivers import WebhookReceiver
from ioc.clock import Clock, SystemClock
from ioc.notify import Sleep, excerpt, full_jitter

DELIVERY_HEADER = "X-IOC-Delivery"
TIMESTAMP_HEADER = "X-IOC-Timestamp"
SIGNATURE_HEADER = "X-IOC-Signature"
TOLERANCE = timedelta(minutes=5)
RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx
RESPONSE_CAP = 64 * 1024  # bytes of a response read: keeps the connection reusable, bounded


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()  # a plain dict is case-sensitive; HTTP header names are not
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> bool:
    """True if ``headers`` carry a valid signature of ``body`` made within ``tolerance`` of
    ``now`` (either side: clocks drift). Compares in constant time."""
    if now.tzinfo is None:
        raise ValueError("verify needs a timezone-aware now")
    stamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not stamp or not signature or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        return False
    if abs(now.timestamp() - int(stamp)) > tolerance.total_seconds():
        return False
    expected = sign(secret, int(stamp), body).encode()
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The response body up to :data:`RESPONSE_CAP`; a body read to its end lets aiohttp keep
    the connection for the next delivery."""
    data = b""
    while len(data) < RESPONSE_CAP:
        chunk = await resp.content.read(RESPONSE_CAP - len(data))
        if not chunk:
            break
        data += chunk
    return data


class WebhookSender:
    """POSTs signed notifications to one URL until a 2xx, a refusal, or the attempts run out."""

    def __init__(
        self,
        receiver: WebhookReceiver,
        session: aiohttp.ClientSession,
        *,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not receiver.secret:
            raise ValueError(
                f"webhook receiver {receiver.name!r} has no secret: unsigned webhooks are refused"
            )
        self.receiver = receiver
        self.session = session
        self.clock = clock or SystemClock()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.timeout = aiohttp.ClientTimeout(total=receiver.timeout_seconds)

    def headers(self, notification: Notification, body: bytes, timestamp: int) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "ioc-stream",
            DELIVERY_HEADER: notification.id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.receiver.secret, timestamp, body),
        }

    async def send(self, notification: Notification) -> DeliveryResult:
        r = self.receiver
        body = msgspec.json.encode(notification)
        attempts = max(1, r.max_attempts)
        status: int | None = None
        error = ""
        for attempt in range(1, attempts + 1):
            wait: float | None = None
            now = self.clock.now()
            try:
                # Signed afresh on each attempt: a retry late in the backoff is not stale.
                async with self.session.post(
                    r.url,
                    data=body,
                    headers=self.headers(notification, body, int(now.timestamp())),
                    timeout=self.timeout,
                    allow_redirects=False,  # a signed alert goes where configured, nowhere else
                ) as resp:
                    status = resp.status
                    text = (await _read_capped(resp)).decode(errors="replace")
                    wait = retry_after(resp.headers.get("Retry-After"), now)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = None
                error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                if 200 <= status < 300:
                    return DeliveryResult(ok=True, attempts=attempt, status=status)
                error = f"HTTP {status}: {excerpt(text)}" if text.strip() else f"HTTP {status}"
                if status not in RETRY_STATUSES and status < 500:
                    return DeliveryResult(
                        ok=False, attempts=attempt, permanent=True, status=status, error=error
                    )
            if attempt < attempts:
                if wait is None:
                    wait = full_jitter(
                        attempt, r.backoff_initial_seconds, r.backoff_max_seconds, self.rng
                    )
                await self.sleep(min(wait, r.backoff_max_seconds))
        return DeliveryResult(
            ok=False,
            attempts=attempts,
            permanent=True,
            status=status,
            error=f"gave up after {attempts} attempts; last: {error}",
        )

    async def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""
