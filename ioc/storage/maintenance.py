"""Partition maintenance for plain PostgreSQL (TimescaleDB manages its own chunks).

The writer asks :class:`PartitionKeeper` for the partitions a batch needs before it writes;
the keeper remembers what exists, so the common case costs a set lookup and no SQL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from ioc.partitioning import (
    REPORTING_TZ,
    PartitionSpan,
    expired_partitions,
    plan_partitions,
    span_containing,
)
from ioc.retention import KeptTable, Retention
from ioc.storage.tables import EVENT_TABLES, MODE_QUERY, EventTable

log = logging.getLogger(__name__)

PARTITION_LOCK = 0x10C_0003
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


async def list_partitions(conn: psycopg.AsyncConnection, table: str) -> list[PartitionSpan]:
    """The partitions attached to ``table``, with bounds read from the catalogue."""
    cur = await conn.execute(
        """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass
        """,
        (table,),
    )
    spans = []
    for _name, bound in await cur.fetchall():
        m = _BOUND.search(bound or "")
        if m:
            start, end = (datetime.fromisoformat(x).astimezone(REPORTING_TZ) for x in m.groups())
            spans.append(PartitionSpan(start, end, table))
    return sorted(spans)


async def read_storage_mode(conn: psycopg.AsyncConnection) -> str | None:
    """``timescale`` or ``plain`` as recorded by the first migration; None if unmigrated."""
    try:
        cur = await conn.execute(MODE_QUERY)
    except psycopg.errors.UndefinedTable:
        return None
    row = await cur.fetchone()
    return str(row[0]) if row else None


class PartitionKeeper:
    """Creates missing partitions ahead of writes and drops expired ones."""

    def __init__(self, table: EventTable, *, ahead: int = 2) -> None:
        self.table = table
        self.ahead = ahead
        self._known: set[str] | None = None
        self._covered: list[PartitionSpan] = []  # spans known to exist, for the fast path

    async def ensure_for_batch(
        self, conn: psycopg.AsyncConnection, times: Sequence[datetime], now: datetime
    ) -> list[PartitionSpan]:
        """Like :meth:`ensure`, but a batch whose first and last times fall in one partition
        already made costs two comparisons (the common case), not a plan per event."""
        if not times:
            return await self.ensure(conn, times, now)
        lo, hi = min(times), max(times)
        if any(span.start <= lo and hi < span.end for span in self._covered):
            return []
        created = await self.ensure(conn, times, now)
        span = span_containing(self.table.name, lo, self.table.interval)
        if hi < span.end and span not in self._covered:
            self._covered = [*self._covered, span][-8:]
        return created

    async def ensure(
        self, conn: psycopg.AsyncConnection, times: Iterable[datetime], now: datetime
    ) -> list[PartitionSpan]:
        if self._known is None:
            self._known = {s.name for s in await list_partitions(conn, self.table.name)}
        missing = plan_partitions(
            self.table.name,
            self.table.interval,
            times,
            existing=self._known,
            now=now,
            ahead=self.ahead,
        )
        for span in missing:
            # IF NOT EXISTS is not safe against a concurrent create of the same partition
            # (another worker, or maintenance): serialise creators per table.
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                    (PARTITION_LOCK, self.table.name),
                )
                await conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})"
                    ).format(
                        sql.Identifier(span.name),
                        sql.Identifier(self.table.name),
                        sql.Literal(span.start),
                        sql.Literal(span.end),
                    )
                )
            self._known.add(span.name)
            log.info("created partition %s [%s, %s)", span.name, span.start, span.end)
        return missing

    async def drop_expired(
        self, conn: psycopg.AsyncConnection, now: datetime, retention: timedelta
    ) -> list[PartitionSpan]:
        spans = await list_partitions(conn, self.table.name)
        expired = expired_partitions(spans, now=now, retention=retention)
        for span in expired:
            await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(span.name)))
            if self._known is not None:
                self._known.discard(span.name)
            self._covered = [c for c in self._covered if c.name != span.name]
            log.info("dropped expired partition %s", span.name)
        return expired

    def forget(self) -> None:
        """Re-read the catalogue next time (after a reconnect or an unexpected error)."""
        self._known = None
        self._covered = []


MAINTENANCE_LOCK = 0x10C_0002


async def run_maintenance(conninfo: str, retention: Retention, now: datetime) -> list[str]:
    """Partitions ahead, and retention for every table :mod:`ioc.retention` lists; returns
    what it changed.

    Safe to run from every worker at once: one holds an advisory lock, the others skip.
    Plain PostgreSQL: create the coming partitions of the event tables, drop those past
    retention, delete older rows of the other tables. TimescaleDB: make each hypertable's
    retention policy match the settings; the tables that are not hypertables are deleted
    from as on plain PostgreSQL. Only finished rows go (``KeptTable.finished``).
    """
    changes: list[str] = []
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (MAINTENANCE_LOCK,))
        row = await cur.fetchone()
        if not row or not row[0]:
            return changes
        try:
            mode = await read_storage_mode(conn) or "plain"
            hypertables = await _hypertables(conn) if mode == "timescale" else set()
            existing = await _existing_tables(conn)
            for kept, days in retention.plan():
                if kept.name not in existing:
                    continue  # a table a later migration creates
                if kept.name in hypertables:
                    if await _reconcile_retention_policy(conn, kept.name, days):
                        changes.append(f"{kept.name}: retention {days or 'forever'} days")
                elif kept.name in EVENT_TABLES:
                    keeper = PartitionKeeper(EVENT_TABLES[kept.name])
                    created = await keeper.ensure(conn, (), now)
                    changes += [f"created {s.name}" for s in created]
                    if days is not None:
                        dropped = await keeper.drop_expired(conn, now, timedelta(days=days))
                        changes += [f"dropped {s.name}" for s in dropped]
                elif days is not None:
                    deleted = await _delete_older(conn, kept, now - timedelta(days=days))
                    if deleted:
                        changes.append(f"{kept.name}: deleted {deleted} rows past {days} days")
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MAINTENANCE_LOCK,))
    return changes


async def _delete_older(conn: psycopg.AsyncConnection, kept: KeptTable, horizon: datetime) -> int:
    condition = sql.SQL("{} < %s").format(sql.Identifier(kept.column))
    if kept.finished:
        condition = sql.SQL("{} AND ({})").format(condition, sql.SQL(kept.finished))  # type: ignore[arg-type]
    cur = await conn.execute(
        sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(kept.name), condition),
        (horizon,),
    )
    return cur.rowcount


async def _existing_tables(conn: psycopg.AsyncConnection) -> set[str]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_class c"
        " WHERE c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace"
    )
    return {r[0] for r in await cur.fetchall()}


async def _hypertables(conn: psycopg.AsyncConnection) -> set[str]:
    cur = await conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
    return {r[0] for r in await cur.fetchall()}


async def _reconcile_retention_policy(
    conn: psycopg.AsyncConnection, name: str, days: int | None
) -> bool:
    cur = await conn.execute(
        "SELECT config->>'drop_after' FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_retention' AND hypertable_name = %s",
        (name,),
    )
    row = await cur.fetchone()
    current = row[0] if row else None
    wanted = f"{days} days" if days is not None else None
    if current == wanted:
        return False
    await conn.execute("SELECT remove_retention_policy(%s::regclass, if_exists => true)", (name,))
    if days is not None:
        await conn.execute(
            "SELECT add_retention_policy(%s::regclass, %s::interval)", (name, wanted)
        )
    return True
