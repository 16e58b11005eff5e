"""The few pieces of Grafana's dashboard JSON model the walls use, as plain builders.

Why plain dicts and not grafana-foundation-sdk: a dashboard here is a handful of panel kinds
with the same wall conventions (large text, threshold colours, "no data" spelled out), and
the committed JSON must stay readable in a review. Each builder returns exactly what Grafana
stores, so ``grafana/dashboards/*.json`` is this module's output and nothing else.

Texts are :class:`T` pairs (Vietnamese, English); :func:`localise` picks one language when a
dashboard is rendered, so both variants come from one source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")

#: Datasource uids the provisioning files give; panels refer to them by uid.
POSTGRES = {"type": "grafana-postgresql-datasource", "uid": "ioc-postgres"}
PROMETHEUS = {"type": "prometheus", "uid": "ioc-prometheus"}

GRID_COLUMNS = 24
#: Rows a per-row panel shows; Grafana's default (25) would drop services past the 25th.
VALUES_LIMIT = 100
SCHEMA_VERSION = 39


@dataclass(frozen=True, slots=True)
class T:
    """A text in both languages."""

    vi: str
    en: str

    def __call__(self, lang: Lang) -> str:
        return self.vi if lang == "vi" else self.en


NO_DATA = T("Không có dữ liệu", "No data")


def localise(obj: Any, lang: Lang) -> Any:
    """``obj`` with every :class:`T` replaced by its text in ``lang``."""
    if isinstance(obj, T):
        return obj(lang)
    if isinstance(obj, Mapping):
        return {k: localise(v, lang) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [localise(v, lang) for v in obj]
    return obj


# --- colours and thresholds --------------------------------------------------------------

GOOD, WARN, BAD, NEUTRAL = "green", "orange", "red", "blue"


def steps(base: str, *rest: tuple[float, str]) -> dict[str, Any]:
    """Absolute thresholds: ``base`` below the first value, then each (value, colour)."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}] + [{"color": c, "value": v} for v, c in rest],
    }


def higher_is_better(warn_below: float, bad_below: float) -> dict[str, Any]:
    return steps(BAD, (bad_below, WARN), (warn_below, GOOD))


def lower_is_better(warn_from: float, bad_from: float) -> dict[str, Any]:
    return steps(GOOD, (warn_from, WARN), (bad_from, BAD))


# --- queries -----------------------------------------------------------------------------


def sql(raw: str, fmt: Literal["table", "time_series"] = "table", ref: str = "A") -> dict[str, Any]:
    """A PostgreSQL target in code mode; Grafana expands the macros and variables in it."""
    return {
        "datasource": POSTGRES,
        "refId": ref,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": _dedent(raw),
    }


def promql(expr: str, legend: str | T = "", ref: str = "A") -> dict[str, Any]:
    return {
        "datasource": PROMETHEUS,
        "refId": ref,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": True,
    }


def _dedent(text: str) -> str:
    lines = [ln.rstrip() for ln in text.strip("\n").splitlines()]
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in lines)


# --- panels ------------------------------------------------------------------------------


@dataclass
class Panel:
    """One panel before layout: its kind, title, targets and options; ``w``×``h`` grid units."""

    kind: str
    title: T
    targets: list[dict[str, Any]]
    w: int
    h: int
    description: T | None = None
    unit: str | None = None
    decimals: int | None = None
    thresholds: dict[str, Any] | None = None
    color_mode: str = "thresholds"
    mappings: list[dict[str, Any]] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    links: list[dict[str, Any]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    transformations: list[dict[str, Any]] = field(default_factory=list)
    #: Smallest ``$__interval`` (a panel over 5-minute summaries needs no finer buckets).
    interval: str | None = None
    #: Points asked for instead of the panel's width in pixels (sets ``$__interval``).
    max_data_points: int | None = None

    def to_json(self, panel_id: int, x: int, y: int, scale: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            "noValue": NO_DATA,
            "color": {"mode": self.color_mode},
            "thresholds": self.thresholds or steps(NEUTRAL),
            "mappings": self.mappings,
            "custom": self.custom,
        }
        for key in ("unit", "decimals", "min", "max"):
            if getattr(self, key) is not None:
                defaults[key] = getattr(self, key)
        if self.links:
            defaults["links"] = self.links
        out: dict[str, Any] = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "gridPos": {"x": x, "y": y, "w": self.w, "h": self.h * scale},
            "datasource": self.targets[0]["datasource"] if self.targets else POSTGRES,
            "targets": self.targets,
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": _scaled(self.options, scale),
        }
        if self.description is not None:
            out["description"] = self.description
        if self.transformations:
            out["transformations"] = self.transformations
        if self.interval is not None:
            out["interval"] = self.interval
        if self.max_data_points is not None:
            out["maxDataPoints"] = self.max_data_points
        return out


