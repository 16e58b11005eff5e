"""Summary tables: kept by the writer in the ingest transaction, rebuilt from raw rows by SQL.

Why in the ingest transaction: the increments are computed from the events that transaction
*newly inserted*, so a replay, a redelivery or a crash between the commit and the offset commit
can never count an event twice or lose it, and N workers add into the same rows. (Faust tables
with a changelog are at-least-once without Kafka transactions, and cost a topic write per
update.) Late events land in their own bucket whenever they arrive: the summaries never close.

The same rows can be derived from the raw tables with one ``INSERT … SELECT … GROUP BY
date_bin`` each (:func:`rebuild`): that is ``ioc kpi recompute``, and the integration tests
prove both ways give identical tables. Buckets are aligned on the Unix epoch, which is also on
Vietnamese minute, 5-minute and hour boundaries; daily rollups start at 00:00 UTC (07:00 in
Vietnam), which no reader sees: ``ioc.storage.rollups`` reads a day's rows only for ranges
covering the whole UTC day, and series grouped by whole days, as Grafana groups them.

Rows are written in key order so that two workers adding to the same rows (targets of one
agency reported by two sources) queue on row locks instead of deadlocking.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from ioc.events import SecurityEvent, UptimeEvent
from ioc.kpi.uptime import BUCKET

EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
UPTIME_BUCKET = f"{int(BUCKET.total_seconds())} seconds"  # the pure rule's bucket, in SQL


@dataclass(frozen=True, slots=True)
class SummaryTable:
    name: str
    stream_table: str  # the raw table it summarises
    bucket: str | None  # date_bin width, or None for a per-key state table
    ddl: str
    #: For a coarser rollup, the finer summary it sums (by its keys, dropping the others).
    rolls_up: str | None = None
    keys: tuple[str, ...] = ()  # a rollup's key columns after ``bucket``
    sums: tuple[str, ...] = ()  # a rollup's additive columns


_UPTIME_DDL = """
        service_id      text NOT NULL,
        bucket          timestamptz NOT NULL,
        checks          integer NOT NULL,
        up              integer NOT NULL,
        degraded        integer NOT NULL,
        down            integer NOT NULL,
        latency_ms_sum  double precision NOT NULL,
        latency_samples integer NOT NULL,
        PRIMARY KEY (bucket, service_id)
        """
_SECURITY_DDL = """
        bucket    timestamptz NOT NULL,
        source    text NOT NULL,
        severity  text NOT NULL,
        category  text NOT NULL,
        events    bigint NOT NULL,
        PRIMARY KEY (bucket, source, severity, category)
        """

#: The coarser tiers (rollups) a long time range reads instead of the five-minute rows: a
#: year of ``uptime_5m`` is 3.4M rows, of ``uptime_1d`` twelve thousand. The writer adds to
#: every tier in the same transaction, so they are exact for late events and replays too, and
#: ``ioc.storage.rollups`` reads each stretch of a range from the coarsest tier that covers it.
_UPTIME_SUMS = ("checks", "up", "degraded", "down", "latency_ms_sum", "latency_samples")
ROLLUPS: tuple[SummaryTable, ...] = (
    SummaryTable(
        "uptime_1h", "uptime_checks", "1 hour", _UPTIME_DDL, "uptime_5m",
        ("service_id",), _UPTIME_SUMS,
    ),
    SummaryTable(
        "uptime_1d", "uptime_checks", "1 day", _UPTIME_DDL, "uptime_1h",
        ("service_id",), _UPTIME_SUMS,
    ),
    SummaryTable(
        "security_1h", "security_events", "1 hour", _SECURITY_DDL, "security_5m",
        ("source", "severity", "category"), ("events",),
    ),
    SummaryTable(
        "security_1d", "security_events", "1 day", _SECURITY_DDL, "security_1h",
        ("source", "severity", "category"), ("events",),
    ),
    SummaryTable(
        "security_targets_1d",
        "security_events",
        "1 day",
        """
        bucket       timestamptz NOT NULL,
        agency_code  text NOT NULL,
        asset_id     text NOT NULL,
        events       bigint NOT NULL,
        PRIMARY KEY (bucket, agency_code, asset_id)
        """,
        "security_targets_1h",
        ("agency_code", "asset_id"),  # the panels rank targets over every severity
        ("events",),
    ),
)  # fmt: skip

#: Every summary: the five-minute and hourly tables the writer has always kept, the per-key
#: state tables, then the rollups (in the order a rebuild must fill them: finer first).
SUMMARY_TABLES: tuple[SummaryTable, ...] = (
    SummaryTable("uptime_5m", "uptime_checks", UPTIME_BUCKET, _UPTIME_DDL),
    SummaryTable(
        "uptime_services",
        "uptime_checks",
        None,
        """
        service_id      text PRIMARY KEY,
        first_check_at  timestamptz NOT NULL,
        last_check_at   timestamptz NOT NULL,
        last_status     text NOT NULL,
        tls_expires_at  timestamptz,
        tls_seen_at     timestamptz
        """,
    ),
    SummaryTable("security_5m", "security_events", "5 minutes", _SECURITY_DDL),
    SummaryTable(
        "security_targets_1h",
        "security_events",
        "1 hour",
        """
        bucket       timestamptz NOT NULL,
        agency_code  text NOT NULL,
        asset_id     text NOT NULL,
        severity     text NOT NULL,
        events       bigint NOT NULL,
        PRIMARY KEY (bucket, agency_code, asset_id, severity)
        """,
    ),
    SummaryTable(
        "security_sources",
        "security_events",
        None,
        """
        source          text PRIMARY KEY,
        first_event_at  timestamptz NOT NULL,
        last_event_at   timestamptz NOT NULL
        """,
    ),
    *ROLLUPS,
)
BY_NAME = {t.name: t for t in SUMMARY_TABLES}


def _unnest(types: Sequence[str]) -> str:
    return ", ".join(f"%b::{t}[]" for t in types)


_UPTIME_5M_TYPES = ["text", "timestamptz", "int", "int", "int", "int", "float8", "int"]
_UPTIME_5M = f"""
INSERT INTO uptime_5m (service_id, bucket, checks, up, degraded, down, latency_ms_sum,
                       latency_samples)
