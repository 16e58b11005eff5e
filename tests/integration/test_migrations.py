"""Upgrading a database: migrations carry existing data forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ioc.storage.migrations import migrate
from tests.support.services import drop_database, new_database

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

UPTIME_1M = """
CREATE TABLE uptime_1m (
    service_id text NOT NULL, bucket timestamptz NOT NULL, checks integer NOT NULL,
    up integer NOT NULL, degraded integer NOT NULL, down integer NOT NULL,
    latency_ms_sum double precision NOT NULL, latency_samples integer NOT NULL,
    PRIMARY KEY (bucket, service_id))
"""


def test_minute_uptime_summaries_fold_into_five_minute_buckets() -> None:
    url = new_database()
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            # Put the database back as migration 3 left it, holding a province's minutes.
            conn.execute("DROP TABLE uptime_5m")
            conn.execute(UPTIME_1M)
            conn.execute("CREATE INDEX uptime_checks_ingested_idx ON uptime_checks (ingested_at)")
            conn.execute("DELETE FROM ioc_schema_migrations WHERE version = 4")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO uptime_1m VALUES (%s, %s, 2, %s, 0, %s, 240.0, 2)",
                    [
                        (svc, T0 + timedelta(minutes=m), 2 - (m == 7), int(m == 7))
                        for svc in ("svc-dvc", "svc-mail")
                        for m in range(12)
                    ],
                )
        assert migrate(url)[1] == [4]
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT service_id, bucket, checks, up, down, latency_ms_sum, latency_samples"
                " FROM uptime_5m ORDER BY 1, 2"
            ).fetchall()
            left = conn.execute(
                "SELECT to_regclass('uptime_1m'), to_regclass('uptime_checks_ingested_idx')"
            ).fetchone()
        assert rows == [
            (svc, T0 + timedelta(minutes=m), n * 2, n * 2 - (m == 5), int(m == 5), n * 240.0, n * 2)
            for svc in ("svc-dvc", "svc-mail")
            for m, n in ((0, 5), (5, 5), (10, 2))
        ]
        assert left == (None, None)
    finally:
        drop_database(url)


def test_existing_summaries_are_rolled_up_and_readable_by_range() -> None:
    """A database upgraded with a year of summaries shows it on the walls at once: migration
    8 sums the five-minute and hourly rows into the hourly and daily rollups."""
    url = new_database()
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("uptime_1h", "uptime_1d", "security_1h", "security_1d",
                          "security_targets_1d"):  # fmt: skip
                conn.execute(f"DROP TABLE {table}")
            conn.execute("DELETE FROM ioc_schema_migrations WHERE version = 8")
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO uptime_5m VALUES ('svc-dvc', %s, 10, %s, 0, %s, 500.0, 10)",
                    [
                        (T0 + timedelta(minutes=5 * i), 10 - (i == 7), int(i == 7))
                        for i in range(600)
                    ],
                )
                cur.executemany(
                    "INSERT INTO security_5m VALUES (%s, 'soc', 'high', 'ddos', 3)",
                    [(T0 + timedelta(minutes=5 * i),) for i in range(600)],
                )
                cur.executemany(
                    "INSERT INTO security_targets_1h VALUES (%s, 'A', 'srv-1', %s, 4)",
                    [(T0 + timedelta(hours=h), sev) for h in range(50) for sev in ("low", "high")],
                )
        assert migrate(url)[1] == [8]
        with psycopg.connect(url) as conn:
            daily = conn.execute(
                "SELECT bucket, checks, down FROM uptime_1d ORDER BY bucket"
            ).fetchall()
            ranged = conn.execute(
                "SELECT sum(checks), sum(down) FROM uptime_in_range(%s, %s)",
                (T0, T0 + timedelta(days=3)),
            ).fetchone()
            security = conn.execute(
                "SELECT sum(events) FROM security_in_range(%s, %s, 86400000)",
                (T0 - timedelta(days=1), T0 + timedelta(days=3)),
            ).fetchone()
            targets = conn.execute(
                "SELECT agency_code, asset_id, sum(events) FROM security_targets_in_range(%s, %s)"
                " GROUP BY 1, 2",
                (T0, T0 + timedelta(days=3)),
            ).fetchall()
        # 600 buckets from 08:00 on 2 Nov: 192 on that day, 288 on the 3rd, 120 on the 4th.
        day = T0.replace(hour=0)
        assert daily == [
            (day, 1920, 1),
            (day + timedelta(days=1), 2880, 0),
            (day + timedelta(days=2), 1200, 0),
        ]
        assert ranged == (6000, 1) and security == (1800,)
        assert targets == [("A", "srv-1", 400)]
    finally:
        drop_database(url)