def _scaled(options: dict[str, Any], scale: int) -> dict[str, Any]:
    """Text sizes grow with the screen: a 4K wall is read from as far as a Full HD one."""
    out = dict(options)
    if "text" in out:
        out["text"] = {k: v * scale for k, v in out["text"].items()}
    return out


def reduce_options(*, per_row: bool) -> dict[str, Any]:
    """The last value of each numeric field, or (``per_row``) one value per row, named by the
    row's text columns, up to :data:`VALUES_LIMIT`."""
    out: dict[str, Any] = {"calcs": ["lastNotNull"], "fields": "", "values": per_row}
    if per_row:
        out["limit"] = VALUES_LIMIT
    return out


def stat(
    title: T,
    target: dict[str, Any],
    *,
    w: int = 4,
    h: int = 5,
    unit: str | None = None,
    thresholds: dict[str, Any] | None = None,
    decimals: int | None = None,
    description: T | None = None,
    value_size: int = 64,
    links: Sequence[dict[str, Any]] = (),
    mappings: Sequence[dict[str, Any]] = (),
) -> Panel:
    """One big number, coloured by its thresholds: the wall's main element."""
    return Panel(
        "stat",
        title,
        [target],
        w,
        h,
        description=description,
        unit=unit,
        decimals=decimals,
        thresholds=thresholds,
        links=list(links),
        mappings=list(mappings),
        options={
            "reduceOptions": reduce_options(per_row=False),
            "orientation": "auto",
            "textMode": "value",
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "center",
            "text": {"valueSize": value_size, "titleSize": 20},
        },
    )


