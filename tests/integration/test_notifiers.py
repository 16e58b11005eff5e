"""The delivery adapters against real receivers: Alertmanager 0.25 (Debian's binary), an HTTP
server that checks webhook signatures, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import email
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from ioc.alerts.model import AlertNotice, DeliveryResult, Notification
from ioc.alerts.receivers import AlertmanagerReceiver, MailReceiver, WebhookReceiver
from ioc.notify import sender_for
from ioc.notify.alertmanager import AlertmanagerSender
from ioc.notify.mail import MailSender
from ioc.notify.webhook import WebhookSender, sign, verify
from ioc.services.alertmanager import LocalAlertmanager
from tests.support.alertmanager import alertmanager_fixture  # noqa: F401 - the fixture
from tests.support.services import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SECRET = "khóa-bí-mật-webhook"


def notice(run: str, n: int, **kw: Any) -> AlertNotice:
    fields: dict[str, Any] = {
        "id": f"al-{run}-{n}",
        "fingerprint": f"fp{run}{n}",
        "status": "firing",
        "state": "firing",
        "rule": "service_down",
        "severity": "critical",
        "summary": f"Cổng dịch vụ công số {n} mất kết nối",
        "labels": {
            "alertname": "service_down",
            "severity": "critical",
            "service_id": f"dvc-{n}",
            "test_run": run,
        },
        "starts_at": datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3),
        "event_count": 2 + n,
        "value": 0.25 * n,
        "evidence": (f"ev-{n}-a", f"ev-{n}-b"),
        "link": f"http://127.0.0.1:3000/d/uptime?var-service=dvc-{n}",
        **kw,
    }
    return AlertNotice(**fields)


def notification(*alerts: AlertNotice, reason: str = "firing") -> Notification:
    return Notification(
        id=f"n-{uuid.uuid4().hex[:12]}",
        receiver="test",
        reason=reason,  # type: ignore[arg-type]
        group_key="service_down",
        alerts=alerts,
        created_at=datetime.now(UTC),
    )


def run(coro: Callable[[aiohttp.ClientSession], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession() as session:
            return await coro(session)

    return asyncio.run(go())


class Sleeps:
    """An injected sleep that records the delays and does not wait: retries run instantly."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- Alertmanager --------------------------------------------------------------------------


def test_alertmanager_lists_what_fires_and_drops_what_resolves(
    alertmanager: LocalAlertmanager,
) -> None:
    tag = uuid.uuid4().hex[:8]
    a1 = notice(tag, 1, acknowledged_by="an.nv", state="acknowledged")
    a2 = notice(tag, 2, labels={**notice(tag, 2).labels, "site-id": "hn"})  # mended: site_id

    async def go(session: aiohttp.ClientSession) -> None:
        sender = sender_for(AlertmanagerReceiver(name="am", url=alertmanager.url), session)
        assert isinstance(sender, AlertmanagerSender)
        assert await sender.ready()
        sent_at = datetime.now(UTC)
        result = await sender.send(notification(a1, a2))
        assert result == DeliveryResult(ok=True, attempts=1, status=200)

        listed = {a["labels"]["service_id"]: a for a in await sender.list_alerts({"test_run": tag})}
        assert set(listed) == {"dvc-1", "dvc-2"}
        first, second = listed["dvc-1"], listed["dvc-2"]
        assert first["labels"] == a1.labels  # labels are ours and only ours
        mended = {k: v for k, v in a2.labels.items() if k != "site-id"} | {"site_id": "hn"}
        assert second["labels"] == mended
        assert first["annotations"] == {
            "summary": "Cổng dịch vụ công số 1 mất kết nối",
            "state": "acknowledged",
            "acknowledged_by": "an.nv",
            "event_count": "3",
            "value": "0.25",
            "evidence": "ev-1-a,ev-1-b",
            "ioc_fingerprint": a1.fingerprint,
            "ioc_alert_id": a1.id,
        }
        assert "acknowledged_by" not in second["annotations"]
        assert first["generatorURL"] == a1.link
        assert first["status"]["state"] == "active"
        assert parse_time(first["startsAt"]) == a1.starts_at
        # Open alerts expire after the resolve timeout unless re-sent (as Prometheus does).
        ends = parse_time(first["endsAt"]) - sent_at
        assert timedelta(minutes=4, seconds=58) < ends < timedelta(minutes=5, seconds=5)

        # Re-sending updates in place: Alertmanager deduplicates on the labels.
        again = await sender.send(notification(notice(tag, 1, event_count=9), a2))
        assert again.ok
        counts = [
            a["annotations"]["event_count"] for a in await sender.list_alerts({"test_run": tag})
        ]
        assert sorted(counts) == ["4", "9"]

        ended = datetime.now(UTC)
        resolved = [
            notice(tag, 1, status="resolved", state="resolved", ends_at=ended),
            msgspec.structs.replace(a2, status="resolved", state="resolved", ends_at=ended),
        ]
        assert (await sender.send(notification(*resolved, reason="resolved"))).ok
        assert await sender.list_alerts({"test_run": tag}) == []
        inactive = await sender.list_alerts({"test_run": tag}, active=False)
        assert inactive == []  # an ended alert is not listed under any state filter

    run(go)


