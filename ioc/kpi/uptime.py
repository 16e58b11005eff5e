"""Service availability, incidents, recovery time and probe freshness, from probe results.

Availability is counted in checks, not seconds: ``(up + degraded) ÷ checks`` over the checks
outside declared maintenance. A degraded service still answers, so it counts as available (the
degraded share is reported beside it). Checks are summed per five-minute bucket
(:data:`BUCKET`); the buckets are additive (:class:`CheckCounts`), so the pipeline keeps them in
a summary table and any window is a sum of buckets.

Why five minutes, not one: probes check every 30-60 s, so a minute table is half as many rows as
the checks themselves and keeping it cost ingest more than the 30 % budget (bench/README.md);
five-minute buckets hold ten checks and a 30-day window is 8,640 of them per service.

Maintenance is applied at bucket resolution: a five-minute bucket touched by a declared window
for the service (or for every service) is left out of availability entirely, and its checks out
of the incidents, in the live values and in a recomputation alike; a window declared after the
fact applies at once. Windows declared on five-minute boundaries (the usual 22:00-23:30) lose
nothing.

An incident is a run of ``down`` checks in event-time order: it starts at the first ``down``
check and ends (recovers) at the next check that is not ``down``. Checks inside maintenance are
skipped. Mean time to recover averages the incidents that recovered inside the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from ioc.events import UptimeEvent

BUCKET = timedelta(minutes=5)  # of the ``uptime_5m`` summary; keep in step with its SQL
HOUR = timedelta(hours=1)
WINDOWS: dict[str, timedelta] = {"1h": HOUR, "24h": timedelta(days=1), "30d": timedelta(days=30)}


def floor_to(t: datetime, step: timedelta) -> datetime:
    """The start of ``t``'s bucket of length ``step`` (aligned on the Unix epoch, in UTC).

    Minute, 5-minute and hour buckets line up with Vietnamese clock boundaries too (UTC+7).
    """
    seconds = int(step.total_seconds())
    ts = int(t.timestamp())
    return datetime.fromtimestamp(ts - ts % seconds, UTC)


@dataclass(frozen=True, slots=True)
class CheckCounts:
    """Additive counts of probe results for one service over one bucket (or any sum of them)."""

    checks: int = 0
    up: int = 0
    degraded: int = 0
    down: int = 0
    latency_ms_sum: float = 0.0
    latency_samples: int = 0

    def __add__(self, other: CheckCounts) -> CheckCounts:
        return CheckCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def of(cls, event: UptimeEvent) -> CheckCounts:
        latency = event.latency_ms
        return cls(
            checks=1,
            up=int(event.status == "up"),
            degraded=int(event.status == "degraded"),
            down=int(event.status == "down"),
            latency_ms_sum=latency or 0.0,
            latency_samples=int(latency is not None),
        )

    @property
    def availability(self) -> float | None:
        return (self.up + self.degraded) / self.checks if self.checks else None

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_ms_sum / self.latency_samples if self.latency_samples else None


EMPTY = CheckCounts()


def bucket_counts(events: Iterable[UptimeEvent]) -> dict[tuple[str, datetime], CheckCounts]:
    """Per (service, five-minute bucket) counts: the rows of the ``uptime_5m`` summary."""
    out: dict[tuple[str, datetime], CheckCounts] = {}
    for e in events:
        key = (e.service_id, floor_to(e.event_time, BUCKET))
        out[key] = out.get(key, EMPTY) + CheckCounts.of(e)
    return out


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Declared maintenance: ``[start, end)``, for one service or (``service_id`` None) all."""

    start: datetime
    end: datetime
    service_id: str | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("maintenance windows need timezone-aware bounds")
        if self.end <= self.start:
            raise ValueError("a maintenance window must end after it starts")

    def applies_to(self, service_id: str) -> bool:
        return self.service_id is None or self.service_id == service_id

    def touches(self, service_id: str, bucket: datetime, length: timedelta = BUCKET) -> bool:
        return self.applies_to(service_id) and self.start < bucket + length and bucket < self.end


def in_maintenance(service_id: str, t: datetime, windows: Sequence[MaintenanceWindow]) -> bool:
    """Whether the bucket of ``t`` is excluded for ``service_id``."""
    bucket = floor_to(t, BUCKET)
    return any(w.touches(service_id, bucket) for w in windows)


def window_bounds(now: datetime, length: timedelta) -> tuple[datetime, datetime]:
    """The buckets of a rolling window: starts in ``[start, end)``.

    The window ends with the current (partial) bucket, so a check is counted as soon as it is
    stored, and spans ``length`` of whole buckets.
    """
    end = floor_to(now, BUCKET) + BUCKET
    return end - length, end


def availability(
    service_id: str,
    buckets: Mapping[datetime, CheckCounts],
    start: datetime,
    end: datetime,
    windows: Sequence[MaintenanceWindow] = (),
) -> CheckCounts:
    """Counts of the buckets in ``[start, end)`` outside maintenance, for one service."""
    mine = [w for w in windows if w.applies_to(service_id)]
    total = EMPTY
    for bucket, counts in buckets.items():
        if start <= bucket < end and not any(w.touches(service_id, bucket) for w in mine):
            total = total + counts
    return total


