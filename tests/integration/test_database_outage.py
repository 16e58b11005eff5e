"""A database outage pauses consumption; when the database is back, nothing is missing.

The worker reaches PostgreSQL through a loopback TCP proxy that the test cuts and restores:
the worker sees real broken connections and refused reconnects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ioc.storage.migrations import migrate
from tests.support import events as ev
from tests.support.services import Stack, WorkerProcess, count, produce, wait_for
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proxy(stack: Stack) -> Iterator[TcpProxy]:
    info = conninfo_to_dict(stack.database_url)
    p = TcpProxy(str(info.get("host", "127.0.0.1")), int(info.get("port", 5432)))
    yield p
    p.close()


def test_database_outage_pauses_ingest_and_resumes_without_loss(
    stack: Stack, proxy: TcpProxy, tmp_path: Path
) -> None:
    migrate(stack.database_url)
    stack.extra_env["IOC_DATABASE_URL"] = make_conninfo(
        stack.database_url, host="127.0.0.1", port=str(proxy.port)
    )
    worker = WorkerProcess(stack, tmp_path / "worker.log")
    start = ev.recent_start(12)
    first = ev.security_events(2000, start, prefix="before")
    second = ev.security_events(5000, start, prefix="during")
    third = ev.security_events(3000, start, prefix="at-shutdown")
    try:
        produce(stack, ev.as_records(first))  # type: ignore[arg-type]
        worker.start()
        wait_for(
            lambda: count(stack, "security_events") == len(first),
            timeout=90,
            what="the first wave",
            on_fail=worker.log_tail,
        )

        proxy.cut()
        produce(stack, ev.as_records(second))  # type: ignore[arg-type]
        wait_for(
            lambda: worker.sample("ioc_database_up") == 0.0,
            timeout=30,
            what="the worker to notice the outage",
            on_fail=worker.log_tail,
        )
        time.sleep(3)
        assert count(stack, "security_events") == len(first), "nothing is written while cut"
        assert worker.proc is not None and worker.proc.poll() is None, "the worker must not die"

        proxy.restore()
        wait_for(
            lambda: count(stack, "security_events") == len(first) + len(second),
            timeout=90,
            what="the backlog after the outage",
            on_fail=worker.log_tail,
        )
        assert worker.sample("ioc_database_up") == 1.0

        # Stopped during an outage: the worker exits promptly without acknowledging the
        # unstored batch, and a restarted worker stores it.
        proxy.cut()
        produce(stack, ev.as_records(third))  # type: ignore[arg-type]
        wait_for(
            lambda: worker.sample("ioc_database_up") == 0.0,
            timeout=30,
            what="the second outage",
            on_fail=worker.log_tail,
        )
        started = time.monotonic()
        worker.stop(timeout=45)
        assert time.monotonic() - started < 45, "stopping must not wait for the database"
        proxy.restore()
        worker.start()
        total = len(first) + len(second) + len(third)
        wait_for(
            lambda: count(stack, "security_events") == total,
            timeout=90,
            what="the batch left unstored at shutdown",
            on_fail=worker.log_tail,
        )
    finally:
        worker.stop()
