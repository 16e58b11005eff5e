"""Security posture: events per severity and category, top targets, quiet sources.

Counts are kept per bucket and are additive, so the pipeline stores them in summary tables
(``security_5m``: per 5 minutes, source, severity and category; ``security_targets_1h``: per
hour, owning agency, asset and severity) and any window is a sum of buckets. A target without
an agency or asset is counted under ``""`` (shown as unknown), so totals always add up.

A source has gone quiet when nothing arrived from it for ``quiet_after``; sources silent for
longer than ``forget_after`` are taken as decommissioned and no longer reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ioc.events import SecurityEvent
from ioc.kpi.uptime import HOUR, floor_to

FIVE_MINUTES = timedelta(minutes=5)
UNKNOWN = ""

CategoryKey = tuple[datetime, str, str, str]  # (bucket, source, severity, category)
TargetKey = tuple[datetime, str, str, str]  # (hour, agency_code, asset_id, severity)


def category_counts(events: Iterable[SecurityEvent]) -> Counter[CategoryKey]:
    """Rows of ``security_5m``."""
    return Counter(
        (floor_to(e.event_time, FIVE_MINUTES), e.source, e.severity, e.category) for e in events
    )


def target_counts(events: Iterable[SecurityEvent]) -> Counter[TargetKey]:
    """Rows of ``security_targets_1h``."""
    return Counter(
        (
            floor_to(e.event_time, HOUR),
            e.agency_code or UNKNOWN,
            e.asset_id or UNKNOWN,
            e.severity,
        )
        for e in events
    )


@dataclass(frozen=True, slots=True)
class SourceActivity:
    """What is known of one source: first and last event time, and how many events."""

    first_event_at: datetime
    last_event_at: datetime
    events: int

    def __add__(self, other: SourceActivity) -> SourceActivity:
        return SourceActivity(
            min(self.first_event_at, other.first_event_at),
            max(self.last_event_at, other.last_event_at),
            self.events + other.events,
        )


def source_activity(events: Iterable[SecurityEvent]) -> dict[str, SourceActivity]:
    """Rows of ``security_sources``."""
    out: dict[str, SourceActivity] = {}
    for e in events:
        seen = SourceActivity(e.event_time, e.event_time, 1)
        out[e.source] = out[e.source] + seen if e.source in out else seen
    return out


def totals_by(
    counts: Mapping[CategoryKey, int], field: int, start: datetime, end: datetime
) -> Counter[str]:
    """Events per severity (``field`` 2) or category (``field`` 3) in buckets ``[start, end)``."""
    out: Counter[str] = Counter()
    for key, n in counts.items():
        if start <= key[0] < end:
            out[str(key[field])] += n
    return out


def top_targets(
    counts: Mapping[TargetKey, int],
    start: datetime,
    end: datetime,
    *,
    by: str,
    n: int = 10,
    min_severity: Iterable[str] | None = None,
) -> list[tuple[str, int]]:
    """The ``n`` most targeted agencies (``by="agency"``) or assets (``by="asset"``).

    Ties are broken by name so the list is stable; unknown targets are left out of the ranking.
    ``min_severity`` restricts to the given severities.
    """
    index = {"agency": 1, "asset": 2}[by]
    wanted = set(min_severity) if min_severity is not None else None
    totals: Counter[str] = Counter()
    for key, count in counts.items():
        name = str(key[index])
        if start <= key[0] < end and name != UNKNOWN and (wanted is None or key[3] in wanted):
            totals[name] += count
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


@dataclass(frozen=True, slots=True)
class QuietSource:
    source: str
    last_event_at: datetime
    silent_for: timedelta


def quiet_sources(
    activity: Mapping[str, SourceActivity],
    now: datetime,
    quiet_after: timedelta,
    forget_after: timedelta = timedelta(days=30),
) -> list[QuietSource]:
    """Sources silent for at least ``quiet_after`` (and less than ``forget_after``)."""
    out = [
        QuietSource(source, a.last_event_at, now - a.last_event_at)
        for source, a in activity.items()
        if quiet_after <= now - a.last_event_at < forget_after
    ]
    return sorted(out, key=lambda q: (-q.silent_for, q.source))
