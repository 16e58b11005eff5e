"""``ioc replay`` end to end, against the local broker and database: the real command, run
twice, stores every event once, keeps the summaries exact, and puts bad lines in the
dead-letter table where an operator can find them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ioc.producer import encode
from ioc.storage.migrations import migrate
from tests.support.events import BAD_RECORDS, as_records, recent_start, security_events
from tests.support.services import Stack, produce, start_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = start_stack(tmp_path)
    migrate(s.database_url)
    try:
        yield s
    finally:
        s.close()


def replay(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ioc.cli", "replay", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def stored(stack: Stack) -> tuple[int, int, int]:
    """Security rows, the events the five-minute summary counts, and dead letters."""
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute("SELECT count(*) FROM security_events").fetchone()
        summed = conn.execute("SELECT coalesce(sum(events), 0) FROM security_5m").fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert rows and summed and dead
    return int(rows[0]), int(summed[0]), int(dead[0])


def test_replaying_a_file_twice_stores_each_event_once(stack: Stack, tmp_path: Path) -> None:
    events = security_events(300, recent_start(), prefix="archive")
    bad = BAD_RECORDS["security"][:2]
    lines = [encode(e) for e in events[:150]] + [bad[0], b"", *map(encode, events[150:]), bad[1]]
    archive = tmp_path / "soc-archive.ndjson"
    archive.write_bytes(b"\n".join(lines) + b"\n")

    first = replay(stack, "file", str(archive), "--stream", "security", "--batch", "64")
    assert first == "security: read 302, stored 300, already stored 0, dead-lettered 2"
    assert stored(stack) == (300, 300, 2)

    again = replay(stack, "file", str(archive), "--stream", "security")
    assert again == "security: read 302, stored 0, already stored 300, dead-lettered 2"
    assert stored(stack) == (300, 300, 2), "a second replay counted nothing twice"

    with psycopg.connect(stack.database_url) as conn:
        dead = conn.execute(
            "SELECT source_topic, kafka_partition, kafka_offset, reason, payload"
            " FROM dead_letters ORDER BY kafka_offset"
        ).fetchall()
    # Each refused line is found by its file and line number, with its bytes and reason.
    assert [(d[0], d[1], d[2], bytes(d[4])) for d in dead] == [
        ("file:soc-archive.ndjson", -1, 151, bad[0]),
        ("file:soc-archive.ndjson", -1, 303, bad[1]),
    ]
    assert all(d[3] for d in dead)


def test_replaying_a_topic_range_by_time_and_by_offset(stack: Stack) -> None:
    start = recent_start()
    early = security_events(200, start, prefix="early")
    late = security_events(100, start + timedelta(hours=1), prefix="late")
    produce(stack, as_records(early))
    time.sleep(1.0)  # broker timestamps: the late batch is appended a second later
    boundary = datetime.now(UTC)
    time.sleep(0.5)
    produce(stack, as_records(late))

    # Only what the broker appended after the boundary.
    since = replay(stack, "topic", "--stream", "security", "--since", boundary.isoformat())
    assert since == "security: read 100, stored 100, already stored 0, dead-lettered 0"
    with psycopg.connect(stack.database_url) as conn:
        ids = {r[0] for r in conn.execute("SELECT event_id FROM security_events")}
    assert ids == {e.event_id for e in late}

    # The whole topic: the early events are new, the late ones already stored.
    everything = replay(stack, "topic", "--stream", "security")
    assert everything == "security: read 300, stored 200, already stored 100, dead-lettered 0"
    assert stored(stack) == (300, 300, 0)

    # --until excludes: nothing appended before the boundary is read again after it.
    before = replay(stack, "topic", "--stream", "security", "--until", boundary.isoformat())
    assert before == "security: read 200, stored 0, already stored 200, dead-lettered 0"

    # Offsets on one partition: exactly the records from 2 up to (not including) 7.
    window = replay(
        stack,
        "topic",
        "--stream",
        "security",
        "--partition",
        "1",
        "--from-offset",
        "2",
        "--until-offset",
        "7",
    )
    assert window == "security: read 5, stored 0, already stored 5, dead-lettered 0"
    assert stored(stack) == (300, 300, 0)


def test_a_missing_topic_is_a_clear_error(stack: Stack) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ioc.cli", "replay", "topic", "--stream", "uptime"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "replay: topic ioc.uptime.v1 does not exist" in done.stderr
