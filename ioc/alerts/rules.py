"""Alert rules as YAML files: the rule types, a loader that validates them, and a report.

Rules, routes, inhibitions, receivers and an inventory live in committed YAML files (the
default set is ``deploy/alert-rules/``) so that a change is reviewed like code. The loader
reports every problem at once, each with its file, line and YAML path
(``security.yaml:14: rules[2].window: expected a duration like 5m, 1h30m, got '5 minutes'``),
because fixing rule files one error per deploy is how rule files stop being maintained.

Secrets never appear in the files: a receiver names environment variables (``url_env``,
``secret_env``, ``password_env``, ``token_env``, ``smtp_host_env``) and the loader resolves
them from the ``env`` it is given. A receiver whose variables are not set is an error when it
says ``required: true``; otherwise it is *disabled*: dropped with a warning in the report, and
routes skip it (a route keeps its place, so routing order never changes with the
environment). This is what lets the demo and the tests load the committed files without any
secret, while production marks the receivers it cannot do without as required.

Everything here is pure: the only I/O is reading the files given to :func:`load_config`.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, get_args

import msgspec
import yaml

from ioc.alerts.kinds.template import Template, TemplateError
from ioc.alerts.receivers import (
    AlertmanagerReceiver,
    GrafanaReceiver,
    MailReceiver,
    Receiver,
    WebhookReceiver,
)
from ioc.alerts.routing import InhibitRule, Matcher, Route
from ioc.events import ProbeKind, ProbeStatus, SecurityCategory, Severity
from ioc.kpi.calendar import PERIOD_NAMES

# -- durations ------------------------------------------------------------------------------

_UNITS: Final = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION: Final = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
MAX_DURATION: Final = timedelta(days=3650)


class DurationError(ValueError):
    """Not a duration in the rule-file syntax."""


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h30m``, ``1d``: units in the order d, h, m, s, each at most once.

    Deliberately narrow (no ``5 minutes``, no bare numbers, no fractions): a rule file is read
    by people from several teams, and one spelling per duration keeps them unambiguous.
    """
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if m is None or not any(m.groups()):
        raise DurationError(f"expected a duration like 5m, 1h30m, got {text!r}")
    total = 0
    for digits, unit in zip(m.groups(), "dhms", strict=True):
        if digits is not None:
            if len(digits) > 12:
                raise DurationError(f"duration {text!r} is longer than {_fmt(MAX_DURATION)}")
            total += int(digits) * _UNITS[unit]
    if total > MAX_DURATION.total_seconds():
        raise DurationError(f"duration {text!r} is longer than {_fmt(MAX_DURATION)}")
    return timedelta(seconds=total)


def format_duration(d: timedelta) -> str:
    """The canonical spelling: ``format_duration(parse_duration(s))`` normalises ``s``."""
    seconds = d.total_seconds()
    if seconds < 0 or not seconds.is_integer():
        raise DurationError(f"only whole, non-negative seconds have a spelling, got {d}")
    rest = int(seconds)
    out = []
    for unit, size in _UNITS.items():
        n, rest = divmod(rest, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"


def _fmt(d: timedelta) -> str:
    return format_duration(d)


# -- what events and KPI rows offer to rules ------------------------------------------------

Stream = Literal["security", "uptime"]
STREAM_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    # Text fields of the event types a rule may filter and group on (ioc.events).
    "security": (
        "source",
        "severity",
        "category",
        "source_severity",
        "src_ip",
        "dst_ip",
        "asset_id",
        "agency_code",
        "rule_id",
    ),
    "uptime": ("service_id", "status", "kind", "probe_id"),
}
FIELD_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "severity": get_args(Severity),
    "category": get_args(SecurityCategory),
    "status": get_args(ProbeStatus),
    "kind": get_args(ProbeKind),
}
SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)

# KPI rows (ioc.kpi.snapshot, schemas/kpi.v1.json): periods per scope, and the group label a
# rule's alerts carry the row key under (the same name the event rules use, so inventory and
# inhibition treat a TLS alert on svc-dvc like a down alert on svc-dvc).
KPI_PERIODS: Final[dict[str, tuple[str, ...]]] = {
    "agency": PERIOD_NAMES,
    "service": ("1h", "24h", "30d", "now"),
    "security_severity": ("5m", "1h", "24h"),
    "security_category": ("5m", "1h", "24h"),
    "security_source": ("now",),
}
KPI_GROUP_LABEL: Final[dict[str, str]] = {
    "agency": "agency_code",
    "service": "service_id",
    "security_severity": "event_severity",
    "security_category": "category",
    "security_source": "source",
}


def _kpi_values() -> dict[tuple[str, str], frozenset[str]]:
    """The numeric value names per (scope, period kind), taken from the row builders."""
    from ioc.kpi.dossier_kpis import DossierCounts
    from ioc.kpi.snapshot import dossier_values, service_now_values, service_window_values
    from ioc.kpi.uptime import CheckCounts, IncidentSummary

    t = datetime(2026, 1, 1, tzinfo=UTC)
    now = service_now_values(t, t, "up", None, timedelta(minutes=5))
    textual = {"status", "last_check_at", "silent"}
    window = service_window_values(CheckCounts(), IncidentSummary(0, 0, None))
    return {
        ("agency", "*"): frozenset(dossier_values(DossierCounts())),
        ("service", "window"): frozenset(window),
        ("service", "now"): frozenset(set(now) - textual),
        ("security_severity", "*"): frozenset({"events"}),
        ("security_category", "*"): frozenset({"events"}),
        ("security_source", "*"): frozenset({"silent_seconds"}),
    }


def kpi_value_names(scope: str, period: str) -> frozenset[str]:
    values = _KPI_VALUES
    if scope == "service":
        return values[("service", "now" if period == "now" else "window")]
    return values.get((scope, "*"), frozenset())


_KPI_VALUES: Final = _kpi_values()

# -- rule types -----------------------------------------------------------------------------