def test_alertmanager_refusal_is_permanent(alertmanager: LocalAlertmanager) -> None:
    """Alertmanager answers 400 to an alert without labels: retrying cannot help."""

    async def go(session: aiohttp.ClientSession) -> None:
        sleeps = Sleeps()
        sender = AlertmanagerSender(
            AlertmanagerReceiver(name="am", url=alertmanager.url), session, sleep=sleeps
        )
        result = await sender.send(notification(notice("x", 1, labels={})))
        assert not result.ok and result.permanent
        assert (result.attempts, result.status) == (1, 400)
        assert result.error is not None and "label" in result.error
        assert sleeps.delays == []

    run(go)


def test_alertmanager_down_is_retried_quickly_then_left_to_the_caller() -> None:
    async def go(session: aiohttp.ClientSession) -> None:
        sleeps = Sleeps()
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        sender = AlertmanagerSender(AlertmanagerReceiver(name="am", url=url), session, sleep=sleeps)
        assert not await sender.ready()
        result = await sender.send(notification(notice("down", 1)))
        assert not result.ok and not result.permanent  # the pipeline sends again later
        assert result.attempts == 3 and result.status is None
        assert result.error is not None and "Connect" in result.error
        assert sleeps.delays == [0.05, 0.1]

    run(go)


# --- Webhooks ------------------------------------------------------------------------------


class Hook:
    """A webhook receiver as a customer would write one: it checks the signature first (401 on
    a bad one), then answers the scripted statuses, then ``then``."""

    def __init__(self, *script: int, then: int = 200, headers: dict[str, str] | None = None):
        self.script = list(script)
        self.then = then
        self.extra = headers or {}
        self.seen: list[tuple[dict[str, str], bytes, bool]] = []
        self.stall: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = verify(SECRET, request.headers, body, datetime.now(UTC))
        self.seen.append((dict(request.headers), body, valid))
        if not valid:
            return web.Response(status=401, text="bad signature")
        if self.stall:
            stall, self.stall = self.stall, 0.0
            await asyncio.sleep(stall)
        status = self.script.pop(0) if self.script else self.then
        return web.Response(status=status, text=f"answer {status}", headers=self.extra)

    @property
    def deliveries(self) -> list[str]:
        return [h["X-IOC-Delivery"] for h, _, _ in self.seen]


@asynccontextmanager
async def serving(hook: Hook) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


def receiver(url: str, secret: str = SECRET, **kw: Any) -> WebhookReceiver:
    fields: dict[str, Any] = {
        "max_attempts": 4,
        "backoff_initial_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "timeout_seconds": 2.0,
        **kw,
    }
    return WebhookReceiver(name="hook", url=url, secret=secret, **fields)


