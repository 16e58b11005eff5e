"""Wall panel queries on one simulated year: every PostgreSQL target of every dashboard, as
Grafana sends it, against the same panel computed from the raw event tables, in one run.

The database holds a year of the province simulator at the issue's sizes (≈ 200k dossiers,
30 services probed every 30 s, 20 security events a minute ≈ 10.5M), about a thousand alerts
and a weekly maintenance window. Dossier events go through the real writer (it keeps the
``dossiers`` state table); uptime checks and security events are COPYed straight into their
tables and their summaries rebuilt from them by ``ioc.storage.summaries.rebuild`` (what
``ioc kpi recompute`` runs), since the writer's in-transaction summaries would take a quarter
of an hour to replay a year; the KPIs come from one refresh of the worker's engine.

Each target runs at its dashboard's own time range (what the walls show) and over the last
year (the longest an operator picks), variables at "All": warm-up, then ``--repeat`` timed
runs, p50 and p95. A panel that reads a summary is also run as its raw-event equivalent (the
same rows, checked), so the table shows what the summaries save::

    .venv/bin/python bench/dashboards.py            # loads the year (about 10 minutes), keeps it
    .venv/bin/python bench/dashboards.py --reuse    # measures the kept database again
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ioc.config import Settings
from ioc.dashboards import render_all
from ioc.events import DossierEvent, SecurityEvent, UptimeEvent
from ioc.gc_tuning import settle_after_startup
from ioc.services.postgres import drop_database, ensure_database
from ioc.simulator import ProvinceSimulator
from ioc.storage import summaries
from ioc.storage.kpi_store import publish_snapshot, save_catalogue
from ioc.storage.maintenance import PartitionKeeper, read_storage_mode
from ioc.storage.migrations import current_mode, migrate
from ioc.storage.tables import SECURITY_EVENTS, UPTIME_CHECKS
from ioc.storage.writer import _ROW, EventWriter
from ioc.storage_types import Consumed
from ioc.streams import BY_NAME
from pipelines.kpi import live_kpis
from tests.support.grafana_sql import Range, grafana_sql, with_panel_interval
from tests.support.panels import choose, postgres_targets
from tests.support.services import SERVER_URL

TARGET_P95_MS = 200.0
DEFAULT_DB = "ioc_bench_dashboards"

# --- The same panels over the raw event tables -------------------------------------------
#
# Keyed by (dashboard uid, panel id, refId). Each gives the rows its panel gives (compared
# after sorting and rounding); panels on kpi_current, dossiers and alerts have none (the KPI
# refresh line stands for the first; the other two are the stored state itself).

_RAW_SERVICE_STATE = """
SELECT count(*) AS value FROM (
  SELECT DISTINCT ON (service_id) service_id, event_time, status
  FROM uptime_checks ORDER BY service_id, event_time DESC
) s WHERE CASE
  WHEN s.event_time < now() - make_interval(secs => $silent_seconds) THEN -1
  WHEN s.status = 'up' THEN 2
  WHEN s.status = 'degraded' THEN 1
  ELSE 0 END IN ({states})
"""
_RAW_AVAILABILITY_WHERE = """
$__timeFilter(c.event_time) AND NOT EXISTS (
  SELECT 1 FROM maintenance_windows m
  WHERE (m.service_id IS NULL OR m.service_id = c.service_id)
    AND m.starts_at < $__timeTo()::timestamptz + interval '5 minutes'
    AND m.ends_at > $__timeFrom()::timestamptz
    AND m.starts_at < date_bin('5 minutes', c.event_time, TIMESTAMPTZ '1970-01-01 00:00:00+00')
                      + interval '5 minutes'
    AND m.ends_at > date_bin('5 minutes', c.event_time, TIMESTAMPTZ '1970-01-01 00:00:00+00'))
