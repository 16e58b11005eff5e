"""Where notifications go: the receivers a rule file names, as plain data.

Secrets are never written in rule files: a file names an environment variable
(``secret_env``, ``password_env``) and the loader resolves it, so a rule file can be committed
and reviewed. The senders in :mod:`ioc.notify` take these structs.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class AlertmanagerReceiver(msgspec.Struct, frozen=True, kw_only=True):
    """Alertmanager's v2 API (``POST /api/v2/alerts``); it groups and routes on its side."""

    name: str
    url: str  # base URL, e.g. http://127.0.0.1:9093
    timeout_seconds: float = 5.0
    kind: Literal["alertmanager"] = "alertmanager"


class WebhookReceiver(msgspec.Struct, frozen=True, kw_only=True):
    """A signed JSON POST (HMAC-SHA256 over ``timestamp.body``), retried with backoff."""

    name: str
    url: str
    secret: str = ""  # resolved from secret_env
    timeout_seconds: float = 5.0
    max_attempts: int = 6
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    kind: Literal["webhook"] = "webhook"

    def __repr__(self) -> str:  # never print the secret
        return f"WebhookReceiver(name={self.name!r}, url={self.url!r})"


class MailReceiver(msgspec.Struct, frozen=True, kw_only=True):
    """Mail over SMTP (STARTTLS when asked, login when a user is given)."""

    name: str
    to: tuple[str, ...]
    sender: str
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None  # resolved from password_env
    timeout_seconds: float = 10.0
    max_attempts: int = 4
    kind: Literal["mail"] = "mail"

    def __repr__(self) -> str:
        return f"MailReceiver(name={self.name!r}, to={self.to!r}, smtp={self.smtp_host})"


class GrafanaReceiver(msgspec.Struct, frozen=True, kw_only=True):
    """Grafana annotations through grafana-client, tagged with the rule and severity."""

    name: str
    url: str
    token: str = ""  # resolved from token_env
    dashboard_uid: str | None = None
    timeout_seconds: float = 5.0
    kind: Literal["grafana"] = "grafana"

    def __repr__(self) -> str:
        return f"GrafanaReceiver(name={self.name!r}, url={self.url!r})"


Receiver = AlertmanagerReceiver | WebhookReceiver | MailReceiver | GrafanaReceiver
