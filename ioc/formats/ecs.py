"""Elastic Common Schema (ECS) documents, nested JSON as Beats and Elastic Agent ship them.

Mapping (dotted names are paths into nested objects; flat ``"source.ip"`` keys are not read):

- ``event_id``: ``ecs:`` + ``event.id`` when that fits the native id pattern, otherwise a hash of
  the canonical document (``stable_event_id("ecs", …)``), so a resend maps to the same id.
- ``event_time``: ``@timestamp``, else ``event.created`` (ISO 8601 with offset, or epoch ms).
  Neither is a :class:`FormatError`: the receipt time would give a resend a new time and
  store it twice.
- ``severity``: ``event.severity`` read on the Elastic Security risk scale 0–100, banded as the
  Elastic rule editor does: 0 info, 1–21 low, 22–47 medium, 48–73 high, 74–100 critical; values
  outside 0–100 are refused. Without it, ``log.level`` by syslog name (emergency/alert/critical/
  fatal → critical, error → high, warning → medium, notice → low, info/debug/trace → info).
  Neither present, or an unknown level name, is a :class:`FormatError`.
- ``source_severity``: that value as text.
- ``category``: ``rule.category`` when it names one of ours (``DDoS``, ``Brute Force``, …),
  else ``event.category`` values (malware → malware; intrusion_detection, threat, web,
  network → intrusion; authentication → brute_force; email → phishing; vulnerability →
  vulnerability; configuration, iam → policy), the most specific winning; else ``other``.
- ``src_ip`` / ``dst_ip``: ``source.ip`` / ``destination.ip``; a value that is not an IP
  address is a :class:`FormatError` (it usually means the mapping is wrong).
- ``asset_id``: ``host.name``, else ``host.hostname``, else ``host.id``.
- ``agency_code``: ``labels.agency_code``. ``rule_id``: ``rule.id``, else ``rule.uuid``.
- ``message``: ``message``, else ``rule.name``, else ``event.reason``; cut to 1,024 characters.
- ``raw``: the document as received.

Fields are read with :mod:`ioc.formats.json_fields`, whose rules all JSON parsers share.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from ioc.events import SecurityCategory, SecurityEvent, Severity
from ioc.formats.common import FormatError, parse_time, pointer
from ioc.formats.json_fields import (
    CATEGORY_NAMES,
    address,
    as_object,
    canonical_json,
    code,
    event_id,
    first,
    kind_of,
    lookup,
    normalise,
    pick_category,
    short,
    strings,
    text,
)

_LOG_LEVELS: Final[Mapping[str, Severity]] = {
    **dict.fromkeys(("emergency", "emerg", "alert", "critical", "crit", "fatal"), "critical"),
    **dict.fromkeys(("error", "err"), "high"),
    **dict.fromkeys(("warning", "warn"), "medium"),
    "notice": "low",
    **dict.fromkeys(("informational", "info", "debug", "trace"), "info"),
}
_EVENT_CATEGORIES: Final[Mapping[str, SecurityCategory]] = {
    "malware": "malware",
    "intrusion_detection": "intrusion",
    "threat": "intrusion",
    "web": "intrusion",
    "network": "intrusion",
    "authentication": "brute_force",
    "email": "phishing",
    "vulnerability": "vulnerability",
    "configuration": "policy",
    "iam": "policy",
}


def parse(doc: object, *, source: str, received_at: datetime) -> SecurityEvent:
    """One ECS document → one security event; ``received_at`` is unused (see the module)."""
    del received_at
    obj = as_object(doc, "")
    canonical = canonical_json(obj)
    ts, ts_at = lookup(obj, "@timestamp")
    if ts is None:
        ts, ts_at = lookup(obj, "event", "created")
    if ts is None:
        raise FormatError(pointer("@timestamp"), "missing required field")
    severity, source_severity = _severity(obj)
    return SecurityEvent(
        event_id=event_id("ecs", text(obj, "event", "id"), canonical),
        event_time=parse_time(ts, ts_at),
        source=source,
        severity=severity,
        category=_category(obj),
        source_severity=source_severity,
        src_ip=address(obj, "source", "ip"),
        dst_ip=address(obj, "destination", "ip"),
        asset_id=first(code(obj, "host", k) for k in ("name", "hostname", "id")),
        agency_code=code(obj, "labels", "agency_code"),
        rule_id=code(obj, "rule", "id") or code(obj, "rule", "uuid"),
        message=short(
            first(text(obj, *p) for p in (("message",), ("rule", "name"), ("event", "reason")))
        ),
        raw=obj,
    )


def _severity(obj: Mapping[str, object]) -> tuple[Severity, str]:
    score, at = lookup(obj, "event", "severity")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int):
            raise FormatError(at, f"expected an integer, got {kind_of(score)}")
        if not 0 <= score <= 100:
            raise FormatError(at, f"severity {score} outside the 0-100 risk scale")
        return _risk_band(score), str(score)
    level = text(obj, "log", "level")
    if level is None:
        raise FormatError(pointer("event", "severity"), "no event.severity nor log.level")
    mapped = _LOG_LEVELS.get(level.strip().lower())
    if mapped is None:
        raise FormatError(pointer("log", "level"), f"unknown log level {level[:64]!r}")
    return mapped, level[:64]


def _risk_band(score: int) -> Severity:
    if score == 0:
        return "info"
    if score <= 21:
        return "low"
    if score <= 47:
        return "medium"
    return "high" if score <= 73 else "critical"


def _category(obj: Mapping[str, object]) -> SecurityCategory:
    named = text(obj, "rule", "category")
    if named is not None and (own := CATEGORY_NAMES.get(normalise(named))):
        return own
    return pick_category(strings(obj, "event", "category"), _EVENT_CATEGORIES)