"""
_RAW_SOURCES = """
SELECT count(*) AS value FROM (
  SELECT source, max(event_time) AS last_event_at FROM security_events GROUP BY source
) s WHERE last_event_at < now() - make_interval(secs => $quiet_seconds)
"""
_RAW_SECURITY_SUM = """
SELECT count(*)::numeric AS value FROM security_events
WHERE $__timeFilter(event_time) AND source = ANY(ARRAY[${source:sqlstring}]::text[]){extra}
"""
_RAW_SEVERITY_SERIES = """
SELECT $__timeGroupAlias(event_time, $__interval, 0), severity AS metric, count(*)::numeric AS value
FROM security_events
WHERE $__timeFilter(event_time){extra}
GROUP BY 1, 2
ORDER BY 1, 2
"""
_SOURCE_FILTER = " AND source = ANY(ARRAY[${source:sqlstring}]::text[])"
_RAW_TLS = """
SELECT service_id, tls_expires_at FROM (
  SELECT DISTINCT ON (service_id) service_id, tls_expires_at
  FROM uptime_checks WHERE tls_expires_at IS NOT NULL
  ORDER BY service_id, event_time DESC
) t
"""

RAW: dict[tuple[str, int, str], str] = {
    ("ioc-overview", 5, "A"): _RAW_SERVICE_STATE.format(states="0, -1"),
    ("ioc-overview", 11, "A"): "SELECT count(*)::numeric AS value FROM security_events"
    " WHERE $__timeFilter(event_time)",
    ("ioc-overview", 12, "A"): _RAW_SOURCES,
    ("ioc-overview", 13, "A"): _RAW_SEVERITY_SERIES.replace("{extra}", ""),
    ("ioc-overview", 14, "A"): """
        SELECT s.service_id AS service, CASE
          WHEN s.event_time < now() - make_interval(secs => $silent_seconds) THEN -1
          WHEN s.status = 'up' THEN 2 WHEN s.status = 'degraded' THEN 1 ELSE 0 END AS state
        FROM (SELECT DISTINCT ON (service_id) service_id, event_time, status
              FROM uptime_checks ORDER BY service_id, event_time DESC) s
        ORDER BY state, s.service_id""",
    ("ioc-services", 1, "A"): _RAW_SERVICE_STATE.format(states="2"),
    ("ioc-services", 2, "A"): _RAW_SERVICE_STATE.format(states="1"),
    ("ioc-services", 3, "A"): _RAW_SERVICE_STATE.format(states="0"),
    ("ioc-services", 4, "A"): _RAW_SERVICE_STATE.format(states="-1"),
    ("ioc-services", 5, "A"): f"""
        SELECT count(*) FILTER (WHERE c.status <> 'down')::numeric / nullif(count(*), 0) AS value
        FROM uptime_checks c WHERE {_RAW_AVAILABILITY_WHERE}""",
    ("ioc-services", 6, "A"): f"SELECT count(*) AS value FROM ({_RAW_TLS}) t"
    " WHERE tls_expires_at < now() + interval '30 days'",
    ("ioc-services", 7, "A"): """
        SELECT $__timeGroupAlias(event_time, $__interval), service_id AS metric,
               CASE WHEN count(*) FILTER (WHERE status = 'down') > 0 THEN 0
                    WHEN count(*) FILTER (WHERE status = 'degraded') > 0 THEN 1 ELSE 2 END
                 AS value
        FROM uptime_checks WHERE $__timeFilter(event_time)
        GROUP BY 1, 2 ORDER BY 1, 2""",
    ("ioc-services", 8, "A"): f"""
        SELECT c.service_id AS service,
               count(*) FILTER (WHERE c.status <> 'down')::numeric / nullif(count(*), 0)
                 AS availability
        FROM uptime_checks c WHERE {_RAW_AVAILABILITY_WHERE}
        GROUP BY 1 ORDER BY 2, 1 LIMIT 40""",
    ("ioc-services", 10, "A"): """
        SELECT $__timeGroupAlias(event_time, $__interval), service_id AS metric,
               avg(latency_ms) AS value
        FROM uptime_checks WHERE $__timeFilter(event_time)
        GROUP BY 1, 2 ORDER BY 1, 2""",
    ("ioc-services", 11, "A"): f"""
        SELECT service_id AS service, tls_expires_at,
               extract(epoch FROM tls_expires_at - now())::float8 / 86400 AS days_left
        FROM ({_RAW_TLS}) t ORDER BY tls_expires_at LIMIT 50""",
    ("ioc-security", 1, "A"): _RAW_SECURITY_SUM.replace("{extra}", ""),
    ("ioc-security", 2, "A"): _RAW_SECURITY_SUM.replace("{extra}", " AND severity = 'critical'"),
    ("ioc-security", 3, "A"): _RAW_SECURITY_SUM.replace("{extra}", " AND severity = 'high'"),
    ("ioc-security", 6, "A"): _RAW_SOURCES,
    ("ioc-security", 7, "A"): _RAW_SEVERITY_SERIES.replace("{extra}", _SOURCE_FILTER),
    ("ioc-security", 8, "A"): """
        SELECT category, count(*)::numeric AS events FROM security_events
        WHERE $__timeFilter(event_time) AND source = ANY(ARRAY[${source:sqlstring}]::text[])
        GROUP BY 1 ORDER BY 2 DESC""",
    ("ioc-security", 9, "A"): """
        SELECT asset_id AS asset, count(*)::numeric AS events FROM security_events
        WHERE $__timeFilter(event_time) AND asset_id <> ''
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10""",
    ("ioc-security", 10, "A"): """
        SELECT coalesce(a.name, e.agency_code) AS agency, count(*)::numeric AS events
        FROM security_events e LEFT JOIN agencies a ON a.code = e.agency_code
        WHERE $__timeFilter(e.event_time) AND e.agency_code <> ''
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10""",
    ("ioc-security", 11, "A"): """
        SELECT source, max(event_time) AS last_event_at,
               extract(epoch FROM now() - max(event_time))::float8 AS silent_seconds
        FROM security_events GROUP BY source ORDER BY 2 LIMIT 100""",
}

# Columns compared where the later ones are read off now() (which moves between the two
# runs); every other raw query must give exactly its panel's rows.
COMPARED_COLUMNS = {
    ("ioc-services", 11, "A"): 2,  # days_left
    ("ioc-security", 11, "A"): 2,  # silent_seconds
}


# --- Loading one simulated year -----------------------------------------------------------


@dataclass
class Loaded:
    start: datetime
    end: datetime
    counts: dict[str, int]
    seconds: dict[str, float]


async def _copy_rows(
    conn: psycopg.AsyncConnection,
    table: str,
    columns: Sequence[str],
    rows: Iterator[tuple[Any, ...]],
) -> int:
    n = 0
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    async with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)
            n += 1
    return n


async def load_year(url: str, days: int, dossiers_per_day: float) -> Loaded:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    sim = ProvinceSimulator(seed=2026, start=start, dossiers_per_day=dossiers_per_day)
    counts = {"dossier_events": 0, "uptime_checks": 0, "security_events": 0}
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    conn = await psycopg.AsyncConnection.connect(url)
    await conn.execute("SET synchronous_commit = off")
    await save_catalogue(conn, sim.tree, sim.procedures)
    await conn.commit()
    plain = await read_storage_mode(conn) == "plain"
    keepers = {t.name: PartitionKeeper(t) for t in (UPTIME_CHECKS, SECURITY_EVENTS)}
    dossiers = EventWriter(url, BY_NAME["dossier"], lambda: datetime.now(UTC))
    offset = 0
    day = start
    while day < end:
        day = min(day + timedelta(days=1), end)
        events = sim.advance(day)
        by_type: dict[type, list[Any]] = {DossierEvent: [], UptimeEvent: [], SecurityEvent: []}
        for e in events:
            by_type[type(e)].append(e)
        for table, kind in ((UPTIME_CHECKS, UptimeEvent), (SECURITY_EVENTS, SecurityEvent)):
            items = by_type[kind]
            if not items:
                continue
            if plain:
                times = [items[0].event_time, items[-1].event_time]
                await keepers[table.name].ensure_for_batch(conn, times, end)
            row = _ROW[table.name]
            counts[table.name] += await _copy_rows(
                conn, table.name, table.columns, (row(e, 0, i) for i, e in enumerate(items))
            )
            await conn.commit()
        items = by_type[DossierEvent]
        for i in range(0, len(items), 5000):
            batch = items[i : i + 5000]
            await dossiers.write([Consumed(e, 0, offset + j) for j, e in enumerate(batch)])
            offset += len(batch)
        counts["dossier_events"] += len(items)
        if (day - start).days % 30 == 0:
            print(f"  loaded to {day:%Y-%m-%d} ({time.perf_counter() - t0:.0f} s)", flush=True)
    await dossiers.close()
    seconds["events"] = time.perf_counter() - t0

    t = time.perf_counter()
    await conn.set_autocommit(True)
    written = await summaries.rebuild(conn, start, end)
    seconds["summaries"] = time.perf_counter() - t
    print(f"  summaries rebuilt: {written}", flush=True)
    await _alerts_and_maintenance(conn, start, end)
    t = time.perf_counter()
    await conn.execute("VACUUM ANALYZE")  # what autovacuum would have done over a year
    seconds["vacuum"] = time.perf_counter() - t
    await conn.execute("CREATE TABLE bench_loaded (start_at timestamptz, end_at timestamptz)")
    await conn.execute("INSERT INTO bench_loaded VALUES (%s, %s)", (start, end))
    await conn.close()
    return Loaded(start, end, counts, seconds)


async def _alerts_and_maintenance(
    conn: psycopg.AsyncConnection, start: datetime, end: datetime
) -> None:
    """About three alerts a day over the year, all resolved but the last dozen; a two-hour
    maintenance window every Sunday night for everything and one a month per service."""
    await conn.execute(
        """
        INSERT INTO alerts (id, fingerprint, rule, state, severity, summary, labels, starts_at,
                            ends_at, fired_at, updated_at, acknowledged_by, acknowledged_at,
                            event_count, doc)
        SELECT gen_random_uuid(), 'bench-' || i, r.rule,
               CASE WHEN i > n - 12 THEN (ARRAY['firing', 'acknowledged'])[1 + i %% 2]
                    ELSE 'resolved' END,
               (ARRAY['critical', 'high', 'medium', 'low'])[1 + i %% 4],
               r.rule || ' #' || i, r.labels, t, CASE WHEN i > n - 12 THEN NULL
               ELSE t + interval '40 minutes' END, t, t,
               CASE WHEN i %% 3 = 0 THEN 'an.nv' END, CASE WHEN i %% 3 = 0 THEN t END,
               1 + i %% 50, '{}'
        FROM (SELECT array_agg(service_id ORDER BY service_id) AS svc FROM uptime_services) s,
             (SELECT i, n, %(start)s + (%(end)s - %(start)s) * i / n AS t
              FROM (SELECT %(n)s::int AS n) c, generate_series(1, %(n)s) i) g,
        LATERAL (SELECT CASE WHEN i %% 2 = 0 THEN 'security-critical' ELSE 'service-down' END
                          AS rule,
                        CASE WHEN i %% 2 = 0
                          THEN jsonb_build_object('team', 'security', 'source', 'soc')
                          ELSE jsonb_build_object('team', 'operations',
                                                  'service_id', 'svc-' || i %% 30) END
                          AS labels) r
        """,
        {"start": start, "end": end, "n": (end - start).days * 3},
    )
    await conn.execute(
        """
        INSERT INTO maintenance_windows (service_id, starts_at, ends_at, author)
        SELECT NULL, w, w + interval '2 hours', 'bench'
        FROM generate_series(%(start)s::timestamptz, %(end)s, interval '7 days') w
        UNION ALL
        SELECT s.service_id, w + interval '3 days', w + interval '3 days 1 hour', 'bench'
        FROM uptime_services s,
             generate_series(%(start)s::timestamptz, %(end)s, interval '30 days') w
        """,
        {"start": start, "end": end},
    )


async def refresh_kpis(url: str, now: datetime) -> float:
    """One cold refresh of the worker's KPI engine: what every kpi_current panel saves."""
    settings = Settings.from_env({"IOC_DATABASE_URL": url})
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        t = time.perf_counter()
        rows = await live_kpis(settings, as_of=True).refresh(conn, now)
        took = time.perf_counter() - t
        await publish_snapshot(conn, rows, rows)
    return took


