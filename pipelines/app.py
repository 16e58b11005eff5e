"""The Faust application: the ingest path for each stream, dead letters, the metrics endpoint.

Two ingest engines share the same :class:`~pipelines.ingest.IngestHandler` per stream:
``batch`` (default) reads the three topics with one batched consumer task inside the app
(:mod:`pipelines.batch_ingest`); ``agents`` runs one Faust agent per stream taking batches with
``take_events``. Both store each event once and acknowledge only stored batches; ``batch`` is
several times faster (``bench/ingest.py``).

This module is glue: it wires :mod:`ioc` (parsing, storage, metrics) to Faust and Kafka. The
reader should be able to follow DESIGN.md's data-flow picture from here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import faust
import msgspec
import psycopg
from prometheus_client import start_http_server

from ioc.alerts.rules import AlertConfig
from ioc.broker import faust_settings
from ioc.clock import Clock, SystemClock
from ioc.config import Settings
from ioc.deadletter import DeadLetter
from ioc.kpi.snapshot import KpiRow
from ioc.metrics import AlertMetrics, KpiGauges, PipelineMetrics
from ioc.storage.maintenance import run_maintenance
from ioc.storage.tables import ingest_bounds
from ioc.streams import ALERTS_TOPIC, DEADLETTER_TOPIC, KPI_TOPIC, STREAMS, Stream
from pipelines.alerting import AlertEvaluator
from pipelines.batch_ingest import run_batch_ingest
from pipelines.ingest import IngestHandler, run_agent_batches
from pipelines.kpi import KpiPublisher

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_SECONDS = 3600.0


def create_app(
    settings: Settings,
    metrics: PipelineMetrics | None = None,
    clock: Clock | None = None,
    alert_config: AlertConfig | None = None,
) -> faust.App:
    """The worker. ``alert_config`` (the loaded rule files) turns the alert evaluator on."""
    clock = clock or SystemClock()
    metrics = metrics or PipelineMetrics()
    app = faust.App(
        settings.app_id,
        store="memory://",
        datadir=str(settings.state_dir / "faust"),
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        **faust_settings(settings),
    )
    deadletters = app.topic(
        DEADLETTER_TOPIC, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )
    kpi_topic = app.topic(
        KPI_TOPIC, key_type=bytes, value_type=bytes, partitions=settings.partitions
    )

    async def send_dead_letters(dead: Sequence[DeadLetter]) -> None:
        futures = [await deadletters.send(key=d.key, value=d.to_message()) for d in dead]
        for fut in futures:
            await fut  # delivered (acks=all) before the batch is acknowledged

    handlers = {
        stream.topic: IngestHandler.build(
            stream,
            settings.database_url,
            send_dead_letters,
            metrics,
            clock,
            ingest_bounds(stream.table, settings),
            summaries=settings.kpi_enabled,
        )
        for stream in STREAMS
    }
    if settings.ingest_engine == "agents":
        for stream in STREAMS:
            _ingest_agent(app, settings, stream, handlers[stream.topic])
    else:

        @app.task  # type: ignore[untyped-decorator]
        async def _batch_ingest() -> None:
            await run_batch_ingest(settings, handlers)

    async def maintain_storage() -> None:
        """Partitions ahead, retention: at start-up and then hourly."""
        try:
            for change in await run_maintenance(
                settings.database_url, settings.retention, clock.now()
            ):
                log.info("maintenance: %s", change)
        except psycopg.Error as exc:  # the next run tries again; ingest is not affected
            log.warning("storage maintenance failed: %s", exc)

    if settings.kpi_enabled:

        async def send_kpi_rows(rows: Sequence[KpiRow]) -> None:
            futures = [
                await kpi_topic.send(key="/".join(r.series).encode(), value=msgspec.json.encode(r))
                for r in rows
            ]
            for fut in futures:
                await fut

        publisher = KpiPublisher(settings, KpiGauges(metrics.registry), clock, send_kpi_rows)
        app.task(publisher.run)

    if settings.alerts_enabled and alert_config is not None:
        alerts_topic = app.topic(
            ALERTS_TOPIC, key_type=bytes, value_type=bytes, partitions=settings.partitions
        )

        async def send_alert_records(records: Sequence[tuple[bytes, bytes]]) -> None:
            futures = [await alerts_topic.send(key=k, value=v) for k, v in records]
            for fut in futures:
                await fut

        evaluator = AlertEvaluator(
            settings, alert_config, AlertMetrics(metrics.registry), clock, send_alert_records
        )
        app.task(evaluator.run)

    if settings.alerts_enabled and settings.alert_api_port:

        @app.task  # type: ignore[untyped-decorator]
        async def _serve_alert_api() -> None:
            """The acknowledgement API on every worker: it only queues actions, so any
            worker may answer; the evaluator (wherever it runs) applies them."""
            from aiohttp import web

            from ioc.api.alerts import alert_api

            runner = web.AppRunner(
                alert_api(
                    settings.database_url,
                    link_base=settings.alert_link_base,
                    registry=metrics.registry,
                ),
                access_log=None,
            )
            await runner.setup()
            await web.TCPSite(runner, "0.0.0.0", settings.alert_api_port).start()
            log.info("alert API on :%d", settings.alert_api_port)

    app.task(maintain_storage)
    app.timer(MAINTENANCE_INTERVAL_SECONDS)(maintain_storage)

    @app.task  # type: ignore[untyped-decorator]
    async def _serve_metrics() -> None:
        if settings.metrics_port:
            start_http_server(settings.metrics_port, addr="0.0.0.0", registry=metrics.registry)
            log.info("metrics on :%d/metrics", settings.metrics_port)
        metrics.worker_up.set(1)

    return app


def _ingest_agent(
    app: faust.App, settings: Settings, stream: Stream, handler: IngestHandler
) -> None:
    topic = app.topic(
        stream.topic,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions_for(stream.name),
    )

    async def ingest(records: Any) -> None:
        await run_agent_batches(handler, records, settings.batch_max, settings.batch_seconds)

    app.agent(topic, name=f"ingest-{stream.name}")(ingest)
