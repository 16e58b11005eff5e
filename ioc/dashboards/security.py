"""*An toàn thông tin*: security events, targets, open alerts and quiet sources."""

from __future__ import annotations

from ioc.dashboards.common import (
    QUIET_VARIABLE,
    SERIES_POINTS,
    alert_columns,
    severity_series_overrides,
)
from ioc.dashboards.model import (
    BAD,
    GOOD,
    NEUTRAL,
    WARN,
    Dashboard,
    T,
    bargauge,
    column,
    dashboard_link,
    link,
    lower_is_better,
    piechart,
    query_variable,
    rename,
    sql,
    stat,
    steps,
    table,
    timeseries,
)

UID = "ioc-security"

#: The selected sources (all of them when "All" is chosen).
SOURCES = "source = ANY(ARRAY[${source:sqlstring}]::text[])"

CATEGORY_NAMES = {
    "malware": T("Mã độc", "Malware"),
    "intrusion": T("Xâm nhập", "Intrusion"),
    "ddos": T("Tấn công DDoS", "DDoS"),
    "phishing": T("Lừa đảo", "Phishing"),
    "web_defacement": T("Thay đổi giao diện web", "Web defacement"),
    "brute_force": T("Dò mật khẩu", "Brute force"),
    "data_leak": T("Lộ lọt dữ liệu", "Data leak"),
    "vulnerability": T("Lỗ hổng", "Vulnerability"),
    "policy": T("Vi phạm chính sách", "Policy violation"),
    "other": T("Khác", "Other"),
}


#: Security summaries of the dashboard's range, from the coarsest tier that fits each stretch.
IN_RANGE = "security_in_range($__timeFrom(), $__timeTo())"


def _events(where: str = "") -> str:
    return f"SELECT coalesce(sum(events), 0) AS value FROM {IN_RANGE} WHERE {SOURCES}{where}"


def _open_alerts(where: str = "") -> str:
    return (
        "SELECT count(*) AS value FROM alerts"
        f" WHERE state <> 'resolved' AND labels->>'team' = 'security'{where}"
    )


