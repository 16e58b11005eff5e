"""Reads the KPI inputs from storage and writes snapshot rows: the KPI engine's database edge.

Everything here is a query; the arithmetic is in :mod:`ioc.kpi`. Window sums over the summary
tables run in the database (a 30-day availability is 260k five-minute rows for 30 services),
with the same rules as the pure functions: a bucket touched by a maintenance window is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb

from ioc.catalogue import Agency, AgencyTree, Procedure
from ioc.events import DossierEvent
from ioc.kpi.dossier_rules import DossierFacts
from ioc.kpi.security import FIVE_MINUTES, SourceActivity
from ioc.kpi.snapshot import KpiRow
from ioc.kpi.uptime import CheckCounts, floor_to
from ioc.storage.maintenance_windows import outside_maintenance
from ioc.storage.summaries import EPOCH, UPTIME_BUCKET
from ioc.storage.tables import DOSSIER_EVENTS

# --- catalogue ----------------------------------------------------------------------------


async def save_catalogue(
    conn: psycopg.AsyncConnection, tree: AgencyTree, procedures: Iterable[Procedure] = ()
) -> None:
    """Upsert the agency tree and procedure catalogue (an agency may move to a new parent)."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO agencies (code, name, level, parent_code) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,"
            " parent_code = EXCLUDED.parent_code, updated_at = now()",
            [(a.code, a.name, a.level, a.parent_code) for a in tree],
        )
        await cur.executemany(
            "INSERT INTO procedures (code, name, level, max_days, online_level, fee_required,"
            " e_result_required) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,"
            " max_days = EXCLUDED.max_days, online_level = EXCLUDED.online_level,"
            " fee_required = EXCLUDED.fee_required,"
            " e_result_required = EXCLUDED.e_result_required, updated_at = now()",
            [
                (
                    p.code,
                    p.name,
                    p.level,
                    p.max_days,
                    p.online_level,
                    p.fee_required,
                    p.e_result_required,
                )
                for p in procedures
            ],
        )


async def load_catalogue(conn: psycopg.AsyncConnection) -> tuple[AgencyTree | None, dict[str, int]]:
    """The agency tree (None when no agencies are loaded) and each procedure's legal days."""
    cur = await conn.execute("SELECT code, name, level, parent_code FROM agencies")
    agencies = [Agency(*r) for r in await cur.fetchall()]
    cur = await conn.execute("SELECT code, max_days FROM procedures")
    days = {code: n for code, n in await cur.fetchall()}
    return (AgencyTree(agencies) if agencies else None), days


# --- dossiers -----------------------------------------------------------------------------

_DOSSIER_COLUMNS = [c for c in DOSSIER_EVENTS.columns if not c.startswith("kafka_")]
_OPEN_STATUSES = (1, 2, 4, 5, 6)


@dataclass
class DossierCursor:
    """How far the dossier state has been read: ``updated_at`` of the newest change seen."""

    updated_at: datetime | None = None
    overlap: timedelta = timedelta(minutes=2)  # longer than any ingest transaction