# --- Measuring ----------------------------------------------------------------------------


@dataclass
class Timing:
    p50: float
    p95: float
    runs: int
    rows: list[tuple[Any, ...]]


def _p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest rank


def _run_ms(conn: psycopg.Connection, statement: str) -> tuple[float, list[tuple[Any, ...]]]:
    t = time.perf_counter()
    rows = conn.execute(statement.encode()).fetchall()
    return (time.perf_counter() - t) * 1000, rows


def time_query(conn: psycopg.Connection, statement: str, repeat: int) -> Timing:
    """Warm-up, then ``repeat`` runs (three when one takes over a second, and when the
    warm-up took over ten, it is the one sample: a raw scan of a year is I/O either way)."""
    warm_up, rows = _run_ms(conn, statement)
    if warm_up > 10_000:
        return Timing(warm_up, warm_up, 1, rows)
    samples = [_run_ms(conn, statement)[0]]
    runs = 3 if samples[0] > 1000 else repeat
    samples += [_run_ms(conn, statement)[0] for _ in range(runs - 1)]
    return Timing(statistics.median(samples), _p95(samples), len(samples), rows)


def _same(a: Sequence[tuple[Any, ...]], b: Sequence[tuple[Any, ...]], columns: int | None) -> bool:
    """The same rows in any order, numbers equal to 1e-9 relative: a mean of the same samples
    summed in another order (daily sums against the raw rows) differs in the 15th digit."""

    def number(v: Any) -> bool:
        return isinstance(v, Decimal | float) and not isinstance(v, bool)

    def key(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple((0, round(float(v), 6)) if number(v) else (1, repr(v)) for v in r[:columns])

    if len(a) != len(b):
        return False
    for x, y in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        for u, v in zip(x[:columns], y[:columns], strict=True):
            if number(u) and number(v):
                if not math.isclose(float(u), float(v), rel_tol=1e-9, abs_tol=1e-12):
                    return False
            elif u != v:
                return False
    return True


def _reads(sql_text: str) -> str:
    for table in (
        "kpi_current",
        "uptime_services",
        "uptime_in_range",
        "security_in_range",
        "security_targets_in_range",
        "security_sources",
        "dossiers",
        "alerts",
    ):
        if f"FROM {table}" in sql_text or f"JOIN {table}" in sql_text:
            return table
    return "?"


def measure(
    url: str,
    end: datetime,
    ranges: Sequence[str],
    repeat: int,
    raw_for: str,
    out: Callable[[str], None],
) -> list[tuple[str, str, float]]:
    """Print one table per range; return (range, panel, p95) for every target."""
    results: list[tuple[str, str, float]] = []
    dashboards = render_all()["vi"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '120s'")
        timescale = current_mode(conn) == "timescale"
        for range_name in ranges:
            title = "each dashboard's own" if range_name == "dashboard" else f"last {range_name}"
            out(f"\n### Range: {title}\n")
            out("| panel | reads | p50 ms | p95 ms | raw p50 | raw p95 | raw/panel | same rows |")
            out("|---|---|---:|---:|---:|---:|---:|---|")
            for dashboard in dashboards:
                own = dashboard["time"]["from"]
                hours = _hours(own if range_name == "dashboard" else f"now-{range_name}")
                when = Range(end - timedelta(hours=hours), end)
                variables = choose(conn, dashboard, "all", when)
                for panel, target in postgres_targets(dashboard):
                    key = (dashboard["uid"], panel["id"], target["refId"])
                    ranged = with_panel_interval(when, panel)
                    statement = grafana_sql(
                        target["rawSql"], variables, ranged, timescale=timescale
                    )
                    mine = time_query(conn, statement, repeat)
                    name = f"{dashboard['uid'].removeprefix('ioc-')} · {panel['title']}"
                    if len(panel["targets"]) > 1:
                        name += f" ({target['refId']})"
                    results.append((range_name, name, mine.p95))
                    raw_cells = "| – | – | – | –"
                    reads = _reads(target["rawSql"])
                    if key in RAW and (raw_for == "all" or reads.endswith("_in_range")):
                        raw_sql = grafana_sql(RAW[key], variables, ranged, timescale=timescale)
                        try:
                            raw = time_query(conn, raw_sql, repeat)
                        except psycopg.errors.QueryCanceled:
                            raw_cells = "| > 120 s | > 120 s | – | not compared"
                        else:
                            columns = COMPARED_COLUMNS.get(key)
                            same = "yes" if _same(raw.rows, mine.rows, columns) else "**no**"
                            raw_cells = (
                                f"| {raw.p50:.1f} | {raw.p95:.1f} "
                                f"| {raw.p50 / max(mine.p50, 0.001):.0f}× | {same}"
                            )
                    flag = " ⚠" if mine.p95 >= TARGET_P95_MS else ""
                    out(f"| {name} | {reads} | {mine.p50:.1f} | {mine.p95:.1f}{flag} {raw_cells} |")
    return results


def _hours(grafana_from: str) -> float:
    """``now-24h`` / ``now-30d`` / ``now-1y`` in hours."""
    amount = grafana_from.removeprefix("now-")
    unit = {"h": 1, "d": 24, "y": 365 * 24}[amount[-1]]
    return float(amount[:-1]) * unit


SIZED = (
    "dossier_events",
    "dossiers",
    "uptime_checks",
    "uptime_5m",
    "uptime_1h",
    "uptime_1d",
    "uptime_services",
    "security_events",
    "security_5m",
    "security_1h",
    "security_1d",
    "security_targets_1h",
    "security_targets_1d",
    "security_sources",
    "kpi_current",
    "alerts",
    "maintenance_windows",
)


def sizes(url: str) -> list[tuple[str, int, str]]:
    """Rows and on-disk size (partitions and indexes included) of each table panels touch."""
    out = []
    with psycopg.connect(url) as conn:
        for table in SIZED:
            row = conn.execute(
                f"SELECT (SELECT count(*) FROM {table}), pg_size_pretty("
                " (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
                "  WHERE inhparent = %s::regclass) + pg_total_relation_size(%s::regclass))",
                (table, table),
            ).fetchone()
            assert row is not None
            out.append((table, row[0], row[1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default=DEFAULT_DB, help="database name on the server")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--dossiers-per-day", type=float, default=550.0)
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per query")
    parser.add_argument("--reuse", action="store_true", help="measure the kept database")
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards")
    parser.add_argument(
        "--raw",
        choices=["all", "rollups", "none"],
        default="all",
        help="which panels also run over the raw events: all, those reading the summaries"
        " through the *_in_range functions, or none",
    )
    parser.add_argument(
        "--ranges",
        default="dashboard,30d,1y",
        help="time ranges: 'dashboard' (each one's own) and/or Grafana spans such as 7d, 1y",
    )
    args = parser.parse_args()
    settle_after_startup()
    url = make_conninfo(SERVER_URL, dbname=args.database)

    loaded_end = _loaded_end(url) if args.reuse else None
    if loaded_end is None:
        if _exists(url):
            drop_database(url)
        ensure_database(url)
        migrate(url)
        print(f"Loading {args.days} simulated days into {args.database} …", flush=True)
        loaded = asyncio.run(load_year(url, args.days, args.dossiers_per_day))
        print(
            f"Loaded {loaded.counts} in {loaded.seconds['events']:.0f} s; summaries "
            f"{loaded.seconds['summaries']:.0f} s; VACUUM ANALYZE {loaded.seconds['vacuum']:.0f} s"
        )
        loaded_end = loaded.end
    kpi_seconds = asyncio.run(refresh_kpis(url, loaded_end))
    print("\n| table | rows | size |\n|---|---:|---:|")
    for table, rows, size in sizes(url):
        print(f"| {table} | {rows:,} | {size} |")
    print(
        f"\nOne cold KPI refresh (the worker's engine over the year's dossiers, uptime and "
        f"security summaries; what each kpi_current panel reads precomputed): "
        f"{kpi_seconds * 1000:.0f} ms"
    )
    ranges = args.ranges.split(",")
    results = measure(url, loaded_end, ranges, args.repeat, args.raw, print)
    for range_name in ranges:
        over = [(n, p) for r, n, p in results if r == range_name and p >= TARGET_P95_MS]
        worst = max((p for r, _, p in results if r == range_name), default=0.0)
        print(
            f"\n{range_name}: {len([r for r in results if r[0] == range_name])} targets, "
            f"worst p95 {worst:.1f} ms; over {TARGET_P95_MS:.0f} ms: "
            + (", ".join(f"{n} ({p:.0f} ms)" for n, p in over) or "none")
        )
    if args.drop:
        drop_database(url)


def _exists(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _loaded_end(url: str) -> datetime | None:
    if not _exists(url):
        return None
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute("SELECT end_at FROM bench_loaded").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return row[0] if row else None


if __name__ == "__main__":
    main()
