"""What Grafana sends to PostgreSQL for a panel's SQL: template variables as the browser
expands them, then the PostgreSQL datasource's macros as its Go backend does.

Written from Grafana's sources, not guessed:
- variables: ``SqlDatasource.interpolateVariable`` and the PostgreSQL override
  (``public/app/plugins/datasource/grafana-postgresql-datasource/datasource.ts``; until
  12.0.8/12.1.5/12.2.3/12.3.1 a single string of a multi-value or include-all variable was
  quoted, since then it is not: ``legacy`` picks the older behaviour), the ``sqlstring`` and
  ``csv`` formats, "All" without ``allValue`` as every option;
- ``$__interval``: ``rangeUtil.calculateInterval`` with PostgreSQL's ``1m`` floor;
- macros: ``pkg/tsdb/grafana-postgresql-datasource/macros.go`` and ``sqleng.Interpolate``:
  the regex ``\\$([_a-zA-Z0-9]+)\\(([^\\)]*)\\)``, arguments split on every comma, RFC 3339
  times in UTC, ``$__timeGroup`` as ``floor(extract(epoch from c)/N)*N`` or, with TimescaleDB,
  ``time_bucket('Ns',c)``, Go's ``%v`` for the seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
# scenes VARIABLE_REGEX: $name, [[name:fmt]], ${name:fmt}
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")

_ROUND = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000),
    (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000),
    (750000, 600000), (1050000, 900000), (1500000, 1200000), (2700000, 1800000),
    (5400000, 3600000), (9000000, 7200000), (16200000, 10800000), (32400000, 21600000),
    (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000),
)  # fmt: skip


class MacroError(ValueError):
    """Grafana's ``interpolation failed``: the panel would show an error."""


@dataclass(frozen=True)
class Variable:
    """A dashboard variable as the browser holds it: its selection and, for "All", every
    option."""

    value: str | list[str]
    multi: bool = False
    include_all: bool = False
    options: Sequence[str] = field(default_factory=tuple)
    all_selected: bool = False

    def current(self) -> str | list[str]:
        if self.all_selected:
            return list(self.options)
        return self.value


@dataclass(frozen=True)
class Range:
    start: datetime
    end: datetime
    max_data_points: int = 1000  # about a panel's width in pixels
    min_interval_ms: int = 60_000  # the PostgreSQL datasource's default floor (1m)

    @property
    def interval_ms(self) -> int:
        span = (self.end - self.start).total_seconds() * 1000
        return max(self.min_interval_ms, _round_interval(span / self.max_data_points))

    @property
    def interval(self) -> str:
        return _seconds_to_hms(self.interval_ms / 1000)


def _round_interval(ms: float) -> int:
    for limit, value in _ROUND:
        if ms < limit:
            return value
    return 31_536_000_000


def _seconds_to_hms(seconds: float) -> str:
    for div, mod, suffix in (
        (31536000, None, "y"),
        (86400, 31536000, "d"),
        (3600, 86400, "h"),
        (60, 3600, "m"),
        (1, 60, "s"),
    ):
        n = math.floor((seconds % mod if mod else seconds) / div)
        if n:
            return f"{n}{suffix}"
    return f"{math.floor(seconds * 1000)}ms"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format(value: str | list[str], fmt: str | None, var: Variable, legacy: bool) -> str:
    values = value if isinstance(value, list) else [value]
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''").replace('"', '\\"') + "'" for v in values)
    if fmt in ("csv", "join"):
        return ",".join(values)
    if fmt == "raw":
        return ",".join(values)
    if fmt is not None:
        raise ValueError(f"format {fmt!r} is not modelled here")
    if isinstance(value, list):
        return ",".join(_quote(v) for v in value)
    if legacy and (var.multi or var.include_all):
        return _quote(value)
    return value.replace("'", "''")