def deliver(hook: Hook, secret: str = SECRET, **kw: Any) -> tuple[DeliveryResult, Notification]:
    note = notification(notice("wh", 1), notice("wh", 2))

    async def go(session: aiohttp.ClientSession) -> DeliveryResult:
        async with serving(hook) as url:
            sender = WebhookSender(
                receiver(url, secret, **kw), session, sleep=asyncio.sleep, rng=random.Random(3)
            )
            return await sender.send(note)

    return run(go), note


def test_webhook_retries_503_until_accepted_with_one_delivery_id() -> None:
    hook = Hook(503, 503)
    result, note = deliver(hook)
    assert result == DeliveryResult(ok=True, attempts=3, status=200)
    assert hook.deliveries == [note.id] * 3  # the receiver can drop the duplicates
    assert all(valid for _, _, valid in hook.seen)
    headers, body, _ = hook.seen[-1]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "ioc-stream"
    assert msgspec.json.decode(body, type=Notification) == note  # the whole notification
    assert abs(int(headers["X-IOC-Timestamp"]) - datetime.now(UTC).timestamp()) < 30


def test_webhook_backoff_is_jittered_and_honours_retry_after() -> None:
    hook = Hook(503, 429, 503, then=500, headers={})
    note = notification(notice("wh", 1))
    sleeps = Sleeps()

    async def go(session: aiohttp.ClientSession) -> DeliveryResult:
        async with serving(hook) as url:
            r = receiver(url, max_attempts=4, backoff_initial_seconds=0.5, backoff_max_seconds=8)
            sender = WebhookSender(r, session, sleep=sleeps, rng=random.Random(1))
            hook.extra = {}
            first = await sender.send(note)
            hook.script, hook.then, hook.extra = [429], 200, {"Retry-After": "3"}
            second = await sender.send(note)
            assert second == DeliveryResult(ok=True, attempts=2, status=200)
            return first

    first = run(go)
    assert first.permanent and first.attempts == 4 and first.status == 500
    assert first.error is not None and "gave up after 4 attempts" in first.error
    jittered, honoured = sleeps.delays[:3], sleeps.delays[3:]
    assert all(0 <= d <= cap for d, cap in zip(jittered, [0.5, 1.0, 2.0], strict=True))
    assert len(set(jittered)) == 3
    assert honoured == [3.0]  # Retry-After, not jitter


def test_webhook_client_error_is_permanent_at_once() -> None:
    hook = Hook(400)
    result, _ = deliver(hook)
    assert not result.ok and result.permanent
    assert (result.attempts, result.status) == (1, 400)
    assert result.error == "HTTP 400: answer 400"
    assert len(hook.seen) == 1


def test_webhook_that_never_accepts_gives_up_after_max_attempts() -> None:
    hook = Hook(then=502)
    result, _ = deliver(hook, max_attempts=5)
    assert not result.ok and result.permanent
    assert (result.attempts, result.status) == (5, 502)
    assert len(hook.seen) == 5


def test_webhook_timeout_is_retried() -> None:
    hook = Hook()
    hook.stall = 0.8
    result, _ = deliver(hook, timeout_seconds=0.3)
    assert result == DeliveryResult(ok=True, attempts=2, status=200)


def test_webhook_signed_with_another_secret_or_tampered_is_refused() -> None:
    hook = Hook()
    result, _ = deliver(hook, secret="not-the-receivers-secret")
    assert (result.ok, result.permanent, result.attempts, result.status) == (False, True, 1, 401)

    async def tamper(session: aiohttp.ClientSession) -> int:
        async with serving(hook) as url:
            body = b'{"reason":"resolved"}'
            ts = int(datetime.now(UTC).timestamp())
            headers = {"X-IOC-Timestamp": str(ts), "X-IOC-Signature": sign(SECRET, ts, body)}
            async with session.post(url, data=body, headers=headers) as good:
                assert good.status == 200
            async with session.post(url, data=body + b" ", headers=headers) as bad:
                return bad.status

    assert run(tamper) == 401
    assert [valid for _, _, valid in hook.seen] == [False, True, False]


