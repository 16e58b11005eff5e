"""One frozen settings object, read once from the environment.

Nothing else in the package reads ``os.environ``: callers pass a ``Settings`` down. Every
variable has an embedded default so ``ioc demo`` works on a bare machine; the README lists them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Literal

from ioc.retention import Retention, RetentionError, parse_overrides

BrokerFlavor = Literal["kafka", "tansu"]
IngestEngine = Literal["batch", "agents"]

DEFAULT_BROKER_PORT = 19092
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ioc"
# The committed rule set, beside the package in a checkout (deploy/alert-rules).
DEFAULT_ALERT_RULES = Path(__file__).resolve().parent.parent / "deploy" / "alert-rules"


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    kafka_url: str = f"kafka://127.0.0.1:{DEFAULT_BROKER_PORT}"
    broker_flavor: BrokerFlavor = "tansu"
    embedded_broker: bool = True
    database_url: str = DEFAULT_DATABASE_URL
    partitions: int = 4
    topic_replication: int = 1
    stream_partitions: Mapping[str, int] = field(default_factory=dict)
    ingest_engine: IngestEngine = "batch"
    batch_max: int = 1000
    batch_seconds: float = 0.5
    app_id: str = "ioc-worker"
    metrics_port: int = 9464
    state_dir: Path = field(default_factory=lambda: Path.home() / ".local/state/ioc")
    max_event_ahead_seconds: int = 3600
    retention_days: int = 400
    retention_overrides: Mapping[str, int | None] = field(default_factory=dict)
    log_level: str = "info"
    kpi_enabled: bool = True
    kpi_interval_seconds: float = 15.0
    kpi_grace_seconds: int = 300
    kpi_at_risk_working_days: int = 2
    kpi_silent_probe_seconds: int = 300
    kpi_quiet_source_seconds: int = 1800
    kpi_history_days: int = 90
    extra_holidays: tuple[date, ...] = ()
    alerts_enabled: bool = True
    alert_rules: tuple[Path, ...] = field(default_factory=lambda: (DEFAULT_ALERT_RULES,))
    alert_api_port: int = 9465
    alert_link_base: str | None = None
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8480
    syslog_udp_port: int = 5514  # 0: no UDP listener
    syslog_tcp_port: int = 5514  # 0: no TCP listener
    gateway_max_body_bytes: int = 8 * 1024 * 1024
    gateway_max_items: int = 5000
    gateway_ack_timeout_seconds: float = 10.0

    def partitions_for(self, stream: str) -> int:
        return self.stream_partitions.get(stream, self.partitions)

    @property
    def retention(self) -> Retention:
        """Days kept per table (``IOC_RETENTION_DAYS``, ``IOC_KPI_HISTORY_DAYS``,
        ``IOC_RETENTION``)."""
        return Retention(self.retention_days, self.kpi_history_days, self.retention_overrides)

    @property
    def first_broker(self) -> tuple[str, int]:
        """Host and port of the first bootstrap server (the embedded broker's, by default)."""
        host, port = self.kafka_bootstrap.split(",")[0].rsplit(":", 1)
        return host, int(port)

    @property
    def kafka_bootstrap(self) -> str:
        """``host:port[,host:port]`` for plain Kafka clients (Faust wants the ``kafka://`` URL)."""
        return ",".join(u.split("://", 1)[-1] for u in self.kafka_url.split(";"))

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["database_url"] = mask_password(self.database_url)
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        kafka_url = env.get("IOC_KAFKA_URL")
        embedded_port = _int(env, "IOC_EMBEDDED_BROKER_PORT", DEFAULT_BROKER_PORT, minimum=1)
        flavor = env.get("IOC_BROKER_FLAVOR", "tansu" if kafka_url is None else "kafka")
        if flavor not in ("kafka", "tansu"):
            raise ConfigError(f"IOC_BROKER_FLAVOR must be 'kafka' or 'tansu', not {flavor!r}")
        if kafka_url and "://" not in kafka_url:
            kafka_url = "kafka://" + kafka_url
        per_stream = {
            name: _int(env, f"IOC_PARTITIONS_{name.upper()}", 0)
            for name in ("dossier", "uptime", "security")
        }
        defaults = cls()
        engine = env.get("IOC_INGEST_ENGINE", defaults.ingest_engine)
        if engine not in ("batch", "agents"):
            raise ConfigError(f"IOC_INGEST_ENGINE must be 'batch' or 'agents', not {engine!r}")
        return cls(
            kafka_url=kafka_url or f"kafka://127.0.0.1:{embedded_port}",
            broker_flavor=flavor,  # type: ignore[arg-type]
            embedded_broker=kafka_url is None,
            database_url=env.get("IOC_DATABASE_URL", DEFAULT_DATABASE_URL),
            partitions=_int(env, "IOC_PARTITIONS", defaults.partitions, minimum=1),
            topic_replication=_int(
                env, "IOC_TOPIC_REPLICATION", defaults.topic_replication, minimum=1
            ),
            stream_partitions={k: v for k, v in per_stream.items() if v > 0},
            ingest_engine=engine,  # type: ignore[arg-type]
            batch_max=_int(env, "IOC_BATCH_MAX", defaults.batch_max, minimum=1),
            batch_seconds=_float(env, "IOC_BATCH_SECONDS", defaults.batch_seconds),
            app_id=env.get("IOC_APP_ID", defaults.app_id),
            metrics_port=_int(env, "IOC_METRICS_PORT", defaults.metrics_port, minimum=0),
            state_dir=Path(env["IOC_STATE_DIR"])
            if env.get("IOC_STATE_DIR")
            else defaults.state_dir,
            max_event_ahead_seconds=_int(
                env, "IOC_MAX_EVENT_AHEAD_SECONDS", defaults.max_event_ahead_seconds, minimum=0
            ),
            retention_days=_int(env, "IOC_RETENTION_DAYS", defaults.retention_days, minimum=1),
            retention_overrides=_retention(env, "IOC_RETENTION"),
            log_level=env.get("IOC_LOG_LEVEL", defaults.log_level).lower(),
            kpi_enabled=_switch(env, "IOC_KPI", defaults.kpi_enabled),
            kpi_interval_seconds=_float(
                env, "IOC_KPI_INTERVAL_SECONDS", defaults.kpi_interval_seconds
            ),
            kpi_grace_seconds=_int(
                env, "IOC_KPI_GRACE_SECONDS", defaults.kpi_grace_seconds, minimum=0
            ),
            kpi_at_risk_working_days=_int(
                env, "IOC_KPI_AT_RISK_DAYS", defaults.kpi_at_risk_working_days, minimum=0
            ),
            kpi_silent_probe_seconds=_int(
                env, "IOC_KPI_SILENT_PROBE_SECONDS", defaults.kpi_silent_probe_seconds, minimum=1
            ),
            kpi_quiet_source_seconds=_int(
                env, "IOC_KPI_QUIET_SOURCE_SECONDS", defaults.kpi_quiet_source_seconds, minimum=1
            ),
            kpi_history_days=_int(
                env, "IOC_KPI_HISTORY_DAYS", defaults.kpi_history_days, minimum=1
            ),
            extra_holidays=_dates(env, "IOC_HOLIDAYS"),
            alerts_enabled=_switch(env, "IOC_ALERTS", defaults.alerts_enabled),
            alert_rules=tuple(Path(p) for p in env["IOC_ALERT_RULES"].split(":") if p)
            if env.get("IOC_ALERT_RULES")
            else defaults.alert_rules,
            alert_api_port=_int(env, "IOC_ALERT_API_PORT", defaults.alert_api_port, minimum=0),
            alert_link_base=env.get("IOC_ALERT_LINK_BASE") or None,
            gateway_host=env.get("IOC_GATEWAY_HOST") or defaults.gateway_host,
            gateway_port=_int(env, "IOC_GATEWAY_PORT", defaults.gateway_port, minimum=0),
            syslog_udp_port=_int(env, "IOC_SYSLOG_UDP_PORT", defaults.syslog_udp_port, minimum=0),
            syslog_tcp_port=_int(env, "IOC_SYSLOG_TCP_PORT", defaults.syslog_tcp_port, minimum=0),
            gateway_max_body_bytes=_int(
                env, "IOC_GATEWAY_MAX_BODY_BYTES", defaults.gateway_max_body_bytes, minimum=1024
            ),
            gateway_max_items=_int(
                env, "IOC_GATEWAY_MAX_ITEMS", defaults.gateway_max_items, minimum=1
            ),
            gateway_ack_timeout_seconds=_float(
                env, "IOC_GATEWAY_ACK_TIMEOUT_SECONDS", defaults.gateway_ack_timeout_seconds
            ),
        )


def mask_password(url: str) -> str:
    """Hide the password of a ``scheme://user:password@host`` URL for logs and ``repr``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _retention(env: Mapping[str, str], name: str) -> dict[str, int | None]:
    try:
        return parse_overrides(env.get(name, ""))
    except RetentionError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, not {raw!r}")


def _dates(env: Mapping[str, str], name: str) -> tuple[date, ...]:
    """Comma-separated ISO dates: a province's own days off, added to the national holidays."""
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    out = []
    for part in raw.split(","):
        try:
            out.append(date.fromisoformat(part.strip()))
        except ValueError:
            raise ConfigError(
                f"{name} must list dates as YYYY-MM-DD, got {part.strip()!r}"
            ) from None
    return tuple(sorted(set(out)))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value