async def changed_dossier_facts(
    conn: psycopg.AsyncConnection,
    cursor: DossierCursor,
    active_since: datetime,
    until: datetime | None = None,
) -> list[DossierFacts]:
    """Facts of every dossier changed since the cursor (all active ones on the first call).

    ``updated_at`` is the writing transaction's start, so a row can become visible after a later
    one; re-reading an ``overlap`` behind the newest change catches it (facts are replaced, so a
    re-read is harmless). Active: any status change since ``active_since``, or still open.
    ``until`` (first call only) reads history as it stood then: later events are left out.
    """
    if cursor.updated_at is None:
        cur = await conn.execute(
            "SELECT dossier_id, updated_at FROM dossiers"
            " WHERE (status_at >= %s OR status = ANY(%s))"
            " AND (%s::timestamptz IS NULL OR first_event_at <= %s)",
            (active_since, list(_OPEN_STATUSES), until, until),
        )
    elif until is not None:
        raise ValueError("an as-of read is a first read: use a fresh cursor")
    else:
        cur = await conn.execute(
            "SELECT dossier_id, updated_at FROM dossiers WHERE updated_at >= %s",
            (cursor.updated_at - cursor.overlap,),
        )
    rows = await cur.fetchall()
    if not rows:
        return []
    newest = max(r[1] for r in rows)
    ids = [r[0] for r in rows]
    cols = ", ".join(_DOSSIER_COLUMNS)
    events: dict[str, list[DossierEvent]] = {}
    for start in range(0, len(ids), 5000):
        cur = await conn.execute(
            f"SELECT {cols} FROM dossier_events WHERE dossier_id = ANY(%s)"
            " AND (%s::timestamptz IS NULL OR event_time <= %s)",
            (ids[start : start + 5000], until, until),
        )
        for row in await cur.fetchall():
            e = msgspec.convert(dict(zip(_DOSSIER_COLUMNS, row, strict=True)), DossierEvent)
            events.setdefault(e.dossier_id, []).append(e)
    if cursor.updated_at is None or newest > cursor.updated_at:
        cursor.updated_at = newest
    return [DossierFacts.from_events(h) for h in events.values()]


# --- uptime -------------------------------------------------------------------------------


async def availability_by_window(
    conn: psycopg.AsyncConnection, windows: dict[str, tuple[datetime, datetime]]
) -> dict[str, dict[str, CheckCounts]]:
    """Per window name and service, the summed buckets ``[start, end)`` outside maintenance.

    Read through ``uptime_in_range`` (``ioc.storage.rollups``), as the wall panels are: the
    30-day window sums thirty daily rows and its edges instead of 8,640 five-minute rows per
    service on every refresh.
    """
    branches = " UNION ALL ".join(
        f"SELECT %({n}_name)s AS window_name, u.* FROM uptime_in_range(%({n}_s)s,"
        f" %({n}_e)s - interval '1 microsecond', outside_maintenance => true) u"
        for n in range(len(windows))
    )
    params: dict[str, Any] = {}
    for n, (name, (s, e)) in enumerate(windows.items()):
        params[f"{n}_name"], params[f"{n}_s"], params[f"{n}_e"] = name, s, e
    cur = await conn.execute(
        "SELECT window_name, service_id, sum(checks), sum(up), sum(degraded), sum(down),"
        f" sum(latency_ms_sum), sum(latency_samples) FROM ({branches}) w GROUP BY 1, 2",
        params,
    )
    out: dict[str, dict[str, CheckCounts]] = {n: {} for n in windows}
    for name, service, *v in await cur.fetchall():
        if v[0]:
            out[name][service] = CheckCounts(
                int(v[0]), int(v[1]), int(v[2]), int(v[3]), float(v[4]), int(v[5])
            )
    return out


async def maintenance_version(conn: psycopg.AsyncConnection) -> str:
    """A digest of every declared maintenance window: changes whenever one is added, cut
    short or withdrawn (the table is small; the incident tracker re-reads on a change)."""
    cur = await conn.execute(
        "SELECT coalesce(md5(string_agg(concat_ws('|', id, service_id, starts_at, ends_at), ','"
        " ORDER BY id)), '') FROM maintenance_windows"
    )
    row = await cur.fetchone()
    return str(row[0]) if row else ""


_BUCKET_OF_CHECK = f"date_bin('{UPTIME_BUCKET}', c.event_time, {EPOCH})"
_SINCE_BUCKET = f"date_bin('{UPTIME_BUCKET}', s.since, {EPOCH})"
_UNTIL = "coalesce(%(until)s::timestamptz, 'infinity')"