@dataclass(frozen=True, slots=True)
class Incident:
    service_id: str
    started_at: datetime
    recovered_at: datetime | None  # None: still down

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.started_at < end and (self.recovered_at is None or self.recovered_at > start)

    @property
    def time_to_recover(self) -> timedelta | None:
        return self.recovered_at - self.started_at if self.recovered_at else None


Check = tuple[datetime, str]  # (event_time, status)


@dataclass(frozen=True, slots=True)
class RunState:
    """Where a service's check sequence stands: the open incident's start, if any."""

    down_since: datetime | None = None


def scan_incidents(
    service_id: str, checks: Iterable[Check], state: RunState = RunState()
) -> tuple[list[Incident], RunState]:
    """Closed incidents in time-ordered ``checks`` continuing from ``state``, and the new state.

    Equal timestamps are ordered by status name so that the answer does not depend on arrival
    order (``degraded`` < ``down`` < ``up``).
    """
    closed: list[Incident] = []
    down_since = state.down_since
    for t, status in sorted(checks):
        if status == "down":
            if down_since is None:
                down_since = t
        elif down_since is not None:
            closed.append(Incident(service_id, down_since, t))
            down_since = None
    return closed, RunState(down_since)


def incidents(
    checks_by_service: Mapping[str, Iterable[Check]],
    windows: Sequence[MaintenanceWindow] = (),
) -> list[Incident]:
    """Every incident, closed or still open, of each service's checks (maintenance skipped)."""
    out: list[Incident] = []
    for service_id, checks in checks_by_service.items():
        kept = [(t, s) for t, s in checks if not in_maintenance(service_id, t, windows)]
        closed, state = scan_incidents(service_id, kept)
        out += closed
        if state.down_since is not None:
            out.append(Incident(service_id, state.down_since, None))
    return out


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    incidents: int  # overlapping the window, open ones included
    recovered: int  # recovered inside the window
    mean_time_to_recover: timedelta | None

    @classmethod
    def of(cls, found: Iterable[Incident], start: datetime, end: datetime) -> IncidentSummary:
        overlapping = [i for i in found if i.overlaps(start, end)]
        durations = [
            i.time_to_recover
            for i in overlapping
            if i.recovered_at is not None and start <= i.recovered_at < end and i.time_to_recover
        ]
        mean = sum(durations, timedelta(0)) / len(durations) if durations else None
        return cls(len(overlapping), len(durations), mean)


class IncidentTracker:
    """Incidents of every service, kept up to date from checks as they are stored.

    Each service's checks come from one partition, mostly in order, but services progress
    independently (a partition catching up after an outage is hours behind the others). So
    each service has its own *settled* point, ``grace`` behind its newest check: incidents
    and the run state before it are final, the checks after it (the tail) are re-scanned on
    every read. A check older than its service's settled point when it arrives is not applied
    here (it is stored, and a recomputation from storage counts it); :meth:`update` reports how
    many it set aside. Feeding the same check twice is harmless.
    """

    def __init__(self, grace: timedelta, keep: timedelta = WINDOWS["30d"]) -> None:
        self.grace = grace
        self.keep = keep
        self.settled_until: dict[str, datetime] = {}
        self._settled: dict[str, list[Incident]] = {}
        self._state: dict[str, RunState] = {}
        self._tail: dict[str, set[Check]] = {}

    def update(self, checks: Iterable[tuple[str, datetime, str]]) -> int:
        """Add checks ``(service_id, event_time, status)`` (maintenance already removed);
        returns how many were older than their service's settled point and set aside."""
        late = 0
        touched: set[str] = set()
        for service_id, t, status in checks:
            settled = self.settled_until.get(service_id)
            if settled is not None and t < settled:
                late += 1
                continue
            self._tail.setdefault(service_id, set()).add((t, status))
            touched.add(service_id)
        for service_id in touched:
            self._settle(service_id)
        return late

    def _settle(self, service_id: str) -> None:
        tail = self._tail[service_id]
        until = max(tail)[0] - self.grace
        final = sorted(c for c in tail if c[0] < until)
        if final:
            closed, state = scan_incidents(
                service_id, final, self._state.get(service_id, RunState())
            )
            horizon = until - self.keep
            kept = [
                i
                for i in [*self._settled.get(service_id, []), *closed]
                if i.recovered_at is None or i.recovered_at >= horizon
            ]
            self._settled[service_id] = kept
            self._state[service_id] = state
            self._tail[service_id] = {c for c in tail if c[0] >= until}
        previous = self.settled_until.get(service_id)
        if previous is None or until > previous:
            self.settled_until[service_id] = until

    def incidents(self) -> list[Incident]:
        """Every incident known now: settled ones plus those of each unsettled tail."""
        out: list[Incident] = []
        for service_id in self._settled.keys() | self._tail.keys():
            out += self._settled.get(service_id, [])
            closed, state = scan_incidents(
                service_id, self._tail.get(service_id, ()), self._state.get(service_id, RunState())
            )
            out += closed
            if state.down_since is not None:
                out.append(Incident(service_id, state.down_since, None))
        return sorted(out, key=lambda i: (i.service_id, i.started_at))


def days_until(expires_at: datetime | None, now: datetime) -> float | None:
    """Days left on a TLS certificate (negative once expired), or None when unknown."""
    if expires_at is None:
        return None
    return (expires_at - now).total_seconds() / 86400
