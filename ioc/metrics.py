"""Prometheus metrics of the pipeline itself.

The registry is injected (client_python style), so each test builds a fresh one and reads
values with ``get_sample_value``; the worker passes the process-wide default. Label sets are
bounded: ``stream`` has three values and ``reason`` is the rejection category, never free text.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from ioc.kpi.snapshot import KpiRow

BATCH_SIZE_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
WRITE_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.consumed = Counter(
            "ioc_events_consumed",
            "Records read from the stream's topic.",
            ["stream"],
            registry=registry,
        )
        self.stored = Counter(
            "ioc_events_stored",
            "Events newly written to the database.",
            ["stream"],
            registry=registry,
        )
        self.duplicates = Counter(
            "ioc_events_duplicate",
            "Valid events already stored (replays, redeliveries).",
            ["stream"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "ioc_events_dead_lettered",
            "Records refused and sent to the dead-letter path.",
            ["stream", "reason"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "ioc_batch_size",
            "Records per batch taken from the topic.",
            ["stream"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.write_seconds = Histogram(
            "ioc_batch_write_seconds",
            "Time to store one batch (COPY, merge, commit).",
            ["stream"],
            buckets=WRITE_SECONDS_BUCKETS,
            registry=registry,
        )
        self.write_errors = Counter(
            "ioc_database_write_errors",
            "Failed batch writes (each is retried).",
            ["stream"],
            registry=registry,
        )
        self.database_up = Gauge(
            "ioc_database_up", "1 while the last database write succeeded.", registry=registry
        )
        self.last_batch = Gauge(
            "ioc_last_batch_timestamp_seconds",
            "Unix time of the last stored batch.",
            ["stream"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "ioc_consumer_lag",
            "Records on the stream's partitions this worker owns, past its last stored batch.",
            ["stream"],
            registry=registry,
        )
        self.worker_up = Gauge(
            "ioc_worker_up", "1 while the worker runs its ingest agents.", registry=registry
        )


class KpiGauges:
    """Live KPI values as gauges, with bounded label sets.

    Agencies come from the catalogue, services and sources from what reported; each label
    domain is capped at ``max_keys`` (the rest are counted in ``ioc_kpi_series_dropped``, and
    are still in ``kpi_snapshots`` and on ``ioc.kpi.v1``). Series that disappear are removed,
    so a decommissioned service does not linger on a wall screen.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY, max_keys: int = 300) -> None:
        self.max_keys = max_keys

        def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        self.on_time = gauge(
            "ioc_kpi_dossier_on_time_ratio",
            "766 indicator 2.1: dossiers on time ÷ dossiers counted, per agency subtree.",
            ["agency", "period"],
        )
        self.overdue = gauge(
            "ioc_kpi_dossier_overdue", "Open dossiers past their due time.", ["agency"]
        )
        self.at_risk = gauge(
            "ioc_kpi_dossier_at_risk", "Open dossiers due within N working days.", ["agency"]
        )
        self.points = gauge(
            "ioc_kpi_766_points",
            "Projected 766 points this year, per indicator.",
            ["agency", "indicator"],
        )
        self.availability = gauge(
            "ioc_kpi_service_availability",
            "Checks up or degraded ÷ checks, outside maintenance.",
            ["service", "window"],
        )
        self.service_status = gauge(
            "ioc_kpi_service_status", "Last check: 1 up, 0.5 degraded, 0 down.", ["service"]
        )
        self.check_age = gauge(
            "ioc_kpi_service_check_age_seconds", "Seconds since the last check.", ["service"]
        )
        self.tls_days = gauge(
            "ioc_kpi_service_tls_days_left", "Days to TLS certificate expiry.", ["service"]
        )
        self.security_events = gauge(
            "ioc_kpi_security_events",
            "Security events per severity in the window.",
            ["severity", "window"],
        )
        self.source_silent = gauge(
            "ioc_kpi_security_source_silent_seconds",
            "Seconds since a security source last sent an event.",
            ["source"],
        )
        self.dropped = Counter(
            "ioc_kpi_series_dropped",
            "KPI series left out of the gauges by the label cap.",
            ["kind"],
            registry=registry,
        )
        self.refresh_seconds = Histogram(
            "ioc_kpi_refresh_seconds",
            "Time to compute one KPI snapshot.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.last_refresh = Gauge(
            "ioc_kpi_last_refresh_timestamp_seconds",
            "When the last KPI snapshot was taken (Unix time).",
            registry=registry,
        )
        self._set: dict[Gauge, set[tuple[str, ...]]] = {}

    def update(self, rows: Iterable[KpiRow]) -> None:
        """Set every gauge from one full snapshot; series not in it are removed."""
        seen: dict[Gauge, set[tuple[str, ...]]] = {}
        keys: dict[str, set[str]] = {}

        def put(gauge: Gauge, kind: str, key: str, labels: tuple[str, ...], value: object) -> None:
            domain = keys.setdefault(kind, set())
            if key not in domain and len(domain) >= self.max_keys:
                self.dropped.labels(kind).inc()
                return
            domain.add(key)
            if not isinstance(value, int | float) or isinstance(value, bool):
                return  # no value (an empty period) is an absent series, not a zero
            gauge.labels(*labels).set(value)
            seen.setdefault(gauge, set()).add(labels)

        for r in rows:
            v = r.values
            if r.scope == "agency":
                put(self.on_time, "agency", r.key, (r.key, r.period), v.get("on_time_ratio"))
                if r.period == "year":
                    put(self.overdue, "agency", r.key, (r.key,), v.get("overdue"))
                    put(self.at_risk, "agency", r.key, (r.key,), v.get("at_risk"))
                    for name, value in v.items():
                        if name.startswith("points_"):
                            code = name.removeprefix("points_")
                            put(self.points, "agency", r.key, (r.key, code), value)
            elif r.scope == "service" and r.period == "now":
                status = {"up": 1.0, "degraded": 0.5, "down": 0.0}.get(str(v.get("status")))
                put(self.service_status, "service", r.key, (r.key,), status)
                put(self.check_age, "service", r.key, (r.key,), v.get("last_check_age_seconds"))
                put(self.tls_days, "service", r.key, (r.key,), v.get("tls_days_left"))
            elif r.scope == "service":
                put(self.availability, "service", r.key, (r.key, r.period), v.get("availability"))
            elif r.scope == "security_severity":
                put(self.security_events, "severity", r.key, (r.key, r.period), v.get("events"))
            elif r.scope == "security_source":
                put(self.source_silent, "source", r.key, (r.key,), v.get("silent_seconds"))
        for gauge, before in self._set.items():
            for labels in before - seen.get(gauge, set()):
                gauge.remove(*labels)
        self._set = seen


LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60, 300)


class AlertMetrics:
    """Alerting: what fired, what was delivered or failed per receiver, and how fast.

    Labels are bounded: rules and receivers come from the rule files, ``kind`` is the
    receiver type, ``change`` the lifecycle change kind.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.fired = Counter(
            "ioc_alerts_fired",
            "Alerts opened (a new occurrence of a fingerprint).",
            ["rule", "severity"],
            registry=registry,
        )
        self.changes = Counter(
            "ioc_alert_changes",
            "Alert state changes recorded (also on ioc.alerts.v1).",
            ["change"],
            registry=registry,
        )
        self.open = Gauge(
            "ioc_alerts_open",
            "Open alerts (firing or acknowledged) per severity.",
            ["severity"],
            registry=registry,
        )
        self.notifications_sent = Counter(
            "ioc_notifications_sent",
            "Notifications delivered.",
            ["receiver", "kind"],
            registry=registry,
        )
        self.notifications_failed = Counter(
            "ioc_notifications_failed",
            "Notifications that failed for good (kept in the notifications table).",
            ["receiver", "kind"],
            registry=registry,
        )
        self.notification_retries = Counter(
            "ioc_notification_retries",
            "Deliveries that failed for now and are retried with backoff (receiver down).",
            ["receiver", "kind"],
            registry=registry,
        )
        self.notification_latency = Histogram(
            "ioc_notification_latency_seconds",
            "From the triggering record's Kafka timestamp (the producer's, unless the topic"
            " uses LogAppendTime) to the delivery.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "ioc_alert_events_evaluated",
            "Records the alert rules evaluated, per stream.",
            ["stream"],
            registry=registry,
        )
        self.cycle_seconds = Histogram(
            "ioc_alert_cycle_seconds",
            "One evaluation cycle: rules, lifecycle and the write of its changes.",
            buckets=WRITE_SECONDS_BUCKETS,
            registry=registry,
        )
        self.leader = Gauge(
            "ioc_alert_evaluator_leader",
            "1 while this worker evaluates the alert rules for the deployment.",
            registry=registry,
        )
        self.actions = Counter(
            "ioc_alert_actions",
            "People's actions applied or refused by the evaluator.",
            ["action", "status"],
            registry=registry,
        )
