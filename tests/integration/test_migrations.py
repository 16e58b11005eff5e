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
