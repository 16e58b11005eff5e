"""What the KPI snapshot must hold, computed by the pure functions from the events alone."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ioc.events import SEVERITY_RANK, DossierEvent, SecurityEvent, UptimeEvent
from ioc.kpi.calendar import WorkCalendar, periods_at
from ioc.kpi.dossier_kpis import counts_by_agency
from ioc.kpi.dossier_rules import DossierFacts
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS
from ioc.kpi.security import (
    FIVE_MINUTES,
    category_counts,
    quiet_sources,
    source_activity,
    target_counts,
    top_targets,
    totals_by,
)
from ioc.kpi.snapshot import (
    dossier_rows,
    security_rows,
    service_now_values,
    service_window_values,
)
from ioc.kpi.uptime import (
    WINDOWS,
    IncidentSummary,
    MaintenanceWindow,
    availability,
    bucket_counts,
    floor_to,
    incidents,
    window_bounds,
)
from ioc.kpi_live import CATEGORIES
from ioc.simulator import ProvinceSimulator

VOLATILE = {"last_check_age_seconds", "silent_seconds"}  # depend on the instant of the refresh


Series = tuple[str, str, str]


def stable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in VOLATILE}


def differences(
    actual: Mapping[Series, dict[str, Any]], expected: Mapping[Series, dict[str, Any]]
) -> list[tuple[Series, Any, dict[str, Any]]]:
    """Every expected series whose values (volatile ones aside) differ or are missing."""
    return [
        (series, stable(actual[series]) if series in actual else "missing", stable(values))
        for series, values in expected.items()
        if series not in actual or stable(actual[series]) != stable(values)
    ]


def latest(database_url: str) -> tuple[datetime, dict[Series, dict[str, Any]]]:
    """The newest refresh time in ``kpi_latest`` and the values of every series there."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            'SELECT taken_at, scope, key, period, "values" FROM kpi_latest'
        ).fetchall()
    return max(r[0] for r in rows), {(r[1], r[2], r[3]): r[4] for r in rows}


def expected_rows(
    now: datetime,
    sim: ProvinceSimulator,
    dossier: list[DossierEvent],
    uptime: list[UptimeEvent],
    security: list[SecurityEvent],
    maintenance: Sequence[MaintenanceWindow] = (),
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every KPI row as of ``now``, from the events alone (the oracle for stored snapshots)."""
    calendar = WorkCalendar(VN_PUBLIC_HOLIDAYS)
    legal = {p.code: p.max_days for p in sim.procedures}
    history: dict[str, list[DossierEvent]] = defaultdict(list)
    for e in dossier:
        history[e.dossier_id].append(e)
    facts = [DossierFacts.from_events(h) for h in history.values()]
    by_period = {
        name: counts_by_agency(facts, period, calendar, legal.get, 2)
        for name, period in periods_at(now).items()
    }
    rows = dossier_rows(now, sim.tree, by_period)

    buckets: dict[str, dict[datetime, Any]] = defaultdict(dict)
    for (sid, bucket), c in bucket_counts(uptime).items():
        buckets[sid][bucket] = c
    checks: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for e in uptime:
        checks[e.service_id].append((e.event_time, e.status))
    found = incidents(checks, maintenance)
    services: dict[tuple[str, str, str], dict[str, Any]] = {}
    for sid in sorted(buckets):
        for name, length in WINDOWS.items():
            start, end = window_bounds(now, length)
            c = availability(sid, buckets[sid], start, end, maintenance)
            summary = IncidentSummary.of([i for i in found if i.service_id == sid], start, end)
            services[("service", sid, name)] = service_window_values(c, summary)
        last_at, last_status = max((e.event_time, e.status) for e in uptime if e.service_id == sid)
        certs = [(e.event_time, e.tls_expires_at) for e in uptime if e.service_id == sid]
        tls = max(((t, x) for t, x in certs if x is not None), default=(None, None))[1]
        services[("service", sid, "now")] = service_now_values(
            now, last_at, last_status, tls, timedelta(minutes=5)
        )

    cats = category_counts(security)
    current = floor_to(now, FIVE_MINUTES) + FIVE_MINUTES
    windows = {
        "5m": (floor_to(now, FIVE_MINUTES) - FIVE_MINUTES, floor_to(now, FIVE_MINUTES)),
        "1h": (current - timedelta(hours=1), current),
        "24h": (current - timedelta(days=1), current),
    }
    by_window = {
        n: (totals_by(cats, 2, s, e), totals_by(cats, 3, s, e)) for n, (s, e) in windows.items()
    }
    targets = target_counts(security)
    top = {
        "assets": top_targets(targets, *windows["24h"], by="asset"),
        "agencies": top_targets(targets, *windows["24h"], by="agency"),
    }
    activity = source_activity(security)
    quiet = quiet_sources(activity, now, timedelta(minutes=30))
    rows += security_rows(now, by_window, top, activity, quiet, SEVERITY_RANK, CATEGORIES)
    out = {r.series: json.loads(json.dumps(r.values)) for r in rows}
    out.update({k: json.loads(json.dumps(v)) for k, v in services.items()})
    return out
