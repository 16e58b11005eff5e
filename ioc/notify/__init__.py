"""Delivery adapters: one :class:`Sender` per receiver kind, all with the same two calls.

A sender turns a :class:`~ioc.alerts.model.Notification` into one delivery (with its own
retries) and reports a :class:`~ioc.alerts.model.DeliveryResult`; it never raises for a failed
delivery, so the caller decides what a permanent failure means (keep it, show it) without
knowing HTTP or SMTP. HTTP senders share the caller's ``aiohttp`` session: one connection pool
for the whole process, no connection set-up per alert.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, assert_never

if TYPE_CHECKING:
    import aiohttp

    from ioc.alerts.model import DeliveryResult, Notification
    from ioc.alerts.receivers import Receiver

Sleep = Callable[[float], Awaitable[None]]  # asyncio.sleep, or an instant one in unit tests

ERROR_EXCERPT = 300  # characters of a refusal kept in a DeliveryResult: enough to act on


class Sender(Protocol):
    async def send(self, notification: Notification) -> DeliveryResult: ...

    async def close(self) -> None: ...


def full_jitter(retry: int, initial: float, cap: float, rng: random.Random) -> float:
    """Delay before retry ``retry`` (1-based): uniform in [0, min(cap, initial·2^(retry-1))].

    Full jitter spreads the retries of many senders hitting the same failing receiver, instead
    of having them all come back at the same instants.
    """
    return rng.uniform(0.0, min(cap, initial * 2 ** (retry - 1)))


def excerpt(text: str, limit: int = ERROR_EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sender_for(receiver: Receiver, session: aiohttp.ClientSession) -> Sender:
    """The sender for a receiver. Imports lazily so that grafana-client (and its HTTP stack)
    is loaded only where a Grafana receiver is configured."""
    from ioc.alerts.receivers import (
        AlertmanagerReceiver,
        GrafanaReceiver,
        MailReceiver,
        WebhookReceiver,
    )

    if isinstance(receiver, AlertmanagerReceiver):
        from ioc.notify.alertmanager import AlertmanagerSender

        return AlertmanagerSender(receiver, session)
    if isinstance(receiver, WebhookReceiver):
        from ioc.notify.webhook import WebhookSender

        return WebhookSender(receiver, session)
    if isinstance(receiver, MailReceiver):
        from ioc.notify.mail import MailSender

        return MailSender(receiver)
    if isinstance(receiver, GrafanaReceiver):
        from ioc.notify.grafana import GrafanaSender

        return GrafanaSender(receiver)
    assert_never(receiver)
