"""Scale by partitions: a second worker takes part of the partitions and the answers stay the
same (DESIGN.md invariant 5)."""

from __future__ import annotations

import random
from pathlib import Path

import psycopg
import pytest

from ioc.dossier_state import fold
from tests.support import events as ev
from tests.support.services import Stack, WorkerProcess, count, free_port, produce, wait_for

pytestmark = pytest.mark.integration


def test_two_workers_split_the_partitions_and_store_each_event_once(
    stack: Stack, tmp_path: Path
) -> None:
    workers = [
        WorkerProcess(stack, tmp_path / f"worker-{i}.log", metrics_port=free_port())
        for i in range(2)
    ]
    rng = random.Random(2)
    start = ev.recent_start()
    dossiers = ev.dossier_events(400, rng, start)
    security = ev.security_events(12_000, start)
    try:
        for w in workers:
            w.start()
        produce(stack, ev.as_records([*dossiers, *security]))
        wait_for(
            lambda: (
                count(stack, "security_events") == len(security)
                and count(stack, "dossier_events") == len(dossiers)
            ),
            timeout=120,
            what="both workers to store everything",
            on_fail=lambda: "\n".join(w.log_tail(20) for w in workers),
        )
        consumed = [w.sample("ioc_events_consumed_total", stream="security") or 0 for w in workers]
        assert all(c > 0 for c in consumed), f"each worker should own partitions: {consumed}"
        with psycopg.connect(stack.database_url) as conn:
            states = dict(conn.execute("SELECT dossier_id, status FROM dossiers").fetchall())
        assert states == {k: v.status for k, v in fold(dossiers).items()}
    finally:
        for w in workers:
            w.stop()
