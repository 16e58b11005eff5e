"""What one KPI refresh leaves in the database: the changed rows in the history, every live
series in ``kpi_current`` (the wall displays' ``kpi_latest``), and nothing of a series that
is gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ioc.kpi.snapshot import KpiRow
from ioc.storage.kpi_store import publish_snapshot

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def publish(database: str, full: list[KpiRow], changed: list[KpiRow]) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            await publish_snapshot(conn, full, changed)

    asyncio.run(run())


def test_latest_holds_every_live_series_once_and_history_only_changes(database: str) -> None:
    a = KpiRow(T0, "service", "svc-a", "now", {"status": "up", "last_check_age_seconds": 3})
    b = KpiRow(T0, "service", "svc-b", "now", {"status": "down", "last_check_age_seconds": 9})
    publish(database, [a, b], [a, b])
    later = T0 + timedelta(seconds=15)
    a2 = KpiRow(later, "service", "svc-a", "now", {"status": "up", "last_check_age_seconds": 18})
    publish(database, [a2], [])  # svc-b gone; svc-a only aged (a volatile value)
    with psycopg.connect(database) as conn:
        latest = conn.execute(
            'SELECT taken_at, scope, key, period, "values" FROM kpi_latest'
        ).fetchall()
        history = conn.execute(
            "SELECT key, taken_at FROM kpi_snapshots ORDER BY key, taken_at"
        ).fetchall()
    assert latest == [(later, "service", "svc-a", "now", a2.values)]
    assert history == [("svc-a", T0), ("svc-b", T0)]
