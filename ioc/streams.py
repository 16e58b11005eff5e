"""The three ingest streams and the dead-letter stream: names, topics and event types.

One table of facts so that the pipeline, the simulator, the storage adapter and the CLI all
agree on what a stream is called and where its events go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ioc.events import DossierEvent, SecurityEvent, UptimeEvent


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    topic: str
    event_type: type[DossierEvent] | type[UptimeEvent] | type[SecurityEvent]
    key_field: str
    table: str


DOSSIER: Final = Stream("dossier", "ioc.dossier.v1", DossierEvent, "dossier_id", "dossier_events")
UPTIME: Final = Stream("uptime", "ioc.uptime.v1", UptimeEvent, "service_id", "uptime_checks")
SECURITY: Final = Stream("security", "ioc.security.v1", SecurityEvent, "source", "security_events")

STREAMS: Final[tuple[Stream, ...]] = (DOSSIER, UPTIME, SECURITY)
BY_NAME: Final[dict[str, Stream]] = {s.name: s for s in STREAMS}
BY_EVENT_TYPE: Final[dict[type, Stream]] = {s.event_type: s for s in STREAMS}
DEADLETTER_TOPIC: Final = "ioc.deadletter.v1"
KPI_TOPIC: Final = "ioc.kpi.v1"  # KPI snapshot rows, keyed "scope/key/period"
ALERTS_TOPIC: Final = "ioc.alerts.v1"  # alert state changes, keyed by fingerprint
