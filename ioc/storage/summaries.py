"""Summary tables: kept by the writer in the ingest transaction, rebuilt from raw rows by SQL.

Why in the ingest transaction: the increments are computed from the events that transaction
*newly inserted*, so a replay, a redelivery or a crash between the commit and the offset commit
can never count an event twice or lose it, and N workers add into the same rows. (Faust tables
with a changelog are at-least-once without Kafka transactions, and cost a topic write per
update.) Late events land in their own bucket whenever they arrive: the summaries never close.

The same rows can be derived from the raw tables with one ``INSERT … SELECT … GROUP BY
date_bin`` each (:func:`rebuild`): that is ``ioc kpi recompute``, and the integration tests
prove both ways give identical tables. Buckets are aligned on the Unix epoch, which is also on
Vietnamese minute, 5-minute and hour boundaries.

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


SUMMARY_TABLES: tuple[SummaryTable, ...] = (
    SummaryTable(
        "uptime_5m",
        "uptime_checks",
        UPTIME_BUCKET,
        """
        service_id      text NOT NULL,
        bucket          timestamptz NOT NULL,
        checks          integer NOT NULL,
        up              integer NOT NULL,
        degraded        integer NOT NULL,
        down            integer NOT NULL,
        latency_ms_sum  double precision NOT NULL,
        latency_samples integer NOT NULL,
        PRIMARY KEY (bucket, service_id)
        """,
    ),
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
    SummaryTable(
        "security_5m",
        "security_events",
        "5 minutes",
        """
        bucket    timestamptz NOT NULL,
        source    text NOT NULL,
        severity  text NOT NULL,
        category  text NOT NULL,
        events    bigint NOT NULL,
        PRIMARY KEY (bucket, source, severity, category)
        """,
    ),
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


_STATUS_COLUMN = {"up": 1, "degraded": 2, "down": 3}
_UPTIME_BUCKET_SECONDS = int(BUCKET.total_seconds())


async def add_uptime(conn: psycopg.AsyncConnection, events: Sequence[UptimeEvent]) -> None:
    """Add newly stored checks to ``uptime_5m`` and ``uptime_services``.

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
    at = _bucket_times({k[1] for k in buckets})
    rows = [(s, at[t], *m) for (s, t), m in sorted(buckets.items())]
    async with conn.pipeline():  # one round trip for both
        await conn.execute(_UPTIME_5M, _columns(rows))
        await conn.execute(
            _UPTIME_SERVICES, _columns([(s, *v) for s, v in sorted(services.items())])
        )


async def add_security(conn: psycopg.AsyncConnection, events: Sequence[SecurityEvent]) -> None:
    """Add newly stored security events to the three security summaries.

    One pass with the bucket arithmetic on integer seconds (this runs for every security
    event, the high-volume stream); it gives exactly :func:`ioc.kpi.security.category_counts`,
    :func:`~ioc.kpi.security.target_counts` and :func:`~ioc.kpi.security.source_activity`, as
    the integration tests check.
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
    at = _bucket_times({k[0] for k in five} | {k[0] for k in hourly})
    async with conn.pipeline():  # one round trip for the three: batches can be small
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


async def rebuild(conn: psycopg.AsyncConnection, start: datetime, end: datetime) -> dict[str, int]:
    """Re-derive every summary for ``[start, end)`` from the raw tables, in one transaction.

    ``start`` and ``end`` must be whole hours (the widest bucket), so no bucket is cut. The
    bucketed tables are replaced over the range; the per-key state tables (last check, last
    event of a source) merge what the range says, which is idempotent. Live writers wait on
    the table locks for the few seconds this takes, so no increment falls between the delete
    and the insert. Rows go in bucket order, as the live writer leaves them: a panel reading a
    day then reads a few pages, not one row per page. Returns the rows written per table.
    """
    for t in (start, end):
        if t.tzinfo is None or t.timestamp() % 3600:
            raise ValueError("recompute bounds must be timezone-aware whole hours")
    written: dict[str, int] = {}
    async with conn.transaction():
        names = ", ".join(t.name for t in SUMMARY_TABLES)
        await conn.execute(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE")
        for table in SUMMARY_TABLES:
            if table.bucket is not None:
                await conn.execute(
                    f"DELETE FROM {table.name} WHERE bucket >= %(start)s AND bucket < %(end)s",
                    {"start": start, "end": end},
                )
            cur = await conn.execute(_REBUILD[table.name], {"start": start, "end": end})
            written[table.name] = cur.rowcount
    return written
