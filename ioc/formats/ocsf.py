"""OCSF Detection Finding events (``class_uid`` 2004, schema 1.x), as JSON.

Mapping:

- ``event_id``: ``ocsf:`` + ``metadata.uid`` (the event's own id), else ``ocsf:`` +
  ``finding_info.uid`` (a finding's Create/Update/Close share it; their ``time`` tells them
  apart in the ``(event_id, event_time)`` key); a value that does not fit the native id
  pattern gives a hash of the canonical document instead.
- ``event_time``: ``time`` (epoch milliseconds, the OCSF ``timestamp_t``), required.
- ``severity`` from ``severity_id``: 0 Unknown and 1 Informational → info, 2 Low → low,
  3 Medium → medium, 4 High → high, 5 Critical and 6 Fatal → critical; 99 Other → the
  ``severity`` caption when it names a level, else medium. Any other id is refused.
- ``source_severity``: the ``severity`` caption, else the id as text.
- ``category``: ``finding_info.types`` (free text such as ``"Brute Force"``, ``"DDoS"``), else
  the MITRE ATT&CK tactics in ``finding_info.attacks`` (Exfiltration → data_leak, Credential
  Access → brute_force, Initial Access, Execution, Lateral Movement, … → intrusion), the most
  specific winning; else ``other``.
- ``src_ip`` / ``dst_ip``: ``src_endpoint.ip`` / ``dst_endpoint.ip``, else the first of
  ``evidences[]`` that has one; an invalid address is a :class:`FormatError`.
- ``asset_id``: ``resources[0].uid``, else ``resources[0].name``, else ``device.hostname``,
  else ``device.uid``.
- ``agency_code``: ``unmapped.agency_code``. ``rule_id``: ``finding_info.analytic.uid``, else
  ``finding_info.analytic.name``.
- ``message``: ``finding_info.title``, else ``message``, else ``finding_info.desc``; cut to
  1,024 characters. ``raw``: the document as received.

Other classes are refused at ``/class_uid``: their fields mean other things.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from itertools import chain
from typing import Final

from ioc.events import SecurityCategory, SecurityEvent, Severity
from ioc.formats.common import FormatError, parse_time
from ioc.formats.json_fields import (
    CATEGORY_NAMES,
    address,
    array_length,
    as_object,
    canonical_json,
    code,
    event_id,
    first,
    lookup,
    normalise,
    pick_category,
    short,
    strings,
    text,
)

DETECTION_FINDING: Final = 2004
_SEVERITY_IDS: Final[Mapping[int, Severity]] = {
    0: "info",
    1: "info",
    2: "low",
    3: "medium",
    4: "high",
    5: "critical",
    6: "critical",
}
_OTHER: Final = 99
_CAPTIONS: Final[Mapping[str, Severity]] = {
    "unknown": "info",
    "informational": "info",
    "info": "info",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
    "fatal": "critical",
}
_TACTICS: Final[Mapping[str, SecurityCategory]] = {
    "exfiltration": "data_leak",
    "credential_access": "brute_force",
    **dict.fromkeys(
        (
            "reconnaissance",
            "initial_access",
            "execution",
            "persistence",
            "privilege_escalation",
            "defense_evasion",
            "discovery",
            "lateral_movement",
            "collection",
            "command_and_control",
        ),
        "intrusion",
    ),
}


def parse(doc: object, *, source: str, received_at: datetime) -> SecurityEvent:
    """One OCSF Detection Finding → one security event; ``received_at`` is unused: the
    ``time`` field is required, and a receipt time would make resends look new."""
    del received_at
    obj = as_object(doc, "")
    canonical = canonical_json(obj)
    class_uid, at = lookup(obj, "class_uid")
    if class_uid != DETECTION_FINDING:
        raise FormatError(at, f"expected class_uid {DETECTION_FINDING} (Detection Finding)")
    finding_uid = code(obj, "finding_info", "uid", required=True)
    time, time_at = lookup(obj, "time")
    if time is None:
        raise FormatError(time_at, "missing required field")
    severity, source_severity = _severity(obj)
    return SecurityEvent(
        event_id=event_id("ocsf", text(obj, "metadata", "uid") or finding_uid, canonical),
        event_time=parse_time(time, time_at),
        source=source,
        severity=severity,
        category=_category(obj),
        source_severity=source_severity,
        src_ip=_endpoint_ip(obj, "src_endpoint"),
        dst_ip=_endpoint_ip(obj, "dst_endpoint"),
        asset_id=first(
            code(obj, *p)
            for p in (
                ("resources", 0, "uid"),
                ("resources", 0, "name"),
                ("device", "hostname"),
                ("device", "uid"),
            )
        ),
        agency_code=code(obj, "unmapped", "agency_code"),
        rule_id=first(code(obj, "finding_info", "analytic", k) for k in ("uid", "name")),
        message=short(
            first(
                text(obj, *p)
                for p in (("finding_info", "title"), ("message",), ("finding_info", "desc"))
            )
        ),
        raw=obj,
    )


def _severity(obj: Mapping[str, object]) -> tuple[Severity, str]:
    sid, at = lookup(obj, "severity_id")
    if sid is None:
        raise FormatError(at, "missing required field")
    if isinstance(sid, bool) or not isinstance(sid, int):
        raise FormatError(at, "expected an integer severity_id")
    caption = text(obj, "severity")
    shown = caption[:64] if caption else str(sid)
    if sid in _SEVERITY_IDS:
        return _SEVERITY_IDS[sid], shown
    if sid == _OTHER:
        return _CAPTIONS.get(normalise(caption or ""), "medium"), shown
    raise FormatError(at, f"severity_id {sid} is not 0-6 or 99")


def _category(obj: Mapping[str, object]) -> SecurityCategory:
    named = pick_category(strings(obj, "finding_info", "types"), CATEGORY_NAMES)
    if named != "other":
        return named
    tactics = (
        text(obj, "finding_info", "attacks", i, "tactic", "name")
        for i in range(array_length(obj, "finding_info", "attacks"))
    )
    return pick_category((t for t in tactics if t), _TACTICS)


def _endpoint_ip(obj: Mapping[str, object], endpoint: str) -> str | None:
    evidence_ips = (
        address(obj, "evidences", i, endpoint, "ip") for i in range(array_length(obj, "evidences"))
    )
    return first(chain((address(obj, endpoint, "ip"),), evidence_ips))
