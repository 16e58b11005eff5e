"""The alert mail as built, before any SMTP: subject, headers, body, encodings."""

from __future__ import annotations

import email
import smtplib
import ssl
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import pytest

from ioc.alerts.model import AlertNotice, Notification
from ioc.alerts.receivers import MailReceiver
from ioc.notify.mail import build_message, classify, message_id

AT = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
RECEIVER = MailReceiver(
    name="trực ban",
    to=("ops@ioc.example.vn", "lanh.dao@ioc.example.vn"),
    sender="IOC <ioc@ioc.example.vn>",
)


def notice(summary: str = "Cổng dịch vụ công mất kết nối", **kw: object) -> AlertNotice:
    fields: dict[str, object] = {
        "id": "al-0001",
        "fingerprint": "a1b2c3d4e5f60718",
        "status": "firing",
        "state": "firing",
        "rule": "service_down",
        "severity": "critical",
        "summary": summary,
        "labels": {"alertname": "service_down", "severity": "critical", "service_id": "dvc"},
        "starts_at": AT,
        "event_count": 3,
        "evidence": ("ev-1", "ev-2"),
        "link": "http://grafana.local/d/uptime?var-service=dvc",
        **kw,
    }
    return AlertNotice(**fields)  # type: ignore[arg-type]


def notification(*alerts: AlertNotice, reason: str = "firing", id: str = "n-0001") -> Notification:
    return Notification(
        id=id,
        receiver="trực ban",
        reason=reason,  # type: ignore[arg-type]
        group_key="service_down",
        alerts=alerts or (notice(),),
        created_at=AT,
    )


def reparsed(msg: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_one_firing_alert() -> None:
    msg = reparsed(build_message(notification(), RECEIVER))
    assert msg["Subject"] == "[CRITICAL] FIRING: Cổng dịch vụ công mất kết nối"
    assert msg["To"] == "ops@ioc.example.vn, lanh.dao@ioc.example.vn"
    assert msg["From"] == "IOC <ioc@ioc.example.vn>"
    assert msg["Message-ID"] == "<n-0001@ioc.example.vn>"
    assert msg["X-IOC-Delivery"] == "n-0001"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] == "Fri, 20 Mar 2026 02:00:00 +0000"
    body = msg.get_content()
    assert "[FIRING] CRITICAL — Cổng dịch vụ công mất kết nối" in body
    assert "labels: alertname=service_down, service_id=dvc, severity=critical" in body
    assert "starts: 2026-03-20 09:00:00+07:00" in body  # shown in province time
    assert "evidence: ev-1, ev-2" in body
    assert "link: http://grafana.local/d/uptime?var-service=dvc" in body


def test_the_wire_form_is_seven_bit() -> None:
    raw = build_message(notification(), RECEIVER).as_bytes()
    assert raw.isascii()  # encoded words and quoted-printable: no 8BITMIME needed
    assert b"=?utf-8?" in raw


def test_several_alerts_name_the_worst_and_the_count() -> None:
    alerts = (
        notice("Chậm xử lý hồ sơ", severity="medium", fingerprint="f1"),
        notice("Máy chủ quá tải", severity="high", fingerprint="f2"),
        notice("Đĩa sắp đầy", severity="low", fingerprint="f3"),
    )
    msg = build_message(notification(*alerts, reason="escalated"), RECEIVER)
    assert msg["Subject"] == "[HIGH] ESCALATED (3 alerts): Máy chủ quá tải"
    body = msg.get_content()
    assert body.count("[FIRING]") == 3
    assert "ESCALATED: 3 alert(s)" in body


def test_resolved_and_acknowledged_details() -> None:
    ended = datetime(2026, 3, 20, 3, 30, tzinfo=UTC)
    resolved = notice(status="resolved", state="resolved", ends_at=ended, acknowledged_by="an.nv")
    msg = build_message(notification(resolved, reason="resolved"), RECEIVER)
    assert msg["Subject"].startswith("[CRITICAL] RESOLVED: ")
    body = msg.get_content()
    assert "state: resolved (by an.nv)" in body
    assert "ends: 2026-03-20 10:30:00+07:00" in body


def test_a_summary_cannot_inject_headers_and_is_capped_in_the_subject() -> None:
    msg = build_message(notification(notice("a\r\nBcc: evil@example.com " + "x" * 400)), RECEIVER)
    assert "\n" not in msg["Subject"] and "Bcc" not in msg
    assert len(msg["Subject"]) < 200


def test_message_id_is_stable_and_safe_for_any_notification_id() -> None:
    odd = notification(id="nhóm <1>@x")
    first, second = message_id(odd, RECEIVER.sender), message_id(odd, RECEIVER.sender)
    assert first == second and first.isascii() and first.endswith("@ioc.example.vn>")
    assert message_id(notification(), "no-domain") == "<n-0001@ioc-stream.invalid>"


@pytest.mark.parametrize(
    ("exc", "transient", "code"),
    [
        (smtplib.SMTPDataError(451, b"try later"), True, 451),
        (smtplib.SMTPDataError(554, b"rejected"), False, 554),
        (smtplib.SMTPSenderRefused(550, b"no", "ioc@x"), False, 550),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False, 535),
        (smtplib.SMTPConnectError(421, b"busy"), True, 421),
        (smtplib.SMTPRecipientsRefused({"a@x": (450, b"greylisted")}), True, 450),
        (smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}), False, 550),
        (smtplib.SMTPServerDisconnected("gone"), True, None),
        (ConnectionRefusedError(111, "refused"), True, None),
        (TimeoutError("timed out"), True, None),
        (ssl.SSLCertVerificationError("bad cert"), False, None),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported"), False, None),
    ],
)
def test_classify(exc: Exception, transient: bool, code: int | None) -> None:
    assert classify(exc)[:2] == (transient, code)
