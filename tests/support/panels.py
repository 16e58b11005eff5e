"""Run dashboard panels as Grafana would: every PostgreSQL target with its variables chosen
like an operator does (one value, several, "All"), its macros expanded, against a database,
through the read-only login Grafana uses; and the shape checks each panel type needs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from tests.support.grafana_sql import Range, Variable, grafana_sql

NUMERIC = {"int2", "int4", "int8", "float4", "float8", "numeric"}
TEMPORAL = {"timestamptz", "timestamp", "date"}
TEXT = {"text", "varchar", "bpchar", "name"}
MODES = ("single", "multi", "all")


@dataclass
class Result:
    columns: list[tuple[str, str]]  # (name, PostgreSQL type name)
    rows: list[tuple[Any, ...]]

    def kinds(self, wanted: set[str]) -> list[str]:
        return [n for n, t in self.columns if t in wanted]


def run(conn: psycopg.Connection, statement: str) -> Result:
    with conn.cursor() as cur:
        cur.execute(statement.encode())  # as Grafana sends it: no client-side parameters
        assert cur.description is not None
        columns = []
        for d in cur.description:
            info = conn.adapters.types.get(d.type_code)
            columns.append((d.name, info.name if info else str(d.type_code)))
        return Result(columns, cur.fetchall())


def choose(
    conn: psycopg.Connection, dashboard: Mapping[str, Any], mode: str, when: Range
) -> dict[str, Variable]:
    """The dashboard's variables in order (a query may use an earlier one), selected per
    ``mode``: the first option; the first two; "All"."""
    chosen: dict[str, Variable] = {}
    for var in dashboard["templating"]["list"]:
        name = var["name"]
        if var["type"] == "constant":
            chosen[name] = Variable(var["query"])
        elif var["type"] == "custom":
            values = [o["value"] for o in var["options"]]
            pick = {"single": 0, "multi": 1, "all": -1}[mode]
            chosen[name] = Variable(values[pick % len(values)])
        elif var["type"] == "query":
            res = run(conn, grafana_sql(var["query"], chosen, when))
            names = [n for n, _ in res.columns]
            at = names.index("__value") if "__value" in names else 0
            options = [str(r[at]) for r in res.rows]
            if mode == "single" or not var["multi"]:
                value: list[str] = options[:1]
            elif mode == "multi":
                value = options[:2]
            else:
                value = []
            chosen[name] = Variable(
                value,
                multi=var["multi"],
                include_all=var["includeAll"],
                options=tuple(options),
                all_selected=mode == "all" and var["includeAll"],
            )
        else:
            raise AssertionError(f"variable type {var['type']} is not modelled")
    return chosen


def postgres_targets(
    dashboard: Mapping[str, Any],
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == "grafana-postgresql-datasource":
                yield panel, target


def shape_problems(panel: Mapping[str, Any], target: Mapping[str, Any], res: Result) -> list[str]:
    """What Grafana would fail on or draw wrongly for this result; empty when fine."""
    problems: list[str] = []
    names = [n for n, _ in res.columns]
    numeric, temporal, text = res.kinds(NUMERIC), res.kinds(TEMPORAL), res.kinds(TEXT)
    kind = panel["type"]
    if target["format"] == "time_series":
        # Overrides name series here (a column, or a value of the metric column): checked
        # against every series the panel's targets give, by series_names().
        if "time" not in temporal + numeric:  # numbers are epoch seconds ($__timeGroup)
            problems.append(f"time series need a time column named time, got {res.columns}")
        elif res.rows:
            at = names.index("time")
            times = [r[at] for r in res.rows]
            if times != sorted(times):
                problems.append("rows are not sorted by time")
        numeric = [n for n in numeric if n != "time"]
        if not numeric:
            problems.append(f"no numeric value column in {res.columns}")
        strange = [n for n, t in res.columns if n != "time" and t not in NUMERIC | TEXT]
        if strange:
            problems.append(f"columns neither value nor label: {strange}")
        return problems
    for override in panel["fieldConfig"]["overrides"]:
        column = override["matcher"]["options"]
        if column not in names:
            problems.append(f"override names column {column!r}, the query gives {names}")
    if kind in ("stat", "bargauge", "piechart"):
        per_row = panel["options"]["reduceOptions"]["values"]
        if not numeric:
            problems.append(f"{kind} needs a numeric column, got {res.columns}")
        if per_row and kind != "stat" and not text:
            problems.append(f"{kind} with one value per row needs a text name column")
        if not per_row and len(res.rows) > 1:
            problems.append(f"{kind} shows one value but the query gives {len(res.rows)} rows")
    if kind == "table" and "time" in names and "time" not in temporal:
        problems.append("a table column named time must be a timestamp")
    return problems


def series_names(res: Result) -> set[str]:
    """The series a time-series result becomes: the value columns, or with a ``metric``
    column, its values (Grafana renames a three-column long frame's series after it)."""
    names = [n for n, _ in res.columns]
    if "metric" in names:
        at = names.index("metric")
        return {str(r[at]) for r in res.rows}
    return {n for n, t in res.columns if n != "time" and t in NUMERIC}
