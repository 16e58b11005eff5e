"""Versioned, idempotent schema migrations with TimescaleDB detection.

``migrate()`` takes an advisory lock, checks which versions are applied, and applies the rest,
each in its own transaction. The storage mode (``timescale`` or ``plain``) is decided once, on
the first migration, and recorded: later migrations and the writer follow it.

- With the extension: hypertables with chunk intervals, compression and retention policies.
- Without it: range-partitioned tables on event time; the app creates partitions ahead
  (:mod:`ioc.storage.maintenance`) and drops expired ones.
Both modes expose the same tables and columns, so every query gives the same answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql

from ioc.storage.rollups import FUNCTIONS
from ioc.storage.summaries import (
    BY_NAME,
    EPOCH,
    ROLLUP_REBUILD,
    ROLLUPS,
    SUMMARY_TABLES,
    UPTIME_BUCKET,
)
from ioc.storage.tables import EVENT_TABLES, MODE_QUERY, EventTable

log = logging.getLogger(__name__)

Mode = Literal["timescale", "plain"]
LOCK_ID = 0x10C_0001  # advisory lock key shared by every `ioc migrate`


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[psycopg.Connection, Mode], None]


_EVENT_DDL: dict[str, str] = {
    "dossier_events": """
        event_id         text COLLATE "C" NOT NULL,
        event_time       timestamptz NOT NULL,
        dossier_id       text NOT NULL,
        status           smallint NOT NULL CHECK (status BETWEEN 1 AND 10),
        procedure_code   text NOT NULL,
        agency_code      text NOT NULL,
        channel          smallint CHECK (channel BETWEEN 1 AND 3),
        received_at      timestamptz,
        due_at           timestamptz,
        online_level     text NOT NULL,
        fee_required     boolean NOT NULL,
        fee_amount       bigint,
        paid_online      boolean NOT NULL,
        e_result         boolean NOT NULL,
        e_result_required boolean NOT NULL,
        rating           text COLLATE "C",
        source           text,
        kafka_partition  integer,
        kafka_offset     bigint,
        ingested_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, event_time)
    """,
    "uptime_checks": """
        event_id         text COLLATE "C" NOT NULL,
        event_time       timestamptz NOT NULL,
        service_id       text NOT NULL,
        status           text NOT NULL CHECK (status IN ('up', 'degraded', 'down')),
        kind             text NOT NULL,
        probe_id         text,
        latency_ms       double precision,
        http_status      smallint,
        tls_expires_at   timestamptz,
        error            text,
        kafka_partition  integer,
        kafka_offset     bigint,
        ingested_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, event_time)
    """,
    "security_events": """
        event_id         text COLLATE "C" NOT NULL,
        event_time       timestamptz NOT NULL,
        source           text NOT NULL,
        severity         text NOT NULL,
        severity_rank    smallint NOT NULL CHECK (severity_rank BETWEEN 0 AND 4),
        category         text NOT NULL,
        source_severity  text,
        src_ip           inet,
        dst_ip           inet,
        asset_id         text,
        agency_code      text,
        rule_id          text,
        message          text,
        raw              jsonb,
        kafka_partition  integer,
        kafka_offset     bigint,
        ingested_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, event_time)
    """,
}

_EVENT_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "dossier_events": (("dossier_id", "event_time"), ("agency_code", "event_time")),
    "uptime_checks": (("service_id", "event_time"),),
    "security_events": (
        ("source", "event_time"),
        ("asset_id", "event_time"),
        ("severity_rank", "event_time"),
    ),
}


def _create_event_table(conn: psycopg.Connection, mode: Mode, table: EventTable) -> None:
    name = sql.Identifier(table.name)
    body = sql.SQL(_EVENT_DDL[table.name])  # type: ignore[arg-type]
    if mode == "plain":
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}) PARTITION BY RANGE (event_time)").format(
                name, body
            )
        )
    else:
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(name, body))
        conn.execute(
            "SELECT create_hypertable(%s::regclass, 'event_time',"
            " chunk_time_interval => %s::interval, if_not_exists => true)",
            (table.name, f"1 {table.interval}"),
        )
    for cols in _EVENT_INDEXES[table.name]:
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(f"{table.name}_{'_'.join(cols)}_idx"),
                name,
                sql.SQL(", ").join(
                    sql.SQL("{} DESC").format(sql.Identifier(c))
                    if c == "event_time"
                    else sql.Identifier(c)
                    for c in cols
                ),
            )
        )
    if mode == "timescale":
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {},"
                " timescaledb.compress_orderby = 'event_time DESC')"
            ).format(name, sql.Literal(table.segment_by))
        )
        conn.execute(
            "SELECT add_compression_policy(%s::regclass, %s::interval, if_not_exists => true)",
            (table.name, f"{table.compress_after_days} days"),
        )
        # Retention policies are reconciled with IOC_RETENTION_DAYS by the worker's
        # maintenance task (ioc.storage.maintenance), not fixed here.


def _v1_event_tables(conn: psycopg.Connection, mode: Mode) -> None:
    for table in EVENT_TABLES.values():
        _create_event_table(conn, mode, table)
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS dossiers (
            dossier_id          text PRIMARY KEY,
            status              smallint NOT NULL,
            status_at           timestamptz NOT NULL,
            last_event_id       text COLLATE "C" NOT NULL,
            procedure_code      text NOT NULL,
            agency_code         text NOT NULL,
            channel             smallint,
            due_at              timestamptz,
            online_level        text NOT NULL,
            fee_required        boolean NOT NULL,
            paid_online         boolean NOT NULL,
            e_result            boolean NOT NULL,
            e_result_required   boolean NOT NULL,
            received_at         timestamptz,
            processed_at        timestamptz,
            returned_at         timestamptz,
            supplement_requests integer NOT NULL,
            rating              text COLLATE "C",
            rated_at            timestamptz,
            first_event_at      timestamptz NOT NULL,
            event_count         integer NOT NULL,
            updated_at          timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    conn.execute("CREATE INDEX IF NOT EXISTS dossiers_agency_idx ON dossiers (agency_code, status)")
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS dead_letters (
            source_topic    text NOT NULL,
            kafka_partition integer NOT NULL,
            kafka_offset    bigint NOT NULL,
            kafka_key       text,
            payload_digest  bytea NOT NULL,
            reason          text NOT NULL,
            payload         bytea,
            received_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (source_topic, kafka_partition, kafka_offset, payload_digest)
        )
        """
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS dead_letters_received_idx ON dead_letters (received_at DESC)"
    )


def _v2_kpi_tables(conn: psycopg.Connection, mode: Mode) -> None:
    for table in SUMMARY_TABLES:
        if table.rolls_up is not None:
            continue  # migration 8
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                sql.Identifier(table.name),
                sql.SQL(table.ddl),  # type: ignore[arg-type]
            )
        )
        if mode == "timescale" and table.bucket is not None:
            conn.execute(
                "SELECT create_hypertable(%s::regclass, 'bucket',"
                " chunk_time_interval => interval '7 days', if_not_exists => true)",
                (table.name,),
            )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS kpi_snapshots (
            taken_at  timestamptz NOT NULL,
            scope     text NOT NULL,
            key       text NOT NULL,
            period    text NOT NULL,
            "values"  jsonb NOT NULL,
            PRIMARY KEY (scope, key, period, taken_at)
        )
        """
    )
    if mode == "timescale":
        conn.execute(
            "SELECT create_hypertable('kpi_snapshots'::regclass, 'taken_at',"
            " chunk_time_interval => interval '7 days', if_not_exists => true)"
        )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS kpi_snapshots_taken_idx ON kpi_snapshots (taken_at DESC)"
    )
    # The newest value of every series: rows are written only when a value changes.
    conn.execute(
        """
        CREATE OR REPLACE VIEW kpi_latest AS
        SELECT DISTINCT ON (scope, key, period) taken_at, scope, key, period, "values"
        FROM kpi_snapshots ORDER BY scope, key, period, taken_at DESC
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS maintenance_windows (
            id          bigserial PRIMARY KEY,
            service_id  text,
            starts_at   timestamptz NOT NULL,
            ends_at     timestamptz NOT NULL,
            author      text NOT NULL,
            comment     text NOT NULL DEFAULT '',
            created_at  timestamptz NOT NULL DEFAULT now(),
            CHECK (ends_at > starts_at)
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS agencies (
            code        text PRIMARY KEY,
            name        text NOT NULL,
            level       text NOT NULL,
            parent_code text,
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS procedures (
            code              text PRIMARY KEY,
            name              text NOT NULL,
            level             text NOT NULL,
            max_days          integer NOT NULL CHECK (max_days >= 0),
            online_level      text NOT NULL,
            fee_required      boolean NOT NULL,
            e_result_required boolean NOT NULL,
            updated_at        timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    conn.execute("CREATE INDEX IF NOT EXISTS dossiers_updated_idx ON dossiers (updated_at)")
    # The live incident tracker reads checks in the order they were stored.
    conn.execute(
        "CREATE INDEX IF NOT EXISTS uptime_checks_ingested_idx ON uptime_checks (ingested_at)"
    )


def _v3_kpi_current(conn: psycopg.Connection, mode: Mode) -> None:
    """The newest row of every series in a table of its own: ``kpi_latest`` was a
    ``DISTINCT ON`` over the whole history, a sort of millions of rows per wall refresh."""
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS kpi_current (
            scope     text NOT NULL,
            key       text NOT NULL,
            period    text NOT NULL,
            taken_at  timestamptz NOT NULL,
            "values"  jsonb NOT NULL,
            PRIMARY KEY (scope, key, period)
        )
        """
    )
    conn.execute(
        """
        INSERT INTO kpi_current (scope, key, period, taken_at, "values")
        SELECT DISTINCT ON (scope, key, period) scope, key, period, taken_at, "values"
        FROM kpi_snapshots ORDER BY scope, key, period, taken_at DESC
        ON CONFLICT DO NOTHING
        """
    )
    # Bucket first: new minutes go to the right edge of the index, which made the writer's
    # upsert about a fifth cheaper (bench/README.md); window sums scan by bucket anyway.
    if _has_table(conn, "uptime_1m"):  # a fresh database gets uptime_5m from migration 2
        conn.execute("ALTER TABLE uptime_1m DROP CONSTRAINT IF EXISTS uptime_1m_pkey")
        conn.execute("ALTER TABLE uptime_1m ADD PRIMARY KEY (bucket, service_id)")
    conn.execute("DROP VIEW IF EXISTS kpi_latest")
    conn.execute(
        """
        CREATE VIEW kpi_latest AS
        SELECT taken_at, scope, key, period, "values" FROM kpi_current
        """
    )


def _v4_uptime_5m(conn: psycopg.Connection, mode: Mode) -> None:
    """Uptime summaries in five-minute buckets (``ioc.kpi.uptime.BUCKET``): the minute table
    was half as many rows as the checks and cost ingest more than the KPI budget. The minute
    rows fold into their five-minute buckets. The incident tracker now reads each service's
    checks from its settled point through ``(service_id, event_time)``, so the index on
    ``ingested_at`` only cost every insert."""
    ddl = sql.SQL(BY_NAME["uptime_5m"].ddl)  # type: ignore[arg-type]
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS uptime_5m ({})").format(ddl))
    if mode == "timescale":
        conn.execute(
            "SELECT create_hypertable('uptime_5m'::regclass, 'bucket',"
            " chunk_time_interval => interval '7 days', if_not_exists => true)"
        )
    if _has_table(conn, "uptime_1m"):
        conn.execute(
            f"""
            INSERT INTO uptime_5m
            SELECT service_id, date_bin('{UPTIME_BUCKET}', bucket, {EPOCH}), sum(checks),
                   sum(up), sum(degraded), sum(down), sum(latency_ms_sum), sum(latency_samples)
            FROM uptime_1m GROUP BY 1, 2
            ON CONFLICT DO NOTHING
            """
        )
        conn.execute("DROP TABLE uptime_1m")
    conn.execute("DROP INDEX IF EXISTS uptime_checks_ingested_idx")


def _v5_alerts(conn: psycopg.Connection, mode: Mode) -> None:
    """Alerting: one row per alert occurrence (the whole alert as ``doc``, the columns people
    and Grafana query beside it), its state changes, silences, the notification outbox, the
    users of the acknowledgement API and their audited actions.

    The outboxes (``notifications.state``, ``alert_events.published``) are written in the
    transaction that changes the alert, so a crash never loses a notification or a record
    for ``ioc.alerts.v1``: the next evaluator sends what is still pending."""
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS alerts (
            id              uuid PRIMARY KEY,
            fingerprint     text NOT NULL,
            rule            text NOT NULL,
            state           text NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
            severity        text NOT NULL,
            summary         text NOT NULL,
            labels          jsonb NOT NULL,
            starts_at       timestamptz NOT NULL,
            ends_at         timestamptz,
            fired_at        timestamptz NOT NULL,
            updated_at      timestamptz NOT NULL,
            acknowledged_by text,
            acknowledged_at timestamptz,
            resolved_by     text,
            escalation_level integer NOT NULL DEFAULT 0,
            event_count     bigint NOT NULL DEFAULT 0,
            muted           boolean NOT NULL DEFAULT false,
            doc             jsonb NOT NULL
        )
        """
    )
    # One open occurrence per fingerprint: the database enforces the deduplication too.
    conn.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS alerts_open_fingerprint ON alerts (fingerprint)"
        " WHERE state <> 'resolved'"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS alerts_starts_at ON alerts (starts_at DESC)")
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS alert_events (
            id          bigserial PRIMARY KEY,
            alert_id    uuid NOT NULL,
            fingerprint text NOT NULL,
            kind        text NOT NULL,
            at          timestamptz NOT NULL,
            actor       text,
            comment     text,
            record      jsonb NOT NULL,
            published   boolean NOT NULL DEFAULT false
        )
        """
    )
    conn.execute("CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (alert_id, id)")
    conn.execute("CREATE INDEX IF NOT EXISTS alert_events_at ON alert_events (at)")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS alert_events_unpublished ON alert_events (id)"
        " WHERE NOT published"
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS silences (
            id          text PRIMARY KEY,
            matchers    jsonb NOT NULL,
            starts_at   timestamptz NOT NULL,
            ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
            author      text NOT NULL CHECK (author <> ''),
            comment     text NOT NULL CHECK (comment <> ''),
            created_at  timestamptz NOT NULL DEFAULT now(),
            expired_at  timestamptz,
            expired_by  text
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS notifications (
            id          uuid PRIMARY KEY,
            receiver    text NOT NULL,
            reason      text NOT NULL,
            group_key   text NOT NULL,
            payload     jsonb NOT NULL,
            created_at  timestamptz NOT NULL,
            state       text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sent', 'failed')),
            attempts    integer NOT NULL DEFAULT 0,
            last_status integer,
            last_error  text,
            done_at     timestamptz
        )
        """
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (created_at)"
        " WHERE state = 'pending'"
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS notifications_failed ON notifications (created_at)"
        " WHERE state = 'failed'"
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS alert_users (
            name        text PRIMARY KEY,
            role        text NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
            token_hash  text NOT NULL UNIQUE,
            created_at  timestamptz NOT NULL DEFAULT now(),
            created_by  text,
            revoked_at  timestamptz
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS alert_actions (
            id           bigserial PRIMARY KEY,
            requested_at timestamptz NOT NULL DEFAULT now(),
            user_name    text,
            role         text,
            action       text NOT NULL,
            target       text,
            comment      text,
            params       jsonb NOT NULL DEFAULT '{}',
            remote       text,
            status       text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'done', 'rejected', 'denied')),
            result       jsonb,
            done_at      timestamptz
        )
        """
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS alert_actions_pending ON alert_actions (id)"
        " WHERE status = 'pending'"
    )


def _v6_gateway(conn: psycopg.Connection, mode: Mode) -> None:
    """Integrations (gateway credentials and scopes), the gateway's audit of refused requests
    and its Idempotency-Key answers."""
    del mode
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS integrations (
            name                 text PRIMARY KEY,
            streams              text[] NOT NULL,
            agencies             text[],
            rate_per_second      double precision NOT NULL CHECK (rate_per_second > 0),
            burst                double precision NOT NULL CHECK (burst > 0),
            syslog_sources       cidr[] NOT NULL DEFAULT '{}',
            token_hash           text NOT NULL UNIQUE,
            previous_token_hash  text,
            previous_valid_until timestamptz,
            created_at           timestamptz NOT NULL DEFAULT now(),
            created_by           text,
            changed_at           timestamptz,
            revoked_at           timestamptz
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS gateway_audit (
            id          bigserial PRIMARY KEY,
            at          timestamptz NOT NULL DEFAULT now(),
            integration text,
            remote      text,
            transport   text NOT NULL,
            target      text,
            status      integer,
            kind        text NOT NULL,
            reason      text NOT NULL,
            detail      jsonb
        )
        """
    )
    conn.execute("CREATE INDEX IF NOT EXISTS gateway_audit_at ON gateway_audit (at)")
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS gateway_idempotency (
            integration text NOT NULL,
            key         text NOT NULL,
            body_sha256 bytea NOT NULL,
            state       text NOT NULL CHECK (state IN ('in_progress', 'done')),
            status      integer,
            response    bytea,
            claimed_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (integration, key)
        )
        """
    )
    conn.execute(
        "CREATE INDEX IF NOT EXISTS gateway_idempotency_claimed ON gateway_idempotency (claimed_at)"
    )


#: The role Grafana's PostgreSQL datasource logs in through (as a member): read-only, and
#: only the tables the wall dashboards and ad-hoc exploration need. Credentials (integration
#: and API tokens), audit trails, dead-letter payloads and the notification outbox stay out.
READER_ROLE = "ioc_grafana_reader"
READER_TABLES = (
    "agencies",
    "procedures",
    "dossiers",
    "dossier_events",
    "uptime_checks",
    "security_events",
    "kpi_current",
    "kpi_snapshots",
    "uptime_5m",
    "uptime_services",
    "security_5m",
    "security_targets_1h",
    "security_sources",
    "uptime_1h",
    "uptime_1d",
    "security_1h",
    "security_1d",
    "security_targets_1d",
    "maintenance_windows",
    "alerts",
    "alert_events",
    "silences",
)


def _v7_grafana_reader(conn: psycopg.Connection, mode: Mode) -> None:
    """The dashboards' read-only role, and indexes for the dossier panels (daily trend by
    received and processed time, the soon-due list)."""
    del mode
    conn.execute("CREATE INDEX IF NOT EXISTS dossiers_received_idx ON dossiers (received_at)")
    conn.execute("CREATE INDEX IF NOT EXISTS dossiers_processed_idx ON dossiers (processed_at)")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS dossiers_open_due_idx ON dossiers (due_at)"
        " WHERE status IN (2, 4)"
    )
    ensure_reader_role(conn)


def _v8_rollups(conn: psycopg.Connection, mode: Mode) -> None:
    """Hourly and daily rollups of the uptime and security summaries, summed from the finer
    tables already stored, and the functions the panels read a range through
    (``ioc.storage.rollups``): a year's panel read 3-4M five-minute rows."""
    for table in ROLLUPS:
        name = sql.Identifier(table.name)
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                name,
                sql.SQL(table.ddl),  # type: ignore[arg-type]
            )
        )
        if mode == "timescale":
            chunk = "365 days" if table.bucket == "1 day" else "30 days"
            conn.execute(
                "SELECT create_hypertable(%s::regclass, 'bucket',"
                " chunk_time_interval => %s::interval, if_not_exists => true)",
                (table.name, chunk),
            )
        # The rebuild's own statement over all time: the same sums as ``ioc kpi recompute``.
        conn.execute(
            ROLLUP_REBUILD[table.name],  # type: ignore[call-overload]
            {"start": "-infinity", "end": "infinity"},
        )
    for statement in FUNCTIONS:
        conn.execute(statement)  # type: ignore[call-overload]
    ensure_reader_role(conn)


def ensure_reader_role(conn: psycopg.Connection) -> bool:
    """Create :data:`READER_ROLE` if missing and grant it SELECT on :data:`READER_TABLES`.

    Roles belong to the whole server: a migrating user without CREATEROLE cannot make one,
    so then this logs what to run and returns False instead of failing the migration.
    """
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,)).fetchone()
    if exists is None:
        allowed = conn.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if not (allowed and allowed[0]):
            log.warning(
                "cannot create role %s (no CREATEROLE): ask an administrator to run"
                " CREATE ROLE %s NOLOGIN, then `ioc grafana reader NAME` grants it the"
                " dashboards' tables",
                READER_ROLE,
                READER_ROLE,
            )
            return False
        # Two databases migrating at once may both try: the loser's error is harmless.
        conn.execute(
            sql.SQL(
                "DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL;"
                " END $$"
            ).format(sql.Identifier(READER_ROLE))
        )
    role = sql.Identifier(READER_ROLE)
    conn.execute(
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.Identifier(_current_schema(conn)), role
        )
    )
    for table in READER_TABLES:
        if _has_table(conn, table):  # an older migration runs before the later tables exist
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), role))
    return True


def _current_schema(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    return str(row[0]) if row else "public"


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "event tables, dossier state, dead letters", _v1_event_tables),
    Migration(2, "KPI summaries, snapshots, maintenance windows, catalogue", _v2_kpi_tables),
    Migration(
        3,
        "current KPI values in a table of their own; uptime_1m keyed by bucket first",
        _v3_kpi_current,
    ),
    Migration(4, "uptime summaries in five-minute buckets; no ingested_at index", _v4_uptime_5m),
    Migration(
        5, "alerts, alert events, silences, notification outbox, API users and actions", _v5_alerts
    ),
    Migration(6, "gateway integrations, audit and idempotency keys", _v6_gateway),
    Migration(7, "read-only role for Grafana; indexes for the dossier panels", _v7_grafana_reader),
    Migration(
        8, "hourly and daily rollups, and the functions panels read ranges through", _v8_rollups
    ),
)


def timescale_problem(conn: psycopg.Connection) -> str | None:
    """Why the extension cannot be used on this server, or None if it can."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if row is None:
        return "the timescaledb extension is not installed on the server"
    preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    if preload is None or "timescaledb" not in str(preload[0]):
        return "timescaledb is installed but not in shared_preload_libraries"
    return None


def detect_mode(conninfo: str) -> Mode:
    """``timescale`` when the extension can be created here, else ``plain``.

    Probed on a connection of its own: a server with the extension's files but without the
    preload can end the session that tries ``CREATE EXTENSION``.
    """
    try:
        with psycopg.connect(conninfo, autocommit=True) as probe:
            problem = timescale_problem(probe)
            if problem is None:
                probe.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        problem = f"CREATE EXTENSION timescaledb failed: {exc}"
    if problem:
        log.info("storage mode plain: %s", problem)
        return "plain"
    return "timescale"


def current_mode(conn: psycopg.Connection) -> Mode | None:
    """The mode recorded by the first migration, or None on an empty database."""
    if not _has_table(conn, "ioc_schema_migrations"):
        return None
    row = conn.execute(MODE_QUERY).fetchone()
    return row[0] if row else None


def applied_versions(conn: psycopg.Connection) -> set[int]:
    if not _has_table(conn, "ioc_schema_migrations"):
        return set()
    return {r[0] for r in conn.execute("SELECT version FROM ioc_schema_migrations")}


def migrate(conninfo: str, *, allow_timescale: bool = True) -> tuple[Mode, list[int]]:
    """Apply pending migrations; returns the storage mode and the versions applied now."""
    applied_now: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS ioc_schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    mode       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            mode = current_mode(conn) or (detect_mode(conninfo) if allow_timescale else "plain")
            done = applied_versions(conn)
            for m in MIGRATIONS:
                if m.version in done:
                    continue
                with conn.transaction():
                    m.apply(conn, mode)
                    conn.execute(
                        "INSERT INTO ioc_schema_migrations (version, name, mode) VALUES (%s,%s,%s)",
                        (m.version, m.name, mode),
                    )
                log.info("applied migration %d (%s) in %s mode", m.version, m.name, mode)
                applied_now.append(m.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    return mode, applied_now


def _has_table(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone() == (True,)
