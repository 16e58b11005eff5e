"""The storage layer gives the same answers with and without TimescaleDB.

The plain-PostgreSQL path always runs; the TimescaleDB path runs where the test server offers
the extension (``pytest -m timescale``), and both are compared on the same events.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ioc.dossier_state import fold
from ioc.events import DossierEvent, Event
from ioc.retention import Retention, parse_overrides
from ioc.storage.maintenance import run_maintenance
from ioc.storage.migrations import migrate
from ioc.storage.writer import EventWriter
from ioc.storage_types import Consumed
from ioc.streams import DOSSIER, SECURITY, UPTIME, Stream
from tests.support import events as ev
from tests.support.services import drop_database, new_database, timescale_available

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
START = NOW - timedelta(days=40)  # spans two months and many day partitions

QUERIES = {
    "dossier_events": "SELECT status, count(*) FROM dossier_events GROUP BY 1 ORDER BY 1",
    "dossiers": "SELECT status, count(*), sum(supplement_requests) FROM dossiers"
    " GROUP BY 1 ORDER BY 1",
    "uptime": "SELECT service_id, status, count(*) FROM uptime_checks GROUP BY 1, 2 ORDER BY 1, 2",
    "security_daily": "SELECT date_trunc('day', event_time AT TIME ZONE 'Asia/Ho_Chi_Minh'),"
    " severity, count(*) FROM security_events GROUP BY 1, 2 ORDER BY 1, 2",
}


def sample_events() -> dict[Stream, list[Event]]:
    rng = random.Random(5)
    return {
        DOSSIER: list(ev.dossier_events(200, rng, START)),
        UPTIME: list(ev.uptime_events(3000, START)),
        SECURITY: [
            e.__class__(
                **{
                    **{f: getattr(e, f) for f in e.__struct_fields__},
                    "event_time": START + timedelta(minutes=17 * i),
                }
            )
            for i, e in enumerate(ev.security_events(3000, START))
        ],
    }


def store(url: str, batches: dict[Stream, list[Event]]) -> None:
    async def go() -> None:
        for stream, events in batches.items():
            writer = EventWriter(url, stream, lambda: NOW)
            records = [Consumed(e, 0, i) for i, e in enumerate(events)]
            for i in range(0, len(records), 700):  # several batches, then a full replay
                await writer.write(records[i : i + 700])
            result = await writer.write(records)
            assert result.inserted == 0 and result.duplicates == len(records)
            await writer.close()

    asyncio.run(go())


def answers(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return {name: conn.execute(q).fetchall() for name, q in QUERIES.items()}  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def plain_db() -> Iterator[str]:
    url = new_database()
    assert migrate(url, allow_timescale=False)[0] == "plain"
    store(url, sample_events())
    yield url
    drop_database(url)


def test_plain_postgres_partitions_follow_the_data(plain_db: str) -> None:
    with psycopg.connect(plain_db) as conn:
        parts = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'security_events'::regclass"
            )
        }
    assert len(parts) >= 36  # one per Vietnamese day of data (35 days), plus days ahead


def test_replayed_batches_store_each_event_once_and_dossiers_match_the_pure_merge(
    plain_db: str,
) -> None:
    events = sample_events()
    with psycopg.connect(plain_db) as conn:
        for stream, evs in events.items():
            row = conn.execute(f"SELECT count(*) FROM {stream.table}").fetchone()
            assert row == (len(evs),)
        stored = dict(conn.execute("SELECT dossier_id, status FROM dossiers").fetchall())
    dossiers = [e for e in events[DOSSIER] if isinstance(e, DossierEvent)]
    assert stored == {k: v.status for k, v in fold(dossiers).items()}


def test_migrations_are_idempotent(plain_db: str) -> None:
    assert migrate(plain_db) == ("plain", [])


@pytest.mark.timescale
@pytest.mark.skipif(not timescale_available(), reason="TimescaleDB extension not installed")
def test_timescale_gives_the_same_answers_as_plain_postgres(plain_db: str) -> None:
    url = new_database()
    try:
        mode, _ = migrate(url)
        assert mode == "timescale"
        store(url, sample_events())
        with psycopg.connect(url) as conn:
            hypertables = {
                r[0]
                for r in conn.execute(
                    "SELECT hypertable_name FROM timescaledb_information.hypertables"
                )
            }
            jobs = {
                (r[0], r[1])
                for r in conn.execute(
                    "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
                    " WHERE hypertable_name IS NOT NULL"
                )
            }
        assert hypertables == {
            "dossier_events",
            "uptime_checks",
            "security_events",
            "uptime_5m",
            "security_5m",
            "security_targets_1h",
            "uptime_1h",
            "uptime_1d",
            "security_1h",
            "security_1d",
            "security_targets_1d",
            "kpi_snapshots",
        }
        assert ("policy_compression", "security_events") in jobs
        assert ("policy_compression", "dossier_events") in jobs
        # Daily rollups and dossier history are kept forever: no policy to add.
        assert asyncio.run(run_maintenance(url, Retention(30, 90), NOW)) == [
            "uptime_checks: retention 30 days",
            "security_events: retention 30 days",
            "uptime_5m: retention 30 days",
            "uptime_1h: retention 30 days",
            "security_5m: retention 30 days",
            "security_1h: retention 30 days",
            "security_targets_1h: retention 30 days",
            "kpi_snapshots: retention 90 days",
        ]
        assert asyncio.run(run_maintenance(url, Retention(30, 90), NOW)) == []
        with psycopg.connect(url) as conn:
            policies = dict(
                conn.execute(
                    "SELECT hypertable_name, config->>'drop_after'"
                    " FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
                ).fetchall()
            )  # type: ignore[arg-type]
        assert policies == {
            "uptime_checks": "30 days",
            "security_events": "30 days",
            "uptime_5m": "30 days",
            "security_5m": "30 days",
            "security_targets_1h": "30 days",
            "uptime_1h": "30 days",
            "security_1h": "30 days",
            "kpi_snapshots": "90 days",
        }
        assert answers(url) == answers(plain_db)
    finally:
        drop_database(url)


def test_maintenance_drops_partitions_past_retention_and_keeps_dossier_history() -> None:
    url = new_database()
    try:
        migrate(url, allow_timescale=False)
        store(url, sample_events())  # 40 days old to 5 days old
        with psycopg.connect(url) as conn:
            for age in (100, 89):
                conn.execute(
                    'INSERT INTO kpi_snapshots (taken_at, scope, key, period, "values")'
                    " VALUES (%s, 'agency', 'TINH', 'year', '{}')",
                    (NOW - timedelta(days=age),),
                )
            summarised = conn.execute("SELECT count(*) FROM security_5m").fetchone()
        changes = asyncio.run(run_maintenance(url, Retention(20, 90), NOW))
        assert any(c.startswith("dropped security_events_p") for c in changes)
        assert not any("dossier_events" in c and c.startswith("dropped") for c in changes)
        assert any(c.startswith("security_5m: deleted") for c in changes)
        assert "kpi_snapshots: deleted 1 rows past 90 days" in changes
        with psycopg.connect(url) as conn:
            oldest = conn.execute("SELECT min(event_time) FROM security_events").fetchone()
            dossiers = conn.execute("SELECT count(*) FROM dossier_events").fetchone()
            oldest_bucket = conn.execute("SELECT min(bucket) FROM security_5m").fetchone()
            left = conn.execute("SELECT count(*) FROM security_5m").fetchone()
            history = conn.execute("SELECT min(taken_at) FROM kpi_snapshots").fetchone()
        assert oldest is not None and oldest[0] >= NOW - timedelta(days=21)
        assert dossiers == (len(sample_events()[DOSSIER]),)
        # Summaries keep as long as their raw rows; the KPI history as configured.
        assert oldest_bucket is not None and oldest_bucket[0] >= NOW - timedelta(days=20)
        assert summarised is not None and left is not None and 0 < left[0] < summarised[0]
        assert history == (NOW - timedelta(days=89),)
        assert asyncio.run(run_maintenance(url, Retention(20, 90), NOW)) == [], (
            "a second run changes nothing"
        )
    finally:
        drop_database(url)


def test_retention_per_table_keeps_what_each_table_is_told_and_only_finished_rows_go() -> None:
    """``IOC_RETENTION``: a raw table kept longer than the default, another shorter with its
    summaries following it, daily rollups kept forever, audit and dead letters trimmed, and
    from the alert history only finished rows deleted."""
    url = new_database()
    try:
        migrate(url, allow_timescale=False)
        store(url, sample_events())  # 40 days old to 5 days old
        old, recent = NOW - timedelta(days=35), NOW - timedelta(days=2)
        with psycopg.connect(url, autocommit=True) as conn:
            for at in (old, recent):
                conn.execute(
                    "INSERT INTO gateway_audit (at, transport, kind, reason)"
                    " VALUES (%s, 'http', 'auth', 'bad token')",
                    (at,),
                )
                conn.execute(
                    "INSERT INTO dead_letters (source_topic, kafka_partition, kafka_offset,"
                    " payload_digest, reason, received_at)"
                    " VALUES ('ioc.security.v1', 0, %s, '\\x00', 'schema: x', %s)",
                    (int(at.timestamp()), at),
                )
            for n, state in enumerate(("pending", "sent", "failed")):
                conn.execute(
                    "INSERT INTO notifications (id, receiver, reason, group_key, payload,"
                    " created_at, state) VALUES (gen_random_uuid(), 'r', 'firing', %s, '{}',"
                    " %s, %s)",
                    (f"g{n}", old, state),
                )
            for fingerprint, state in (("open", "firing"), ("done", "resolved")):
                alert = conn.execute(
                    "INSERT INTO alerts (id, fingerprint, rule, state, severity, summary, labels,"
                    " starts_at, fired_at, updated_at, doc) VALUES (gen_random_uuid(), %s, 'r',"
                    " %s, 'high', 's', '{}', %s, %s, %s, '{}') RETURNING id",
                    (fingerprint, state, old, old, old),
                ).fetchone()
                assert alert is not None
                conn.execute(
                    "INSERT INTO alert_events (alert_id, fingerprint, kind, at, record, published)"
                    " VALUES (%s, %s, 'fired', %s, '{}', true)",
                    (alert[0], fingerprint, old),
                )
            conn.execute(
                "INSERT INTO uptime_1d SELECT service_id, date_trunc('day', bucket), sum(checks),"
                " sum(up), sum(degraded), sum(down), sum(latency_ms_sum), sum(latency_samples)"
                " FROM uptime_5m GROUP BY 1, 2 ON CONFLICT DO NOTHING"
            )
            daily = conn.execute("SELECT count(*), min(bucket) FROM uptime_1d").fetchone()
            had = conn.execute(
                "SELECT count(*) FROM uptime_checks WHERE event_time < %s",
                (NOW - timedelta(days=11),),
            ).fetchone()
            assert had is not None and had[0] > 0
            security = conn.execute("SELECT count(*) FROM security_events").fetchone()
        retention = Retention(
            30,
            90,
            parse_overrides(
                "security_events=forever,uptime_checks=10,gateway_audit=30,notifications=30,"
                "alerts=30,alert_events=30"
            ),
        )
        changes = asyncio.run(run_maintenance(url, retention, NOW))
        assert not any("security" in c for c in changes), changes
        assert "gateway_audit: deleted 1 rows past 30 days" in changes
        assert "dead_letters: deleted 1 rows past 30 days" in changes  # IOC_RETENTION_DAYS
        assert "notifications: deleted 2 rows past 30 days" in changes  # not the pending one
        # A resolved alert and its timeline go; an open alert keeps its whole timeline.
        assert "alerts: deleted 1 rows past 30 days" in changes
        assert "alert_events: deleted 1 rows past 30 days" in changes
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM security_events").fetchone() == security
            horizon = NOW - timedelta(days=11)  # partitions are weeks: a day of slack
            old_checks = conn.execute(
                "SELECT count(*) FROM uptime_checks WHERE event_time < %s", (horizon,)
            ).fetchone()
            old_5m = conn.execute(
                "SELECT count(*) FROM uptime_5m WHERE bucket < %s", (NOW - timedelta(days=10),)
            ).fetchone()
            assert conn.execute("SELECT count(*), min(bucket) FROM uptime_1d").fetchone() == daily
            assert conn.execute("SELECT state FROM notifications").fetchall() == [("pending",)]
            assert conn.execute("SELECT count(*) FROM gateway_audit").fetchone() == (1,)
            assert conn.execute("SELECT fingerprint FROM alert_events").fetchall() == [("open",)]
        assert old_checks == (0,)
        assert old_5m == (0,)  # the summaries follow their raw table's override
        assert daily is not None and daily[1] < NOW - timedelta(days=30)
    finally:
        drop_database(url)
