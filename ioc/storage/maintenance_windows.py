"""Declared maintenance windows (bảo trì theo kế hoạch): the ``maintenance_windows`` table.

A window ``[starts_at, ends_at)`` for one service or, with no service, for all of them. Every
minute it touches is left out of availability, and checks inside it out of incidents. The live
KPI engine notices any change to the table (see :func:`ioc.storage.kpi_store.
maintenance_version`), so a window declared after the fact applies at its next refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from ioc.storage.summaries import EPOCH, UPTIME_BUCKET


@dataclass(frozen=True, slots=True)
class DeclaredWindow:
    id: int
    service_id: str | None  # None: every service
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str
    created_at: datetime


_COLUMNS = "id, service_id, starts_at, ends_at, author, comment, created_at"


def declare(
    conn: psycopg.Connection,
    starts_at: datetime,
    ends_at: datetime,
    author: str,
    *,
    service_id: str | None = None,
    comment: str = "",
) -> DeclaredWindow:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValueError("maintenance windows need timezone-aware bounds")
    if ends_at <= starts_at:
        raise ValueError("a maintenance window must end after it starts")
    if not author.strip():
        raise ValueError("say who declares the window (--author)")
    row = conn.execute(
        "INSERT INTO maintenance_windows (service_id, starts_at, ends_at, author, comment)"
        f" VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (service_id, starts_at, ends_at, author, comment),
    ).fetchone()
    assert row is not None
    return DeclaredWindow(*row)


def listed(
    conn: psycopg.Connection, *, ending_after: datetime | None = None
) -> list[DeclaredWindow]:
    """Windows by start time; only those still running or to come when ``ending_after`` is set."""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM maintenance_windows"
        " WHERE %s::timestamptz IS NULL OR ends_at > %s ORDER BY starts_at, id",
        (ending_after, ending_after),
    )
    return [DeclaredWindow(*r) for r in cur.fetchall()]


def end(conn: psycopg.Connection, window_id: int, now: datetime) -> str:
    """End a window now: a running one is cut short, one still to come is withdrawn.

    Returns what happened ("ended", "withdrawn", "already over"); raises LookupError for an
    unknown id.
    """
    row = conn.execute(
        "SELECT starts_at, ends_at FROM maintenance_windows WHERE id = %s", (window_id,)
    ).fetchone()
    if row is None:
        raise LookupError(f"no maintenance window {window_id}")
    starts_at, ends_at = row
    if ends_at <= now:
        return "already over"
    if starts_at >= now:
        conn.execute("DELETE FROM maintenance_windows WHERE id = %s", (window_id,))
        return "withdrawn"
    conn.execute("UPDATE maintenance_windows SET ends_at = %s WHERE id = %s", (now, window_id))
    return "ended"


def outside_maintenance(service: str, bucket: str, lo: str, hi: str) -> str:
    """SQL: the five-minute ``bucket`` of ``service`` overlaps no declared window.

    ``lo`` and ``hi`` are SQL expressions bounding the buckets the query reads (``hi`` may be
    ``'infinity'``). The windows overlapping them become the buckets they touch, and the rows
    are hash-joined against those twice: once for windows of every service, once for the
    row's own service. Comparing each row with each window instead (``NOT EXISTS … starts_at
    < bucket + 5 min AND ends_at > bucket``) is the same set of buckets but scans every window
    per row: a year of weekly windows made a year's availability take 45 s, 0.56 s this way
    (bench/dashboards.py).
    """
    step = f"interval '{UPTIME_BUCKET}'"
    windows = (
        "SELECT 1 FROM maintenance_windows w,"
        f" generate_series(date_bin({step}, greatest(w.starts_at, {lo}), {EPOCH}),"
        f" least(w.ends_at, {hi}), {step}) AS b"
        f" WHERE w.starts_at < {hi} + {step} AND w.ends_at > {lo} AND b < w.ends_at"
        f" AND b = {bucket}"
    )
    return (
        f"NOT EXISTS ({windows} AND w.service_id IS NULL)"
        f" AND NOT EXISTS ({windows} AND w.service_id = {service})"
    )
