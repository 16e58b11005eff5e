"""What every format parser shares: the error it raises, the one severity scale, stable ids.

A parser turns one document in a tool's own format into one native event
(:class:`~ioc.events.SecurityEvent` or :class:`~ioc.events.UptimeEvent`), keeping the tool's
own severity (``source_severity``) and, for security events, the original document
(``raw``). It never raises anything but :class:`FormatError`, whose ``pointer`` is a JSON
pointer (RFC 6901) into the input document, so the gateway can answer "rejected at
/rule/level: …" per item.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime

from ioc.events import Severity


class FormatError(ValueError):
    """The document is not valid in its format; ``pointer`` names the field (RFC 6901)."""

    def __init__(self, pointer: str, reason: str) -> None:
        super().__init__(f"{reason} - at {pointer or '/'}")
        self.pointer = pointer
        self.reason = reason


def pointer(*parts: str | int) -> str:
    """``pointer("rule", "level")`` → ``/rule/level``, with ``~`` and ``/`` escaped."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def severity_from_score(score: float) -> Severity:
    """A 0–10 score (CEF, LEEF ``sev``, CVSS-like) on the five-level scale.

    0–3 low, 4–6 medium, 7–8 high, 9–10 critical (the ArcSight convention); 0 is info.
    """
    if math.isnan(score) or score < 0:
        raise ValueError("a severity score cannot be negative")
    if score == 0:
        return "info"
    if score <= 3:
        return "low"
    if score <= 6:
        return "medium"
    if score <= 8:
        return "high"
    return "critical"


def stable_event_id(prefix: str, *parts: object) -> str:
    """An id derived from the document itself, for formats without one: resending the same
    document gives the same id, so the idempotent write stores it once."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode())
        h.update(b"\x00")
    return f"{prefix}:{h.hexdigest()[:32]}"


def aware(value: datetime, at: str) -> datetime:
    """Naive timestamps are refused, never guessed (the native contract's rule)."""
    if value.tzinfo is None:
        raise FormatError(at, "the timestamp has no UTC offset")
    return value


def parse_time(text: object, at: str) -> datetime:
    """RFC 3339 / ISO 8601 with an offset (``Z`` allowed), or epoch milliseconds."""
    if isinstance(text, bool):
        raise FormatError(at, "expected a timestamp, got a boolean")
    if isinstance(text, int | float):
        if not math.isfinite(text) or text < 0 or text > 32503680000000:
            raise FormatError(at, f"epoch milliseconds out of range: {text!r}")
        return datetime.fromtimestamp(text / 1000, tz=UTC)
    if not isinstance(text, str):
        raise FormatError(at, f"expected a timestamp, got {type(text).__name__}")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise FormatError(at, f"not an ISO 8601 timestamp: {text[:64]!r}") from None
    return aware(value, at)


def get_path(doc: Mapping[str, object], *path: str) -> object:
    """The value at ``path`` in nested mappings, or None."""
    cur: object = doc
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur
