"""Prometheus metrics of the pipeline itself.

The registry is injected (client_python style), so each test builds a fresh one and reads
values with ``get_sample_value``; the worker passes the process-wide default. Label sets are
bounded: ``stream`` has three values and ``reason`` is the rejection category, never free text.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

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
        self.worker_up = Gauge(
            "ioc_worker_up", "1 while the worker runs its ingest agents.", registry=registry
        )