async def uptime_tails(
    conn: psycopg.AsyncConnection,
    since: dict[str, datetime],
    horizon: datetime,
    until: datetime | None = None,
) -> list[tuple[str, datetime, str]]:
    """What the incident tracker needs of each service's checks from ``since[service]`` on
    (``horizon`` for a service it has not seen), outside maintenance, up to ``until`` if given:
    the first check, every change of status and the newest check.

    Why not every check: an incident depends only on where the status changes, and the newest
    check moves the service's settled point. Each service is read through its
    ``(service_id, event_time)`` index from its own settled point, so a refresh reads only the
    tail and what arrived after it (a backfill's checks once, a live trickle's few minutes),
    whatever the order in which the checks were stored.
    """
    cur = await conn.execute(
        "SELECT s.service_id, x.event_time, x.status"
        " FROM (SELECT u.service_id, coalesce(k.since, %(horizon)s) AS since"
        "       FROM uptime_services u LEFT JOIN unnest(%(ids)s::text[],"
        "       %(sinces)s::timestamptz[]) AS k(service_id, since) USING (service_id)) s"
        " CROSS JOIN LATERAL (SELECT event_time, status,"
        "   lag(status) OVER w AS prev, lead(event_time) OVER w AS next"
        "   FROM uptime_checks c WHERE c.service_id = s.service_id AND c.event_time >= s.since"
        "   AND (%(until)s::timestamptz IS NULL OR c.event_time <= %(until)s)"
        f"   AND {outside_maintenance('c.service_id', _BUCKET_OF_CHECK, _SINCE_BUCKET, _UNTIL)}"
        "   WINDOW w AS (ORDER BY event_time, status)) x"
        " WHERE x.prev IS DISTINCT FROM x.status OR x.next IS NULL",
        {
            "horizon": horizon,
            "ids": list(since),
            "sinces": list(since.values()),
            "until": until,
        },
    )
    return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class ServiceState:
    service_id: str
    last_check_at: datetime
    last_status: str
    tls_expires_at: datetime | None


async def service_states(
    conn: psycopg.AsyncConnection, until: datetime | None = None
) -> list[ServiceState]:
    """Each service's latest check and certificate expiry: kept by the writer, or as they
    stood at ``until``, read from the raw checks with the same tie rules (two index probes
    per service)."""
    if until is None:
        cur = await conn.execute(
            "SELECT service_id, last_check_at, last_status, tls_expires_at FROM uptime_services"
            " ORDER BY service_id"
        )
    else:
        cur = await conn.execute(
            "SELECT s.service_id, c.event_time, c.status, t.tls_expires_at"
            " FROM uptime_services s"
            " CROSS JOIN LATERAL (SELECT event_time, status FROM uptime_checks"
            "   WHERE service_id = s.service_id AND event_time <= %(until)s"
            "   ORDER BY event_time DESC, status DESC LIMIT 1) c"
            " LEFT JOIN LATERAL (SELECT tls_expires_at FROM uptime_checks"
            "   WHERE service_id = s.service_id AND event_time <= %(until)s"
            "   AND tls_expires_at IS NOT NULL ORDER BY event_time DESC LIMIT 1) t ON true"
            " ORDER BY s.service_id",
            {"until": until},
        )
    return [ServiceState(*r) for r in await cur.fetchall()]


# --- security -----------------------------------------------------------------------------


