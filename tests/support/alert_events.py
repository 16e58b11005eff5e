"""Small builders for alert-rule tests: events at offsets from a fixed instant, KPI rows, and
an engine from rule-file text."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.alerts.evaluate import RuleEngine
from ioc.alerts.model import Signal
from ioc.alerts.rules import load_texts
from ioc.events import (
    ProbeKind,
    ProbeStatus,
    SecurityCategory,
    SecurityEvent,
    Severity,
    UptimeEvent,
)
from ioc.kpi.snapshot import KpiRow

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội; a multiple of 10 s
_ids = itertools.count()


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def sec(
    t: float,
    *,
    event_id: str | None = None,
    severity: Severity = "high",
    category: SecurityCategory = "intrusion",
    source: str = "ids-core",
    src_ip: str | None = "203.0.113.9",
    dst_ip: str | None = "10.10.0.2",
    asset_id: str | None = "srv-dvc",
    agency_code: str | None = "SO-11",
    message: str | None = None,
) -> SecurityEvent:
    return SecurityEvent(
        event_id=event_id or f"s{next(_ids)}",
        event_time=at(t),
        source=source,
        severity=severity,
        category=category,
        src_ip=src_ip,
        dst_ip=dst_ip,
        asset_id=asset_id,
        agency_code=agency_code,
        message=message,
    )


def check(
    t: float,
    status: ProbeStatus = "down",
    *,
    service: str = "svc-dvc",
    event_id: str | None = None,
    kind: ProbeKind = "probe",
    probe_id: str | None = "probe-01",
) -> UptimeEvent:
    return UptimeEvent(
        event_id=event_id or f"u{next(_ids)}",
        event_time=at(t),
        service_id=service,
        status=status,
        kind=kind,
        probe_id=probe_id,
    )


def checks(
    start: float, statuses: str, *, every: float = 30, service: str = "svc-dvc"
) -> list[UptimeEvent]:
    """One check per character, ``every`` seconds apart: ``u`` up, ``d`` down, ``g`` degraded."""
    names: dict[str, ProbeStatus] = {"u": "up", "d": "down", "g": "degraded"}
    return [check(start + i * every, names[c], service=service) for i, c in enumerate(statuses)]


def kpi(t: float, key: str, scope: str = "agency", period: str = "month", **values: Any) -> KpiRow:
    return KpiRow(at(t), scope, key, period, dict(values))


def engine(rules_yaml: str, env: Mapping[str, str] | None = None) -> RuleEngine:
    return RuleEngine(load_texts({"rules.yaml": rules_yaml}, env or {}))


def feed(eng: RuleEngine, events: list[Any]) -> list[Signal]:
    out: list[Signal] = []
    for ev in events:
        out += eng.observe(ev)
    return out


def firing(signals: list[Signal]) -> list[Signal]:
    return [s for s in signals if s.firing]


def cleared(signals: list[Signal]) -> list[Signal]:
    return [s for s in signals if not s.firing]
