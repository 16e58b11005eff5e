"""Partition maintenance for plain PostgreSQL (TimescaleDB manages its own chunks).

The writer asks :class:`PartitionKeeper` for the partitions a batch needs before it writes;
the keeper remembers what exists, so the common case costs a set lookup and no SQL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from ioc.partitioning import REPORTING_TZ, PartitionSpan, expired_partitions, plan_partitions
from ioc.storage.tables import EventTable

log = logging.getLogger(__name__)

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


class PartitionKeeper:
    """Creates missing partitions ahead of writes and drops expired ones."""

    def __init__(self, table: EventTable, *, ahead: int = 2) -> None:
        self.table = table
        self.ahead = ahead
        self._known: set[str] | None = None

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
            log.info("dropped expired partition %s", span.name)
        return expired

    def forget(self) -> None:
        """Re-read the catalogue next time (after a reconnect or an unexpected error)."""
        self._known = None
