"""Uptime Kuma webhook notifications (``{"heartbeat": …, "monitor": …, "msg": …}``).

Mapping (one notification → one uptime event):

- ``status`` from ``heartbeat.status``: 0 down → down, 1 up → up, 2 pending (failing, still
  inside its retries) → degraded. 3 maintenance → no event: declared maintenance is recorded
  in our own windows, and a maintenance beat says nothing about health.
- ``event_time``: ``heartbeat.time``. Kuma writes UTC without an offset
  (``2026-11-20 01:00:00.123``, next to ``localDateTime`` and ``timezoneOffset``), so a time
  without an offset is read as UTC here, by the format's definition rather than a guess; one
  with an offset keeps it.
- ``service_id``: the value of the monitor tag named ``service`` (``tags[].name/value``), else
  ``monitor.name``; longer than 64 characters is a :class:`FormatError`.
- ``event_id``: ``kuma:<monitor.id>:<epoch ms of event_time>``, so a redelivered notification
  maps to the same id and a monitor's beats never collide.
- ``kind``: ``heartbeat`` for push monitors (``monitor.type == "push"``), else ``probe``.
- ``latency_ms``: ``heartbeat.ping`` (ms, may be null). ``http_status``: read from Kuma's
  messages ``"200 - OK"`` and ``"Request failed with status code 503"``. ``error``:
  ``heartbeat.msg`` unless up, cut to 1,024 characters.

Without both ``heartbeat`` and ``monitor`` (Kuma's test message, certificate-expiry text)
there is nothing to store: the result is empty. ``received_at`` is unused: the heartbeat's
time is required, and a receipt time would make redeliveries look new.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from ioc.events import ProbeStatus, UptimeEvent
from ioc.formats.common import FormatError, parse_time, pointer
from ioc.formats.json_fields import array_length, as_object, code, lookup, short, text

_STATUSES: Final[Mapping[int, ProbeStatus | None]] = {
    0: "down",
    1: "up",
    2: "degraded",
    3: None,
}
_HTTP_STATUS: Final = re.compile(r"^(\d{3}) - |status code (\d{3})\b")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_ID: Final = 2**63 - 1


def parse(doc: object, *, received_at: datetime) -> list[UptimeEvent]:
    """One Kuma notification → zero or one uptime event (see the module for when zero)."""
    del received_at
    obj = as_object(doc, "")
    if lookup(obj, "heartbeat")[0] is None and lookup(obj, "monitor")[0] is None:
        text(obj, "msg", required=True)
        return []
    as_object(lookup(obj, "heartbeat")[0], pointer("heartbeat"))
    as_object(lookup(obj, "monitor")[0], pointer("monitor"))
    status = _status(obj)
    if status is None:
        return []
    when = _time(obj)
    monitor_id, id_at = lookup(obj, "monitor", "id")
    if isinstance(monitor_id, bool) or not isinstance(monitor_id, int):
        raise FormatError(id_at, "expected the monitor's integer id")
    if not 0 <= monitor_id <= _MAX_ID:
        raise FormatError(id_at, f"monitor id {monitor_id} out of range")
    message = text(obj, "heartbeat", "msg")
    return [
        UptimeEvent(
            event_id=f"kuma:{monitor_id}:{(when - _EPOCH) // timedelta(milliseconds=1)}",
            event_time=when,
            service_id=_service_id(obj),
            status=status,
            kind="heartbeat" if text(obj, "monitor", "type") == "push" else "probe",
            latency_ms=_ping(obj),
            http_status=_http_status(message),
            error=None if status == "up" else short(message),
        )
    ]


def _status(obj: Mapping[str, object]) -> ProbeStatus | None:
    value, at = lookup(obj, "heartbeat", "status")
    if isinstance(value, bool) or not isinstance(value, int) or value not in _STATUSES:
        raise FormatError(at, "expected a status 0 (down), 1 (up), 2 (pending) or 3")
    return _STATUSES[value]


def _time(obj: Mapping[str, object]) -> datetime:
    value, at = lookup(obj, "heartbeat", "time")
    if value is None:
        raise FormatError(at, "missing required field")
    if not isinstance(value, str):
        return parse_time(value, at)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FormatError(at, f"not a timestamp: {value[:64]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _service_id(obj: Mapping[str, object]) -> str:
    for i in range(array_length(obj, "monitor", "tags")):
        if text(obj, "monitor", "tags", i, "name") == "service":
            tagged = code(obj, "monitor", "tags", i, "value")
            if tagged:
                return tagged
    return code(obj, "monitor", "name", required=True)


def _ping(obj: Mapping[str, object]) -> float | None:
    value, at = lookup(obj, "heartbeat", "ping")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(at, "expected a number of milliseconds")
    if not math.isfinite(value) or value < 0:
        raise FormatError(at, f"ping {value!r} is not a duration")
    return float(value)


def _http_status(message: str | None) -> int | None:
    match = _HTTP_STATUS.search(message or "")
    if match is None:
        return None
    status = int(match.group(1) or match.group(2))
    return status if 100 <= status <= 599 else None
