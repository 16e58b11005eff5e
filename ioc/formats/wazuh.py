"""Wazuh alerts as the manager writes them to ``alerts.json`` and the integrator sends them.

Mapping:

- ``event_id``: ``wazuh:`` + ``manager.name`` + ``:`` + ``id`` (Wazuh's ``<epoch>.<offset>``
  is only unique within one manager), or ``wazuh:`` + ``id`` without a manager name; a value
  that does not fit the native id pattern, or no ``id``, gives a hash of the canonical
  document.
- ``event_time``: ``timestamp`` (``2026-11-20T08:00:00.123+0700``), required.
- ``severity`` from ``rule.level`` (0–15, required): 0–2 info, 3–6 low, 7–9 medium,
  10–12 high, 13–15 critical. Wazuh's own scale puts "multiple user-generated errors"
  (brute force) at 10 and "severe attack" at 15, so the bands follow its level table.
- ``source_severity``: the level as text.
- ``category`` from ``rule.groups``, the most specific winning: authentication_failed,
  authentication_failures, invalid_login → brute_force; web, attack, ids, exploit_attempt,
  recon, sql_injection → intrusion; malware, rootcheck, virustotal, yara → malware;
  vulnerability-detector → vulnerability; syscheck, sca, policy_violation, policy_changed →
  policy; our own category names also count; else ``other``.
- ``src_ip`` / ``dst_ip``: ``data.srcip`` / ``data.dstip`` (the decoder's fields, not the
  agent's address); an invalid address is a :class:`FormatError`.
- ``asset_id``: ``agent.name``, else ``agent.id``. ``agency_code``: ``agent.labels.agency``
  (an agent ``<label key="agency">`` in ``ossec.conf``). ``rule_id``: ``rule.id``.
- ``message``: ``rule.description``, else ``full_log``; cut to 1,024 characters.
- ``raw``: the document as received.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

from ioc.events import SecurityCategory, SecurityEvent, Severity
from ioc.formats.common import FormatError, parse_time
from ioc.formats.json_fields import (
    CATEGORY_NAMES,
    address,
    as_object,
    canonical_json,
    code,
    event_id,
    first,
    lookup,
    pick_category,
    short,
    strings,
    text,
)

_GROUPS: Final[Mapping[str, SecurityCategory]] = {
    **CATEGORY_NAMES,
    **dict.fromkeys(
        ("authentication_failed", "authentication_failures", "invalid_login"), "brute_force"
    ),
    **dict.fromkeys(
        ("web", "attack", "ids", "exploit_attempt", "recon", "sql_injection"), "intrusion"
    ),
    **dict.fromkeys(("malware", "rootcheck", "virustotal", "yara"), "malware"),
    "vulnerability_detector": "vulnerability",
    **dict.fromkeys(("syscheck", "sca", "policy_violation", "policy_changed"), "policy"),
}
MAX_LEVEL: Final = 15


def parse(doc: object, *, source: str, received_at: datetime) -> SecurityEvent:
    """One Wazuh alert → one security event; ``received_at`` is unused: ``timestamp`` is
    required, and a receipt time would make resends look new."""
    del received_at
    obj = as_object(doc, "")
    canonical = canonical_json(obj)
    level, level_at = lookup(obj, "rule", "level")
    if level is None:
        raise FormatError(level_at, "missing required field")
    if isinstance(level, bool) or not isinstance(level, int):
        raise FormatError(level_at, "expected an integer level")
    if not 0 <= level <= MAX_LEVEL:
        raise FormatError(level_at, f"level {level} outside 0-{MAX_LEVEL}")
    ts, ts_at = lookup(obj, "timestamp")
    if ts is None:
        raise FormatError(ts_at, "missing required field")
    alert_id = text(obj, "id")
    manager = text(obj, "manager", "name")
    return SecurityEvent(
        event_id=event_id(
            "wazuh", f"{manager}:{alert_id}" if manager and alert_id else alert_id, canonical
        ),
        event_time=parse_time(ts, ts_at),
        source=source,
        severity=level_band(level),
        category=pick_category(strings(obj, "rule", "groups"), _GROUPS),
        source_severity=str(level),
        src_ip=address(obj, "data", "srcip"),
        dst_ip=address(obj, "data", "dstip"),
        asset_id=code(obj, "agent", "name") or code(obj, "agent", "id"),
        agency_code=code(obj, "agent", "labels", "agency"),
        rule_id=code(obj, "rule", "id"),
        message=short(first(text(obj, *p) for p in (("rule", "description"), ("full_log",)))),
        raw=obj,
    )


def level_band(level: int) -> Severity:
    """Wazuh rule level 0–15 on the five-level scale (bands in the module docstring)."""
    if level <= 2:
        return "info"
    if level <= 6:
        return "low"
    if level <= 9:
        return "medium"
    return "high" if level <= 12 else "critical"
