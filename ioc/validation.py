"""Turn raw message bytes into events, or into a precise reason why not.

Structural checks (types, ranges, enums, timezone-aware times, unknown fields) come from the
msgspec types in :mod:`ioc.events`; the checks here are the ones a schema cannot express:
plausible event time against an injected clock, and well-formed IP addresses. A rejection never
raises: the caller sends it to the dead-letter path and carries on with the batch.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

import msgspec

from ioc.clock import Clock
from ioc.events import DossierEvent, Event, SecurityEvent, UptimeEvent
from ioc.streams import Stream

E = TypeVar("E", DossierEvent, UptimeEvent, SecurityEvent)

MAX_PAYLOAD_BYTES = 1_000_000
# A JSON \u0000 escape: the backslash must not itself be escaped (even run of backslashes).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record was refused; ``reason`` starts with a stable category word."""

    reason: str


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """How far from 'now' an event time may be before it is refused as implausible.

    Late data is normal (a probe buffering through an outage, a backfill), so the past bound is
    generous; the future bound catches clocks set wrong and unit mistakes (ms vs s).
    """

    max_age: timedelta = timedelta(days=3660)
    max_ahead: timedelta = timedelta(hours=1)
    retention: timedelta | None = None  # the stream keeps nothing older: refuse, don't drop

    @classmethod
    def for_retention(cls, days: int | None, max_ahead: timedelta) -> TimeBounds:
        return cls(max_ahead=max_ahead, retention=timedelta(days=days) if days else None)


class EventParser(Generic[E]):
    """Decode and validate one stream's records. Reuses one msgspec decoder for speed."""

    def __init__(self, event_type: type[E], clock: Clock, bounds: TimeBounds | None = None):
        self.event_type: type[E] = event_type
        self._decoder: msgspec.json.Decoder[E] = msgspec.json.Decoder(event_type)
        self._clock = clock
        self._bounds = bounds or TimeBounds()

    @classmethod
    def for_stream(
        cls, stream: Stream, clock: Clock, bounds: TimeBounds | None = None
    ) -> EventParser[DossierEvent] | EventParser[UptimeEvent] | EventParser[SecurityEvent]:
        return cls(stream.event_type, clock, bounds)  # type: ignore[arg-type,return-value]

    def parse(self, payload: bytes | None, now: datetime | None = None) -> E | Rejection:
        """One record → event or rejection. Pass ``now`` when parsing a batch: reading the
        clock per record costs more than decoding it."""
        if not payload:
            return Rejection("empty: the message has no value")
        if b"\\u0000" in payload and _ESCAPED_NUL.search(payload):
            return Rejection("invalid: NUL characters (\\u0000) cannot be stored in text fields")
        if len(payload) > MAX_PAYLOAD_BYTES:
            return Rejection(f"too_large: {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        try:
            event = self._decoder.decode(payload)
        except msgspec.ValidationError as exc:
            return Rejection(f"invalid: {exc}")
        except msgspec.DecodeError as exc:
            return Rejection(f"malformed: {exc}")
        problem = (
            _check_event_id(event.event_id)
            or self._check_time(event.event_time, now or self._clock.now())
            or _check_addresses(event)
        )
        return Rejection(problem) if problem else event

    def _check_time(self, when: datetime, now: datetime) -> str | None:
        if when > now + self._bounds.max_ahead:
            return (
                f"implausible_time: event_time {when.isoformat()} is more than "
                f"{self._bounds.max_ahead} ahead of now ({now.isoformat()}) - at `$.event_time`"
            )
        retention = self._bounds.retention
        if retention is not None and when < now - retention:
            return (
                f"expired: event_time {when.isoformat()} is older than this stream's "
                f"{retention.days}-day retention - at `$.event_time`"
            )
        if when < now - self._bounds.max_age:
            return (
                f"implausible_time: event_time {when.isoformat()} is older than "
                f"{self._bounds.max_age.days} days - at `$.event_time`"
            )
        return None


def _check_event_id(event_id: str) -> str | None:
    # msgspec matches patterns with re.search, where `$` also matches before a final newline;
    # the published schema (ECMA-262 `$`) does not. Refuse it here so both agree.
    if event_id.endswith("\n"):
        return "invalid: event_id must not end with a newline - at `$.event_id`"
    return None


def _check_addresses(event: Event) -> str | None:
    if not isinstance(event, SecurityEvent):
        return None
    for field in ("src_ip", "dst_ip"):
        value = getattr(event, field)
        if value is None:
            continue
        if not _is_ip_address(value):
            return f"invalid: {value!r} is not an IPv4 or IPv6 address - at `$.{field}`"
    return None


_FAMILIES = (int(socket.AF_INET), int(socket.AF_INET6))
_inet_pton = socket.inet_pton


def _is_ip_address(value: str) -> bool:
    """Strict IPv4 dotted quad or IPv6, as PostgreSQL's ``inet`` accepts; C-speed checks
    (``ipaddress.ip_address`` cost more than the JSON decoding itself)."""
    for family in _FAMILIES:
        try:
            _inet_pton(family, value)
        except (OSError, ValueError):
            continue
        return True
    return False
