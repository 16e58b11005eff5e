"""SQL pieces and mappings shared by the wall dashboards.

Every query reads what the pipeline keeps small: ``kpi_current`` (the newest value of each
KPI series), the summaries through ``uptime_in_range``, ``security_in_range`` and
``security_targets_in_range`` (which read each stretch of the range from the coarsest of the
five-minute, hourly and daily tiers that fits it, ``ioc.storage.rollups``), the state tables
``uptime_services`` and ``security_sources``, the per-dossier state table ``dossiers``, and
``alerts``. None reads the raw event tables, so a year of history costs a panel little more
than a day does (``bench/dashboards.py``).
"""

from __future__ import annotations

from typing import Any

from ioc.dashboards.model import (
    BAD,
    GOOD,
    NEUTRAL,
    WARN,
    T,
    column,
    constant_variable,
    rename,
    value_text,
)

# Multi-value variables go into SQL as ``= ANY(ARRAY[${var:sqlstring}]::text[])``: the
# ``sqlstring`` format quotes every value the same in every Grafana version, and an empty
# selection (a fresh database has no agencies yet) is an empty array, not ``IN ()``, which
# would be a syntax error on the wall.

#: Points a series over the summaries asks for (Grafana's "Max data points"), so that its
#: ``$__interval`` lands on a tier: 24 h gives 5 min, 30 days 2 h (hourly rows), a year 1 day
#: (daily rows). At the panel's width in pixels a month would group by 30 min and read every
#: five-minute row. 300 bars still fill a wall panel.
SERIES_POINTS = 300

#: The province: the root of the agency tree the worker stores in ``agencies``.
PROVINCE = "(SELECT code FROM agencies WHERE parent_code IS NULL ORDER BY code LIMIT 1)"

#: Seconds without a check before a service counts as silent (``IOC_KPI_SILENT_PROBE_SECONDS``)
#: and without an event before a security source counts as quiet (``IOC_KPI_QUIET_SOURCE_SECONDS``).
SILENT_VARIABLE = constant_variable("silent_seconds", "300")
QUIET_VARIABLE = constant_variable("quiet_seconds", "1800")
#: The availability objective of the burn-rate rule in ``deploy/alert-rules/services.yaml``.
OBJECTIVE_VARIABLE = constant_variable("objective", "0.995")


def kpi(key_sql: str, period: str, value: str, cast: str = "numeric") -> str:
    """One value of one KPI series from ``kpi_current``."""
    return (
        f"""SELECT ("values"->>'{value}')::{cast} AS value FROM kpi_current"""
        f" WHERE scope = 'agency' AND key = {key_sql} AND period = '{period}'"
    )


#: A service's state as a number the status grid colours: 2 up, 1 degraded, 0 down,
#: -1 silent (no check for ``$silent_seconds``).
SERVICE_STATE = """CASE
  WHEN s.last_check_at < now() - make_interval(secs => $silent_seconds) THEN -1
  WHEN s.last_status = 'up' THEN 2
  WHEN s.last_status = 'degraded' THEN 1
  ELSE 0 END"""

SERVICE_STATE_MAPPINGS: list[dict[str, Any]] = [
    {
        "type": "value",
        "options": {
            "2": {"text": T("Hoạt động", "Up"), "color": GOOD, "index": 0},
            "1": {"text": T("Suy giảm", "Degraded"), "color": WARN, "index": 1},
            "0": {"text": T("Ngừng", "Down"), "color": BAD, "index": 2},
            "-1": {"text": T("Mất tín hiệu", "Silent"), "color": "purple", "index": 3},
        },
    }
]

ALERT_STATE_MAPPINGS: list[dict[str, Any]] = [
    value_text("firing", T("Đang cảnh báo", "Firing"), BAD),
    value_text("acknowledged", T("Đã tiếp nhận", "Acknowledged"), WARN),
    value_text("resolved", T("Đã xử lý", "Resolved"), GOOD),
]

SEVERITY_MAPPINGS: list[dict[str, Any]] = [
    value_text("critical", T("Nghiêm trọng", "Critical"), "dark-red"),
    value_text("high", T("Cao", "High"), BAD),
    value_text("medium", T("Trung bình", "Medium"), WARN),
    value_text("low", T("Thấp", "Low"), "yellow"),
    value_text("info", T("Thông tin", "Info"), NEUTRAL),
]


def alert_columns(
    severity_cell: str = "color-background", state_cell: str = "color-text"
) -> list[dict[str, Any]]:
    """The overrides every alert table shares: severity, state and summary named in the
    wall's language, severity and state as coloured words."""
    return [
        rename("severity", T("Mức độ", "Severity")),
        rename("state", T("Trạng thái", "State")),
        rename("summary", T("Nội dung", "Summary")),
        column(
            "severity",
            mappings=SEVERITY_MAPPINGS,
            **{"custom__cellOptions": {"type": severity_cell}},
        ),
        column(
            "state",
            mappings=ALERT_STATE_MAPPINGS,
            **{"custom__cellOptions": {"type": state_cell}},
        ),
    ]


SEVERITY_COLOURS = {
    "critical": "dark-red",
    "high": BAD,
    "medium": WARN,
    "low": "yellow",
    "info": NEUTRAL,
}

SEVERITY_NAMES = {
    "critical": T("Nghiêm trọng", "Critical"),
    "high": T("Cao", "High"),
    "medium": T("Trung bình", "Medium"),
    "low": T("Thấp", "Low"),
    "info": T("Thông tin", "Info"),
}


def severity_series_overrides() -> list[dict[str, Any]]:
    """Each severity series in its fixed colour and language, whatever order they come in."""
    return [
        {
            "matcher": {"id": "byName", "options": sev},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": colour}},
                {"id": "displayName", "value": SEVERITY_NAMES[sev]},
            ],
        }
        for sev, colour in SEVERITY_COLOURS.items()
    ]


#: Reporting days are Asia/Ho_Chi_Minh days (DESIGN.md invariant 4), not Grafana's UTC days.
def vn_day(column: str) -> str:
    return (
        f"date_trunc('day', {column} AT TIME ZONE 'Asia/Ho_Chi_Minh')"
        " AT TIME ZONE 'Asia/Ho_Chi_Minh'"
    )
