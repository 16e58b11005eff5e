"""Alerts to Alertmanager's v2 API, which groups, silences and routes them on its own side.

Alertmanager identifies an alert by its label set (it computes its own fingerprint from it), so
the labels are the alert's routing labels and nothing else; everything descriptive, including
our fingerprint, goes into annotations, which it replaces on every post.

A firing alert is posted with ``endsAt`` = now + ``resolve_timeout``, as Prometheus does: the
pipeline re-sends open alerts periodically, each post pushes the end further out, and if we
stop (crash, partition) the alert expires there instead of firing forever. A resolved alert is
posted with its real end, after which Alertmanager no longer lists it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec

from ioc.alerts.model import AlertNotice, DeliveryResult, Notification
from ioc.alerts.receivers import AlertmanagerReceiver
from ioc.clock import Clock, SystemClock
from ioc.notify import Sleep, excerpt

RESOLVE_TIMEOUT = timedelta(minutes=5)
ATTEMPTS = 3  # Alertmanager is local and fast: a blip is retried, an outage is the caller's
BACKOFF_SECONDS = 0.05  # then 0.1 s: short enough to stay inside the 1 s delivery budget
EVIDENCE_CHARS = 1000

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_]")


def rfc3339(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: alert times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def label_name(name: str) -> str:
    """A valid Prometheus label name. Alertmanager refuses the whole post (400) for one bad
    name, after storing the valid alerts of the batch, so a bad name is mended, not sent."""
    if _LABEL_NAME.match(name):
        return name
    mended = _NOT_NAME_CHAR.sub("_", name)
    return mended if mended[:1].isalpha() or mended[:1] == "_" else "_" + mended


def postable_alert(
    notice: AlertNotice, *, now: datetime, resolve_timeout: timedelta
) -> dict[str, Any]:
    """One element of ``postableAlerts`` (Alertmanager's openapi.yaml)."""
    annotations = {
        "summary": notice.summary,
        "state": notice.state,
        "event_count": str(notice.event_count),
        "ioc_fingerprint": notice.fingerprint,
        "ioc_alert_id": notice.id,
    }
    if notice.acknowledged_by:
        annotations["acknowledged_by"] = notice.acknowledged_by
    if notice.escalation_level:
        annotations["escalation_level"] = str(notice.escalation_level)
    if notice.value is not None:
        annotations["value"] = repr(notice.value)
    if notice.evidence:
        annotations["evidence"] = excerpt(",".join(notice.evidence), EVIDENCE_CHARS)
    if notice.status == "resolved":
        end = notice.ends_at or now
    else:
        end = max(now, notice.starts_at) + resolve_timeout
    # Alertmanager refuses an end before the start; event-time skew must not make that permanent.
    end = max(end, notice.starts_at)
    alert: dict[str, Any] = {
        "labels": {label_name(k): v for k, v in notice.labels.items()},
        "annotations": annotations,
        "startsAt": rfc3339(notice.starts_at),
        "endsAt": rfc3339(end),
    }
    if notice.link:
        alert["generatorURL"] = notice.link
    return alert


def postable_alerts(
    notification: Notification, *, now: datetime, resolve_timeout: timedelta = RESOLVE_TIMEOUT
) -> list[dict[str, Any]]:
    return [
        postable_alert(n, now=now, resolve_timeout=resolve_timeout) for n in notification.alerts
    ]


def matcher(name: str, value: str) -> str:
    """An equality matcher in Alertmanager's filter syntax, value quoted and escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"'


class AlertmanagerSender:
    """Posts notifications to one Alertmanager; also lists its alerts and asks if it is ready."""

    def __init__(
        self,
        receiver: AlertmanagerReceiver,
        session: aiohttp.ClientSession,
        *,
        resolve_timeout: timedelta = RESOLVE_TIMEOUT,
        clock: Clock | None = None,
        attempts: int = ATTEMPTS,
        backoff_seconds: float = BACKOFF_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.receiver = receiver
        self.session = session
        self.resolve_timeout = resolve_timeout
        self.clock = clock or SystemClock()
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.base = receiver.url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=receiver.timeout_seconds)

    async def send(self, notification: Notification) -> DeliveryResult:
        body = msgspec.json.encode(
            postable_alerts(
                notification, now=self.clock.now(), resolve_timeout=self.resolve_timeout
            )
        )
        status: int | None = None
        error = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                await self.sleep(self.backoff_seconds * 2 ** (attempt - 2))
            try:
                async with self.session.post(
                    f"{self.base}/api/v2/alerts",
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=self.timeout,
                ) as resp:
                    status = resp.status
                    text = await resp.text(errors="replace")
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= status < 300:
                return DeliveryResult(ok=True, attempts=attempt, status=status)
            error = excerpt(text) or f"HTTP {status}"
            if status < 500:
                return DeliveryResult(
                    ok=False, attempts=attempt, permanent=True, status=status, error=error
                )
        return DeliveryResult(ok=False, attempts=self.attempts, status=status, error=error)

    async def list_alerts(
        self,
        filters: Mapping[str, str] | None = None,
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
    ) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts whose labels equal ``filters``. Alerts that have
        ended (resolved) are never listed."""
        params: list[tuple[str, str]] = [
            ("active", str(active).lower()),
            ("silenced", str(silenced).lower()),
            ("inhibited", str(inhibited).lower()),
        ]
        params += [("filter", matcher(k, v)) for k, v in (filters or {}).items()]
        async with self.session.get(
            f"{self.base}/api/v2/alerts", params=params, timeout=self.timeout
        ) as resp:
            resp.raise_for_status()
            alerts: list[dict[str, Any]] = msgspec.json.decode(await resp.read())
        return alerts

    async def ready(self) -> bool:
        """``GET /-/ready``: True once Alertmanager has loaded its configuration."""
        try:
            async with self.session.get(f"{self.base}/-/ready", timeout=self.timeout) as resp:
                await resp.read()
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""
