"""Live incidents while checks arrive in pieces: each refresh reads every service from its own
settled point, services progress independently, out-of-order checks within the grace count,
a check later than the grace waits for a restart (or a recompute), which then counts it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ioc.events import UptimeEvent
from ioc.kpi.calendar import WorkCalendar
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS
from ioc.kpi.snapshot import KpiRow
from ioc.kpi.uptime import IncidentSummary, incidents, window_bounds
from ioc.kpi_live import LiveKpis
from ioc.storage.writer import EventWriter
from ioc.storage_types import Consumed
from ioc.streams import BY_NAME

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def run_of(service: str, start: datetime, statuses: str) -> list[UptimeEvent]:
    """One check a minute: ``u`` up, ``d`` down, ``g`` degraded."""
    names = {"u": "up", "d": "down", "g": "degraded"}
    return [
        UptimeEvent(
            event_id=f"{service}-{i}",
            event_time=start + timedelta(minutes=i, seconds=5),
            service_id=service,
            status=names[c],  # type: ignore[arg-type]
        )
        for i, c in enumerate(statuses)
    ]


# The portal: two outages, the second one still open after the second delivery.
PORTAL = run_of(
    "svc-dvc", NOW - timedelta(hours=3), "u" * 30 + "d" * 20 + "u" * 30 + "d" * 10 + "g" * 30
)
# The mail system, whose partition is 18 hours behind: one outage.
MAIL = run_of("svc-mail", NOW - timedelta(hours=20), "u" * 50 + "d" * 5 + "u" * 65)
# Delivered after the second refresh, half an hour older than the portal's newest check by then:
# beyond the five-minute grace, so the live tracker sets it aside.
LATE = UptimeEvent(
    event_id="svc-dvc-late",
    event_time=PORTAL[60].event_time + timedelta(seconds=30),
    service_id="svc-dvc",
    status="down",
)
DELIVERIES = [
    PORTAL[:40] + MAIL[:60],
    list(reversed(PORTAL[40:90])),  # out of order inside the grace
    [LATE, *PORTAL[90:], *MAIL[60:]],
]


def expected(checks: list[UptimeEvent]) -> dict[str, tuple[object, ...]]:
    """Per service, the 24 h incident values the pure functions give for ``checks``."""
    by_service: dict[str, list[tuple[datetime, str]]] = {}
    for c in checks:
        by_service.setdefault(c.service_id, []).append((c.event_time, c.status))
    found = incidents(by_service)
    start, end = window_bounds(NOW, timedelta(days=1))
    out = {}
    for service in by_service:
        s = IncidentSummary.of([i for i in found if i.service_id == service], start, end)
        mttr = s.mean_time_to_recover
        out[service] = (s.incidents, s.recovered, None if mttr is None else mttr.total_seconds())
    return out


def live(rows: list[KpiRow]) -> dict[str, tuple[object, ...]]:
    return {
        r.key: (r.values["incidents"], r.values["recovered"], r.values["mttr_seconds"])
        for r in rows
        if r.scope == "service" and r.period == "24h"
    }


def test_incidents_follow_checks_delivered_in_pieces_and_out_of_order(database: str) -> None:
    async def run() -> tuple[list[dict[str, tuple[object, ...]]], dict[str, tuple[object, ...]]]:
        writer = EventWriter(database, BY_NAME["uptime"], lambda: datetime.now(UTC))
        engine = LiveKpis(WorkCalendar(VN_PUBLIC_HOLIDAYS))
        seen = []
        offset = 0
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            for n, batch in enumerate(DELIVERIES):
                await writer.write([Consumed(e, 0, offset + i) for i, e in enumerate(batch)])
                offset += len(batch)
                seen.append(live(await engine.refresh(conn, NOW + timedelta(seconds=15 * n))))
            restarted = live(await LiveKpis(WorkCalendar(VN_PUBLIC_HOLIDAYS)).refresh(conn, NOW))
        await writer.close()
        return seen, restarted

    seen, restarted = asyncio.run(run())
    delivered: list[UptimeEvent] = []
    for n, batch in enumerate(DELIVERIES):
        delivered += [c for c in batch if c is not LATE]
        assert seen[n] == expected(delivered), f"after delivery {n + 1}"
    # The open outage is counted while open; the late down check would add an incident.
    assert seen[1]["svc-dvc"] == (2, 1, 1200.0)
    assert seen[2]["svc-dvc"] == (2, 2, 900.0)
    assert seen[2]["svc-mail"] == (1, 1, 300.0)
    assert restarted == expected([*delivered, LATE])
    assert restarted["svc-dvc"] == (3, 3, 610.0)