def interpolate_variables(
    text: str, variables: Mapping[str, Variable], when: Range, *, legacy: bool = False
) -> str:
    """The browser's pass: dashboard variables and ``$__interval``/``$__interval_ms``/
    ``$__from``/``$__to``; every other ``$__name`` is left for the backend."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(5)
        if name == "__interval":
            return when.interval
        if name == "__interval_ms":
            return str(when.interval_ms)
        if name == "__from":
            return str(int(when.start.timestamp() * 1000))
        if name == "__to":
            return str(int(when.end.timestamp() * 1000))
        var = variables.get(name)
        if var is None:
            return m.group(0)
        return _format(var.current(), fmt, var, legacy)

    return VARIABLE.sub(sub, text)


def _rfc3339(t: datetime) -> str:
    t = t.astimezone(UTC)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    return base + frac + "Z"


def _go_float(x: float) -> str:
    """Go's ``%v`` of a float64 (``1036800`` → ``1.0368e+06``)."""
    if x == 0:
        return "0"
    d = Decimal(repr(x)).normalize()
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    e = len(digits) + exp - 1
    if e < -4 or e >= 6:  # strconv shortest %g: exponent form from 1e6
        mant = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        return f"{'-' if sign else ''}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    return ("-" if sign else "") + format(abs(d), "f")


_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _interval_seconds(arg: str) -> float:
    m = _DURATION.match(arg.strip("'"))
    if m is None:
        raise MacroError(f"error parsing interval {arg}")
    seconds = int(m.group(1)) * _SECONDS[m.group(2)]
    if seconds <= 0:
        raise MacroError(f"interval must be positive, got {arg}")
    return seconds


def _time_group(args: list[str], timescale: bool) -> str:
    if len(args) < 2:
        raise MacroError("macro __timeGroup needs time column and interval and optional fill value")
    seconds = _interval_seconds(args[1])
    if len(args) == 3 and args[2] not in ("NULL", "previous"):
        try:
            float(args[2])
        except ValueError:
            raise MacroError(f"error parsing fill value {args[2]}") from None
    if timescale:
        return f"time_bucket('{seconds:.3f}s',{args[0]})"
    v = _go_float(float(seconds))
    return f"floor(extract(epoch from {args[0]})/{v})*{v}"


def _macro(name: str, args: list[str], when: Range, timescale: bool) -> str:
    start, end = when.start, when.end
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{_rfc3339(start)}' AND '{_rfc3339(end)}'"
    if name == "__timeFrom":
        return f"'{_rfc3339(start)}'"
    if name == "__timeTo":
        return f"'{_rfc3339(end)}'"
    if name == "__timeGroup":
        return _time_group(args, timescale)
    if name == "__timeGroupAlias":
        return _time_group(args, timescale) + ' AS "time"'
    if name == "__unixEpochFilter":
        lo, hi = int(start.timestamp()), int(end.timestamp())
        return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
    raise MacroError(f'unknown macro "{name}"')


def expand_macros(text: str, when: Range, *, timescale: bool = False) -> str:
    """The backend's pass over what the browser sent."""
    text = text.replace("$__interval_ms", str(when.interval_ms))
    text = text.replace("$__interval", when.interval)
    text = text.replace("$__unixEpochFrom()", str(int(when.start.timestamp())))
    text = text.replace("$__unixEpochTo()", str(int(when.end.timestamp())))
    source = text

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        args = [a.strip(" ") for a in m.group(2).split(",")]
        if name == "__timeGroup":
            # macros.go: a $__timeGroup(...) followed by a comma is aliased like the Alias form
            at = source.find(m.group(0)) + len(m.group(0))
            if source[at : at + 1] == ",":
                name = "__timeGroupAlias"
        return _macro(name, args, when, timescale)

    return MACRO.sub(sub, text)


def grafana_sql(
    raw: str,
    variables: Mapping[str, Variable],
    when: Range,
    *,
    timescale: bool = False,
    legacy: bool = False,
) -> str:
    """The statement PostgreSQL receives for a panel's ``rawSql``."""
    return expand_macros(
        interpolate_variables(raw, variables, when, legacy=legacy), when, timescale=timescale
    )


def with_panel_interval(when: Range, panel: Mapping[str, object]) -> Range:
    """The range as a panel with a "Min interval" (``interval``) and "Max data points"
    (``maxDataPoints``) queries it."""
    points = panel.get("maxDataPoints")  # replaces the panel's width when set
    if isinstance(points, int):
        when = Range(when.start, when.end, points, when.min_interval_ms)
    text = panel.get("interval")
    if not isinstance(text, str):
        return when
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"panel interval {text!r}")
    ms = int(int(m.group(1)) * _SECONDS[m.group(2)] * 1000)
    return Range(when.start, when.end, when.max_data_points, max(ms, when.min_interval_ms))


def last(hours: float, now: datetime | None = None, points: int = 1000) -> Range:
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    return Range(end - timedelta(hours=hours), end, points)
