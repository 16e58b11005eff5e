"""*Hạ tầng & dịch vụ số*: e-government service status, availability, incidents, TLS."""

from __future__ import annotations

from ioc.dashboards.common import (
    OBJECTIVE_VARIABLE,
    SERIES_POINTS,
    SERVICE_STATE,
    SERVICE_STATE_MAPPINGS,
    SILENT_VARIABLE,
    alert_columns,
)
from ioc.dashboards.model import (
    BAD,
    GOOD,
    WARN,
    Dashboard,
    T,
    bargauge,
    column,
    dashboard_link,
    higher_is_better,
    link,
    lower_is_better,
    rename,
    sql,
    stat,
    state_timeline,
    steps,
    table,
    timeseries,
)

UID = "ioc-services"

#: Uptime summaries of the range with the five-minute buckets under declared maintenance left
#: out (as the availability KPI counts them), from the coarsest tier that fits each stretch.
OUTSIDE_MAINTENANCE = "uptime_in_range($__timeFrom(), $__timeTo(), outside_maintenance => true)"
#: The same grouped by ``$__interval``, maintenance included (status and latency as they were).
BY_INTERVAL = "uptime_in_range($__timeFrom(), $__timeTo(), $__interval_ms)"


def _count_state(*states: int) -> str:
    return (
        f"SELECT count(*) AS value FROM uptime_services s"
        f" WHERE {SERVICE_STATE} IN ({', '.join(map(str, states))})"
    )


