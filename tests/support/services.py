"""Real services for the integration tests: a fresh broker and a fresh database per module.

The broker is the same embedded Tansu that `make demo` runs, on a free port; the database is a
new one on the local PostgreSQL server (or the server of ``IOC_TEST_DATABASE_URL``), migrated
with ``ioc migrate``'s code and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import make_conninfo

from ioc.broker import ensure_topics
from ioc.config import Settings
from ioc.producer import EventProducer
from ioc.services.postgres import drop_database, ensure_database
from ioc.services.processes import child_dies_with_parent
from ioc.services.tansu import TansuBroker
from ioc.storage.migrations import timescale_problem

SERVER_URL = os.environ.get(
    "IOC_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_database(prefix: str = "ioc_test") -> str:
    url = make_conninfo(SERVER_URL, dbname=f"{prefix}_{uuid.uuid4().hex[:10]}")
    ensure_database(url)
    return url


def timescale_available() -> bool:
    """True where the test server can really create the extension (installed and preloaded)."""
    try:
        with psycopg.connect(SERVER_URL, connect_timeout=3) as conn:
            return timescale_problem(conn) is None
    except psycopg.Error:
        return False


@dataclass
class Stack:
    """A broker, a database and the settings/env a worker process needs to use them."""

    broker: TansuBroker
    database_url: str
    state_dir: Path
    metrics_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "IOC_KAFKA_URL": self.broker.url,
            "IOC_BROKER_FLAVOR": "tansu",
            "IOC_DATABASE_URL": self.database_url,
            "IOC_STATE_DIR": str(self.state_dir),
            "IOC_METRICS_PORT": str(self.metrics_port),
            "IOC_PARTITIONS": "4",
            "IOC_BATCH_SECONDS": "0.2",
            "IOC_APP_ID": "ioc-test-worker",
            "IOC_ALERT_API_PORT": "0",  # tests that use the API pick a free port
            **self.extra_env,
        }

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def close(self) -> None:
        self.broker.stop()
        drop_database(self.database_url)


def produce(stack: Stack, records: list[tuple[str, bytes | None, bytes]]) -> None:
    """Send records to the stack's broker (topics created first), acknowledged."""

    async def go() -> None:
        await ensure_topics(stack.settings)
        producer = EventProducer(stack.settings)
        await producer.start()
        try:
            for i in range(0, len(records), 2000):
                await producer.send_many(records[i : i + 2000])
        finally:
            await producer.stop()

    asyncio.run(go())


def count(stack: Stack, table: str) -> int:
    with psycopg.connect(stack.database_url) as conn:
        try:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        except psycopg.errors.UndefinedTable:
            return -1
        return int(row[0]) if row else 0


def counts(stack: Stack) -> dict[str, int]:
    tables = ("dossier_events", "dossiers", "uptime_checks", "security_events", "dead_letters")
    return {t: count(stack, t) for t in tables}


def start_stack(tmp: Path) -> Stack:
    broker = TansuBroker(port=free_port(), state_dir=tmp)
    broker.start(tied_to_parent=True)
    return Stack(broker=broker, database_url=new_database(), state_dir=tmp)


class WorkerProcess:
    """A real ``ioc worker`` in a child process."""

    def __init__(self, stack: Stack, log_path: Path, metrics_port: int | None = None) -> None:
        self.stack = stack
        self.log_path = log_path
        self.metrics_port = metrics_port or stack.metrics_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "worker"],
            env={**self.stack.env, "IOC_METRICS_PORT": str(self.metrics_port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=child_dies_with_parent,  # never outlives an interrupted test run
        )
        log.close()

    def kill_hard(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown hooks, no offset commit
        self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as r:
            return str(r.read().decode())

    def sample(self, name: str, **labels: str) -> float | None:
        """One sample of the worker's /metrics, or None if absent or unreachable."""
        try:
            text = self.metrics()
        except OSError:
            return None
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return None

    def wait_for_kpi_refresh(self, after: float, timeout: float = 90) -> None:
        """Until the worker has taken a KPI snapshot later than ``after`` (Unix time)."""
        wait_for(
            lambda: (self.sample("ioc_kpi_last_refresh_timestamp_seconds") or 0) > after,
            timeout=timeout,
            what="a KPI refresh",
            on_fail=self.log_tail,
        )

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    on_fail: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``condition`` until true; fail with ``what`` and diagnostics after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{on_fail()}")