def security() -> Dashboard:
    first = [
        stat(T("Sự kiện trong kỳ", "Events in range"), sql(_events()), thresholds=steps(NEUTRAL)),
        stat(
            T("Nghiêm trọng", "Critical"),
            sql(_events(" AND severity = 'critical'")),
            thresholds=lower_is_better(1, 1),
        ),
        stat(
            T("Mức cao", "High"),
            sql(_events(" AND severity = 'high'")),
            thresholds=lower_is_better(1, 100),
        ),
        stat(
            T("Cảnh báo đang mở", "Open alerts"),
            sql(_open_alerts()),
            thresholds=lower_is_better(1, 5),
        ),
        stat(
            T("Chưa tiếp nhận", "Not acknowledged"),
            sql(_open_alerts(" AND state = 'firing'")),
            thresholds=lower_is_better(1, 1),
            description=T(
                "Cảnh báo ATTT đang mở mà chưa ai tiếp nhận.",
                "Open security alerts nobody has acknowledged.",
            ),
        ),
        stat(
            T("Nguồn im lặng", "Quiet sources"),
            sql(
                """
                SELECT count(*) AS value FROM security_sources
                WHERE last_event_at < now() - make_interval(secs => $quiet_seconds)
                """
            ),
            thresholds=lower_is_better(1, 1),
        ),
    ]
    categories = piechart(
        T("Loại sự kiện", "Categories"),
        sql(
            f"""
            SELECT category, sum(events) AS events
            FROM {IN_RANGE}
            WHERE {SOURCES}
            GROUP BY 1
            ORDER BY 2 DESC
            """
        ),
        w=8,
        h=8,
    )
    categories.mappings = [
        {
            "type": "value",
            "options": {
                k: {"text": t, "index": i} for i, (k, t) in enumerate(CATEGORY_NAMES.items())
            },
        }
    ]
    second = [
        timeseries(
            T("Sự kiện theo mức độ", "Events by severity"),
            [
                sql(
                    f"""
                    SELECT $__timeGroupAlias(bucket, $__interval, 0), severity AS metric,
                           sum(events) AS value
                    FROM security_in_range($__timeFrom(), $__timeTo(), $__interval_ms)
                    WHERE {SOURCES}
                    GROUP BY 1, 2
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            w=16,
            h=8,
            unit="short",
            stacked=True,
            bars=True,
            overrides=severity_series_overrides(),
            interval="5m",
            max_data_points=SERIES_POINTS,
        ),
        categories,
    ]
    third = [
        bargauge(
            T("Tài sản bị nhắm đến nhiều nhất", "Most targeted assets"),
            sql(
                """
                SELECT asset_id AS asset, sum(events) AS events
                FROM security_targets_in_range($__timeFrom(), $__timeTo())
                WHERE asset_id <> ''
                GROUP BY 1
                ORDER BY 2 DESC, 1
                LIMIT 10
                """
            ),
            w=8,
            h=8,
            thresholds=steps(NEUTRAL),
        ),
        bargauge(
            T("Đơn vị bị nhắm đến nhiều nhất", "Most targeted agencies"),
            sql(
                """
                SELECT coalesce(a.name, t.agency_code) AS agency, sum(t.events) AS events
                FROM security_targets_in_range($__timeFrom(), $__timeTo()) t
                LEFT JOIN agencies a ON a.code = t.agency_code
                WHERE t.agency_code <> ''
                GROUP BY 1
                ORDER BY 2 DESC, 1
                LIMIT 10
                """
            ),
            w=8,
            h=8,
            thresholds=steps(NEUTRAL),
        ),
        table(
            T("Nguồn sự kiện", "Event sources"),
            sql(
                """
                SELECT source, last_event_at,
                       extract(epoch FROM now() - last_event_at)::float8 AS silent_seconds
                FROM security_sources
                ORDER BY last_event_at
                LIMIT 100
                """
            ),
            w=8,
            h=8,
            overrides=[
                rename("source", T("Nguồn", "Source")),
                rename("last_event_at", T("Sự kiện cuối", "Last event")),
                rename("silent_seconds", T("Im lặng", "Silent for")),
                column("last_event_at", unit="dateTimeFromNow"),
                column(
                    "silent_seconds",
                    unit="s",
                    thresholds=steps(GOOD, (900, WARN), (1800, BAD)),
                    **{"custom__cellOptions": {"type": "color-background"}},
                ),
            ],
        ),
    ]
    fourth = [
        table(
            T("Cảnh báo ATTT", "Security alerts"),
            sql(
                """
                SELECT starts_at AS "time", severity, state, rule, summary, event_count,
                       acknowledged_by, acknowledged_at
                FROM alerts
                WHERE labels->>'team' = 'security'
                  AND (state <> 'resolved' OR $__timeFilter(starts_at))
                ORDER BY state = 'resolved',
                         CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1
                         WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END, starts_at DESC
                LIMIT 100
                """
            ),
            w=24,
            h=6,
            overrides=[
                *alert_columns(),
                rename("time", T("Bắt đầu", "Started")),
                rename("rule", T("Quy tắc", "Rule")),
                rename("event_count", T("Số sự kiện", "Events")),
                rename("acknowledged_by", T("Người tiếp nhận", "Acknowledged by")),
                rename("acknowledged_at", T("Tiếp nhận lúc", "Acknowledged at")),
                column("time", unit="dateTimeAsLocal"),
                column("acknowledged_at", unit="dateTimeAsLocal"),
            ],
        )
    ]
    return Dashboard(
        uid=UID,
        title=T("An toàn thông tin", "Information security"),
        description=T(
            "Sự kiện ATTT theo mức độ và loại, mục tiêu, cảnh báo và trạng thái tiếp nhận, "
            "nguồn im lặng.",
            "Security events by severity and category, targets, alerts and their "
            "acknowledgement, quiet sources.",
        ),
        tags=["wall", "security"],
        rows=[first, second, third, fourth],
        variables=[
            query_variable(
                "source",
                T("Nguồn", "Source"),
                "SELECT source FROM security_sources ORDER BY source",
                multi=True,
                include_all=True,
            ),
            QUIET_VARIABLE,
        ],
        refresh="30s",
        time_from="now-24h",
        links=[dashboard_link(link(T("Tổng quan IOC", "IOC overview"), "/d/ioc-overview"))],
    )
