"""The live KPI engine: turns stored state into snapshot rows, incrementally.

Where the state lives and why: the writer keeps the summary tables and the dossier state in
the same transaction as the events (exactly once, shared by every worker, intact across
restarts). This engine keeps only what is cheaper to hold than to re-read: the dossier book
(one judgement per dossier, re-judged when it changes or the clock moves it) and the incident
tracker (a settled prefix plus a tail re-read each refresh, ``grace`` long). A restarted
engine rebuilds both from storage on its first refresh, so live values survive a restart.

Late events: summaries take them whenever they arrive. The incident tracker applies a check
only if it arrives within ``grace`` of the newest; a later one is stored and counted in
availability, and ``ioc kpi recompute`` (or the next restart) brings it into the incidents.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from ioc.catalogue import Agency, AgencyTree
from ioc.events import SEVERITY_RANK, SecurityCategory
from ioc.kpi.calendar import WorkCalendar, periods_at
from ioc.kpi.dossier_book import DossierBook
from ioc.kpi.security import FIVE_MINUTES, quiet_sources
from ioc.kpi.snapshot import (
    KpiRow,
    dossier_rows,
    security_rows,
    service_now_values,
    service_window_values,
)
from ioc.kpi.uptime import EMPTY as NO_CHECKS
from ioc.kpi.uptime import WINDOWS, IncidentSummary, IncidentTracker, floor_to, window_bounds
from ioc.storage import kpi_store as store

CATEGORIES: tuple[str, ...] = SecurityCategory.__args__  # type: ignore[attr-defined]
SYNTHETIC_ROOT = "TINH"


@dataclass(frozen=True)
class KpiOptions:
    at_risk_working_days: int = 2
    grace: timedelta = timedelta(minutes=5)  # incident tracker: how late a check may arrive
    silent_probe_after: timedelta = timedelta(minutes=5)
    quiet_source_after: timedelta = timedelta(minutes=30)
    top_n: int = 10


@dataclass
class LiveKpis:
    calendar: WorkCalendar
    options: KpiOptions = field(default_factory=KpiOptions)
    book: DossierBook | None = None
    tracker: IncidentTracker | None = None
    cursor: store.DossierCursor = field(default_factory=store.DossierCursor)
    # Recompute: one refresh of a fresh engine reading every input as it stood at ``now``
    # (events stored since with earlier times count; later event times do not).
    as_of: bool = False
    _legal_days: dict[str, int] = field(default_factory=dict)
    _maintenance: str | None = None  # digest of the maintenance windows the tracker applied

    async def refresh(self, conn: psycopg.AsyncConnection, now: datetime) -> list[KpiRow]:
        """Every KPI row as of ``now`` (a full snapshot; filter for changes downstream)."""
        tree, legal_days = await store.load_catalogue(conn)
        # In place: the book holds ``self._legal_days.get``, so catalogue edits reach it.
        self._legal_days.clear()
        self._legal_days.update(legal_days)
        if self.book is None:
            self.book = DossierBook(
                self.calendar, self._legal_days.get, self.options.at_risk_working_days
            )
        rows = await self._dossiers(conn, now, tree)
        rows += await self._uptime(conn, now)
        rows += await self._security(conn, now)
        return rows

    async def _dossiers(
        self, conn: psycopg.AsyncConnection, now: datetime, tree: AgencyTree | None
    ) -> list[KpiRow]:
        assert self.book is not None
        year_start = periods_at(now)["year"].start
        # The rolling 24 h reaches into last year for a day after New Year.
        horizon = min(year_start, now - timedelta(days=1))
        facts = await store.changed_dossier_facts(conn, self.cursor, horizon, self._until(now))
        self.book.upsert(facts)
        by_period = await asyncio.to_thread(self.book.counts, now)
        self.book.evict_finished_before(horizon - timedelta(days=1))
        if tree is None:
            tree = _synthetic_tree(a for counts in by_period.values() for a in counts)
        return dossier_rows(now, tree, by_period)

    async def _uptime(self, conn: psycopg.AsyncConnection, now: datetime) -> list[KpiRow]:
        bounds = {name: window_bounds(now, length) for name, length in WINDOWS.items()}
        counts = await store.availability_by_window(conn, bounds)
        horizon = bounds["30d"][0] - timedelta(days=1)
        maintenance = await store.maintenance_version(conn)
        if maintenance != self._maintenance:
            # A window declared, cut short or withdrawn may cover checks the tracker has
            # already applied: start again from storage (the checks of 31 days, once).
            self.tracker, self._maintenance = None, maintenance
        if self.tracker is None:
            self.tracker = IncidentTracker(self.options.grace, keep=WINDOWS["30d"])
        settled = {s: max(t, horizon) for s, t in self.tracker.settled_until.items()}
        self.tracker.update(await store.uptime_tails(conn, settled, horizon, self._until(now)))
        incidents = defaultdict(list)
        for i in self.tracker.incidents():
            incidents[i.service_id].append(i)
        rows = []
        states = await store.service_states(conn, self._until(now))
        for state in states:
            sid = state.service_id
            for name, (start, end) in bounds.items():
                summary = IncidentSummary.of(incidents.get(sid, []), start, end)
                c = counts[name].get(sid, NO_CHECKS)
                rows.append(KpiRow(now, "service", sid, name, service_window_values(c, summary)))
            rows.append(
                KpiRow(
                    now,
                    "service",
                    sid,
                    "now",
                    service_now_values(
                        now,
                        state.last_check_at,
                        state.last_status,
                        state.tls_expires_at,
                        self.options.silent_probe_after,
                    ),
                )
            )
        return rows

    async def _security(self, conn: psycopg.AsyncConnection, now: datetime) -> list[KpiRow]:
        current = floor_to(now, FIVE_MINUTES) + FIVE_MINUTES  # the open bucket included
        windows = {
            "5m": store.last_complete_five_minutes(now),
            "1h": (current - timedelta(hours=1), current),
            "24h": (current - timedelta(days=1), current),
        }
        by_window = {
            name: await store.security_totals(conn, s, e) for name, (s, e) in windows.items()
        }
        day = windows["24h"]
        top = {
            "assets": await store.top_targets(conn, *day, by="asset", n=self.options.top_n),
            "agencies": await store.top_targets(conn, *day, by="agency", n=self.options.top_n),
        }
        activity = await store.source_activity(conn, now - timedelta(days=30), self._until(now))
        quiet = quiet_sources(activity, now, self.options.quiet_source_after)
        return security_rows(now, by_window, top, activity, quiet, SEVERITY_RANK, CATEGORIES)

    def _until(self, now: datetime) -> datetime | None:
        return now if self.as_of else None


def _synthetic_tree(codes: Iterable[str]) -> AgencyTree:
    """No catalogue loaded: every agency seen hangs under one province root."""
    seen = sorted({c for c in codes if c != SYNTHETIC_ROOT})
    return AgencyTree(
        [Agency(SYNTHETIC_ROOT, "Tỉnh", "province")]
        + [Agency(c, c, "department", SYNTHETIC_ROOT) for c in seen]
    )