def timeseries(
    title: T,
    targets: list[dict[str, Any]],
    *,
    w: int = 12,
    h: int = 8,
    unit: str | None = None,
    stacked: bool = False,
    bars: bool = False,
    description: T | None = None,
    overrides: Sequence[dict[str, Any]] = (),
    thresholds: dict[str, Any] | None = None,
    threshold_style: str = "off",
    min: float | None = None,
    interval: str | None = None,
    max_data_points: int | None = None,
) -> Panel:
    return Panel(
        "timeseries",
        title,
        targets,
        w,
        h,
        interval=interval,
        max_data_points=max_data_points,
        description=description,
        unit=unit,
        color_mode="palette-classic",
        thresholds=thresholds,
        min=min,
        overrides=list(overrides),
        custom={
            "drawStyle": "bars" if bars else "line",
            "lineWidth": 2,
            "fillOpacity": 60 if bars else 15,
            "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": threshold_style},
        },
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def table(
    title: T,
    target: dict[str, Any],
    *,
    w: int = 12,
    h: int = 8,
    overrides: Sequence[dict[str, Any]] = (),
    description: T | None = None,
    sort_by: Sequence[tuple[str, bool]] = (),
) -> Panel:
    return Panel(
        "table",
        title,
        [target],
        w,
        h,
        description=description,
        overrides=list(overrides),
        color_mode="thresholds",
        custom={"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False},
        options={
            "showHeader": True,
            "cellHeight": "md",
            "footer": {"show": False, "reducer": ["sum"], "fields": ""},
            "sortBy": [{"displayName": name, "desc": desc} for name, desc in sort_by],
        },
    )


def bargauge(
    title: T,
    target: dict[str, Any],
    *,
    w: int = 8,
    h: int = 8,
    unit: str | None = None,
    thresholds: dict[str, Any] | None = None,
    min: float | None = 0,
    max: float | None = None,
    description: T | None = None,
    links: Sequence[dict[str, Any]] = (),
    decimals: int | None = None,
) -> Panel:
    """Named values as horizontal bars (top lists), coloured by thresholds."""
    return Panel(
        "bargauge",
        title,
        [target],
        w,
        h,
        description=description,
        unit=unit,
        decimals=decimals,
        thresholds=thresholds,
        min=min,
        max=max,
        links=list(links),
        options={
            "reduceOptions": reduce_options(per_row=True),
            "orientation": "horizontal",
            "displayMode": "basic",
            "valueMode": "color",
            "showUnfilled": True,
            "namePlacement": "left",
            "sizing": "auto",
            "minVizHeight": 16,
            "text": {"valueSize": 18, "titleSize": 16},
        },
    )


def piechart(
    title: T,
    target: dict[str, Any],
    *,
    w: int = 6,
    h: int = 8,
    unit: str | None = None,
    description: T | None = None,
) -> Panel:
    return Panel(
        "piechart",
        title,
        [target],
        w,
        h,
        description=description,
        unit=unit,
        color_mode="palette-classic",
        options={
            "reduceOptions": reduce_options(per_row=True),
            "pieType": "donut",
            "displayLabels": ["percent"],
            "legend": {
                "displayMode": "table",
                "placement": "right",
                "showLegend": True,
                "values": ["value", "percent"],
            },
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def state_timeline(
    title: T,
    target: dict[str, Any],
    *,
    w: int = 24,
    h: int = 10,
    mappings: Sequence[dict[str, Any]] = (),
    thresholds: dict[str, Any] | None = None,
    description: T | None = None,
) -> Panel:
    return Panel(
        "state-timeline",
        title,
        [target],
        w,
        h,
        description=description,
        thresholds=thresholds,
        mappings=list(mappings),
        custom={"fillOpacity": 80, "lineWidth": 0},
        options={
            "mergeValues": True,
            "showValue": "never",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def value_text(value: str, text: T, color: str) -> dict[str, Any]:
    """A value mapping: a raw value shown as a word in a colour (``down`` → "Ngừng", red)."""
    return {"type": "value", "options": {value: {"text": text, "color": color, "index": 0}}}


def rename(column: str, text: T) -> dict[str, Any]:
    """A field override giving a column its display name."""
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [{"id": "displayName", "value": text}],
    }


def column(column: str, **props: Any) -> dict[str, Any]:
    """A field override setting Grafana field properties (``unit``, ``custom.width``, …)."""
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [{"id": k.replace("__", "."), "value": v} for k, v in props.items()],
    }


def link(title: T, url: str) -> dict[str, Any]:
    """A data link on a panel's values; ``url`` may use ``${__data.fields.x}`` and the
    dashboard's variables (``${__url_time_range}`` keeps the time range)."""
    return {"title": title, "url": url}


def dashboard_link(data_link: dict[str, Any]) -> dict[str, Any]:
    """The same target as a link in the dashboard's header."""
    return {
        "title": data_link["title"],
        "type": "link",
        "url": data_link["url"],
        "icon": "dashboard",
        "asDropdown": False,
        "includeVars": False,
        "keepTime": True,
        "targetBlank": False,
        "tags": [],
        "tooltip": "",
    }


# --- variables ---------------------------------------------------------------------------


def query_variable(
    name: str,
    label: T,
    query: str,
    *,
    multi: bool = False,
    include_all: bool = False,
    all_value: str | None = None,
) -> dict[str, Any]:
    """A variable filled by SQL (``__text``/``__value`` columns); refreshed on time change."""
    var: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": POSTGRES,
        "query": _dedent(query),
        "definition": _dedent(query),
        "refresh": 2,
        "multi": multi,
        "includeAll": include_all,
        "sort": 0,
        "hide": 0,
        "current": {},
        "options": [],
    }
    if all_value is not None:
        var["allValue"] = all_value
    return var


def custom_variable(name: str, label: T, choices: Sequence[tuple[T, str]]) -> dict[str, Any]:
    """A fixed list (``text : value`` pairs); the first choice is selected."""
    first_text, first_value = choices[0]
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": [_CustomQuery(t, v) for t, v in choices],
        "multi": False,
        "includeAll": False,
        "hide": 0,
        "current": {"selected": True, "text": first_text, "value": first_value},
        "options": [
            {"selected": i == 0, "text": t, "value": v} for i, (t, v) in enumerate(choices)
        ],
    }


@dataclass(frozen=True, slots=True)
class _CustomQuery:
    text: T
    value: str


def constant_variable(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "type": "constant", "query": value, "hide": 2}


# --- dashboards --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Screen:
    """A wall screen: the grid height that fits it in kiosk mode and the text scale.

    Grafana's grid cell is 30 px high with an 8 px gap, so ``rows`` units take
    ``rows × 38 − 8`` px; kiosk mode leaves the whole height but a small padding.
    """

    name: str
    width: int
    height: int
    scale: int

    @property
    def rows(self) -> int:
        return (self.height - 24 + 8) // 38

    @property
    def suffix(self) -> str:
        return "" if self.scale == 1 else f"-{self.name}"


FULL_HD = Screen("1080p", 1920, 1080, 1)
UHD = Screen("4k", 3840, 2160, 2)
SCREENS = (FULL_HD, UHD)


@dataclass
class Dashboard:
    """A dashboard before rendering: rows of panels laid left to right, top to bottom."""

    uid: str
    title: T
    description: T
    tags: list[str]
    rows: list[list[Panel]]
    variables: list[dict[str, Any]] = field(default_factory=list)
    refresh: str = "1m"
    time_from: str = "now-24h"
    links: list[dict[str, Any]] = field(default_factory=list)

    def render(self, lang: Lang, screen: Screen = FULL_HD) -> dict[str, Any]:
        panels = []
        y = 0
        panel_id = 1
        for row in self.rows:
            x = 0
            for p in row:
                panels.append(p.to_json(panel_id, x, y, screen.scale))
                panel_id += 1
                x += p.w
            y += max(p.h for p in row) * screen.scale
        uid = self.uid + ("" if lang == "vi" else "-en") + screen.suffix
        title = self.title(lang) + ("" if screen.scale == 1 else f" ({screen.name})")
        doc = {
            "uid": uid,
            "title": title,
            "description": self.description,
            "tags": ["ioc", *self.tags, lang, screen.name],
            "timezone": "Asia/Ho_Chi_Minh",
            "editable": False,
            "graphTooltip": 1,
            "liveNow": False,
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m"]},
            "fiscalYearStartMonth": 0,
            "weekStart": "monday",
            "links": self.links,
            "annotations": {"list": [_alert_annotations()]},
            "templating": {"list": self.variables},
            "panels": panels,
            "version": 1,
        }
        suffix = ("" if lang == "vi" else "-en") + screen.suffix
        out = _retarget(localise(doc, lang), suffix)
        for var in out["templating"]["list"]:
            if var["type"] == "custom" and isinstance(var["query"], list):
                var["query"] = ", ".join(
                    f"{_escape_commas(q.text(lang))} : {q.value}" for q in var["query"]
                )
        return out  # type: ignore[no-any-return]


def _escape_commas(text: str) -> str:
    """Grafana splits a custom variable's query on unescaped commas first."""
    return text.replace(",", "\\,")


#: A link to another IOC dashboard; rendered to the same language and screen as the page.
_DASHBOARD_URL = re.compile(r"/d/(ioc-[a-z]+)(?=[?/\"]|$)")


def _retarget(obj: Any, suffix: str) -> Any:
    if isinstance(obj, str):
        return _DASHBOARD_URL.sub(lambda m: f"/d/{m.group(1)}{suffix}", obj)
    if isinstance(obj, dict):
        return {k: _retarget(v, suffix) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_retarget(v, suffix) for v in obj]
    return obj


def _alert_annotations() -> dict[str, Any]:
    """IOC alerts as annotations on every time axis (the alert notifier also posts to
    Grafana's annotation API when configured; this one needs no Grafana write access)."""
    return {
        "name": T("Cảnh báo IOC", "IOC alerts"),
        "datasource": POSTGRES,
        "enable": True,
        "iconColor": "red",
        "target": sql(
            """
            SELECT starts_at AS time, ends_at AS "timeEnd",
                   severity || ': ' || summary AS text, rule AS tags
            FROM alerts
            WHERE $__timeFilter(starts_at) AND severity IN ('critical', 'high')
            ORDER BY starts_at
            LIMIT 200
            """
        ),
    }


def fits(panels: Iterable[dict[str, Any]], screen: Screen) -> bool:
    return max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=0) <= screen.rows
