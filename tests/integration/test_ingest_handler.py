"""The ingest handler against the real database: rows the database refuses are isolated."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from ioc.batch import RawRecord
from ioc.clock import SystemClock
from ioc.deadletter import DeadLetter
from ioc.metrics import PipelineMetrics
from ioc.producer import encode
from ioc.storage.migrations import migrate
from ioc.streams import SECURITY
from pipelines.ingest import IngestHandler
from tests.support import events as ev
from tests.support.services import drop_database, new_database

pytestmark = pytest.mark.integration


def test_a_row_the_database_refuses_is_dead_lettered_alone_and_the_rest_is_stored() -> None:
    url = new_database()
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            # A rule only the database knows, as a DBA might add one.
            conn.execute(
                "ALTER TABLE security_events ADD CONSTRAINT no_test_asset"
                " CHECK (asset_id IS DISTINCT FROM 'asset-13')"
            )
        clock = SystemClock()
        sent: list[DeadLetter] = []

        async def send_dead_letters(dead: Sequence[DeadLetter]) -> None:
            sent.extend(dead)

        metrics = PipelineMetrics(CollectorRegistry())
        handler = IngestHandler.build(SECURITY, url, send_dead_letters, metrics, clock)
        events = ev.security_events(200, datetime.now(UTC) - timedelta(hours=1))
        records = [
            RawRecord(SECURITY.topic, 0, i, None, encode(e)) for i, e in enumerate(events)
        ] + [RawRecord(SECURITY.topic, 0, 200, None, b"{oops")]
        result = asyncio.run(handler.handle(records))
        asyncio.run(handler.writer.close())

        refused = [e for e in events if e.asset_id == "asset-13"]
        assert result.inserted == len(events) - len(refused)
        assert result.dead_lettered == len(refused) + 1
        with psycopg.connect(url) as conn:
            reasons = [r[0] for r in conn.execute("SELECT reason FROM dead_letters")]
            stored = conn.execute("SELECT count(*) FROM security_events").fetchone()
        assert stored == (len(events) - len(refused),)
        assert sorted(r.split(":")[0] for r in reasons) == sorted(
            ["malformed"] + ["rejected_by_database"] * len(refused)
        )
        assert all("no_test_asset" in r for r in reasons if r.startswith("rejected"))
        # Published once each, after the database commit.
        assert sorted(d.reason.split(":")[0] for d in sent) == sorted(
            r.split(":")[0] for r in reasons
        )
        assert len({(d.partition, d.offset) for d in sent}) == len(sent)
        value = metrics.registry.get_sample_value(
            "ioc_events_dead_lettered_total",
            {"stream": "security", "reason": "rejected_by_database"},
        )
        assert value == len(refused)
    finally:
        drop_database(url)
