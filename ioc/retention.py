"""How long each table keeps its rows: one table of facts, and the settings that change it.

Pure: the worker's hourly maintenance (:mod:`ioc.storage.maintenance`) applies what
:meth:`Retention.plan` says, ingest refuses events older than their table keeps
(:func:`ioc.storage.tables.ingest_bounds`), and ``ioc doctor`` prints the plan.

Defaults, and why:

- raw uptime and security events keep ``IOC_RETENTION_DAYS``; dossier events are kept forever
  (the yearly 766 scoring and citizens' histories need them);
- the five-minute and hourly summaries keep as long as the raw rows they summarise, so
  ``ioc kpi recompute`` can always re-derive them; the daily rollups are kept forever (a few
  thousand rows a year: availability and security trends over years cost nothing);
- ``kpi_snapshots`` keeps ``IOC_KPI_HISTORY_DAYS``;
- dead letters and the gateway's audit of refusals keep ``IOC_RETENTION_DAYS``, long enough to
  fix and replay a record or answer "why was this refused";
- alert history (alerts, their events, notifications, people's actions) is kept forever by
  default: it is evidence, and small. Only finished rows are ever deleted (a resolved alert,
  a published record, a delivered or failed notification, an applied action).

``IOC_RETENTION`` overrides any of them, e.g.
``security_events=180,gateway_audit=730,uptime_1d=forever``. A summary without an override
follows its raw table's override.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Default = Literal["stream", "forever", "kpi_history", "follows"]


@dataclass(frozen=True, slots=True)
class KeptTable:
    name: str
    column: str  # the time column retention compares
    default: Default
    follows: str | None = None  # for "follows": the raw table whose retention it takes
    #: SQL condition a row must also meet to be deleted (only finished rows go).
    finished: str | None = None


KEPT: tuple[KeptTable, ...] = (
    KeptTable("dossier_events", "event_time", "forever"),
    KeptTable("uptime_checks", "event_time", "stream"),
    KeptTable("security_events", "event_time", "stream"),
    KeptTable("uptime_5m", "bucket", "follows", "uptime_checks"),
    KeptTable("uptime_1h", "bucket", "follows", "uptime_checks"),
    KeptTable("uptime_1d", "bucket", "forever"),
    KeptTable("security_5m", "bucket", "follows", "security_events"),
    KeptTable("security_1h", "bucket", "follows", "security_events"),
    KeptTable("security_1d", "bucket", "forever"),
    KeptTable("security_targets_1h", "bucket", "follows", "security_events"),
    KeptTable("security_targets_1d", "bucket", "forever"),
    KeptTable("kpi_snapshots", "taken_at", "kpi_history"),
    KeptTable("dead_letters", "received_at", "stream"),
    KeptTable("gateway_audit", "at", "stream"),
    KeptTable("alerts", "updated_at", "forever", finished="state = 'resolved'"),
    KeptTable(
        "alert_events",
        "at",
        "forever",
        # Published, and its alert over: an open alert keeps its whole timeline.
        finished="published AND NOT EXISTS (SELECT 1 FROM alerts a"
        " WHERE a.id = alert_events.alert_id AND a.state <> 'resolved')",
    ),
    KeptTable("notifications", "created_at", "forever", finished="state <> 'pending'"),
    KeptTable("alert_actions", "requested_at", "forever", finished="status <> 'pending'"),
)
BY_NAME: dict[str, KeptTable] = {t.name: t for t in KEPT}
#: What a rebuild reads: the raw tables, and the finer summaries the rollups are re-summed
#: from (a daily row is re-summed over its whole day).
REBUILT_FROM = (
    "uptime_checks",
    "security_events",
    "uptime_5m",
    "uptime_1h",
    "security_5m",
    "security_1h",
    "security_targets_1h",
)


class RetentionError(ValueError):
    """A malformed ``IOC_RETENTION`` value; the message says which part and why."""


def parse_overrides(raw: str) -> dict[str, int | None]:
    """``table=days`` or ``table=forever``, comma-separated; unknown tables are an error (a
    typo would otherwise keep data forever, or drop it, without a word)."""
    out: dict[str, int | None] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not value:
            raise RetentionError(f"{part!r} is not table=days or table=forever")
        if name not in BY_NAME:
            known = ", ".join(sorted(BY_NAME))
            raise RetentionError(f"unknown table {name!r} (known: {known})")
        if value.lower() == "forever":
            out[name] = None
            continue
        try:
            days = int(value.removesuffix("d"))
        except ValueError:
            raise RetentionError(f"{name}: {value!r} is not a number of days") from None
        if days < 1:
            raise RetentionError(f"{name}: keep at least 1 day, not {days}")
        out[name] = days
    return out


@dataclass(frozen=True, slots=True)
class Retention:
    """Days kept per table (None: forever), from the settings."""

    stream_days: int = 400
    kpi_history_days: int = 90
    overrides: Mapping[str, int | None] = field(default_factory=dict)

    def days(self, table: str) -> int | None:
        if table in self.overrides:
            return self.overrides[table]
        kept = BY_NAME[table]
        match kept.default:
            case "stream":
                return self.stream_days
            case "kpi_history":
                return self.kpi_history_days
            case "follows":
                assert kept.follows is not None
                return self.days(kept.follows)
            case _:
                return None

    def rebuildable_from(self, now: datetime) -> datetime | None:
        """The earliest instant ``ioc kpi recompute`` may rebuild from: before it, raw rows or
        the finer summaries are gone (or the oldest day is partly gone), so a rebuild would
        replace what is kept there with sums of nothing. None: nothing it reads expires."""
        kept = [d for d in map(self.days, REBUILT_FROM) if d]
        return now - timedelta(days=min(kept) - 1) if kept else None

    def plan(self) -> list[tuple[KeptTable, int | None]]:
        """Every table with its days kept, in :data:`KEPT` order."""
        return [(t, self.days(t.name)) for t in KEPT]