async def security_totals(
    conn: psycopg.AsyncConnection, start: datetime, end: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Events per severity and per category in the 5-minute buckets ``[start, end)``."""
    cur = await conn.execute(
        "SELECT severity, category, sum(events) FROM security_5m"
        " WHERE bucket >= %s AND bucket < %s GROUP BY severity, category",
        (start, end),
    )
    by_severity: dict[str, int] = {}
    by_category: dict[str, int] = {}
    for sev, cat, n in await cur.fetchall():
        by_severity[sev] = by_severity.get(sev, 0) + int(n)
        by_category[cat] = by_category.get(cat, 0) + int(n)
    return by_severity, by_category


async def top_targets(
    conn: psycopg.AsyncConnection, start: datetime, end: datetime, *, by: str, n: int = 10
) -> list[tuple[str, int]]:
    """As :func:`ioc.kpi.security.top_targets`, summed by the database."""
    column = {"agency": "agency_code", "asset": "asset_id"}[by]
    cur = await conn.execute(
        f"SELECT {column}, sum(events) FROM security_targets_1h"
        f" WHERE bucket >= %s AND bucket < %s AND {column} <> ''"
        f" GROUP BY {column} ORDER BY 2 DESC, 1 LIMIT %s",
        (start, end, n),
    )
    return [(k, int(v)) for k, v in await cur.fetchall()]


async def source_activity(
    conn: psycopg.AsyncConnection, since: datetime, until: datetime | None = None
) -> dict[str, SourceActivity]:
    """Sources heard from since ``since``: kept by the writer, or as they stood at ``until``
    (the newest event at or before it, one index probe per source; first seen = last)."""
    if until is None:
        cur = await conn.execute(
            "SELECT source, first_event_at, last_event_at FROM security_sources"
            " WHERE last_event_at >= %s",
            (since,),
        )
    else:
        cur = await conn.execute(
            "SELECT source, last, last FROM security_sources s"
            " CROSS JOIN LATERAL (SELECT max(event_time) AS last FROM security_events e"
            "   WHERE e.source = s.source AND event_time >= %s AND event_time <= %s) l"
            " WHERE last IS NOT NULL",
            (since, until),
        )
    return {s: SourceActivity(f, last, 0) for s, f, last in await cur.fetchall()}


def last_complete_five_minutes(now: datetime) -> tuple[datetime, datetime]:
    end = floor_to(now, FIVE_MINUTES)
    return end - FIVE_MINUTES, end


# --- snapshots ----------------------------------------------------------------------------


_HISTORY = (
    'INSERT INTO kpi_snapshots (taken_at, scope, key, period, "values")'
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_CURRENT = (
    'INSERT INTO kpi_current (taken_at, scope, key, period, "values")'
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (scope, key, period) DO UPDATE"
    ' SET taken_at = EXCLUDED.taken_at, "values" = EXCLUDED."values"'
)


def _params(rows: Sequence[KpiRow]) -> list[tuple[Any, ...]]:
    return [(r.taken_at, r.scope, r.key, r.period, Jsonb(r.values)) for r in rows]


async def publish_snapshot(
    conn: psycopg.AsyncConnection, full: Sequence[KpiRow], changed: Sequence[KpiRow]
) -> None:
    """One refresh, atomically: the changed rows into the history, every row into
    ``kpi_current``, and series the snapshot no longer has (a service gone with retention, an
    agency removed from the catalogue) out of it."""
    if not full:
        return
    async with conn.transaction(), conn.cursor() as cur:
        if changed:
            await cur.executemany(_HISTORY, _params(changed))
        await cur.executemany(_CURRENT, _params(full))
        await cur.execute(
            "DELETE FROM kpi_current WHERE taken_at < %s", (min(r.taken_at for r in full),)
        )


async def publish_recomputed(conn: psycopg.AsyncConnection, rows: Sequence[KpiRow]) -> bool:
    """A recomputed snapshot (``ioc kpi recompute --write``): into the history, and, when it
    is not older than what ``kpi_current`` holds, as the current snapshot (series it no longer
    has go). So a recompute as of now corrects the walls at once, while one as of a past
    instant only fills the history and never puts old values or old series back on a wall.
    Returns whether ``kpi_current`` was replaced."""
    if not rows:
        return False
    taken = min(r.taken_at for r in rows)
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute("LOCK TABLE kpi_current IN SHARE ROW EXCLUSIVE MODE")
        await cur.execute("SELECT max(taken_at) FROM kpi_current")
        newest = await cur.fetchone()
        await cur.executemany(_HISTORY, _params(rows))
        if newest and newest[0] is not None and newest[0] > taken:
            return False
        await cur.executemany(_CURRENT, _params(rows))
        await cur.execute("DELETE FROM kpi_current WHERE taken_at < %s", (taken,))
    return True