class Where(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a rule looks at: each named field's value in its list (all must hold),
    and optionally a minimum severity. Empty: every event of the stream."""

    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()
    severity_at_least: Severity | None = None

    @classmethod
    def of(cls, severity_at_least: Severity | None = None, **fields: Iterable[str]) -> Where:
        return cls(
            fields=tuple((k, tuple(v)) for k, v in fields.items()),
            severity_at_least=severity_at_least,
        )


class RuleBase(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every rule has. ``for_`` (``for:`` in YAML): the condition must hold this long
    before the alert fires; a condition that clears earlier never notifies anybody."""

    id: str
    description: str = ""
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    summary: str | None = None  # None: the kind's default
    enabled: bool = True
    for_: timedelta | None = None


class MatchRule(RuleBase, frozen=True, kw_only=True):
    """Fires on the first matching event of a group; clears ``resolve_after`` after the last."""

    kind: Literal["match"] = "match"
    stream: Stream = "security"
    where: Where = Where()
    severity: Severity | Literal["from_event"] = "from_event"
    resolve_after: timedelta | None = None  # None: defaults.resolve_after


class CorrelationRule(RuleBase, frozen=True, kw_only=True):
    """At least ``min_events`` matching events of one group within ``window`` of event time,
    and (with ``distinct``) at least ``min_distinct`` different values of that field."""

    kind: Literal["correlation"] = "correlation"
    severity: Severity = "high"
    stream: Stream = "security"
    where: Where = Where()
    window: timedelta
    min_events: int = 1
    distinct: str | None = None
    min_distinct: int = 1
    lateness: timedelta | None = None  # None: defaults.lateness


class AbsenceRule(RuleBase, frozen=True, kw_only=True):
    """A group that reported before (or is ``expect``ed) has sent nothing for ``window``."""

    kind: Literal["absence"] = "absence"
    severity: Severity = "high"
    stream: Stream = "security"
    where: Where = Where()
    window: timedelta
    expect: tuple[tuple[str, ...], ...] = ()  # group_by values that must report
    forget_after: timedelta = timedelta(days=7)  # a silent, unexpected group is dropped


class ConsecutiveRule(RuleBase, frozen=True, kw_only=True):
    """The newest ``count`` checks of a service (by event time) all have a status in
    ``status``."""

    kind: Literal["consecutive"] = "consecutive"
    stream: Literal["uptime"] = "uptime"
    where: Where = Where()
    severity: Severity = "critical"
    group_by: tuple[str, ...] = ("service_id",)
    count: int = 3
    status: tuple[ProbeStatus, ...] = ("down",)


class BurnWindow(msgspec.Struct, frozen=True, kw_only=True):
    long: timedelta
    short: timedelta
    factor: float
    severity: Severity


class BurnRateRule(RuleBase, frozen=True, kw_only=True):
    """Multi-window, multi-burn-rate SLO alert on availability (up or degraded is good)."""

    kind: Literal["burn_rate"] = "burn_rate"
    stream: Literal["uptime"] = "uptime"
    where: Where = Where()
    severity: Severity = "critical"
    group_by: tuple[str, ...] = ("service_id",)
    objective: float
    windows: tuple[BurnWindow, ...]
    min_checks: int = 3


class KpiThresholdRule(RuleBase, frozen=True, kw_only=True):
    """A KPI value strictly below ``below`` or strictly above ``above``."""

    kind: Literal["kpi_threshold"] = "kpi_threshold"
    severity: Severity = "medium"
    scope: str
    period: str
    value: str
    below: float | None = None
    above: float | None = None
    keys: tuple[str, ...] = ()  # empty: every key of the scope


class KpiRisingRule(RuleBase, frozen=True, kw_only=True):
    """A KPI value at least ``rise`` above its lowest value within the last ``over``."""

    kind: Literal["kpi_rising"] = "kpi_rising"
    severity: Severity = "medium"
    scope: str
    period: str
    value: str
    rise: float
    over: timedelta
    keys: tuple[str, ...] = ()


Rule = (
    MatchRule
    | CorrelationRule
    | AbsenceRule
    | ConsecutiveRule
    | BurnRateRule
    | KpiThresholdRule
    | KpiRisingRule
)
KpiRule = KpiThresholdRule | KpiRisingRule
RULE_KINDS: Final = (
    "match",
    "correlation",
    "absence",
    "consecutive",
    "burn_rate",
    "kpi_threshold",
    "kpi_rising",
)


def group_fields(rule: Rule) -> tuple[str, ...]:
    """The labels that identify one alert of ``rule`` (a KPI rule groups by the row key)."""
    if isinstance(rule, KpiThresholdRule | KpiRisingRule):
        return (KPI_GROUP_LABEL[rule.scope],)
    return rule.group_by


class Defaults(msgspec.Struct, frozen=True, kw_only=True):
    lateness: timedelta = timedelta(minutes=2)  # correlation windows stay open this long
    resolve_after: timedelta = timedelta(hours=1)  # match alerts clear after this quiet
    max_groups_per_rule: int = 100_000  # memory bound; new groups beyond it are dropped


INVENTORY_SECTIONS: Final = {
    "services": "service_id",
    "assets": "asset_id",
    "sources": "source",
    "probes": "probe_id",
    "agencies": "agency_code",
}


class Inventory(msgspec.Struct, frozen=True, kw_only=True):
    """Labels known about things (site, tier, owner), keyed by the group field they enrich:
    an alert grouped by ``service_id: svc-dvc`` also carries ``svc-dvc``'s labels, so an
    inhibition can say "a network alert mutes the services at the same ``site``"."""

    by_field: dict[str, dict[str, dict[str, str]]] = msgspec.field(default_factory=dict)

    def labels(self, field: str, value: str) -> Mapping[str, str]:
        return self.by_field.get(field, {}).get(value, {})

    def count(self, field: str) -> int:
        return len(self.by_field.get(field, {}))


class AlertConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the rule files say, validated, with secrets resolved."""

    rules: tuple[Rule, ...] = ()
    routes: tuple[Route, ...] = ()
    inhibit: tuple[InhibitRule, ...] = ()
    receivers: dict[str, Receiver] = msgspec.field(default_factory=dict)
    inventory: Inventory = Inventory()
    defaults: Defaults = Defaults()
    warnings: tuple[str, ...] = ()  # disabled receivers and the like, for the report
    files: tuple[str, ...] = ()

    @property
    def enabled_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)


class RuleFileError(ValueError):
    """Rule files that cannot be used; ``problems`` lists every one, each on its own line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the alert rule files:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class RuleText(NamedTuple):
    """Rule-file text that is not on disk (tests, an API upload); ``name`` labels problems."""

    name: str
    text: str


# -- YAML with line numbers -----------------------------------------------------------------


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key and any duplicated keys."""

    line: int = 0
    key_lines: dict[Any, int]
    duplicates: list[tuple[Any, int]]


class _Seq(list[Any]):
    line: int = 0
    item_lines: list[int]


class _MarkedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that keeps line numbers and notices duplicated keys (which plain
    PyYAML silently resolves to the last one)."""


def _construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    out.duplicates = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            key = str(key)
        line = key_node.start_mark.line + 1
        if key in out:
            out.duplicates.append((key, line))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_seq(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [n.start_mark.line + 1 for n in node.value]
    return out


_MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


# -- reading with every problem collected ---------------------------------------------------

_MISSING: Final = object()
_SLUG: Final = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_LABEL: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_KEYS: Final = {"secret": "secret_env", "password": "password_env", "token": "token_env"}


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Obj:
    """One YAML mapping being read: typed getters that report problems instead of raising,
    each problem naming the file, line and YAML path of the offending key."""

    def __init__(
        self,
        problems: list[str],
        file: str,
        data: _Map,
        path: str,
        allowed: Collection[str],
        required: Collection[str] = (),
    ) -> None:
        self.problems = problems
        self.file = file
        self.data = data
        self.path = path
        for key, line in data.duplicates:
            self._report(line, self.sub(str(key)), "key given twice (the first would be ignored)")
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), list(allowed), n=1)
                tip = f"; did you mean '{hint[0]}'?" if hint else ""
                choices = ", ".join(sorted(allowed))
                self.err(key, f"unknown key '{key}'{tip} (allowed: {choices})")
        for key in required:
            if key not in data:
                self._report(data.line, self.path or "(top level)", f"missing required key '{key}'")

    def sub(self, key: object) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def line(self, key: object) -> int:
        return self.data.key_lines.get(key, self.data.line)

    def _report(self, line: int | None, path: str, reason: str) -> None:
        where = f"{self.file}:{line}" if line else self.file
        self.problems.append(f"{where}: {path}: {reason}")

    def err(self, key: object, reason: str) -> None:
        self._report(self.line(key), self.sub(key), reason)

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str) -> Any:
        return self.data.get(key, _MISSING)

    def text(
        self,
        key: str,
        default: str | None = None,
        *,
        pattern: re.Pattern[str] | None = None,
        what: str = "text",
    ) -> str | None:
        value = self.get(key)
        if value is _MISSING or value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.err(key, f"expected {what}, got {_show(value)}")
            return default
        value = str(value)
        if pattern is not None and not pattern.fullmatch(value):
            self.err(key, f"expected {what}, got {value!r}")
            return default
        return value

    def choice(self, key: str, choices: Sequence[str], default: str | None = None) -> str | None:
        value = self.get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or value not in choices:
            self.err(key, f"expected one of {', '.join(choices)}, got {_show(value)}")
            return default
        return value

    def duration(
        self, key: str, default: timedelta | None = None, *, positive: bool = True
    ) -> timedelta | None:
        value = self.get(key)
        if value is _MISSING or value is None:
            return default
        if not isinstance(value, str):
            self.err(key, f"expected a duration like 5m, 1h30m, got {_show(value)}")
            return default
        try:
            d = parse_duration(value)
        except DurationError as exc:
            self.err(key, str(exc))
            return default
        if positive and not d:
            self.err(key, "must be longer than 0s")
            return default
        return d

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        positive: bool = False,
        below_one: bool = False,
    ) -> float | None:
        value = self.get(key)
        if value is _MISSING or value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.err(key, f"expected a number, got {_show(value)}")
            return default
        if positive and value <= 0:
            self.err(key, f"must be positive, got {value}")
            return default
        if below_one and not 0 < value < 1:
            self.err(key, f"must be between 0 and 1 (exclusive), got {value}")
            return default
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        value = self.get(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(key, f"expected a whole number, got {_show(value)}")
            return default
        if value < minimum:
            self.err(key, f"must be at least {minimum}, got {value}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.err(key, f"expected true or false, got {_show(value)}")
            return default
        return value

    def texts(
        self,
        key: str,
        *,
        choices: Sequence[str] | None = None,
        pattern: re.Pattern[str] | None = None,
        what: str = "text",
    ) -> tuple[str, ...]:
        """A list of text (a single value counts as a list of one)."""
        value = self.get(key)
        if value is _MISSING or value is None:
            return ()
        items = list(value) if isinstance(value, _Seq) else [value]
        lines = value.item_lines if isinstance(value, _Seq) else [self.line(key)]
        out = []
        for i, (item, line) in enumerate(zip(items, lines, strict=True)):
            path = f"{self.sub(key)}[{i}]" if isinstance(value, _Seq) else self.sub(key)
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self._report(line, path, f"expected {what}, got {_show(item)}")
            elif choices is not None and str(item) not in choices:
                self._report(line, path, f"expected one of {', '.join(choices)}, got {item!r}")
            elif pattern is not None and not pattern.fullmatch(str(item)):
                self._report(line, path, f"expected {what}, got {item!r}")
            else:
                out.append(str(item))
        return tuple(out)

    def labels(self, key: str, *, reserved: Collection[str] = ()) -> dict[str, str]:
        value = self.get(key)
        if value is _MISSING or value is None:
            return {}
        if not isinstance(value, _Map):
            self.err(key, f"expected a mapping of label names to values, got {_show(value)}")
            return {}
        out: dict[str, str] = {}
        for name, v in value.items():
            line, path = value.key_lines.get(name), f"{self.sub(key)}.{name}"
            if not isinstance(name, str) or not _LABEL.fullmatch(name):
                self._report(line, path, f"not a label name: {name!r}")
            elif name in reserved:
                self._report(line, path, f"'{name}' is set by the alert itself")
            elif isinstance(v, bool | _Map | _Seq) or not isinstance(v, str | int | float):
                self._report(line, path, f"expected a text value, got {_show(v)}")
            else:
                out[name] = str(v)
        return out

    def child(
        self, key: str, allowed: Collection[str], required: Collection[str] = ()
    ) -> _Obj | None:
        value = self.get(key)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, _Map):
            self.err(key, f"expected a mapping, got {_show(value)}")
            return None
        return _Obj(self.problems, self.file, value, self.sub(key), allowed, required)

    def items(self, key: str) -> list[tuple[str, int, Any]]:
        """The items of a list: (YAML path, line, value)."""
        value = self.get(key)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, _Seq):
            self.err(key, f"expected a list, got {_show(value)}")
            return []
        return [
            (f"{self.sub(key)}[{i}]", line, item)
            for i, (item, line) in enumerate(zip(value, value.item_lines, strict=True))
        ]

    def obj(
        self,
        path: str,
        line: int,
        value: Any,
        allowed: Collection[str],
        required: Collection[str] = (),
    ) -> _Obj | None:
        if not isinstance(value, _Map):
            self._report(line, path, f"expected a mapping, got {_show(value)}")
            return None
        return _Obj(self.problems, self.file, value, path, allowed, required)


