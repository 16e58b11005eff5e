"""Alert mail over SMTP: one plain-text UTF-8 message per notification.

Sent with the standard library's ``smtplib`` in a worker thread (it blocks), one connection per
message: mail is the slow channel and holding an idle SMTP session open invites the server to
drop it under us. SMTP says itself which failures are worth retrying: 4xx replies and lost
connections are retried with backoff, 5xx replies are final.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from ioc.alerts.model import AlertNotice, DeliveryResult, Notification
from ioc.alerts.receivers import MailReceiver
from ioc.events import Severity
from ioc.kpi.calendar import REPORTING_TZ
from ioc.notify import Sleep, excerpt, full_jitter

SEVERITY_ORDER: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
SUBJECT_SUMMARY = 150  # characters of the summary in a subject line
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _when(at: datetime | None) -> str:
    """Province time with its offset: what the people reading the mail live in, unambiguous."""
    return at.astimezone(REPORTING_TZ).isoformat(sep=" ", timespec="seconds") if at else "—"


def subject(notification: Notification) -> str:
    """``[CRITICAL] FIRING: summary``; with several alerts the worst one and the count."""
    alerts = notification.alerts
    word = notification.reason.upper()
    if not alerts:
        return f"{word}: (no alerts)"
    worst = max(alerts, key=lambda a: SEVERITY_ORDER.index(a.severity))
    count = f" ({len(alerts)} alerts)" if len(alerts) > 1 else ""
    return f"[{worst.severity.upper()}] {word}{count}: {excerpt(worst.summary, SUBJECT_SUMMARY)}"


def _alert_text(notice: AlertNotice) -> str:
    lines = [
        f"[{notice.status.upper()}] {notice.severity.upper()} — {notice.summary}",
        f"  state: {notice.state}"
        + (f" (by {notice.acknowledged_by})" if notice.acknowledged_by else ""),
        f"  rule: {notice.rule}",
        "  labels: " + ", ".join(f"{k}={v}" for k, v in sorted(notice.labels.items())),
        f"  starts: {_when(notice.starts_at)}",
        f"  ends: {_when(notice.ends_at)}",
    ]
    if notice.escalation_level:
        lines.append(f"  escalation level: {notice.escalation_level}")
    lines.append(f"  events: {notice.event_count}")
    if notice.value is not None:
        lines.append(f"  value: {notice.value:g}")
    if notice.evidence:
        lines.append("  evidence: " + ", ".join(notice.evidence))
    if notice.link:
        lines.append(f"  link: {notice.link}")
    lines.append(f"  alert: {notice.id} (fingerprint {notice.fingerprint})")
    return "\n".join(lines)


def message_id(notification: Notification, sender: str) -> str:
    """``<id@sender-domain>``, the same for every retry so a mailbox can spot duplicates."""
    local = notification.id if _SAFE_ID.match(notification.id) else None
    local = local or hashlib.sha256(notification.id.encode()).hexdigest()[:32]
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    if not (at and _SAFE_ID.match(domain)):
        domain = "ioc-stream.invalid"
    return f"<{local}@{domain}>"


def build_message(notification: Notification, receiver: MailReceiver) -> EmailMessage:
    """The message for ``receiver``; headers and body are plain UTF-8 (Vietnamese-safe)."""
    msg = EmailMessage()
    msg["Subject"] = subject(notification)
    msg["From"] = receiver.sender
    msg["To"] = ", ".join(receiver.to)
    msg["Date"] = format_datetime(notification.created_at)
    msg["Message-ID"] = message_id(notification, receiver.sender)
    msg["X-IOC-Delivery"] = notification.id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the robot
    header = [
        f"{notification.reason.upper()}: {len(notification.alerts)} alert(s)",
        f"group: {notification.group_key}",
        f"sent: {_when(notification.created_at)}",
    ]
    body = "\n\n".join(["\n".join(header), *(_alert_text(a) for a in notification.alerts)])
    # quoted-printable keeps the message 7-bit: delivered as is even without 8BITMIME.
    msg.set_content(body + "\n", charset="utf-8", cte="quoted-printable")
    return msg


def _deliver(msg: EmailMessage, r: MailReceiver) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP(r.smtp_host, r.smtp_port, timeout=r.timeout_seconds) as smtp:
        smtp.ehlo()
        if r.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if r.username:
            smtp.login(r.username, r.password or "")
        return smtp.send_message(msg, from_addr=parseaddr(r.sender)[1], to_addrs=list(r.to))


def classify(exc: Exception) -> tuple[bool, int | None, str]:
    """(transient, SMTP code, description) of a failed attempt."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        text = "; ".join(
            f"{a}: {c} {m.decode(errors='replace')}" for a, (c, m) in exc.recipients.items()
        )
        return any(400 <= c < 500 for c in codes), (codes[0] if codes else None), text
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return 400 <= exc.smtp_code < 500, exc.smtp_code, f"{exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True, None, f"disconnected: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError | smtplib.SMTPNotSupportedError):
        return False, None, f"{type(exc).__name__}: {exc}"  # configuration: retrying won't help
    if isinstance(exc, OSError):  # refused, unreachable, timed out
        return True, None, f"{type(exc).__name__}: {exc}"
    return False, None, f"{type(exc).__name__}: {exc}"


class MailSender:
    """Sends each notification to the receiver's recipients through its SMTP server."""

    def __init__(
        self,
        receiver: MailReceiver,
        *,
        backoff_initial_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not receiver.to:
            raise ValueError(f"mail receiver {receiver.name!r} has no recipients")
        self.receiver = receiver
        self.backoff_initial = backoff_initial_seconds
        self.backoff_max = backoff_max_seconds
        self.sleep = sleep
        self.rng = rng or random.Random()

    async def send(self, notification: Notification) -> DeliveryResult:
        msg = build_message(notification, self.receiver)
        attempts = max(1, self.receiver.max_attempts)
        code: int | None = None
        error = ""
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                await self.sleep(
                    full_jitter(attempt - 1, self.backoff_initial, self.backoff_max, self.rng)
                )
            try:
                refused = await asyncio.to_thread(_deliver, msg, self.receiver)
            except Exception as exc:  # every failure becomes a DeliveryResult
                transient, code, error = classify(exc)
                if not transient:
                    return DeliveryResult(
                        ok=False,
                        attempts=attempt,
                        permanent=True,
                        status=code,
                        error=excerpt(error),
                    )
                continue
            # Some recipients refused, others accepted: a retry would mail the others twice.
            note = "; ".join(f"{a}: {c}" for a, (c, _) in refused.items()) if refused else None
            return DeliveryResult(
                ok=True, attempts=attempt, status=250, error=f"refused {note}" if note else None
            )
        return DeliveryResult(
            ok=False,
            attempts=attempts,
            permanent=True,
            status=code,
            error=excerpt(f"gave up after {attempts} attempts; last: {error}"),
        )

    async def close(self) -> None:
        """Nothing held between messages."""