def test_unreachable_webhook_is_retried_then_permanent() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"

    async def go(session: aiohttp.ClientSession) -> DeliveryResult:
        sender = WebhookSender(receiver(url, max_attempts=3), session, sleep=Sleeps())
        return await sender.send(notification(notice("wh", 1)))

    result = run(go)
    assert (result.ok, result.permanent, result.attempts, result.status) == (False, True, 3, None)
    assert result.error is not None and "ClientConnectorError" in result.error


# --- Mail ----------------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler: answers DATA with the scripted replies, then stores the message."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        if self.script:
            return self.script.pop(0)
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        out = []
        for env in self.envelopes:
            assert isinstance(env.content, bytes)
            msg = email.message_from_bytes(env.content, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


def authenticate(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"ioc", b"mat-khau-2026")
    return AuthResult(success=ok, handled=False)  # unhandled: the server answers 535 itself


@contextmanager
def smtp_server(box: Mailbox, **kw: Any) -> Any:
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), **kw)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def mail_receiver(port: int, **kw: Any) -> MailReceiver:
    return MailReceiver(
        name="trực ban",
        to=("ops@ioc.example.vn", "lanh.dao@ioc.example.vn"),
        sender="IOC Tỉnh <ioc@ioc.example.vn>",
        smtp_host="127.0.0.1",
        smtp_port=port,
        timeout_seconds=5.0,
        **kw,
    )


def mail(
    box: Mailbox, note: Notification, server_kw: dict[str, Any] | None = None, **kw: Any
) -> DeliveryResult:
    with smtp_server(box, **(server_kw or {})) as controller:
        sender = MailSender(mail_receiver(controller.port, **kw), sleep=Sleeps())
        return asyncio.run(sender.send(note))


def test_mail_is_delivered_with_vietnamese_intact() -> None:
    box = Mailbox()
    note = notification(notice("m", 1))
    assert mail(box, note) == DeliveryResult(ok=True, attempts=1, status=250)
    (env,) = box.envelopes
    assert env.mail_from == "ioc@ioc.example.vn"
    assert env.rcpt_tos == ["ops@ioc.example.vn", "lanh.dao@ioc.example.vn"]
    (msg,) = box.messages()
    assert msg["Subject"] == "[CRITICAL] FIRING: Cổng dịch vụ công số 1 mất kết nối"
    assert msg["From"] == "IOC Tỉnh <ioc@ioc.example.vn>"
    assert msg["Message-ID"] == f"<{note.id}@ioc.example.vn>"
    assert msg["X-IOC-Delivery"] == note.id
    body = msg.get_content()
    assert "Cổng dịch vụ công số 1 mất kết nối" in body
    assert "evidence: ev-1-a, ev-1-b" in body


def test_mail_transient_reply_is_retried_and_permanent_one_is_not() -> None:
    box = Mailbox("451 4.3.0 Thử lại sau", "421 4.7.0 busy")
    assert mail(box, notification(notice("m", 1))) == DeliveryResult(
        ok=True, attempts=3, status=250
    )
    assert len(box.envelopes) == 1

    refused = Mailbox("554 5.7.1 Message rejected")
    result = mail(refused, notification(notice("m", 1)))
    assert (result.ok, result.permanent, result.attempts, result.status) == (False, True, 1, 554)
    assert result.error is not None and "rejected" in result.error


def test_mail_login() -> None:
    # Plain-text AUTH is fine on loopback; the STARTTLS branch is not covered here.
    server_kw = {"authenticator": authenticate, "auth_require_tls": False}
    box = Mailbox()
    ok = mail(
        box, notification(notice("m", 1)), server_kw, username="ioc", password="mat-khau-2026"
    )
    assert ok.ok and len(box.envelopes) == 1
    bad = mail(box, notification(notice("m", 1)), server_kw, username="ioc", password="sai")
    assert (bad.ok, bad.permanent, bad.status) == (False, True, 535)


def test_mail_server_down_is_retried_then_permanent() -> None:
    sender = MailSender(mail_receiver(free_port(), max_attempts=3), sleep=Sleeps())
    result = asyncio.run(sender.send(notification(notice("m", 1))))
    assert (result.ok, result.permanent, result.attempts) == (False, True, 3)
    assert result.error is not None and "ConnectionRefusedError" in result.error