# -- rules ----------------------------------------------------------------------------------

_COMMON: Final = {"id", "kind", "description", "severity", "labels", "summary", "enabled", "for"}
_KIND_KEYS: Final[dict[str, set[str]]] = {
    "match": {"stream", "where", "group_by", "resolve_after"},
    "correlation": {
        *("stream", "where", "group_by", "window", "min_events", "distinct", "min_distinct"),
        "lateness",
    },
    "absence": {"stream", "where", "group_by", "window", "expect", "forget_after"},
    "consecutive": {"stream", "where", "group_by", "count", "status"},
    "burn_rate": {"stream", "where", "group_by", "objective", "windows", "min_checks"},
    "kpi_threshold": {"scope", "period", "value", "below", "above", "keys"},
    "kpi_rising": {"scope", "period", "value", "rise", "over", "keys"},
}
_REQUIRED: Final[dict[str, set[str]]] = {
    "match": set(),
    "correlation": {"window", "min_events"},
    "absence": {"window"},
    "consecutive": set(),
    "burn_rate": {"objective", "windows"},
    "kpi_threshold": {"scope", "period", "value"},
    "kpi_rising": {"scope", "period", "value", "rise", "over"},
}
_UPTIME_ONLY: Final = {"consecutive", "burn_rate"}


