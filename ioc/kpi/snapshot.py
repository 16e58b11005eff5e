"""KPI snapshot rows: what ``ioc.kpi.v1``, the ``kpi_snapshots`` table and the gauges carry.

A row is one series at one time: ``scope`` (agency, service, security_severity,
security_category, security_top, security_source), ``key`` (the agency code, service id, …),
``period`` (today, month, quarter, year, rolling_24h; 5m, 1h, 24h, 30d; now) and a flat map of
values. Rows are built here from the pure KPI results, so the worker, ``ioc kpi recompute`` and
the tests produce the same rows from the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from ioc.catalogue import AgencyTree
from ioc.kpi.calendar import PeriodName
from ioc.kpi.dossier_kpis import DossierCounts, rollup
from ioc.kpi.security import QuietSource, SourceActivity
from ioc.kpi.uptime import CheckCounts, IncidentSummary, days_until

Value = float | int | str | bool | None


class KpiRow(msgspec.Struct, frozen=True):
    """One series' values at ``taken_at``; the ``ioc.kpi.v1`` message body."""

    taken_at: datetime
    scope: str
    key: str
    period: str
    values: dict[str, Any]

    @property
    def series(self) -> tuple[str, str, str]:
        return (self.scope, self.key, self.period)


def _ratio(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _points(p: Decimal | None) -> float | None:
    return None if p is None else float(p)


def dossier_values(c: DossierCounts) -> dict[str, Value]:
    avg = c.average_processing
    points = c.points()
    return {
        "received": c.received_in_period,
        "counted": c.counted,
        "on_time": c.on_time,
        "on_time_ratio": _ratio(c.on_time_ratio),
        "finished": c.finished,
        "overdue": c.overdue,
        "at_risk": c.at_risk,
        "avg_processing_hours": None if avg is None else round(avg.total_seconds() / 3600, 3),
        "direct": c.direct,
        "online": c.online,
        "online_without_e_result": c.online_without_e_result,
        "postal": c.postal,
        "online_share": _ratio(c.online_share),
        "full_online_share": _ratio(
            c.full_online / c.full_online_eligible if c.full_online_eligible else None
        ),
        "paid_online_ratio": _ratio(c.paid_online / c.fee_bearing if c.fee_bearing else None),
        "e_result_ratio": _ratio(
            c.e_result_issued / c.e_result_required if c.e_result_required else None
        ),
        "satisfaction_ratio": _ratio(c.satisfied_finished / c.finished if c.finished else None),
        **{f"points_{code}": _points(p) for code, p in points.items()},
    }


def dossier_rows(
    taken_at: datetime,
    tree: AgencyTree,
    by_period: Mapping[PeriodName, Mapping[str, DossierCounts]],
) -> list[KpiRow]:
    """One row per agency subtree (the province included) and period."""
    rows = []
    for period, by_agency in by_period.items():
        for code, counts in rollup(tree, by_agency).items():
            rows.append(KpiRow(taken_at, "agency", code, period, dossier_values(counts)))
    return rows


def service_window_values(counts: CheckCounts, incidents: IncidentSummary) -> dict[str, Value]:
    mttr = incidents.mean_time_to_recover
    latency = counts.mean_latency_ms
    return {
        "availability": _ratio(counts.availability),
        "checks": counts.checks,
        "up": counts.up,
        "degraded": counts.degraded,
        "down": counts.down,
        "mean_latency_ms": None if latency is None else round(latency, 3),
        "incidents": incidents.incidents,
        "recovered": incidents.recovered,
        "mttr_seconds": None if mttr is None else mttr.total_seconds(),
    }


def service_now_values(
    now: datetime,
    last_check_at: datetime,
    last_status: str,
    tls_expires_at: datetime | None,
    silent_after: timedelta,
) -> dict[str, Value]:
    age = (now - last_check_at).total_seconds()
    tls = days_until(tls_expires_at, now)
    return {
        "status": last_status,
        "last_check_at": last_check_at.isoformat(),
        "last_check_age_seconds": round(age, 3),
        "silent": age >= silent_after.total_seconds(),
        "tls_days_left": None if tls is None else round(tls, 3),
    }


def security_rows(
    taken_at: datetime,
    by_window: Mapping[str, tuple[Mapping[str, int], Mapping[str, int]]],
    top: Mapping[str, Iterable[tuple[str, int]]],
    activity: Mapping[str, SourceActivity],
    quiet: Iterable[QuietSource],
    severities: Iterable[str],
    categories: Iterable[str],
) -> list[KpiRow]:
    """Counts per severity and category per window (every level listed, zeros included, so a
    quiet window reads 0, not stale), the top lists, and each source's silence."""
    rows = []
    for window, (by_severity, by_category) in by_window.items():
        for sev in severities:
            rows.append(
                KpiRow(
                    taken_at, "security_severity", sev, window, {"events": by_severity.get(sev, 0)}
                )
            )
        for cat in categories:
            rows.append(
                KpiRow(
                    taken_at, "security_category", cat, window, {"events": by_category.get(cat, 0)}
                )
            )
    for name, items in top.items():
        rows.append(
            KpiRow(taken_at, "security_top", name, "24h", {"items": [[k, n] for k, n in items]})
        )
    quiet_names = {q.source for q in quiet}
    for source, a in activity.items():
        rows.append(
            KpiRow(
                taken_at,
                "security_source",
                source,
                "now",
                {
                    "last_event_at": a.last_event_at.isoformat(),
                    "silent_seconds": round((taken_at - a.last_event_at).total_seconds(), 3),
                    "quiet": source in quiet_names,
                },
            )
        )
    return rows


class ChangeFilter:
    """Passes a row only when its values differ from the last row passed for its series."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], dict[str, Any]] = {}

    def __call__(self, rows: Iterable[KpiRow], volatile: Iterable[str] = ()) -> list[KpiRow]:
        """``volatile`` names values that move with the clock alone (ages); they are not
        compared, or every row would change on every refresh."""
        skip = set(volatile)
        out = []
        for row in rows:
            stable = {k: v for k, v in row.values.items() if k not in skip}
            if self._last.get(row.series) != stable:
                self._last[row.series] = stable
                out.append(row)
        return out
