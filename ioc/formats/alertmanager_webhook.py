"""Prometheus Alertmanager webhook payloads (``version`` "4"), e.g. blackbox-exporter probes.

Mapping (one uptime event per entry of ``alerts``; one bad entry refuses the whole payload,
at its pointer):

- ``status``: ``resolved`` → up; ``firing`` → down, or degraded when the alert's
  ``severity`` label is ``warning`` or ``info`` (rules commonly page on ``critical`` and warn
  on slow probes, expiring certificates and the like).
- ``event_time``: ``startsAt`` when firing, ``endsAt`` when resolved; Go's zero time
  (``0001-01-01T00:00:00Z``) counts as absent, so a resolved alert without ``endsAt`` is a
  :class:`FormatError`.
- ``service_id``: the first of ``service_labels`` present, by default the ``service`` label,
  else ``instance`` (the probed target); longer than 64 characters is a :class:`FormatError`.
- ``event_id``: ``am:<fingerprint>:<status>:<epoch ms of event_time>``. Alertmanager repeats
  a firing alert with the same ``startsAt`` every ``repeat_interval``, and retries failed
  deliveries, so resending stores nothing twice.
- ``probe_id``: the ``job`` label (the scrape job that probes). ``error``: when firing, the
  ``summary`` annotation, else ``description``, else ``alertname``; cut to 1,024 characters.

``received_at`` is unused: the alert times are required, and a receipt time would make
repeats look new.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from ioc.events import ProbeStatus, UptimeEvent
from ioc.formats.common import FormatError, parse_time, pointer
from ioc.formats.json_fields import (
    EVENT_ID,
    Key,
    array_length,
    as_object,
    code,
    first,
    lookup,
    short,
    text,
)

VERSION: Final = "4"
DEFAULT_SERVICE_LABELS: Final = ("service", "instance")
_DEGRADED_SEVERITIES: Final = frozenset({"warning", "info"})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def parse(
    doc: object,
    *,
    received_at: datetime,
    service_labels: tuple[str, ...] = DEFAULT_SERVICE_LABELS,
) -> list[UptimeEvent]:
    """One webhook payload → one uptime event per alert, in payload order."""
    del received_at
    obj = as_object(doc, "")
    version = text(obj, "version", required=True)
    if version != VERSION:
        raise FormatError(pointer("version"), f"expected version {VERSION!r}, got {version!r}")
    if lookup(obj, "alerts")[0] is None:
        raise FormatError(pointer("alerts"), "missing required field")
    return [_alert(obj, i, service_labels) for i in range(array_length(obj, "alerts"))]


def _alert(obj: Mapping[str, object], i: int, service_labels: tuple[str, ...]) -> UptimeEvent:
    at: tuple[Key, ...] = ("alerts", i)
    as_object(lookup(obj, *at)[0], pointer(*at))
    as_object(lookup(obj, *at, "labels")[0], pointer(*at, "labels"))
    state = text(obj, *at, "status", required=True)
    if state == "firing":
        severity = text(obj, *at, "labels", "severity")
        status: ProbeStatus = "degraded" if severity in _DEGRADED_SEVERITIES else "down"
        when = _time(obj, *at, "startsAt")
    elif state == "resolved":
        status, when = "up", _time(obj, *at, "endsAt")
    else:
        raise FormatError(pointer(*at, "status"), f"expected firing or resolved, got {state!r}")
    service = first(code(obj, *at, "labels", name) for name in service_labels)
    if service is None:
        raise FormatError(pointer(*at, "labels"), f"no {' or '.join(service_labels)} label")
    fingerprint = text(obj, *at, "fingerprint", required=True)
    event_id = f"am:{fingerprint}:{state}:{(when - _EPOCH) // timedelta(milliseconds=1)}"
    if not EVENT_ID.fullmatch(event_id):
        raise FormatError(pointer(*at, "fingerprint"), "not a fingerprint (hex digits)")
    reasons = (("annotations", "summary"), ("annotations", "description"), ("labels", "alertname"))
    return UptimeEvent(
        event_id=event_id,
        event_time=when,
        service_id=service,
        status=status,
        probe_id=code(obj, *at, "labels", "job"),
        error=short(first(text(obj, *at, *p) for p in reasons)) if state == "firing" else None,
    )


def _time(obj: Mapping[str, object], *path: Key) -> datetime:
    value, at = lookup(obj, *path)
    when = None if value is None else parse_time(value, at)
    if when is None or when.year == 1:
        raise FormatError(at, "missing required time")
    return when