def _read_where(o: _Obj, stream: str) -> Where:
    allowed = (*STREAM_FIELDS[stream], "severity_at_least")
    w = o.child("where", allowed)
    if w is None:
        return Where()
    fields = []
    for name in STREAM_FIELDS[stream]:
        if w.has(name):
            values = w.texts(name, choices=FIELD_CHOICES.get(name))
            if not values:
                w.err(name, "an empty list matches nothing; leave the key out instead")
            fields.append((name, values))
    at_least = w.choice("severity_at_least", SEVERITIES)
    if at_least is not None and stream != "security":
        w.err("severity_at_least", "only security events have a severity")
    return Where(fields=tuple(fields), severity_at_least=at_least)  # type: ignore[arg-type]


def _read_group_by(o: _Obj, stream: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if not o.has("group_by"):
        return default
    fields = o.texts("group_by", choices=STREAM_FIELDS[stream], what="an event field")
    dup = [f for f, n in Counter(fields).items() if n > 1]
    if dup:
        o.err("group_by", f"field listed twice: {', '.join(dup)}")
    return fields


def _read_rule(o: _Obj, kind: str) -> Rule | None:
    """One rule; None when it had problems (already reported)."""
    before = len(o.problems)
    common: dict[str, Any] = {
        "id": o.text("id", pattern=_SLUG, what="a slug like brute-force-ssh") or "?",
        "description": o.text("description", "") or "",
        "labels": o.labels("labels", reserved=("alertname", "severity")),
        "enabled": o.boolean("enabled", True),
        "for_": o.duration("for"),
    }
    summary = o.text("summary")
    if summary is not None:
        try:
            Template(summary)
        except TemplateError as exc:
            o.err("summary", str(exc))
        common["summary"] = summary
    severity_choices = (*SEVERITIES, "from_event") if kind == "match" else SEVERITIES
    severity = o.choice("severity", severity_choices)
    if severity is not None:
        common["severity"] = severity

    rule: Rule | None = None
    if kind in ("kpi_threshold", "kpi_rising"):
        rule = _read_kpi_rule(o, kind, common)
    else:
        stream = (
            o.choice(
                "stream", ("security", "uptime"), "uptime" if kind in _UPTIME_ONLY else "security"
            )
            or "security"
        )
        if kind in _UPTIME_ONLY and stream != "uptime":
            o.err("stream", f"{kind} rules read the uptime stream")
            stream = "uptime"
        where = _read_where(o, stream)
        default_group = ("service_id",) if kind in _UPTIME_ONLY else ()
        group_by = _read_group_by(o, stream, default_group)
        common.update(stream=stream, where=where, group_by=group_by)
        rule = _READERS[kind](o, common, stream, group_by)
    return None if len(o.problems) > before else rule


def _read_match(
    o: _Obj, common: dict[str, Any], stream: str, group_by: tuple[str, ...]
) -> Rule | None:
    if stream != "security" and common.get("severity") == "from_event":
        o.err("severity", "from_event needs security events (uptime checks have no severity)")
    if stream == "uptime":
        common.setdefault("severity", "high")
    return MatchRule(**common, resolve_after=o.duration("resolve_after"))


def _read_correlation(
    o: _Obj, common: dict[str, Any], stream: str, group_by: tuple[str, ...]
) -> Rule | None:
    window = o.duration("window")
    min_events = o.integer("min_events", 1)
    distinct = o.choice("distinct", STREAM_FIELDS[stream])
    min_distinct = o.integer("min_distinct", 1)
    if distinct is not None and not o.has("min_distinct"):
        o.err("distinct", "min_distinct is required with distinct")
    if distinct is None and o.has("min_distinct"):
        o.err("min_distinct", "min_distinct needs a distinct field to count")
    if distinct is not None and distinct in group_by:
        o.err("distinct", f"'{distinct}' is in group_by, so each group has one value of it")
    if distinct is not None and min_distinct > min_events:
        o.err("min_distinct", f"cannot exceed min_events ({min_events}): each event has one value")
    lateness = o.duration("lateness", positive=False)
    if window is None:
        return None
    return CorrelationRule(
        **common,
        window=window,
        min_events=min_events,
        distinct=distinct,
        min_distinct=min_distinct if distinct else 1,
        lateness=lateness,
    )


def _read_absence(
    o: _Obj, common: dict[str, Any], stream: str, group_by: tuple[str, ...]
) -> Rule | None:
    window = o.duration("window")
    forget = o.duration("forget_after", timedelta(days=7)) or timedelta(days=7)
    expect: list[tuple[str, ...]] = []
    for path, line, item in o.items("expect"):
        if isinstance(item, str | int) and not isinstance(item, bool):
            if len(group_by) != 1:
                o._report(
                    line,
                    path,
                    "a plain value needs exactly one group_by field; "
                    "use a mapping of the group_by fields",
                )
            else:
                expect.append((str(item),))
        elif isinstance(item, _Map):
            if set(item) != set(group_by):
                o._report(line, path, f"expected the keys {', '.join(group_by) or '(none)'}")
            else:
                expect.append(tuple(str(item[f]) for f in group_by))
        else:
            o._report(line, path, f"expected a {' / '.join(group_by)} value, got {_show(item)}")
    if o.has("expect") and not group_by:
        o.err("expect", "expect names groups, so group_by is required")
    if window is not None and forget <= window:
        o.err("forget_after", "must be longer than window")
    if window is None:
        return None
    return AbsenceRule(
        **common, window=window, expect=tuple(dict.fromkeys(expect)), forget_after=forget
    )


def _read_consecutive(
    o: _Obj, common: dict[str, Any], stream: str, group_by: tuple[str, ...]
) -> Rule | None:
    status = o.texts("status", choices=FIELD_CHOICES["status"]) if o.has("status") else ("down",)
    if not status:
        o.err("status", "list at least one status")
    if set(status) == set(FIELD_CHOICES["status"]):
        o.err("status", "every status listed: the rule would fire on any check")
    if "service_id" not in group_by:
        o.err("group_by", "consecutive checks are counted per service: include service_id")
    return ConsecutiveRule(
        **common,
        count=o.integer("count", 3),
        status=status,  # type: ignore[arg-type]
    )


def _read_burn_rate(
    o: _Obj, common: dict[str, Any], stream: str, group_by: tuple[str, ...]
) -> Rule | None:
    objective = o.number("objective", below_one=True)
    severity = common.get("severity", "critical")
    windows = []
    for path, line, item in o.items("windows"):
        w = o.obj(
            path,
            line,
            item,
            {"long", "short", "factor", "severity"},
            required={"long", "short", "factor"},
        )
        if w is None:
            continue
        long, short = w.duration("long"), w.duration("short")
        factor = w.number("factor", positive=True)
        sev = w.choice("severity", SEVERITIES, severity) or severity
        if long and short and short >= long:
            w.err("short", f"must be shorter than long ({format_duration(long)})")
        if factor is not None and objective is not None and factor * (1 - objective) >= 1 - 1e-9:
            w.err(
                "factor",
                f"factor × (1 − objective) = {factor * (1 - objective):g} ≥ 1: "
                "an error ratio can never exceed it",
            )
        if long and short and factor is not None:
            windows.append(BurnWindow(long=long, short=short, factor=factor, severity=sev))  # type: ignore[arg-type]
    if o.has("windows") and not o.items("windows"):
        o.err("windows", "list at least one long/short window pair")
    if objective is None or not windows:
        return None
    return BurnRateRule(
        **common, objective=objective, windows=tuple(windows), min_checks=o.integer("min_checks", 3)
    )


_READERS: Final[dict[str, Callable[[_Obj, dict[str, Any], str, tuple[str, ...]], Rule | None]]] = {
    "match": _read_match,
    "correlation": _read_correlation,
    "absence": _read_absence,
    "consecutive": _read_consecutive,
    "burn_rate": _read_burn_rate,
}


def _read_kpi_rule(o: _Obj, kind: str, common: dict[str, Any]) -> Rule | None:
    scope = o.choice("scope", tuple(KPI_PERIODS))
    period = o.text("period")
    value = o.text("value")
    if scope is not None and period is not None and period not in KPI_PERIODS[scope]:
        periods = ", ".join(KPI_PERIODS[scope])
        o.err("period", f"{scope} rows have periods {periods}; got {period!r}")
        period = None
    if scope is not None and period is not None and value is not None:
        names = kpi_value_names(scope, period)
        if value not in names:
            hint = difflib.get_close_matches(value, list(names), n=1)
            tip = f" (did you mean '{hint[0]}'?)" if hint else ""
            o.err(
                "value",
                f"{scope}/{period} rows have no numeric value {value!r}{tip}; "
                f"they have {', '.join(sorted(names))}",
            )
    keys = o.texts("keys")
    if scope is None or period is None or value is None:
        return None
    if kind == "kpi_threshold":
        below, above = o.number("below"), o.number("above")
        if not o.has("below") and not o.has("above"):
            o.err("kind", "a kpi_threshold rule needs one of below: or above:")
        elif o.has("below") and o.has("above"):
            o.err("above", "give one of below: or above:, not both (write two rules)")
        return KpiThresholdRule(
            **common, scope=scope, period=period, value=value, below=below, above=above, keys=keys
        )
    rise = o.number("rise", positive=True)
    over = o.duration("over")
    if rise is None or over is None:
        return None
    return KpiRisingRule(
        **common, scope=scope, period=period, value=value, rise=rise, over=over, keys=keys
    )


# -- receivers, routes, inhibition ----------------------------------------------------------

_RECEIVER_KEYS: Final[dict[str, set[str]]] = {
    "alertmanager": {"url", "url_env", "timeout_seconds"},
    "webhook": {
        *("url", "url_env", "secret_env", "timeout_seconds", "max_attempts"),
        *("backoff_initial_seconds", "backoff_max_seconds"),
    },
    "mail": {
        *("to", "sender", "smtp_host", "smtp_host_env", "smtp_port", "starttls", "username"),
        *("password_env", "timeout_seconds", "max_attempts"),
    },
    "grafana": {"url", "url_env", "token_env", "dashboard_uid", "timeout_seconds"},
}
_URL: Final = re.compile(r"https?://[^\s]+")
_MAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")


class _Resolved(NamedTuple):
    receiver: Receiver | None  # None: disabled (a warning says why) or invalid
    missing: tuple[str, ...]


def _env_value(o: _Obj, key: str, env: Mapping[str, str], missing: list[str]) -> str | None:
    name = o.text(key, pattern=_ENV_NAME, what="an environment variable name")
    if name is None:
        return None
    value = env.get(name, "")
    if not value:
        missing.append(name)
        return None
    return value


def _read_receiver(o: _Obj, name: str, env: Mapping[str, str]) -> _Resolved:
    before = len(o.problems)
    kind = o.choice("kind", tuple(_RECEIVER_KEYS))
    for literal, instead in _SECRET_KEYS.items():
        if o.has(literal):
            o.err(
                literal,
                f"secrets are not written in rule files; name an environment "
                f"variable with {instead}",
            )
    if kind is None:
        return _Resolved(None, ())
    missing: list[str] = []
    timeout = o.number("timeout_seconds", positive=True)
    extra: dict[str, Any] = {} if timeout is None else {"timeout_seconds": timeout}
    url: str | None = None
    if kind != "mail":
        # url_env wins when set; url: (if given) is the fallback, so a file can carry the
        # local default and production overrides it.
        url = o.text("url", pattern=_URL, what="an http(s) URL")
        if o.has("url_env"):
            from_env = _env_value(o, "url_env", env, [] if url else missing)
            if from_env is not None and not _URL.fullmatch(from_env):
                o.err("url_env", f"{o.get('url_env')} does not hold an http(s) URL")
            url = from_env or url
        elif not o.has("url"):
            o.err("kind", f"a {kind} receiver needs url: or url_env:")
    receiver: Receiver | None = None
    if kind == "alertmanager":
        receiver = AlertmanagerReceiver(name=name, url=url or "", **extra)
    elif kind == "webhook":
        if not o.has("secret_env"):
            o.err("kind", "a webhook receiver needs secret_env: (deliveries are signed)")
        secret = _env_value(o, "secret_env", env, missing) if o.has("secret_env") else None
        for key in ("backoff_initial_seconds", "backoff_max_seconds"):
            if (v := o.number(key, positive=True)) is not None:
                extra[key] = v
        if o.has("max_attempts"):
            extra["max_attempts"] = o.integer("max_attempts", 6)
        receiver = WebhookReceiver(name=name, url=url or "", secret=secret or "", **extra)
    elif kind == "mail":
        to = o.texts("to", pattern=_MAIL, what="a mail address")
        if not to and not o.has("to"):
            o.err("kind", "a mail receiver needs to: (one or more addresses)")
        sender = o.text("sender", pattern=_MAIL, what="a mail address")
        if sender is None and not o.has("sender"):
            o.err("kind", "a mail receiver needs sender:")
        host = o.text("smtp_host", "127.0.0.1") or "127.0.0.1"
        if o.has("smtp_host_env"):
            host = _env_value(o, "smtp_host_env", env, missing) or host
        username = o.text("username")
        password = _env_value(o, "password_env", env, missing) if o.has("password_env") else None
        if username is not None and not o.has("password_env"):
            o.err("username", "a login needs password_env: too")
        if o.has("max_attempts"):
            extra["max_attempts"] = o.integer("max_attempts", 4)
        receiver = MailReceiver(
            name=name,
            to=to,
            sender=sender or "",
            smtp_host=host,
            smtp_port=o.integer("smtp_port", 25),
            starttls=o.boolean("starttls", False),
            username=username,
            password=password,
            **extra,
        )
    elif kind == "grafana":
        token = _env_value(o, "token_env", env, missing) if o.has("token_env") else None
        receiver = GrafanaReceiver(
            name=name,
            url=url or "",
            token=token or "",
            dashboard_uid=o.text("dashboard_uid"),
            **extra,
        )
    if len(o.problems) > before:
        return _Resolved(None, ())
    return _Resolved(None if missing else receiver, tuple(missing))


def _read_matchers(o: _Obj, key: str) -> tuple[Matcher, ...]:
    """``['severity="critical"', 'site=~"dc-.*"']`` or a mapping of equalities."""
    value = o.get(key)
    if value is _MISSING or value is None:
        return ()
    out: list[Matcher] = []
    if isinstance(value, _Map):
        for name, v in o.labels(key).items():
            out.append(Matcher(name, "=", v))
        return tuple(out)
    for path, line, item in o.items(key):
        if not isinstance(item, str):
            o._report(line, path, f'expected a matcher like severity="critical", got {_show(item)}')
            continue
        try:
            out.append(Matcher.parse(item))
        except ValueError as exc:
            o._report(line, path, str(exc))
    return tuple(out)


# -- files and merging ----------------------------------------------------------------------

_TOP: Final = ("defaults", "inventory", "rules", "receivers", "routes", "inhibit")


class _Where(NamedTuple):
    file: str
    line: int


class _Collected:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.files: list[str] = []
        self.rules: list[Rule] = []
        self.rule_at: dict[str, _Where] = {}
        self.receivers: dict[str, Receiver] = {}
        self.receiver_at: dict[str, _Where] = {}
        self.disabled: dict[str, tuple[str, ...]] = {}
        self.routes: list[tuple[_Obj, bool, Route]] = []  # (where, valid, route)
        self.route_at: dict[str, _Where] = {}
        self.inhibit: list[InhibitRule] = []
        self.inventory: dict[str, dict[str, dict[str, str]]] = {}
        self.inventory_at: dict[tuple[str, str], _Where] = {}
        self.defaults: dict[str, Any] = {}
        self.defaults_at: dict[str, _Where] = {}


def _texts_of(sources: Sequence[Path | str | RuleText], problems: list[str]) -> list[RuleText]:
    out: list[RuleText] = []
    for source in sources:
        if isinstance(source, RuleText):
            out.append(source)
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
            )
            if not files:
                problems.append(f"{path}: no *.yaml or *.yml files in this directory")
        else:
            files = [path]
        for file in files:
            try:
                out.append(RuleText(str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{file}: cannot read: {exc}")
    return out


def _read_file(c: _Collected, source: RuleText, env: Mapping[str, str]) -> None:
    name = source.name
    try:
        data = yaml.load(source.text, Loader=_MarkedLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        reason = getattr(exc, "problem", None) or str(exc)
        c.problems.append(f"{where}: not valid YAML: {reason}")
        return
    c.files.append(name)
    if data is None:
        return
    if not isinstance(data, _Map):
        c.problems.append(f"{name}:1: (top level): expected a mapping with keys {', '.join(_TOP)}")
        return
    top = _Obj(c.problems, name, data, "", _TOP)
    if d := top.child("defaults", {"lateness", "resolve_after", "max_groups_per_rule"}):
        for key in d.data:
            if key in c.defaults_at:
                first = c.defaults_at[key]
                d.err(key, f"already set in {first.file}:{first.line}")
            elif key == "max_groups_per_rule":
                c.defaults[key] = d.integer(key, 100_000, minimum=1)
            elif key in ("lateness", "resolve_after"):
                c.defaults[key] = d.duration(key, positive=key != "lateness")
            c.defaults_at.setdefault(str(key), _Where(name, d.line(key)))
    if inv := top.child("inventory", tuple(INVENTORY_SECTIONS)):
        _read_inventory(c, inv)
    _read_rules(c, top)
    _read_receivers(c, top, env)
    _read_routes(c, top)
    _read_inhibit(c, top)


def _read_rules(c: _Collected, top: _Obj) -> None:
    name = top.file
    for path, line, item in top.items("rules"):
        kind = item.get("kind") if isinstance(item, _Map) else None
        if kind not in RULE_KINDS:
            o = top.obj(path, line, item, set(_COMMON) | set().union(*_KIND_KEYS.values()))
            if o is not None:
                if kind is None:
                    o._report(
                        o.data.line, path, f"missing required key 'kind' ({', '.join(RULE_KINDS)})"
                    )
                else:
                    o.err("kind", f"expected one of {', '.join(RULE_KINDS)}, got {_show(kind)}")
            continue
        o = top.obj(path, line, item, _COMMON | _KIND_KEYS[kind], {"id"} | _REQUIRED[kind])
        if o is None:
            continue
        rule_id = item.get("id")
        rule = _read_rule(o, kind)
        if isinstance(rule_id, str) and rule_id in c.rule_at:
            first = c.rule_at[rule_id]
            o.err("id", f"duplicate rule id '{rule_id}' (first in {first.file}:{first.line})")
            continue
        if isinstance(rule_id, str):
            c.rule_at[rule_id] = _Where(name, o.line("id"))
        if rule is not None:
            c.rules.append(rule)


def _read_receivers(c: _Collected, top: _Obj, env: Mapping[str, str]) -> None:
    name, data = top.file, top.data
    rec_value = data.get("receivers")
    if rec_value is not None and not isinstance(rec_value, _Map):
        top.err("receivers", f"expected a mapping of receiver names, got {_show(rec_value)}")
    elif isinstance(rec_value, _Map):
        rec = _Obj(c.problems, name, rec_value, "receivers", list(rec_value))
        for rname, spec in rec_value.items():
            path, line = rec.sub(rname), rec.line(rname)
            if not isinstance(rname, str) or not _SLUG.fullmatch(rname):
                rec.err(rname, "expected a receiver name like soc-oncall")
                continue
            kind = spec.get("kind") if isinstance(spec, _Map) else None
            allowed = {"kind", "required", *_SECRET_KEYS, *_RECEIVER_KEYS.get(str(kind), ())}
            o = rec.obj(path, line, spec, allowed, {"kind"})
            if o is None:
                continue
            if rname in c.receiver_at:
                first = c.receiver_at[rname]
                rec.err(rname, f"receiver defined twice (first in {first.file}:{first.line})")
                continue
            c.receiver_at[rname] = _Where(name, line)
            required = o.boolean("required", False)
            resolved = _read_receiver(o, rname, env)
            if resolved.missing:
                names = ", ".join(resolved.missing)
                if required:
                    o.err("required", f"environment variable not set: {names}")
                else:
                    c.disabled[rname] = resolved.missing
                    c.warnings.append(f"receiver {rname} disabled: {names} not set")
            elif resolved.receiver is not None:
                c.receivers[rname] = resolved.receiver
            else:
                c.disabled[rname] = ()  # invalid; already reported


def _read_routes(c: _Collected, top: _Obj) -> None:
    for path, line, item in top.items("routes"):
        o = top.obj(
            path,
            line,
            item,
            {"name", "match", "receivers", "group_by", "escalate_after", "escalate_to", "continue"},
            {"name"},
        )
        if o is None:
            continue
        before = len(c.problems)
        rname = o.text("name", pattern=_SLUG, what="a route name like security") or "?"
        if rname in c.route_at:
            first = c.route_at[rname]
            o.err("name", f"route name used twice (first in {first.file}:{first.line})")
        c.route_at.setdefault(rname, _Where(top.file, o.line("name")))
        escalate_after = o.duration("escalate_after")
        escalate_to = o.texts("escalate_to", pattern=_SLUG, what="a receiver name")
        if (escalate_after is None) != (not escalate_to):
            o.err(
                "escalate_after" if escalate_after else "escalate_to",
                "escalate_after and escalate_to go together",
            )
        route = Route(
            name=rname,
            matchers=_read_matchers(o, "match"),
            receivers=o.texts("receivers", pattern=_SLUG, what="a receiver name"),
            group_by=o.texts("group_by", pattern=_LABEL, what="a label name")
            if o.has("group_by")
            else ("alertname",),
            escalate_after=escalate_after,
            escalate_to=escalate_to,
            continue_=o.boolean("continue", False),
        )
        c.routes.append((o, len(c.problems) == before, route))  # receivers checked later


def _read_inhibit(c: _Collected, top: _Obj) -> None:
    for path, line, item in top.items("inhibit"):
        o = top.obj(path, line, item, {"source", "target", "equal"}, {"source", "target"})
        if o is None:
            continue
        before = len(c.problems)
        muting, muted = _read_matchers(o, "source"), _read_matchers(o, "target")
        if o.has("source") and not muting and len(c.problems) == before:
            o.err("source", "an empty source would let every alert mute others")
        inhibit = InhibitRule(
            source=muting,
            target=muted,
            equal=o.texts("equal", pattern=_LABEL, what="a label name"),
        )
        if len(c.problems) == before:
            c.inhibit.append(inhibit)


def _read_inventory(c: _Collected, inv: _Obj) -> None:
    for section, field in INVENTORY_SECTIONS.items():
        things = inv.get(section)
        if things is _MISSING or things is None:
            continue
        if not isinstance(things, _Map):
            inv.err(section, f"expected a mapping of {field} to labels, got {_show(things)}")
            continue
        sec = _Obj(c.problems, inv.file, things, inv.sub(section), list(things))
        known = c.inventory.setdefault(field, {})
        for thing in things:
            key = (field, str(thing))
            if key in c.inventory_at:
                first = c.inventory_at[key]
                sec.err(thing, f"already listed in {first.file}:{first.line}")
                continue
            c.inventory_at[key] = _Where(inv.file, sec.line(thing))
            if things[thing] is not None and not isinstance(things[thing], _Map):
                sec.err(thing, f"expected a mapping of labels, got {_show(things[thing])}")
                continue
            known[str(thing)] = sec.labels(thing, reserved=("alertname", "severity", field))


def _finish(c: _Collected) -> AlertConfig:
    """Cross-file checks: receivers named by routes exist; disabled ones are skipped."""
    defined = set(c.receiver_at)
    routes = []
    for o, _valid, route in c.routes:
        for key, names in (("receivers", route.receivers), ("escalate_to", route.escalate_to)):
            for rname in names:
                if rname not in defined:
                    known = ", ".join(sorted(defined)) or "none defined"
                    o.err(key, f"unknown receiver '{rname}' (receivers: {known})")
        kept = tuple(r for r in route.receivers if r in c.receivers)
        kept_escalation = tuple(r for r in route.escalate_to if r in c.receivers)
        skipped = [r for r in (*route.receivers, *route.escalate_to) if c.disabled.get(r)]
        if skipped:
            nobody = "; its alerts notify nobody" if route.receivers and not kept else ""
            c.warnings.append(f"route {route.name}: skips disabled {', '.join(skipped)}{nobody}")
        routes.append(
            msgspec.structs.replace(
                route,
                receivers=kept,
                escalate_to=kept_escalation,
                escalate_after=route.escalate_after if kept_escalation else None,
            )
        )
    if c.problems:
        raise RuleFileError(_in_file_order(c.problems))
    if not c.receivers:
        c.warnings.append("no receiver enabled: alerts are recorded but nobody is notified")
    return AlertConfig(
        rules=tuple(c.rules),
        routes=tuple(routes),
        inhibit=tuple(c.inhibit),
        receivers=dict(c.receivers),
        inventory=Inventory(by_field=c.inventory),
        defaults=Defaults(**{k: v for k, v in c.defaults.items() if v is not None}),
        warnings=tuple(dict.fromkeys(c.warnings)),
        files=tuple(c.files),
    )


_WHERE: Final = re.compile(r"^(.*?):(\d+): ")


def _in_file_order(problems: list[str]) -> list[str]:
    """Each file's problems by line (they are found key by key, not line by line)."""
    files: dict[str, int] = {}

    def key(problem: str) -> tuple[int, int]:
        m = _WHERE.match(problem)
        name, line = (m.group(1), int(m.group(2))) if m else (problem.split(":")[0], 0)
        return files.setdefault(name, len(files)), line

    return sorted(problems, key=key)


def load_config(sources: Sequence[Path | str | RuleText], env: Mapping[str, str]) -> AlertConfig:
    """Read rule files (a directory means its ``*.yaml``/``*.yml``, sorted by name) and merge
    them: rules, routes (in file order) and inhibitions are concatenated, receivers and the
    inventory merged; a rule id, receiver, route name or inventory entry defined twice is an
    error. Raises :class:`RuleFileError` listing every problem."""
    c = _Collected()
    texts = _texts_of(sources, c.problems)
    if not texts and not c.problems:
        c.problems.append("no alert rule files given")
    for text in texts:
        _read_file(c, text, env)
    return _finish(c)


def load_texts(texts: Mapping[str, str], env: Mapping[str, str]) -> AlertConfig:
    """:func:`load_config` over in-memory files, ``{name: yaml text}``."""
    return load_config([RuleText(k, v) for k, v in texts.items()], env)


# -- report ---------------------------------------------------------------------------------


def _rule_line(rule: Rule) -> str:
    severity = rule.severity
    if isinstance(rule, BurnRateRule):
        severity = "/".join(dict.fromkeys(w.severity for w in rule.windows))  # type: ignore[assignment]
    by = ",".join(group_fields(rule)) or "-"
    state = "" if rule.enabled else "  [disabled]"
    desc = f"  {rule.description}" if rule.description else ""
    return f"  {rule.id:<28} {rule.kind:<13} {severity:<10} by {by}{desc}{state}"


def check_report(config: AlertConfig) -> str:
    """What was loaded, for ``ioc rules check``: counts, each rule, routes, receivers, warnings."""
    kinds = Counter(r.kind for r in config.rules)
    lines = [
        f"Alert rules: {len(config.rules)} from {len(config.files)} file(s)"
        f" ({len(config.enabled_rules)} enabled)",
        "  " + ", ".join(f"{k} {kinds[k]}" for k in RULE_KINDS if kinds[k]),
        *(_rule_line(r) for r in config.rules),
        f"Receivers: {len(config.receivers)} enabled",
        *(f"  {name:<20} {r.kind}" for name, r in sorted(config.receivers.items())),
        f"Routes: {len(config.routes)}",
    ]
    for route in config.routes:
        match = ", ".join(str(m) for m in route.matchers) or "(everything)"
        to = ", ".join(route.receivers) or "(nobody)"
        esc = ""
        if route.escalate_after is not None:
            after = format_duration(route.escalate_after)
            esc = f"; unacknowledged {after} → {', '.join(route.escalate_to)}"
        cont = " (continue)" if route.continue_ else ""
        lines.append(f"  {route.name:<16} {match} → {to}{esc}{cont}")
    lines.append(f"Inhibit rules: {len(config.inhibit)}")
    for inh in config.inhibit:
        src = ", ".join(str(m) for m in inh.source)
        tgt = ", ".join(str(m) for m in inh.target) or "(everything)"
        eq = f" with equal {', '.join(inh.equal)}" if inh.equal else ""
        lines.append(f"  {src} mutes {tgt}{eq}")
    inv = ", ".join(
        f"{config.inventory.count(field)} {section}"
        for section, field in INVENTORY_SECTIONS.items()
        if config.inventory.count(field)
    )
    lines.append(f"Inventory: {inv or 'empty'}")
    if config.warnings:
        lines.append(f"Warnings ({len(config.warnings)}):")
        lines.extend(f"  {w}" for w in config.warnings)
    return "\n".join(lines)


def check(
    sources: Sequence[Path | str | RuleText], env: Mapping[str, str], *, strict: bool = False
) -> tuple[bool, str]:
    """``ioc rules check``: (usable, report). With ``strict``, warnings (a disabled receiver)
    also fail, for a production deploy that must notify everyone it names."""
    try:
        config = load_config(sources, env)
    except RuleFileError as exc:
        return False, str(exc)
    report = check_report(config)
    return (not (strict and config.warnings)), report
