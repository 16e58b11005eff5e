"""The event tables: their columns (in COPY order) and time partitioning (retention:
:mod:`ioc.retention`).

One description per table drives the migrations (both the TimescaleDB and plain-PostgreSQL
variants), the partition maintenance and the batch writer, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ioc.config import Settings
from ioc.partitioning import Interval
from ioc.validation import TimeBounds


@dataclass(frozen=True, slots=True)
class EventTable:
    name: str
    columns: tuple[str, ...]  # written by COPY, in this order
    interval: Interval
    segment_by: str  # TimescaleDB compression segment column
    compress_after_days: int


DOSSIER_EVENTS = EventTable(
    name="dossier_events",
    columns=(
        "event_id",
        "event_time",
        "dossier_id",
        "status",
        "procedure_code",
        "agency_code",
        "channel",
        "received_at",
        "due_at",
        "online_level",
        "fee_required",
        "fee_amount",
        "paid_online",
        "e_result",
        "e_result_required",
        "rating",
        "source",
        "kafka_partition",
        "kafka_offset",
    ),
    interval="month",
    segment_by="agency_code",
    compress_after_days=90,
)

UPTIME_CHECKS = EventTable(
    name="uptime_checks",
    columns=(
        "event_id",
        "event_time",
        "service_id",
        "status",
        "kind",
        "probe_id",
        "latency_ms",
        "http_status",
        "tls_expires_at",
        "error",
        "kafka_partition",
        "kafka_offset",
    ),
    interval="week",
    segment_by="service_id",
    compress_after_days=7,
)

SECURITY_EVENTS = EventTable(
    name="security_events",
    columns=(
        "event_id",
        "event_time",
        "source",
        "severity",
        "severity_rank",
        "category",
        "source_severity",
        "src_ip",
        "dst_ip",
        "asset_id",
        "agency_code",
        "rule_id",
        "message",
        "raw",
        "kafka_partition",
        "kafka_offset",
    ),
    interval="day",
    segment_by="source",
    compress_after_days=7,
)

EVENT_TABLES: dict[str, EventTable] = {
    t.name: t for t in (DOSSIER_EVENTS, UPTIME_CHECKS, SECURITY_EVENTS)
}


# The storage mode recorded by the first migration (see ioc.storage.migrations).
MODE_QUERY = "SELECT mode FROM ioc_schema_migrations ORDER BY version LIMIT 1"


def ingest_bounds(table_name: str, settings: Settings) -> TimeBounds:
    """The event times a stream accepts: what the worker checks and the gateway checks too,
    so an event the gateway accepted is never refused downstream."""
    return TimeBounds.for_retention(
        settings.retention.days(table_name),
        timedelta(seconds=settings.max_event_ahead_seconds),
    )


DEAD_LETTER_COLUMNS = (
    "source_topic",
    "kafka_partition",
    "kafka_offset",
    "kafka_key",
    "payload_digest",
    "reason",
    "payload",
    "received_at",
)
