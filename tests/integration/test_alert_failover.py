"""One alert evaluator per deployment: when it dies mid-stream, another worker takes over,
rebuilds the rules from storage, and neither loses an alert nor raises one twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from ioc.events import SecurityEvent
from ioc.producer import encode
from ioc.services.alertmanager import LocalAlertmanager
from tests.support.alertmanager import alertmanager_fixture  # noqa: F401 - the fixture
from tests.support.services import Stack, WorkerProcess, free_port, produce, start_stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RULES = """
receivers:
  am: {kind: alertmanager, url_env: IOC_ALERTMANAGER_URL}
routes:
  - name: all
    receivers: [am]
rules:
  - id: critical-event
    kind: match
    where: {severity: [critical]}
    group_by: [asset_id]
    severity: critical
  - id: brute-force
    kind: correlation
    where: {category: [brute_force]}
    group_by: [src_ip]
    window: 10m
    min_events: 10
    severity: high
"""


@pytest.fixture
def stack(tmp_path: Path, alertmanager: LocalAlertmanager) -> Iterator[Stack]:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(RULES)
    s = start_stack(tmp_path)
    s.extra_env.update(
        IOC_ALERT_RULES=str(tmp_path / "rules"), IOC_ALERTMANAGER_URL=alertmanager.url
    )
    try:
        yield s
    finally:
        s.close()


def event(eid: str, **kw: Any) -> tuple[str, bytes | None, bytes]:
    fields: dict[str, Any] = {
        "event_id": eid,
        "event_time": datetime.now(UTC),
        "source": "soc-tinh",
        "severity": "medium",
        "category": "intrusion",
        **kw,
    }
    return ("ioc.security.v1", None, encode(SecurityEvent(**fields)))


def visible(am: LocalAlertmanager) -> set[str]:
    async def go() -> set[str]:
        async with aiohttp.ClientSession() as s, s.get(f"{am.url}/api/v2/alerts") as r:
            return {
                a["labels"].get("asset_id") or a["labels"].get("src_ip", "") for a in await r.json()
            }

    return asyncio.run(go())


def test_a_second_worker_takes_over_and_continues_where_the_first_stopped(
    stack: Stack, alertmanager: LocalAlertmanager, tmp_path: Path
) -> None:
    workers = [
        WorkerProcess(stack, tmp_path / f"worker-{i}.log", metrics_port=free_port())
        for i in range(2)
    ]

    def leaders() -> list[WorkerProcess]:
        return [w for w in workers if w.sample("ioc_alert_evaluator_leader") == 1.0]

    def logs() -> str:
        state = [
            (
                w.sample("ioc_alert_evaluator_leader"),
                w.sample("ioc_alert_events_evaluated_total", stream="security"),
                w.sample("ioc_events_stored_total", stream="security"),
            )
            for w in workers
        ]
        return f"{state} {visible(alertmanager)}\n" + "\n".join(w.log_tail(30) for w in workers)

    try:
        for w in workers:
            w.start()
        wait_for(lambda: len(leaders()) == 1, 90, "one evaluator", logs)
        (first,) = leaders()
        # An alert, and half of a brute-force burst, seen by the first evaluator.
        produce(
            stack,
            [
                event("crit-1", severity="critical", asset_id="srv-1"),
                *(event(f"bf-{i}", category="brute_force", src_ip="203.0.113.7") for i in range(6)),
            ],
        )
        wait_for(lambda: visible(alertmanager) == {"srv-1"}, 60, "the first alert", logs)
        wait_for(
            lambda: (first.sample("ioc_alert_events_evaluated_total", stream="security") or 0) >= 7,
            30,
            "the first evaluator to see the burst",
            logs,
        )
        first.kill_hard()
        (second,) = [w for w in workers if w is not first]
        wait_for(lambda: second.sample("ioc_alert_evaluator_leader") == 1.0, 90, "takeover", logs)
        # The rest of the burst: only with the first half (rebuilt from storage) does it
        # reach the threshold. The first critical event is not raised again.
        produce(
            stack,
            [
                *(
                    event(f"bf-{i}", category="brute_force", src_ip="203.0.113.7")
                    for i in range(6, 10)
                ),
                event("crit-1", severity="critical", asset_id="srv-1"),  # redelivered
                event("crit-2", severity="critical", asset_id="srv-2"),
            ],
        )
        wait_for(
            lambda: visible(alertmanager) == {"srv-1", "srv-2", "203.0.113.7"},
            60,
            "the alerts after the takeover",
            logs,
        )
        with psycopg.connect(stack.database_url) as conn:
            rows = conn.execute("SELECT count(*) FROM alerts").fetchone()
        assert rows == (3,)
        with psycopg.connect(stack.database_url) as conn:
            per_alert = conn.execute(
                "SELECT a.labels->>'asset_id', count(*) FROM alert_events e"
                " JOIN alerts a ON a.id = e.alert_id WHERE e.kind = 'fired'"
                " GROUP BY 1 ORDER BY 1 NULLS LAST"
            ).fetchall()
        assert per_alert == [("srv-1", 1), ("srv-2", 1), (None, 1)]
    finally:
        for w in workers:
            w.stop()
