"""Alerting end to end: events on the broker → a real worker → a real Alertmanager, a signed
webhook receiver and an SMTP server started here; acknowledging through the API stops the
escalation; every state change is a row and a record on ``ioc.alerts.v1``."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import aiohttp
import msgspec
import psycopg
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from ioc.broker import consumer_settings
from ioc.events import SecurityEvent, UptimeEvent
from ioc.notify.webhook import verify
from ioc.producer import encode
from ioc.services.alertmanager import LocalAlertmanager
from ioc.storage.alert_users import add_user
from ioc.storage.maintenance_windows import declare
from tests.support.alertmanager import alertmanager_fixture  # noqa: F401 - the fixture
from tests.support.services import Stack, WorkerProcess, free_port, produce, start_stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SECRET = "khóa-webhook-thử"
ESCALATE_AFTER_S = 6

RULES = """
receivers:
  am: {kind: alertmanager, url_env: IOC_ALERTMANAGER_URL}
  phone: {kind: webhook, url_env: TEST_WEBHOOK_URL, secret_env: TEST_WEBHOOK_SECRET}
  ciso:
    kind: mail
    to: [ciso@soc.test]
    sender: ioc@soc.test
    smtp_host_env: TEST_SMTP_HOST
    smtp_port: %(smtp_port)d
routes:
  - name: security
    match: ['team="security"']
    receivers: [am, phone]
    group_by: [alertname]
    escalate_after: %(escalate)ds
    escalate_to: [ciso]
rules:
  - id: critical-event
    kind: match
    where: {severity: [critical]}
    group_by: [asset_id]
    severity: critical
    labels: {team: security}
    summary: "Sự kiện nghiêm trọng trên {asset_id}"
  - id: service-down
    kind: consecutive
    count: 2
    severity: high
    labels: {team: security}
  - id: brute-force
    kind: correlation
    where: {category: [brute_force]}
    group_by: [src_ip]
    window: 5m
    min_events: 10
    severity: high
    labels: {team: security}
