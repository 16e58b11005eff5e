"""*Tổng quan IOC*: the one-screen summary at the head of the wall playlist."""

from __future__ import annotations

from ioc.dashboards.common import (
    PROVINCE,
    QUIET_VARIABLE,
    SERIES_POINTS,
    SERVICE_STATE,
    SERVICE_STATE_MAPPINGS,
    SILENT_VARIABLE,
    alert_columns,
    kpi,
    severity_series_overrides,
)
from ioc.dashboards.model import (
    BAD,
    GOOD,
    NEUTRAL,
    Dashboard,
    Panel,
    T,
    bargauge,
    column,
    dashboard_link,
    higher_is_better,
    link,
    lower_is_better,
    reduce_options,
    rename,
    sql,
    stat,
    steps,
    table,
    timeseries,
)

UID = "ioc-overview"


def overview() -> Dashboard:
    dossiers = link(T("Dịch vụ công", "Public services"), "/d/ioc-dossiers")
    services = link(T("Hạ tầng & dịch vụ số", "Digital services"), "/d/ioc-services")
    security = link(T("An toàn thông tin", "Information security"), "/d/ioc-security")
    first: list[Panel] = [
        stat(
            T("Hồ sơ tiếp nhận hôm nay", "Dossiers received today"),
            sql(kpi(PROVINCE, "today", "received")),
            thresholds=steps(NEUTRAL),
            links=[dossiers],
        ),
        stat(
            T("Đã giải quyết hôm nay", "Resolved today"),
            sql(kpi(PROVINCE, "today", "finished")),
            thresholds=steps(NEUTRAL),
            links=[dossiers],
        ),
        stat(
            T("Đúng hạn (năm)", "On time (year)"),
            sql(kpi(PROVINCE, "year", "on_time_ratio")),
            unit="percentunit",
            decimals=1,
            thresholds=higher_is_better(0.95, 0.85),
            description=T(
                "Chỉ số 2.1 (766): hồ sơ đúng hạn ÷ hồ sơ tiếp nhận hoặc đang xử lý trong năm.",
                "766 indicator 2.1: dossiers on time ÷ dossiers received or in process this year.",
            ),
            links=[dossiers],
        ),
        stat(
            T("Hồ sơ quá hạn", "Overdue dossiers"),
            sql(kpi(PROVINCE, "today", "overdue")),
            thresholds=lower_is_better(1, 20),
            links=[dossiers],
        ),
        stat(
            T("Dịch vụ đang ngừng", "Services down"),
            sql(
                f"""
                SELECT count(*) AS value FROM uptime_services s WHERE {SERVICE_STATE} IN (0, -1)
                """
            ),
            thresholds=lower_is_better(1, 1),
            description=T(
                "Dịch vụ có lần kiểm tra gần nhất là ngừng, hoặc mất tín hiệu.",
                "Services whose last check was down, or that went silent.",
            ),
            links=[services],
        ),
        stat(
            T("Cảnh báo ATTT nghiêm trọng", "Open critical security alerts"),
            sql(
                """
                SELECT count(*) AS value FROM alerts
                WHERE state <> 'resolved' AND severity = 'critical'
                  AND labels->>'team' = 'security'
                """
            ),
            thresholds=lower_is_better(1, 1),
            links=[security],
        ),
    ]
    second: list[Panel] = [
        stat(
            T("Điểm 766 dự kiến (năm)", "Projected 766 points (year)"),
            sql(
                f"""
                SELECT sum(p.value::numeric) AS value
                FROM kpi_current k, jsonb_each_text(k."values") AS p
                WHERE k.scope = 'agency' AND k.key = {PROVINCE} AND k.period = 'year'
                  AND p.key LIKE 'points\\_%' AND p.value IS NOT NULL
                """
            ),
            decimals=2,
            thresholds=steps(NEUTRAL),
            description=T(
                "Tổng điểm các chỉ số 766 đo được từ dữ liệu hồ sơ của năm đến nay.",
                "Sum of the 766 indicators measurable from this year's dossier data.",
            ),
            links=[dossiers],
        ),
        stat(
            T("Sắp đến hạn", "Due soon"),
            sql(kpi(PROVINCE, "today", "at_risk")),
            thresholds=lower_is_better(1, 50),
            links=[dossiers],
        ),
        stat(
            T("Tỷ lệ trực tuyến (tháng)", "Online share (month)"),
            sql(kpi(PROVINCE, "month", "online_share")),
            unit="percentunit",
            decimals=1,
            thresholds=higher_is_better(0.5, 0.3),
            links=[dossiers],
        ),
        stat(
            T("Sẵn sàng dịch vụ 24h", "Service availability 24h"),
            sql(
                """
                SELECT avg(("values"->>'availability')::numeric) AS value FROM kpi_current
                WHERE scope = 'service' AND period = '24h'
                """
            ),
            unit="percentunit",
            decimals=2,
            thresholds=higher_is_better(0.995, 0.98),
            links=[services],
        ),
        stat(
            T("Sự kiện ATTT trong kỳ", "Security events in range"),
            sql(
                "SELECT coalesce(sum(events), 0) AS value"
                " FROM security_in_range($__timeFrom(), $__timeTo())"
            ),
            unit="short",
            thresholds=steps(NEUTRAL),
            links=[security],
        ),
        stat(
            T("Nguồn ATTT im lặng", "Quiet security sources"),
            sql(
                """
                SELECT count(*) AS value FROM security_sources
                WHERE last_event_at < now() - make_interval(secs => $quiet_seconds)
                """
            ),
            thresholds=lower_is_better(1, 1),
            links=[security],
        ),
    ]
    third: list[Panel] = [
        timeseries(
            T("Sự kiện ATTT theo mức độ", "Security events by severity"),
            [
                sql(
                    """
                    SELECT $__timeGroupAlias(bucket, $__interval, 0), severity AS metric,
                           sum(events) AS value
                    FROM security_in_range($__timeFrom(), $__timeTo(), $__interval_ms)
                    GROUP BY 1, 2
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            w=12,
            unit="short",
            stacked=True,
            bars=True,
            overrides=severity_series_overrides(),
            interval="5m",
            max_data_points=SERIES_POINTS,
        ),
        Panel(
            "stat",
            T("Trạng thái dịch vụ", "Service status"),
            [
                sql(
                    f"""
                    SELECT s.service_id AS service, {SERVICE_STATE} AS state
                    FROM uptime_services s
                    ORDER BY state, s.service_id
                    """
                )
            ],
            w=12,
            h=8,
            mappings=SERVICE_STATE_MAPPINGS,
            thresholds=steps(BAD, (1, "orange"), (2, GOOD)),
            links=[services],
            options={
                "reduceOptions": reduce_options(per_row=True),
                "orientation": "horizontal",
                "textMode": "value_and_name",
                "colorMode": "background",
                "graphMode": "none",
                "justifyMode": "center",
                "wideLayout": True,
                "text": {"valueSize": 16, "titleSize": 14},
            },
        ),
    ]
    fourth: list[Panel] = [
        bargauge(
            T("Đơn vị nhiều hồ sơ quá hạn", "Agencies with most overdue dossiers"),
            sql(
                """
                SELECT a.name AS agency, ("values"->>'overdue')::int AS overdue
                FROM kpi_current k JOIN agencies a ON a.code = k.key
                WHERE k.scope = 'agency' AND k.period = 'today'
                  AND NOT EXISTS (SELECT 1 FROM agencies c WHERE c.parent_code = a.code)
                  AND ("values"->>'overdue')::int > 0
                ORDER BY overdue DESC, agency
                LIMIT 8
                """
            ),
            w=10,
            thresholds=lower_is_better(1, 10),
            description=T(
                "Các đơn vị tiếp nhận hồ sơ (không có đơn vị con), để không đếm trùng.",
                "Agencies that receive dossiers (no sub-units), so nothing counts twice.",
            ),
        ),
        table(
            T("Cảnh báo đang mở", "Open alerts"),
            sql(
                """
                SELECT starts_at AS "time", severity, state, summary, acknowledged_by
                FROM alerts
                WHERE state <> 'resolved'
                ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1
                         WHEN 'medium' THEN 2 WHEN 'low' THEN 3 ELSE 4 END, starts_at DESC
                LIMIT 50
                """
            ),
            w=14,
            overrides=[
                *alert_columns(),
                rename("time", T("Bắt đầu", "Since")),
                rename("acknowledged_by", T("Người tiếp nhận", "Acknowledged by")),
                column("time", unit="dateTimeFromNow", **{"custom__width": 150}),
            ],
        ),
    ]
    for p in first + second:
        p.h = 5
    return Dashboard(
        uid=UID,
        title=T("Tổng quan IOC", "IOC overview"),
        description=T(
            "Tóm tắt một màn hình: dịch vụ công hôm nay, dịch vụ số, an toàn thông tin, cảnh báo.",
            "One-screen summary: today's public services, digital services, security, alerts.",
        ),
        tags=["wall", "overview"],
        rows=[first, second, third, fourth],
        variables=[SILENT_VARIABLE, QUIET_VARIABLE],
        refresh="30s",
        time_from="now-24h",
        links=[dashboard_link(x) for x in (dossiers, services, security)],
    )
