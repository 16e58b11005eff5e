"""Reading a time range from the coarsest summary tier that covers each stretch of it.

A panel over a year cannot read five-minute rows (3.4M of them for 32 services), and it cannot
simply read daily rows either: the range starts and ends mid-day, and a series grouped by 30
minutes cannot use hourly rows. The SQL functions made here return, for a range, rows that sum
to exactly what the finest table holds for it: whole days from the daily tier, the whole hours
left at either end from the hourly tier, the five-minute buckets left from the finest one::

    range   |--5m--|------1h------|===========1d===========|---1h---|-5m-|
            from                                                       to

A tier is used only when its width divides ``grain_ms`` (the panel's ``$__interval_ms``; NULL
when the rows are not grouped by time), so every coarse row falls inside one group of
``$__timeGroup`` (Grafana floors on the Unix epoch, TimescaleDB's ``time_bucket`` on a
midnight: both are whole days and hours).

The functions are plain SQL, neither volatile nor strict, so PostgreSQL inlines them into the
panel's query: the bounds fold to constants at planning, each stretch is an index (or chunk)
range scan, and a filter like ``source = ANY(…)`` is pushed into every branch.

Availability leaves out the five-minute buckets under declared maintenance. Where those fall
inside a coarse row, ``uptime_in_range(…, outside_maintenance => true)`` adds the bucket's
five-minute row once more with every count negated, so sums stay exact; the buckets come from
the windows that overlap the range, as in :func:`ioc.storage.maintenance_windows.
outside_maintenance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ioc.storage.maintenance_windows import outside_maintenance
from ioc.storage.summaries import EPOCH, UPTIME_BUCKET


@dataclass(frozen=True, slots=True)
class Tier:
    table: str
    width: str  # SQL interval of fixed length ("24 hours", not "1 day", which DST could stretch)
    width_ms: int


def _interval(width: str) -> str:
    return f"interval '{width}'"


#: Helpers evaluated once at planning (constant arguments): the first bucket start at or after
#: ``t``, the first one after it, and the span a coarser tier covers inside a finer one's
#: ``[lo, hi)`` (empty, at ``lo``, when the tier is not usable or no whole bucket of it
#: fits). IMMUTABLE holds for the fixed-length widths used here; PostgreSQL marks
#: ``timestamptz ± interval`` only STABLE because a "1 day" would follow daylight saving.
HELPERS = (
    f"""
    CREATE OR REPLACE FUNCTION ioc_bucket_ceil(t timestamptz, width interval)
    RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN date_bin(width, t - interval '1 microsecond', {EPOCH}) + width
    """,
    f"""
    CREATE OR REPLACE FUNCTION ioc_bucket_after(t timestamptz, width interval)
    RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN date_bin(width, t, {EPOCH}) + width
    """,
    f"""
    CREATE OR REPLACE FUNCTION ioc_tier_from(lo timestamptz, hi timestamptz, width interval,
                                             usable boolean)
    RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN usable AND ioc_bucket_ceil(lo, width) < date_bin(width, hi, {EPOCH})
                THEN ioc_bucket_ceil(lo, width) ELSE lo END
    """,
    f"""
    CREATE OR REPLACE FUNCTION ioc_tier_to(lo timestamptz, hi timestamptz, width interval,
                                           usable boolean)
    RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN usable AND ioc_bucket_ceil(lo, width) < date_bin(width, hi, {EPOCH})
                THEN date_bin(width, hi, {EPOCH}) ELSE lo END
    """,
)


def _spans(tiers: Sequence[Tier], *, grained: bool = True) -> list[tuple[str, str]]:
    """SQL bounds ``[from, to)`` of each tier's span, finest first; each nests in the last.

    ``grained``: the function takes ``grain_ms``, and a tier is usable only if it divides it.
    """
    width = _interval(tiers[0].width)
    lo = f"ioc_bucket_ceil(range_from, {width})"
    hi = f"greatest({lo}, ioc_bucket_after(range_to, {width}))"
    spans = [(lo, hi)]
    for tier in tiers[1:]:
        usable = f"(grain_ms IS NULL OR grain_ms % {tier.width_ms} = 0)" if grained else "true"
        args = f"{lo}, {hi}, {_interval(tier.width)}, {usable}"
        lo, hi = f"ioc_tier_from({args})", f"ioc_tier_to({args})"
        spans.append((lo, hi))
    return spans


def _select(tier: Tier, columns: str, lo: str, hi: str, where: str = "") -> str:
    return f"SELECT {columns} FROM {tier.table} u WHERE u.bucket >= {lo} AND u.bucket < {hi}{where}"


def _branches(
    tiers: Sequence[Tier], columns: str, finest_where: str = "", *, grained: bool = True
) -> list[str]:
    """One range scan per stretch: the coarsest span whole, then both ends of each finer."""
    spans = _spans(tiers, grained=grained)
    out = [_select(tiers[-1], columns, *spans[-1])]
    for i in range(len(tiers) - 2, -1, -1):
        (lo, hi), (inner_lo, inner_hi) = spans[i], spans[i + 1]
        where = finest_where if i == 0 else ""
        out.append(_select(tiers[i], columns, lo, inner_lo, where))
        out.append(_select(tiers[i], columns, inner_hi, hi, where))
    return out


def _function(name: str, params: str, returns: str, branches: Sequence[str]) -> str:
    body = "\n    UNION ALL ".join(branches)
    return (
        f"CREATE OR REPLACE FUNCTION {name}({params})\n"
        f"RETURNS TABLE ({returns}) LANGUAGE sql STABLE PARALLEL SAFE\n"
        f"AS $fn$\n    {body}\n$fn$"
    )


_RANGE = "range_from timestamptz, range_to timestamptz"
_GRAIN = "grain_ms bigint DEFAULT NULL"

UPTIME_TIERS = (
    Tier("uptime_5m", UPTIME_BUCKET, 300_000),
    Tier("uptime_1h", "1 hour", 3_600_000),
    Tier("uptime_1d", "24 hours", 86_400_000),
)
SECURITY_TIERS = (
    Tier("security_5m", "5 minutes", 300_000),
    Tier("security_1h", "1 hour", 3_600_000),
    Tier("security_1d", "24 hours", 86_400_000),
)
TARGET_TIERS = (
    Tier("security_targets_1h", "1 hour", 3_600_000),
    Tier("security_targets_1d", "24 hours", 86_400_000),
)

_UPTIME_COUNTS = ("checks", "up", "degraded", "down", "latency_ms_sum", "latency_samples")


def _uptime_in_range() -> str:
    columns = "u.bucket, u.service_id, " + ", ".join(f"u.{c}" for c in _UPTIME_COUNTS)
    negated = "u.bucket, u.service_id, " + ", ".join(f"-u.{c}" for c in _UPTIME_COUNTS)
    outside = outside_maintenance("u.service_id", "u.bucket", "range_from", "range_to")
    spans = _spans(UPTIME_TIERS)
    coarse_lo, coarse_hi = spans[1]  # every coarser span nests in the hourly one
    step = _interval(UPTIME_BUCKET)
    # The (bucket, service) pairs under maintenance inside the coarse span, each once; the
    # OFFSET 0 keeps the lookup a primary-key probe per pair rather than a scan of the span.
    under_maintenance = f"""SELECT {negated}
    FROM (SELECT DISTINCT b AS bucket, s.service_id
          FROM maintenance_windows w
          JOIN uptime_services s ON w.service_id IS NULL OR s.service_id = w.service_id,
          generate_series(date_bin({step}, greatest(w.starts_at, {coarse_lo}), {EPOCH}),
                          least(w.ends_at, {coarse_hi}), {step}) AS b
          WHERE outside_maintenance AND w.starts_at < {coarse_hi} AND w.ends_at > {coarse_lo}
            AND b < w.ends_at AND b >= {coarse_lo} AND b < {coarse_hi}) m,
         LATERAL (SELECT * FROM uptime_5m u5
                  WHERE u5.bucket = m.bucket AND u5.service_id = m.service_id OFFSET 0) u"""
    return _function(
        "uptime_in_range",
        f"{_RANGE}, {_GRAIN}, outside_maintenance boolean DEFAULT false",
        "bucket timestamptz, service_id text, checks integer, up integer, degraded integer,"
        " down integer, latency_ms_sum double precision, latency_samples integer",
        [
            *_branches(UPTIME_TIERS, columns, f" AND (NOT outside_maintenance OR ({outside}))"),
            under_maintenance,
        ],
    )


def _security_in_range() -> str:
    return _function(
        "security_in_range",
        f"{_RANGE}, {_GRAIN}",
        "bucket timestamptz, source text, severity text, category text, events bigint",
        _branches(SECURITY_TIERS, "u.bucket, u.source, u.severity, u.category, u.events"),
    )


def _security_targets_in_range() -> str:
    return _function(
        "security_targets_in_range",
        _RANGE,
        "bucket timestamptz, agency_code text, asset_id text, events bigint",
        # ranked over the range, never grouped by time: no grain
        _branches(TARGET_TIERS, "u.bucket, u.agency_code, u.asset_id, u.events", grained=False),
    )


#: The statements that (re)create the readers; migrations run them, idempotently.
FUNCTIONS: tuple[str, ...] = (
    *HELPERS,
    _uptime_in_range(),
    _security_in_range(),
    _security_targets_in_range(),
)
