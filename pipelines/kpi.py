"""Live KPI publishing: one publisher per deployment refreshes snapshots on a timer.

Every worker runs this task; the one holding a PostgreSQL advisory lock publishes, the others
wait and take over within one interval if it dies (the lock goes with its session). Each
refresh computes every KPI row (:class:`ioc.kpi_live.LiveKpis`), sets the gauges from all of
them, and sends the rows that changed to ``ioc.kpi.v1`` and the ``kpi_snapshots`` table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import psycopg

from ioc.clock import Clock
from ioc.config import Settings
from ioc.kpi.calendar import WorkCalendar
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS
from ioc.kpi.snapshot import ChangeFilter, KpiRow
from ioc.kpi_live import KpiOptions, LiveKpis
from ioc.metrics import KpiGauges
from ioc.storage.kpi_store import publish_snapshot
from ioc.storage.writer import with_connection_defaults

log = logging.getLogger(__name__)

KPI_LOCK = 0x10C_0004
# Values that move with the clock alone; comparing them would make every row change.
VOLATILE = ("last_check_age_seconds", "silent_seconds")

SendRows = Callable[[Sequence[KpiRow]], Awaitable[None]]


def live_kpis(settings: Settings, *, as_of: bool = False) -> LiveKpis:
    calendar = WorkCalendar(VN_PUBLIC_HOLIDAYS | set(settings.extra_holidays))
    options = KpiOptions(
        at_risk_working_days=settings.kpi_at_risk_working_days,
        grace=timedelta(seconds=settings.kpi_grace_seconds),
        silent_probe_after=timedelta(seconds=settings.kpi_silent_probe_seconds),
        quiet_source_after=timedelta(seconds=settings.kpi_quiet_source_seconds),
    )
    return LiveKpis(calendar, options, as_of=as_of)


class KpiPublisher:
    def __init__(self, settings: Settings, gauges: KpiGauges, clock: Clock, send: SendRows) -> None:
        self.settings = settings
        self.gauges = gauges
        self.clock = clock
        self.send = send
        self.live = live_kpis(settings)
        self.changes = ChangeFilter()
        self._conn: psycopg.AsyncConnection | None = None
        self._leader = False

    async def run(self) -> None:
        while True:
            await self.refresh_once()
            await asyncio.sleep(self.settings.kpi_interval_seconds)

    async def refresh_once(self) -> list[KpiRow] | None:
        """One refresh if this worker is (or becomes) the publisher; the rows sent, or None."""
        try:
            conn = await self._connection()
            if not self._leader:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (KPI_LOCK,))
                row = await cur.fetchone()
                self._leader = bool(row and row[0])
                if not self._leader:
                    return None
                log.info("publishing live KPIs from this worker")
            started = time.perf_counter()
            now = self.clock.now()
            rows = await self.live.refresh(conn, now)
            changed = self.changes(rows, volatile=VOLATILE)
            await publish_snapshot(conn, rows, changed)
            await self.send(changed)
            self.gauges.update(rows)
            self.gauges.refresh_seconds.observe(time.perf_counter() - started)
            self.gauges.last_refresh.set(now.timestamp())
            return changed
        except (psycopg.Error, OSError) as exc:
            log.warning("KPI refresh failed, retrying next interval: %s", exc)
            await self.close()
        except Exception:
            log.exception("KPI refresh failed, retrying next interval")
            await self.close()
        # Whatever was not published is sent again in full next time.
        self.changes = ChangeFilter()
        return None

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._leader = False
            self._conn = await psycopg.AsyncConnection.connect(
                with_connection_defaults(self.settings.database_url), autocommit=True
            )
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._leader = False
        if conn is not None and not conn.closed:
            await conn.close()