SELECT * FROM unnest({_unnest(_UPTIME_5M_TYPES)})
ON CONFLICT (bucket, service_id) DO UPDATE SET
    checks = uptime_5m.checks + EXCLUDED.checks,
    up = uptime_5m.up + EXCLUDED.up,
    degraded = uptime_5m.degraded + EXCLUDED.degraded,
    down = uptime_5m.down + EXCLUDED.down,
    latency_ms_sum = uptime_5m.latency_ms_sum + EXCLUDED.latency_ms_sum,
    latency_samples = uptime_5m.latency_samples + EXCLUDED.latency_samples
"""

# The latest check (by time, then status name, as the incident scan orders ties) sets the
# status; the latest check that carried a certificate expiry sets it.
_SERVICES_MERGE = """
ON CONFLICT (service_id) DO UPDATE SET
    first_check_at = LEAST(uptime_services.first_check_at, EXCLUDED.first_check_at),
    last_status = CASE WHEN (EXCLUDED.last_check_at, EXCLUDED.last_status)
                            > (uptime_services.last_check_at, uptime_services.last_status)
                       THEN EXCLUDED.last_status ELSE uptime_services.last_status END,
    last_check_at = GREATEST(uptime_services.last_check_at, EXCLUDED.last_check_at),
    tls_expires_at = CASE WHEN uptime_services.tls_seen_at IS NULL
                            OR EXCLUDED.tls_seen_at > uptime_services.tls_seen_at
                       THEN COALESCE(EXCLUDED.tls_expires_at, uptime_services.tls_expires_at)
                       ELSE uptime_services.tls_expires_at END,
    tls_seen_at = GREATEST(uptime_services.tls_seen_at, EXCLUDED.tls_seen_at)
"""
_UPTIME_SERVICES = (
    "INSERT INTO uptime_services (service_id, first_check_at, last_check_at, last_status,"
    " tls_expires_at, tls_seen_at) SELECT * FROM unnest("
    + _unnest(["text", "timestamptz", "timestamptz", "text", "timestamptz", "timestamptz"])
    + ")"
    + _SERVICES_MERGE
)

_SECURITY_5M = f"""
INSERT INTO security_5m (bucket, source, severity, category, events)
SELECT * FROM unnest({_unnest(["timestamptz", "text", "text", "text", "int8"])})
ON CONFLICT (bucket, source, severity, category) DO UPDATE SET
    events = security_5m.events + EXCLUDED.events
"""
_SECURITY_TARGETS = f"""
INSERT INTO security_targets_1h (bucket, agency_code, asset_id, severity, events)
SELECT * FROM unnest({_unnest(["timestamptz", "text", "text", "text", "int8"])})
ON CONFLICT (bucket, agency_code, asset_id, severity) DO UPDATE SET
    events = security_targets_1h.events + EXCLUDED.events
