"""Alerts as Grafana annotations, so a wall display shows when each alert fired and ended.

One annotation per alert in the notification: a point when it fires (or is escalated or
acknowledged), a region from start to end when it resolves, tagged so a dashboard's annotation
query can pick them out (``ioc-alert``, the rule, the severity, the state).

grafana-client's ``GrafanaApi`` is synchronous (``niquests``), so calls run in a worker thread.
A failure is not retried here: 4xx is final, anything else is left to the caller's next round.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from ioc.alerts.model import AlertNotice, DeliveryResult, Notification
from ioc.alerts.receivers import GrafanaReceiver
from ioc.notify import excerpt

TAG = "ioc-alert"


def epoch_ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: alert times must be timezone-aware")
    return round(at.timestamp() * 1000)


def annotation_for(notice: AlertNotice, receiver: GrafanaReceiver) -> dict[str, Any]:
    """Keyword arguments of ``GrafanaApi.annotations.add_annotation`` for one alert."""
    end = notice.ends_at if notice.status == "resolved" else None
    text = notice.summary if not notice.link else f"{notice.summary}\n{notice.link}"
    return {
        "dashboard_uid": receiver.dashboard_uid,
        "time_from": epoch_ms(notice.starts_at),
        "time_to": epoch_ms(max(end, notice.starts_at)) if end else None,
        "tags": [TAG, notice.rule, notice.severity, notice.state],
        "text": text,
    }


class GrafanaSender:
    """Adds annotations to one Grafana (organisation of the token, optional dashboard)."""

    def __init__(self, receiver: GrafanaReceiver, api: GrafanaApi | None = None) -> None:
        self.receiver = receiver
        self.api = api or GrafanaApi.from_url(
            receiver.url, credential=receiver.token or None, timeout=receiver.timeout_seconds
        )

    def _add_all(self, notification: Notification) -> None:
        for notice in notification.alerts:
            self.api.annotations.add_annotation(**annotation_for(notice, self.receiver))

    async def send(self, notification: Notification) -> DeliveryResult:
        try:
            await asyncio.to_thread(self._add_all, notification)
        except GrafanaClientError as exc:  # 4xx: bad token, unknown dashboard, bad payload
            return DeliveryResult(
                ok=False,
                attempts=1,
                permanent=True,
                status=exc.status_code,
                error=excerpt(str(exc.message)),
            )
        except (GrafanaException, OSError) as exc:  # 5xx, timeout, connection (niquests: OSError)
            status = getattr(exc, "status_code", None) or None
            return DeliveryResult(
                ok=False, attempts=1, status=status, error=excerpt(f"{type(exc).__name__}: {exc}")
            )
        return DeliveryResult(ok=True, attempts=1, status=200)

    async def close(self) -> None:
        await asyncio.to_thread(self.api.client.s.close)