def services() -> Dashboard:
    first = [
        stat(T("Hoạt động", "Up"), sql(_count_state(2)), thresholds=steps(GOOD)),
        stat(T("Suy giảm", "Degraded"), sql(_count_state(1)), thresholds=lower_is_better(1, 5)),
        stat(T("Ngừng", "Down"), sql(_count_state(0)), thresholds=lower_is_better(1, 1)),
        stat(
            T("Mất tín hiệu", "Silent"),
            sql(_count_state(-1)),
            thresholds=lower_is_better(1, 1),
            description=T(
                "Không nhận được kết quả kiểm tra trong $silent_seconds giây.",
                "No check result for $silent_seconds seconds.",
            ),
        ),
        stat(
            T("Sẵn sàng trong kỳ", "Availability in range"),
            sql(
                f"""
                SELECT sum(u.up + u.degraded)::numeric / nullif(sum(u.checks), 0) AS value
                FROM {OUTSIDE_MAINTENANCE} u
                """
            ),
            unit="percentunit",
            decimals=2,
            thresholds=higher_is_better(0.995, 0.98),
            description=T(
                "Lần kiểm tra hoạt động hoặc suy giảm ÷ tổng lần kiểm tra, ngoài giờ bảo trì.",
                "Checks up or degraded ÷ checks, outside declared maintenance.",
            ),
        ),
        stat(
            T("Chứng chỉ TLS hết hạn < 30 ngày", "TLS certificates expiring < 30 days"),
            sql(
                """
                SELECT count(*) AS value FROM uptime_services
                WHERE tls_expires_at < now() + interval '30 days'
                """
            ),
            thresholds=lower_is_better(1, 1),
        ),
    ]
    timeline = state_timeline(
        T("Trạng thái theo thời gian", "Status over time"),
        sql(
            f"""
            SELECT $__timeGroupAlias(bucket, $__interval), service_id AS metric,
                   CASE WHEN sum(down) > 0 THEN 0 WHEN sum(degraded) > 0 THEN 1 ELSE 2 END
                     AS value
            FROM {BY_INTERVAL}
            GROUP BY 1, 2
            ORDER BY 1, 2
            """,
            fmt="time_series",
        ),
        h=9,
        mappings=list(SERVICE_STATE_MAPPINGS),
        thresholds=steps(BAD, (1, WARN), (2, GOOD)),
        description=T(
            "Mỗi ô là khoảng thời gian: ngừng nếu có lần kiểm tra ngừng, suy giảm nếu có lần "
            "suy giảm, còn lại hoạt động.",
            "Each cell is an interval: down if any check was down, degraded if any was "
            "degraded, otherwise up.",
        ),
    )
    timeline.interval = "5m"
    timeline.max_data_points = SERIES_POINTS
    third = [
        bargauge(
            T(
                "Sẵn sàng theo dịch vụ (mục tiêu 99,5%)",
                "Availability per service (objective 99.5%)",
            ),
            sql(
                f"""
                SELECT u.service_id AS service,
                       sum(u.up + u.degraded)::numeric / nullif(sum(u.checks), 0) AS availability
                FROM {OUTSIDE_MAINTENANCE} u
                GROUP BY 1
                HAVING sum(u.checks) > 0
                ORDER BY 2, 1
                LIMIT 40
                """
            ),
            w=12,
            h=7,
            unit="percentunit",
            decimals=2,
            min=0.9,
            max=1,
            thresholds=higher_is_better(0.995, 0.98),
        ),
        table(
            T("Sự cố", "Incidents"),
            sql(
                """
                SELECT starts_at AS "time", labels->>'service_id' AS service, severity, state,
                       extract(epoch FROM coalesce(ends_at, now()) - starts_at)::float8 AS duration,
                       summary
                FROM alerts
                WHERE labels ? 'service_id'
                  AND ($__timeFilter(starts_at) OR state <> 'resolved')
                ORDER BY starts_at DESC
                LIMIT 100
                """
            ),
            w=12,
            h=7,
            overrides=[
                *alert_columns(severity_cell="color-text", state_cell="color-background"),
                rename("time", T("Bắt đầu", "Started")),
                rename("service", T("Dịch vụ", "Service")),
                rename("duration", T("Thời gian", "Duration")),
                column("time", unit="dateTimeAsLocal"),
                column("duration", unit="s"),
            ],
        ),
    ]
    fourth = [
        timeseries(
            T("Độ trễ trung bình", "Mean latency"),
            [
                sql(
                    f"""
                    SELECT $__timeGroupAlias(bucket, $__interval), service_id AS metric,
                           sum(latency_ms_sum) / nullif(sum(latency_samples), 0) AS value
                    FROM {BY_INTERVAL}
                    GROUP BY 1, 2
                    ORDER BY 1, 2
                    """,
                    fmt="time_series",
                )
            ],
            w=14,
            h=7,
            unit="ms",
            min=0,
            interval="5m",
            max_data_points=SERIES_POINTS,
        ),
        table(
            T("Chứng chỉ TLS", "TLS certificates"),
            sql(
                """
                SELECT service_id AS service, tls_expires_at,
                       extract(epoch FROM tls_expires_at - now())::float8 / 86400 AS days_left
                FROM uptime_services
                WHERE tls_expires_at IS NOT NULL
                ORDER BY tls_expires_at
                LIMIT 50
                """
            ),
            w=10,
            h=7,
            overrides=[
                rename("service", T("Dịch vụ", "Service")),
                rename("tls_expires_at", T("Hết hạn", "Expires")),
                rename("days_left", T("Còn (ngày)", "Days left")),
                column("tls_expires_at", unit="dateTimeAsLocal"),
                column(
                    "days_left",
                    decimals=0,
                    thresholds=steps(BAD, (7, WARN), (30, GOOD)),
                    **{"custom__cellOptions": {"type": "color-background"}},
                ),
            ],
        ),
    ]
    return Dashboard(
        uid=UID,
        title=T("Hạ tầng & dịch vụ số", "Digital services"),
        description=T(
            "Hệ thống chính quyền điện tử: trạng thái, sẵn sàng so với mục tiêu, sự cố, TLS.",
            "E-government systems: status, availability against objective, incidents, TLS.",
        ),
        tags=["wall", "services"],
        rows=[first, [timeline], third, fourth],
        variables=[SILENT_VARIABLE, OBJECTIVE_VARIABLE],
        refresh="30s",
        time_from="now-24h",
        links=[dashboard_link(link(T("Tổng quan IOC", "IOC overview"), "/d/ioc-overview"))],
    )