"""
_SOURCES_MERGE = """
ON CONFLICT (source) DO UPDATE SET
    first_event_at = LEAST(security_sources.first_event_at, EXCLUDED.first_event_at),
    last_event_at = GREATEST(security_sources.last_event_at, EXCLUDED.last_event_at)
"""
_SECURITY_SOURCES = (
    "INSERT INTO security_sources (source, first_event_at, last_event_at)"
    f" SELECT * FROM unnest({_unnest(['text', 'timestamptz', 'timestamptz'])})" + _SOURCES_MERGE
)


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else []


_SQL_TYPES = {
    "bucket": "timestamptz",
    "checks": "int",
    "up": "int",
    "degraded": "int",
    "down": "int",
    "latency_ms_sum": "float8",
    "latency_samples": "int",
    "events": "int8",
}


def _rollup_upsert(t: SummaryTable) -> str:
    """Add rows of (bucket, keys…, sums…) into rollup ``t``."""
    columns = ("bucket", *t.keys, *t.sums)
    types = [_SQL_TYPES.get(c, "text") for c in columns]
    added = ", ".join(f"{c} = {t.name}.{c} + EXCLUDED.{c}" for c in t.sums)
    return (
        f"INSERT INTO {t.name} ({', '.join(columns)}) SELECT * FROM unnest({_unnest(types)})"
        f" ON CONFLICT (bucket, {', '.join(t.keys)}) DO UPDATE SET {added}"
    )


_ROLLUP_UPSERT = {t.name: _rollup_upsert(t) for t in ROLLUPS}

Key = tuple[Any, ...]  # (bucket in epoch seconds, key columns…)


def _roll(rows: dict[Key, list[Any]], width: int, drop: int = 0) -> dict[Key, list[Any]]:
    """Sum ``rows`` into ``width``-second buckets, dropping the last ``drop`` key columns."""
    out: dict[Key, list[Any]] = {}
    for (ts, *keys), values in rows.items():
        k = (ts - ts % width, *(keys[: len(keys) - drop]))
        m = out.get(k)
        if m is None:
            out[k] = list(values)
        else:
            for i, v in enumerate(values):
                m[i] += v
    return out


def _rollup_rows(rows: dict[Key, list[Any]], at: dict[int, datetime]) -> list[list[Any]]:
    """Column arrays of rows in key order (the lock order every writer shares)."""
    return _columns([(at[k[0]], *k[1:], *v) for k, v in sorted(rows.items())])


_STATUS_COLUMN = {"up": 1, "degraded": 2, "down": 3}
_UPTIME_BUCKET_SECONDS = int(BUCKET.total_seconds())
HOUR, DAY = 3600, 86400


async def add_uptime(conn: psycopg.AsyncConnection, events: Sequence[UptimeEvent]) -> None:
    """Add newly stored checks to ``uptime_5m``, its hourly and daily rollups and
    ``uptime_services``.

    One pass on integer seconds, like :func:`add_security`; it gives exactly
    :func:`ioc.kpi.uptime.bucket_counts`, as the integration tests check.
    """
    if not events:
        return
    buckets: dict[tuple[str, int], list[Any]] = {}
    services: dict[str, list[Any]] = {}
    for e in events:
        ts = int(e.event_time.timestamp())
        key = (e.service_id, ts - ts % _UPTIME_BUCKET_SECONDS)
        m = buckets.get(key)
        if m is None:
            m = buckets[key] = [0, 0, 0, 0, 0.0, 0]
        m[0] += 1
        m[_STATUS_COLUMN[e.status]] += 1
        if e.latency_ms is not None:
            m[4] += e.latency_ms
            m[5] += 1
        tls_seen = e.event_time if e.tls_expires_at is not None else None
        row = services.get(e.service_id)
        if row is None:
            services[e.service_id] = [
                e.event_time,
                e.event_time,
                e.status,
                e.tls_expires_at,
                tls_seen,
            ]
            continue
        if e.event_time < row[0]:
            row[0] = e.event_time
        if (e.event_time, e.status) > (row[1], row[2]):
            row[1], row[2] = e.event_time, e.status
        if tls_seen is not None and (row[4] is None or tls_seen > row[4]):
            row[3], row[4] = e.tls_expires_at, tls_seen
    hourly = _roll({(t, s): m for (s, t), m in buckets.items()}, HOUR)
    daily = _roll(hourly, DAY)
    at = _bucket_times({k[1] for k in buckets} | {k[0] for k in hourly} | {k[0] for k in daily})
    rows = [(s, at[t], *m) for (s, t), m in sorted(buckets.items())]
    async with conn.pipeline():  # one round trip for all
        await conn.execute(_UPTIME_5M, _columns(rows))
        await conn.execute(_ROLLUP_UPSERT["uptime_1h"], _rollup_rows(hourly, at))
        await conn.execute(_ROLLUP_UPSERT["uptime_1d"], _rollup_rows(daily, at))
        await conn.execute(
            _UPTIME_SERVICES, _columns([(s, *v) for s, v in sorted(services.items())])
        )


async def add_security(conn: psycopg.AsyncConnection, events: Sequence[SecurityEvent]) -> None:
    """Add newly stored security events to the security summaries and their rollups.

    One pass with the bucket arithmetic on integer seconds (this runs for every security
    event, the high-volume stream); it gives exactly :func:`ioc.kpi.security.category_counts`,
    :func:`~ioc.kpi.security.target_counts` and :func:`~ioc.kpi.security.source_activity`, as
    the integration tests check. The rollups are summed from those counts, not the events.
    """
    if not events:
        return
    five: Counter[tuple[int, str, str, str]] = Counter()
    hourly: Counter[tuple[int, str, str, str]] = Counter()
    sources: dict[str, list[datetime]] = {}
    for e in events:
        ts = int(e.event_time.timestamp())
        five[(ts - ts % 300, e.source, e.severity, e.category)] += 1
        hourly[(ts - ts % 3600, e.agency_code or "", e.asset_id or "", e.severity)] += 1
        seen = sources.get(e.source)
        if seen is None:
            sources[e.source] = [e.event_time, e.event_time]
        elif e.event_time < seen[0]:
            seen[0] = e.event_time
        elif e.event_time > seen[1]:
            seen[1] = e.event_time
    security_1h = _roll({k: [n] for k, n in five.items()}, HOUR)
    security_1d = _roll(security_1h, DAY)
    targets_1d = _roll({k: [n] for k, n in hourly.items()}, DAY, drop=1)
    at = _bucket_times({k[0] for k in five} | {k[0] for k in hourly} | {k[0] for k in security_1d})
    async with conn.pipeline():  # one round trip for all: batches can be small
        await conn.execute(
            _SECURITY_5M, _columns([(at[k[0]], *k[1:], n) for k, n in sorted(five.items())])
        )
        await conn.execute(
            _SECURITY_TARGETS,
            _columns([(at[k[0]], *k[1:], n) for k, n in sorted(hourly.items())]),
        )
        await conn.execute(
            _SECURITY_SOURCES, _columns([(src, *v) for src, v in sorted(sources.items())])
        )
        await conn.execute(_ROLLUP_UPSERT["security_1h"], _rollup_rows(security_1h, at))
        await conn.execute(_ROLLUP_UPSERT["security_1d"], _rollup_rows(security_1d, at))
        await conn.execute(_ROLLUP_UPSERT["security_targets_1d"], _rollup_rows(targets_1d, at))


def _bucket_times(seconds: set[int]) -> dict[int, datetime]:
    return {s: datetime.fromtimestamp(s, UTC) for s in seconds}


# --- Rebuilding from raw rows (``ioc kpi recompute``) -------------------------------------

_REBUILD: dict[str, str] = {
    "uptime_5m": f"""
        INSERT INTO uptime_5m
        SELECT service_id, date_bin('{UPTIME_BUCKET}', event_time, {EPOCH}) AS bucket,
               count(*), count(*) FILTER (WHERE status = 'up'),
               count(*) FILTER (WHERE status = 'degraded'),
               count(*) FILTER (WHERE status = 'down'),
               COALESCE(sum(latency_ms), 0), count(latency_ms)
        FROM uptime_checks WHERE event_time >= %(start)s AND event_time < %(end)s
        GROUP BY 1, 2 ORDER BY 2
    """,
    "uptime_services": """
        INSERT INTO uptime_services
        SELECT service_id, min(event_time),
               max(event_time),
               (array_agg(status ORDER BY event_time DESC, status DESC))[1],
               (array_agg(tls_expires_at ORDER BY event_time DESC)
                    FILTER (WHERE tls_expires_at IS NOT NULL))[1],
               max(event_time) FILTER (WHERE tls_expires_at IS NOT NULL)
        FROM uptime_checks WHERE event_time >= %(start)s AND event_time < %(end)s
        GROUP BY service_id
    """
    + _SERVICES_MERGE,
    "security_5m": f"""
        INSERT INTO security_5m
        SELECT date_bin('5 minutes', event_time, {EPOCH}), source, severity, category, count(*)
        FROM security_events WHERE event_time >= %(start)s AND event_time < %(end)s
        GROUP BY 1, 2, 3, 4 ORDER BY 1
    """,
    "security_targets_1h": f"""
        INSERT INTO security_targets_1h
        SELECT date_bin('1 hour', event_time, {EPOCH}), COALESCE(agency_code, ''),
               COALESCE(asset_id, ''), severity, count(*)
        FROM security_events WHERE event_time >= %(start)s AND event_time < %(end)s
        GROUP BY 1, 2, 3, 4 ORDER BY 1
    """,
    "security_sources": """
        INSERT INTO security_sources
        SELECT source, min(event_time), max(event_time)
        FROM security_events WHERE event_time >= %(start)s AND event_time < %(end)s
        GROUP BY source
    """
    + _SOURCES_MERGE,
}


def _rollup_rebuild(t: SummaryTable) -> str:
    keys = ", ".join(t.keys)
    return f"""
        INSERT INTO {t.name} (bucket, {keys}, {", ".join(t.sums)})
        SELECT date_bin('{t.bucket}', bucket, {EPOCH}), {keys},
               {", ".join(f"sum({c})" for c in t.sums)}
        FROM {t.rolls_up} WHERE bucket >= %(start)s AND bucket < %(end)s
        GROUP BY 1, {keys} ORDER BY 1
    """


#: Re-sums each rollup over ``[%(start)s, %(end)s)`` of its finer table (migration 8 too).
ROLLUP_REBUILD = {t.name: _rollup_rebuild(t) for t in ROLLUPS}
_REBUILD.update(ROLLUP_REBUILD)


def _widened(t: SummaryTable, start: datetime, end: datetime) -> dict[str, datetime]:
    """``[start, end)`` widened to whole buckets of ``t`` (a day, for a daily rollup)."""
    width = DAY if t.bucket == "1 day" else HOUR
    lo, hi = int(start.timestamp()), int(end.timestamp())
    return {
        "start": datetime.fromtimestamp(lo - lo % width, UTC),
        "end": datetime.fromtimestamp(hi + (-hi) % width, UTC),
    }


async def rebuild(conn: psycopg.AsyncConnection, start: datetime, end: datetime) -> dict[str, int]:
    """Re-derive every summary for ``[start, end)`` from the raw tables, in one transaction.

    ``start`` and ``end`` must be whole hours (the widest bucket read from raw rows), so no
    bucket is cut. The bucketed tables are replaced over the range; the per-key state tables
    (last check, last event of a source) merge what the range says, which is idempotent. Live
    writers wait on the table locks for the few seconds this takes, so no increment falls
    between the delete and the insert. Rows go in bucket order, as the live writer leaves
    them: a panel reading a day then reads a few pages, not one row per page. The rollups are
    then re-summed (:func:`roll_up`). Returns the rows written per table.
    """
    for t in (start, end):
        if t.tzinfo is None or t.timestamp() % 3600:
            raise ValueError("recompute bounds must be timezone-aware whole hours")
    written: dict[str, int] = {}
    async with conn.transaction():
        names = ", ".join(t.name for t in SUMMARY_TABLES)
        await conn.execute(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")
        for table in SUMMARY_TABLES:
            if table.rolls_up is None:
                written[table.name] = await _replace(conn, table, start, end)
        written.update(await roll_up(conn, start, end))
    return written


async def roll_up(conn: psycopg.AsyncConnection, start: datetime, end: datetime) -> dict[str, int]:
    """Re-sum the rollups over ``[start, end)`` (whole hours) from the finer summaries.

    A daily rollup is re-summed over the whole days the range touches, from the hourly rows
    of those days (correct outside the range too). Call it inside the caller's transaction.
    """
    return {t.name: await _replace(conn, t, start, end) for t in ROLLUPS}


async def _replace(
    conn: psycopg.AsyncConnection, table: SummaryTable, start: datetime, end: datetime
) -> int:
    bounds = _widened(table, start, end)
    if table.bucket is not None:
        await conn.execute(
            f"DELETE FROM {table.name} WHERE bucket >= %(start)s AND bucket < %(end)s", bounds
        )
    cur = await conn.execute(_REBUILD[table.name], bounds)
    return cur.rowcount