"""


@dataclass
class Webhook:
    """A receiver on a thread of its own: checks every signature, refuses the first try."""

    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    bad_signatures: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(SECRET, request.headers, body, datetime.now(UTC)):
            self.bad_signatures += 1
            return web.Response(status=401)
        delivery = request.headers["X-IOC-Delivery"]
        self.attempts[delivery] = self.attempts.get(delivery, 0) + 1
        if self.attempts[delivery] == 1:
            return web.Response(status=503)  # the sender must retry
        self.received.append(json.loads(body))
        return web.Response(status=204)

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/hook", self.handle)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()

        threading.Thread(target=serve, daemon=True).start()
        ready.wait(10)

    def firing(self) -> list[str]:
        return [
            a["fingerprint"] for n in self.received if n["reason"] == "firing" for a in n["alerts"]
        ]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


def event(eid: str, **kw: Any) -> bytes:
    fields: dict[str, Any] = {
        "event_id": eid,
        "event_time": datetime.now(UTC),
        "source": "soc-tinh",
        "severity": "medium",
        "category": "intrusion",
        **kw,
    }
    return encode(SecurityEvent(**fields))


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, alertmanager: LocalAlertmanager
) -> Iterator[tuple[Stack, WorkerProcess, Webhook, Mailbox, int]]:
    tmp = tmp_path_factory.mktemp("alerting")
    webhook = Webhook()
    webhook.start()
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "test.yaml").write_text(RULES % {"smtp_port": smtp.port, "escalate": ESCALATE_AFTER_S})
    stack = start_stack(tmp)
    api_port = free_port()
    stack.extra_env.update(
        IOC_ALERT_RULES=str(rules),
        IOC_ALERTMANAGER_URL=alertmanager.url,
        TEST_WEBHOOK_URL=f"http://127.0.0.1:{webhook.port}/hook",
        TEST_WEBHOOK_SECRET=SECRET,
        TEST_SMTP_HOST="127.0.0.1",
        IOC_ALERT_API_PORT=str(api_port),
        IOC_KPI="off",
    )
    worker = WorkerProcess(stack, tmp / "worker.log")
    worker.start()
    try:
        wait_for(
            lambda: worker.sample("ioc_alert_evaluator_leader") == 1.0,
            90,
            "the alert evaluator",
            worker.log_tail,
        )
        yield stack, worker, webhook, mailbox, api_port
    finally:
        worker.stop()
        smtp.stop()
        stack.close()


def am_alerts(am: LocalAlertmanager) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.get(f"{am.url}/api/v2/alerts") as r:
            return list(await r.json())

    return asyncio.run(go())


def test_bursts_become_exactly_the_expected_grouped_alerts(
    setup: tuple[Stack, WorkerProcess, Webhook, Mailbox, int], alertmanager: LocalAlertmanager
) -> None:
    stack, worker, webhook, _, _ = setup
    records = []
    for i in range(50):  # fifty critical events on two assets: two alerts
        records.append(event(f"crit-{i}", severity="critical", asset_id=f"srv-{i % 2}"))
    for i in range(9):  # one short of the brute-force threshold
        records.append(event(f"bf-a-{i}", category="brute_force", src_ip="203.0.113.9"))
    for i in range(10):  # exactly at it
        records.append(event(f"bf-b-{i}", category="brute_force", src_ip="203.0.113.10"))
    records += records[:10]  # redelivered records change nothing
    produce(stack, [("ioc.security.v1", None, r) for r in records])

    def visible() -> set[tuple[str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("asset_id") or a["labels"]["src_ip"])
            for a in am_alerts(alertmanager)
        }

    expected = {
        ("critical-event", "srv-0"),
        ("critical-event", "srv-1"),
        ("brute-force", "203.0.113.10"),
    }
    wait_for(lambda: visible() == expected, 60, "the alerts in Alertmanager", worker.log_tail)
    # the webhook was told once per alert, after one refused try each, all signed
    wait_for(lambda: len(webhook.firing()) >= 3, 30, "the webhook", worker.log_tail)
    time.sleep(1.0)
    assert sorted(webhook.firing()) == sorted(set(webhook.firing()))
    assert len(webhook.firing()) == 3
    assert webhook.bad_signatures == 0
    assert all(n == 2 for n in webhook.attempts.values())
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute(
            "SELECT rule, event_count, (doc->>'value')::float FROM alerts"
            " WHERE state = 'firing' ORDER BY rule, event_count"
        ).fetchall()
    # a match rule folds every event; the correlation fired once; both carry their count
    assert rows == [
        ("brute-force", 1, 10.0),
        ("critical-event", 25, 25.0),
        ("critical-event", 25, 25.0),
    ]
    assert worker.sample("ioc_alerts_fired_total", rule="critical-event", severity="critical") == 2
    assert worker.sample("ioc_notifications_sent_total", receiver="phone", kind="webhook") >= 1


def test_acknowledging_through_the_api_stops_escalation(
    setup: tuple[Stack, WorkerProcess, Webhook, Mailbox, int],
) -> None:
    stack, worker, _, mailbox, api_port = setup

    async def token() -> str:
        async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as c:
            return await add_user(c, "an.nguyen", "responder", "test")

    bearer = {"Authorization": f"Bearer {asyncio.run(token())}"}
    with psycopg.connect(stack.database_url) as conn:
        (acked_id, acked_fp), *_ = conn.execute(
            "SELECT id::text, fingerprint FROM alerts WHERE labels->>'asset_id' = 'srv-0'"
        ).fetchall()

    async def acknowledge() -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"http://127.0.0.1:{api_port}/v1/alerts/{acked_id}/acknowledge",
                json={"comment": "đang xử lý"},
                headers=bearer,
            ) as r,
        ):
            assert r.status == 200, await r.text()
            return dict(await r.json())

    answer = asyncio.run(acknowledge())
    assert answer["alert"]["state"] == "acknowledged"
    # the two others escalate to the mail receiver; the acknowledged one never does
    wait_for(
        lambda: len(mailbox.messages) >= 1,
        ESCALATE_AFTER_S + 30,
        "the escalation mail",
        worker.log_tail,
    )
    time.sleep(2.0)
    mailed = " ".join(m.get_body(("plain",)).get_content() for m in mailbox.messages)
    assert "srv-1" in mailed and "203.0.113.10" in mailed
    assert "srv-0" not in mailed
    assert all(m["To"] == "ciso@soc.test" for m in mailbox.messages)
    with psycopg.connect(stack.database_url) as conn:
        kinds = conn.execute(
            "SELECT kind, actor, comment FROM alert_events WHERE fingerprint = %s ORDER BY id",
            (acked_fp,),
        ).fetchall()
        escalated = conn.execute(
            "SELECT count(*) FROM alerts WHERE escalation_level = 1"
        ).fetchone()
    assert kinds == [("fired", None, None), ("acknowledged", "an.nguyen", "đang xử lý")]
    assert escalated == (2,)


def test_every_state_change_is_a_record_on_the_alerts_topic(
    setup: tuple[Stack, WorkerProcess, Webhook, Mailbox, int],
) -> None:
    stack, *_ = setup

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            "ioc.alerts.v1", group_id="test-alert-records", **consumer_settings(stack.settings)
        )
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(out) < 6:
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    out += [msgspec.json.decode(m.value) for m in msgs]
        finally:
            await consumer.stop()
        return out

    records = asyncio.run(read())
    kinds = sorted(r["kind"] for r in records)
    assert kinds == ["acknowledged", "escalated", "escalated", "fired", "fired", "fired"]
    assert all(r["alert"]["fingerprint"] == r["fingerprint"] for r in records)


def test_a_declared_maintenance_window_mutes_its_service_only(
    setup: tuple[Stack, WorkerProcess, Webhook, Mailbox, int],
) -> None:
    stack, worker, webhook, *_ = setup
    now = datetime.now(UTC)
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        window = declare(
            conn, now, now + timedelta(hours=1), "lan.tran", service_id="portal", comment="nâng cấp"
        )
    time.sleep(12)  # the evaluator follows maintenance windows every 10 s
    checks = [
        UptimeEvent(
            event_id=f"{svc}-{i}",
            event_time=now + timedelta(seconds=i),
            service_id=svc,
            status="down",
        )
        for svc in ("portal", "mail")
        for i in range(2)
    ]
    produce(stack, [("ioc.uptime.v1", None, encode(c)) for c in checks])

    def rows() -> dict[str, tuple[bool, list[str]]]:
        with psycopg.connect(stack.database_url) as conn:
            found = conn.execute(
                "SELECT labels->>'service_id', muted, doc->'silenced_by' FROM alerts"
                " WHERE rule = 'service-down'"
            ).fetchall()
        return {svc: (muted, list(by)) for svc, muted, by in found}

    wait_for(lambda: len(rows()) == 2, 60, "the service alerts", worker.log_tail)
    assert rows() == {"portal": (True, [f"maintenance-{window.id}"]), "mail": (False, [])}
    wait_for(
        lambda: (
            "mail" in {a["labels"].get("service_id") for n in webhook.received for a in n["alerts"]}
        ),
        30,
        "the unmuted service's notification",
        worker.log_tail,
    )
    told = {a["labels"].get("service_id") for n in webhook.received for a in n["alerts"]}
    assert "portal" not in told
