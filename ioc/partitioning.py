"""Which time-range partitions a table needs: pure planning, no SQL.

Without TimescaleDB the event tables are range-partitioned on event time and the app creates
partitions ahead of the data. Boundaries fall on Asia/Ho_Chi_Minh midnights (reporting days),
so one reporting day or month never straddles two partitions. There is no DEFAULT partition on
purpose: a row outside every partition would block creating the partition it belongs to later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

REPORTING_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
Interval = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True, order=True)
class PartitionSpan:
    """One partition ``[start, end)`` of ``table``; times are aware, in the reporting zone."""

    start: datetime
    end: datetime
    table: str

    @property
    def name(self) -> str:
        return f"{self.table}_p{self.start:%Y%m%d}"


def span_containing(table: str, when: datetime, interval: Interval) -> PartitionSpan:
    """The partition of ``table`` that holds an event at ``when``."""
    if when.tzinfo is None:
        raise ValueError("partition planning needs timezone-aware times")
    local = when.astimezone(REPORTING_TZ)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        start, end = day, _add_days(day, 1)
    elif interval == "week":
        start = _add_days(day, -day.weekday())
        end = _add_days(start, 7)
    else:
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    return PartitionSpan(start, end, table)


def plan_partitions(
    table: str,
    interval: Interval,
    times: Iterable[datetime],
    *,
    existing: frozenset[str] | set[str] = frozenset(),
    now: datetime | None = None,
    ahead: int = 2,
) -> list[PartitionSpan]:
    """Partitions missing for ``times``, plus ``ahead`` future ones from ``now``; sorted."""
    wanted = {span_containing(table, t, interval) for t in times}
    if now is not None:
        span = span_containing(table, now, interval)
        wanted.add(span)
        for _ in range(ahead):
            span = span_containing(table, span.end, interval)
            wanted.add(span)
    return sorted(s for s in wanted if s.name not in existing)


def expired_partitions(
    spans: Iterable[PartitionSpan], *, now: datetime, retention: timedelta
) -> list[PartitionSpan]:
    """Partitions whose every row is older than the retention period."""
    cutoff = now - retention
    return sorted(s for s in spans if s.end <= cutoff)


def _add_days(day: datetime, days: int) -> datetime:
    # Asia/Ho_Chi_Minh has no DST, but stay correct for any zone: add in UTC wall-clock days
    # of the local calendar, then re-attach the zone.
    shifted = (day.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=day.tzinfo)
    return shifted.astimezone(UTC).astimezone(day.tzinfo)
