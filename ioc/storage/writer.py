"""Batch writes: COPY, made idempotent with a staging table when it has to be.

Why this shape: COPY is the fastest way into PostgreSQL, but it cannot skip rows that already
exist. A batch of new events is copied straight into its table under a savepoint; if any row
already exists (a replay, a redelivery) the savepoint rolls back and the batch is copied into a
session-local staging table and moved with ``INSERT … SELECT … ON CONFLICT DO NOTHING`` on the
``(event_id, event_time)`` key. A replayed or redelivered event therefore lands once. Valid
rows, the dossier state and the batch's dead letters commit in one transaction: the caller
acknowledges offsets only after it returns.

Dossier state is merged in the same statement from the rows that were *actually inserted*
(``RETURNING``), so a duplicate can never count twice; the merge mirrors
:class:`ioc.dossier_state.DossierState.merge`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from ioc.deadletter import DeadLetter, pg_text
from ioc.events import SEVERITY_RANK, DossierEvent, SecurityEvent, UptimeEvent
from ioc.storage.maintenance import PartitionKeeper, read_storage_mode
from ioc.storage.summaries import add_security, add_uptime
from ioc.storage.tables import DEAD_LETTER_COLUMNS, EVENT_TABLES, EventTable
from ioc.storage_types import Consumed
from ioc.streams import Stream

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int
    dead_lettered: int
    seconds: float


def _dossier_row(e: DossierEvent, p: int, o: int) -> tuple[Any, ...]:
    return (
        e.event_id,
        e.event_time,
        e.dossier_id,
        e.status,
        e.procedure_code,
        e.agency_code,
        e.channel,
        e.received_at,
        e.due_at,
        e.online_level,
        e.fee_required,
        e.fee_amount,
        e.paid_online,
        e.e_result,
        e.e_result_required,
        e.rating,
        e.source,
        p,
        o,
    )


def _uptime_row(e: UptimeEvent, p: int, o: int) -> tuple[Any, ...]:
    return (
        e.event_id,
        e.event_time,
        e.service_id,
        e.status,
        e.kind,
        e.probe_id,
        e.latency_ms,
        e.http_status,
        e.tls_expires_at,
        e.error,
        p,
        o,
    )


def _security_row(e: SecurityEvent, p: int, o: int) -> tuple[Any, ...]:
    return (
        e.event_id,
        e.event_time,
        e.source,
        e.severity,
        SEVERITY_RANK[e.severity],
        e.category,
        e.source_severity,
        e.src_ip,
        e.dst_ip,
        e.asset_id,
        e.agency_code,
        e.rule_id,
        e.message,
        Jsonb(e.raw, dumps=_json_text) if e.raw is not None else None,
        p,
        o,
    )


def _json_text(obj: Any) -> str:
    # msgspec is several times faster than the standard json module psycopg would use.
    return msgspec.json.encode(obj).decode()


_SUMMARISE: dict[str, Callable[[psycopg.AsyncConnection, Sequence[Any]], Awaitable[None]]] = {
    "uptime_checks": add_uptime,
    "security_events": add_security,
}

_ROW: dict[str, Callable[[Any, int, int], tuple[Any, ...]]] = {
    "dossier_events": _dossier_row,
    "uptime_checks": _uptime_row,
    "security_events": _security_row,
}

# Columns of `dossiers` taken from the latest event (by event_time, status, event_id).
_LATEST = (
    "procedure_code",
    "agency_code",
    "channel",
    "due_at",
    "online_level",
    "fee_required",
    "paid_online",
    "e_result",
    "e_result_required",
)

_DOSSIER_MERGE = """
WITH ins AS (
    INSERT INTO dossier_events ({cols})
    SELECT {cols} FROM {stage}
    ON CONFLICT DO NOTHING
    RETURNING *
), latest AS (
    SELECT DISTINCT ON (dossier_id) * FROM ins
    ORDER BY dossier_id, event_time DESC, status DESC, event_id DESC
), rated AS (
    SELECT DISTINCT ON (dossier_id) dossier_id, rating, event_time AS rated_at FROM ins
    WHERE rating IS NOT NULL
    ORDER BY dossier_id, event_time DESC, rating DESC
), agg AS (
    SELECT dossier_id,
           LEAST(min(received_at), min(event_time) FILTER (WHERE status = 2)) AS received_at,
           min(event_time) FILTER (WHERE status = 9) AS processed_at,
           min(event_time) FILTER (WHERE status = 10) AS returned_at,
           count(*) FILTER (WHERE status = 5) AS supplement_requests,
           min(event_time) AS first_event_at,
           count(*) AS event_count
    FROM ins GROUP BY dossier_id
), up AS (
    INSERT INTO dossiers (dossier_id, status, status_at, last_event_id, {latest},
                          received_at, processed_at, returned_at, supplement_requests,
                          rating, rated_at, first_event_at, event_count)
    SELECT l.dossier_id, l.status, l.event_time, l.event_id, {latest_l},
           a.received_at, a.processed_at, a.returned_at, a.supplement_requests, r.rating,
           r.rated_at,
           a.first_event_at, a.event_count
    FROM latest l JOIN agg a USING (dossier_id) LEFT JOIN rated r USING (dossier_id)
    ON CONFLICT (dossier_id) DO UPDATE SET
        {take_newer},
        status = CASE WHEN {newer} THEN EXCLUDED.status ELSE dossiers.status END,
        last_event_id = CASE WHEN {newer} THEN EXCLUDED.last_event_id
                             ELSE dossiers.last_event_id END,
        status_at = GREATEST(dossiers.status_at, EXCLUDED.status_at),
        received_at = LEAST(dossiers.received_at, EXCLUDED.received_at),
        processed_at = LEAST(dossiers.processed_at, EXCLUDED.processed_at),
        returned_at = LEAST(dossiers.returned_at, EXCLUDED.returned_at),
        supplement_requests = dossiers.supplement_requests + EXCLUDED.supplement_requests,
        rating = CASE WHEN {rated_newer} THEN EXCLUDED.rating ELSE dossiers.rating END,
        rated_at = CASE WHEN {rated_newer} THEN EXCLUDED.rated_at ELSE dossiers.rated_at END,
        first_event_at = LEAST(dossiers.first_event_at, EXCLUDED.first_event_at),
        event_count = dossiers.event_count + EXCLUDED.event_count,
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM up)
"""

_NEWER = (
    "(EXCLUDED.status_at, EXCLUDED.status, EXCLUDED.last_event_id)"
    " > (dossiers.status_at, dossiers.status, dossiers.last_event_id)"
)
_RATED_NEWER = (
    "EXCLUDED.rated_at IS NOT NULL AND (dossiers.rated_at IS NULL OR"
    " (EXCLUDED.rated_at, EXCLUDED.rating) > (dossiers.rated_at, dossiers.rating))"
)


def _dossier_merge_sql(cols: sql.Composable, stage: sql.Composable) -> sql.Composed:
    text = _DOSSIER_MERGE.format(
        cols="{cols}",
        stage="{stage}",
        latest=", ".join(_LATEST),
        latest_l=", ".join(f"l.{c}" for c in _LATEST),
        take_newer=",\n        ".join(
            f"{c} = CASE WHEN {_NEWER} THEN EXCLUDED.{c} ELSE dossiers.{c} END" for c in _LATEST
        ),
        newer=_NEWER,
        rated_newer=_RATED_NEWER,
    )
    return sql.SQL(text).format(cols=cols, stage=stage)  # type: ignore[arg-type]


class StorageNotReady(RuntimeError):
    """The database answers but is not migrated yet; worth retrying, not a bad record."""


class RowsRejected(Exception):
    """The database refused a row of the batch (SQLSTATE class 22 data or 23 integrity).

    Raised only for the COPY and the move, after the transaction rolled back; the connection
    stays usable. The caller isolates the row by writing halves of the batch.
    """

    def __init__(self, cause: psycopg.Error) -> None:
        super().__init__(str(cause))
        self.cause = cause


class DeadLettersRejected(RowsRejected):
    """The database refused a dead-letter row (its key or reason)."""


ROW_LEVEL_SQLSTATE_CLASSES = ("22", "23")

# Fail fast and notice dead peers: a database host that vanishes without a TCP reset must
# not hang ingest for the kernel's minutes-long timeout. The URL's own values win.
CONNECTION_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
    "application_name": "ioc-worker",
}
# PostgreSQL's JIT compiles any statement whose estimated cost passes ``jit_above_cost``: our
# statements are short and planned on fresh statistics, so it compiled for 40 ms to run for
# 15 (the incident tracker's read went from 8.6 s to 0.6 s over a backfill, bench/README.md).
NO_JIT = "-c jit=off"


def with_connection_defaults(conninfo: str) -> str:
    """``conninfo`` with the defaults it does not set itself, and JIT off for the session
    unless its ``options`` say otherwise."""
    given = conninfo_to_dict(conninfo)
    extra = {k: v for k, v in CONNECTION_DEFAULTS.items() if k not in given}
    options = str(given.get("options") or "")
    if "jit" not in options:
        extra["options"] = f"{options} {NO_JIT}".strip()
    return make_conninfo(conninfo, **extra)


def _row_level(exc: psycopg.Error) -> bool:
    return bool(exc.sqlstate) and str(exc.sqlstate)[:2] in ROW_LEVEL_SQLSTATE_CLASSES


class EventWriter:
    """Writes batches of one stream through one connection; reconnects after a failure."""

    def __init__(
        self,
        conninfo: str,
        stream: Stream,
        clock: Callable[[], datetime],
        *,
        summaries: bool = True,
    ) -> None:
        self.conninfo = with_connection_defaults(conninfo)
        self.stream = stream
        self.table: EventTable = EVENT_TABLES[stream.table]
        self._now = clock
        self._conn: psycopg.AsyncConnection | None = None
        self._mode: str | None = None
        self._partitions = PartitionKeeper(self.table)
        self._row = _ROW[self.table.name]
        cols = sql.SQL(", ").join(map(sql.Identifier, self.table.columns))
        stage = sql.Identifier(f"_stage_{self.table.name}")
        self._create_stage = sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(stage, sql.Identifier(self.table.name))
        self._copy = sql.SQL("COPY {} ({}) FROM STDIN").format(stage, cols)
        self._direct_copy: sql.Composed | None = None
        if self.table.name == "dossier_events":
            # The dossier state merge needs the rows actually inserted: always staged.
            self._move = _dossier_merge_sql(cols, stage)
        else:
            self._direct_copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(self.table.name), cols
            )
            # DO NOTHING also skips a row that repeats an earlier row of the same statement,
            # so duplicates inside one batch need no sort.
            # RETURNING names the rows actually inserted: only they feed the summaries.
            self._move = sql.SQL(
                "INSERT INTO {t} ({c}) SELECT {c} FROM {s} ON CONFLICT DO NOTHING"
                " RETURNING event_id, event_time"
            ).format(t=sql.Identifier(self.table.name), c=cols, s=stage)
        self._summarise = _SUMMARISE.get(self.table.name) if summaries else None

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            try:
                mode = await read_storage_mode(conn)
                if mode is None:
                    raise StorageNotReady("database is not migrated: run `ioc migrate`")
                await conn.execute(self._create_stage)
            except BaseException:
                await conn.close()
                raise
            self._conn, self._mode = conn, mode
            self._partitions.forget()
        return self._conn

    async def write(
        self, records: Sequence[Consumed], dead: Sequence[DeadLetter] = ()
    ) -> WriteResult:
        """Store one batch atomically: its rows and its dead letters, or nothing.

        Raises :class:`RowsRejected` / :class:`DeadLettersRejected` when the database refuses
        a row (the connection is kept), anything else when the database fails (the connection
        is dropped so the next call starts clean).
        """
        started = time.perf_counter()
        try:
            conn = await self._connection()
            if records and self._mode == "plain":
                await self._partitions.ensure_for_batch(
                    conn, [r.event.event_time for r in records], self._now()
                )
            inserted = 0
            async with conn.transaction():
                if records:
                    inserted = await self._copy_and_move(conn, records)
                if dead:
                    try:
                        await _insert_dead_letters(conn, dead)
                    except psycopg.Error as exc:
                        if _row_level(exc):
                            raise DeadLettersRejected(exc) from exc
                        raise
        except RowsRejected:
            raise
        except BaseException:
            await self.close()
            raise
        return WriteResult(
            inserted=inserted,
            duplicates=len(records) - inserted,
            dead_lettered=len(dead),
            seconds=time.perf_counter() - started,
        )

    async def _copy_and_move(
        self, conn: psycopg.AsyncConnection, records: Sequence[Consumed]
    ) -> int:
        """Insert the batch's new rows; returns how many were new. Summaries (when kept) get
        exactly the new rows, in the same transaction."""
        rows = [self._row(r.event, r.partition, r.offset) for r in records]
        if self._direct_copy is not None:
            # Optimistic path: most batches hold only new events, so COPY straight into the
            # table under a savepoint. Any repeat (a replay, a redelivery, a duplicate inside
            # the batch) raises a unique violation; then the savepoint rolls back and the
            # idempotent staging path below stores the batch instead.
            try:
                direct = self._direct_copy
                async with conn.transaction(), conn.cursor() as cur, cur.copy(direct) as copy:
                    for row in rows:
                        await copy.write_row(row)
            except psycopg.errors.UniqueViolation:
                pass
            except psycopg.Error as exc:
                if _row_level(exc):
                    raise RowsRejected(exc) from exc
                raise
            else:
                if self._summarise is not None:
                    await self._summarise(conn, [r.event for r in records])
                return len(rows)
        try:
            async with conn.cursor() as cur:
                async with cur.copy(self._copy) as copy:
                    for row in rows:
                        await copy.write_row(row)
                await cur.execute(self._move)
                if self.table.name == "dossier_events":
                    counts = await cur.fetchone()
                    return int(counts[0]) if counts else 0
                new = {(event_id, t) for event_id, t in await cur.fetchall()}
            if self._summarise is not None and new:
                fresh: dict[tuple[str, datetime], Any] = {}
                for r in records:
                    key = (r.event.event_id, r.event.event_time)
                    if key in new:
                        fresh.setdefault(key, r.event)  # a repeat inside the batch counts once
                await self._summarise(conn, list(fresh.values()))
            return len(new)
        except psycopg.Error as exc:
            if _row_level(exc):
                raise RowsRejected(exc) from exc
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self._partitions.forget()
        if conn is not None and not conn.closed:
            try:
                await conn.close()
            except Exception:
                log.debug("error closing a broken connection", exc_info=True)


async def _insert_dead_letters(conn: psycopg.AsyncConnection, dead: Sequence[DeadLetter]) -> None:
    query = sql.SQL("INSERT INTO dead_letters ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
        sql.SQL(", ").join(map(sql.Identifier, DEAD_LETTER_COLUMNS)),
        sql.SQL(", ").join(sql.Placeholder() * len(DEAD_LETTER_COLUMNS)),
    )
    async with conn.cursor() as cur:
        await cur.executemany(
            query,
            [
                (
                    d.source_topic,
                    d.partition,
                    d.offset,
                    d.key_text,
                    d.digest,
                    pg_text(d.reason),
                    d.payload,
                    d.received_at,
                )
                for d in dead
            ],
        )
