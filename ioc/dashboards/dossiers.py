"""*Dịch vụ công*: dossier KPIs by agency level and agency, with drill-down."""

from __future__ import annotations

from ioc.dashboards.common import vn_day
from ioc.dashboards.model import (
    NEUTRAL,
    Dashboard,
    T,
    bargauge,
    column,
    custom_variable,
    dashboard_link,
    higher_is_better,
    link,
    lower_is_better,
    piechart,
    query_variable,
    reduce_options,
    rename,
    sql,
    stat,
    steps,
    table,
    timeseries,
)

UID = "ioc-dossiers"

#: The selected agencies' rows of the selected period. Agencies of one level are disjoint
#: subtrees, so their counts add up; ratios are recomputed from the sums.
SELECTED = """FROM kpi_current
WHERE scope = 'agency' AND period = '$period'
  AND key = ANY(ARRAY[${agency:sqlstring}]::text[])"""

#: The selected agencies and everything under them: dossiers carry the receiving unit.
SUBTREE = """WITH RECURSIVE sub AS (
  SELECT code FROM agencies WHERE code = ANY(ARRAY[${agency:sqlstring}]::text[])
  UNION
  SELECT a.code FROM agencies a JOIN sub ON a.parent_code = sub.code
)"""

PERIODS = [
    (T("Hôm nay", "Today"), "today"),
    (T("Tháng này", "This month"), "month"),
    (T("Quý này", "This quarter"), "quarter"),
    (T("Năm nay", "This year"), "year"),
    (T("24 giờ qua", "Last 24 hours"), "rolling_24h"),
]
LEVELS = [
    (T("Sở, ban, ngành", "Departments"), "department"),
    (T("Cấp xã", "Communes"), "commune"),
    (T("Cấp huyện (trước 2025)", "Districts (before 2025)"), "district"),
    (T("Toàn tỉnh", "Province"), "province"),
]


def _sum(value: str) -> str:
    return f"""SELECT coalesce(sum(("values"->>'{value}')::numeric), 0) AS value {SELECTED}"""


def _ratio(numerator: str, denominator: str) -> str:
    return (
        f"""SELECT sum(("values"->>'{numerator}')::numeric)"""
        f""" / nullif(sum(("values"->>'{denominator}')::numeric), 0) AS value {SELECTED}"""
    )


def dossiers() -> Dashboard:
    drill = link(
        T("Xem đơn vị này", "Open this agency"),
        "/d/ioc-dossiers?var-level=${__data.fields.level}&var-agency=${__data.fields.code}"
        "&var-period=${period}&${__url_time_range}",
    )
    first = [
        stat(T("Tiếp nhận", "Received"), sql(_sum("received")), thresholds=steps(NEUTRAL)),
        stat(T("Đã giải quyết", "Resolved"), sql(_sum("finished")), thresholds=steps(NEUTRAL)),
        stat(
            T("Đúng hạn", "On time"),
            sql(_ratio("on_time", "counted")),
            unit="percentunit",
            decimals=1,
            thresholds=higher_is_better(0.95, 0.85),
            description=T(
                "Chỉ số 2.1 (766): hồ sơ đúng hạn ÷ hồ sơ tiếp nhận hoặc đang xử lý trong kỳ.",
                "766 indicator 2.1: dossiers on time ÷ dossiers received or in process.",
            ),
        ),
        stat(
            T("Quá hạn", "Overdue"),
            sql(_sum("overdue")),
            thresholds=lower_is_better(1, 20),
        ),
        stat(
            T("Sắp đến hạn", "Due soon"),
            sql(_sum("at_risk")),
            thresholds=lower_is_better(1, 50),
        ),
        stat(
            T("Thanh toán trực tuyến", "Paid online"),
            sql(
                """
                SELECT avg(("values"->>'paid_online_ratio')::numeric) AS value
                """
                + SELECTED
            ),
            unit="percentunit",
            decimals=1,
            thresholds=higher_is_better(0.5, 0.2),
        ),
    ]
    second = [
        timeseries(
            T("Hồ sơ theo ngày", "Dossiers per day"),
            [
                sql(
                    f"""
                    {SUBTREE}
                    SELECT {vn_day("received_at")} AS "time", count(*) AS received
                    FROM dossiers
                    WHERE $__timeFilter(received_at) AND agency_code IN (SELECT code FROM sub)
                    GROUP BY 1
                    ORDER BY 1
                    """,
                    fmt="time_series",
                    ref="A",
                ),
                sql(
                    f"""
                    {SUBTREE}
                    SELECT {vn_day("processed_at")} AS "time", count(*) AS resolved
                    FROM dossiers
                    WHERE $__timeFilter(processed_at) AND agency_code IN (SELECT code FROM sub)
                    GROUP BY 1
                    ORDER BY 1
                    """,
                    fmt="time_series",
                    ref="B",
                ),
            ],
            w=16,
            h=8,
            unit="short",
            bars=True,
            min=0,
            overrides=[
                rename("received", T("Tiếp nhận", "Received")),
                rename("resolved", T("Đã giải quyết", "Resolved")),
                # Bars for received, a line for resolved: side by side, neither hides the other.
                column("resolved", **{"custom.drawStyle": "line", "custom.fillOpacity": 0}),
            ],
        ),
        piechart(
            T("Kênh tiếp nhận", "Channels"),
            sql(
                f"""
                SELECT coalesce(sum(("values"->>'direct')::numeric), 0) AS direct,
                       coalesce(sum(("values"->>'online')::numeric), 0) AS online,
                       coalesce(sum(("values"->>'postal')::numeric), 0) AS postal
                {SELECTED}
                """
            ),
            w=8,
            h=8,
        ),
    ]
    second[1].options["reduceOptions"] = reduce_options(per_row=False)
    second[1].overrides = [
        rename("direct", T("Trực tiếp", "In person")),
        rename("online", T("Trực tuyến", "Online")),
        rename("postal", T("Bưu chính công ích", "Public postal")),
    ]
    third = [
        table(
            T("Đơn vị theo tỷ lệ đúng hạn", "Agencies by on-time ratio"),
            sql(
                """
                SELECT a.name AS agency, a.code, a.level,
                       ("values"->>'on_time_ratio')::numeric AS on_time_ratio,
                       ("values"->>'overdue')::int AS overdue,
                       ("values"->>'received')::int AS received
                FROM kpi_current k JOIN agencies a ON a.code = k.key
                WHERE k.scope = 'agency' AND k.period = '$period' AND a.level = '$level'
                ORDER BY on_time_ratio ASC NULLS LAST, overdue DESC, agency
                LIMIT 100
                """
            ),
            w=12,
            h=9,
            overrides=[
                rename("agency", T("Đơn vị", "Agency")),
                rename("on_time_ratio", T("Đúng hạn", "On time")),
                rename("overdue", T("Quá hạn", "Overdue")),
                rename("received", T("Tiếp nhận", "Received")),
                column("agency", links=[drill]),
                column("code", **{"custom__hidden": True}),
                column("level", **{"custom__hidden": True}),
                column(
                    "on_time_ratio",
                    unit="percentunit",
                    decimals=1,
                    min=0,
                    max=1,
                    thresholds=higher_is_better(0.95, 0.85),
                    **{"custom__cellOptions": {"type": "gauge", "mode": "basic"}},
                ),
                column(
                    "overdue",
                    thresholds=lower_is_better(1, 20),
                    **{"custom__cellOptions": {"type": "color-text"}},
                ),
            ],
        ),
        table(
            T("Hồ sơ quá hạn và sắp đến hạn", "Overdue and soon-due dossiers"),
            sql(
                f"""
                {SUBTREE}
                SELECT d.due_at, d.dossier_id, p.name AS procedure, a.name AS agency,
                       d.received_at,
                       CASE WHEN d.due_at < now() THEN 'overdue' ELSE 'at_risk' END AS state
                FROM dossiers d
                LEFT JOIN procedures p ON p.code = d.procedure_code
                LEFT JOIN agencies a ON a.code = d.agency_code
                WHERE d.status IN (2, 4) AND d.due_at < now() + interval '3 days'
                  AND d.agency_code IN (SELECT code FROM sub)
                ORDER BY d.due_at
                LIMIT 200
                """
            ),
            w=12,
            h=9,
            description=T(
                "Hồ sơ đang xử lý (trạng thái 2, 4) đã quá hạn hoặc đến hạn trong 3 ngày.",
                "Dossiers in process (status 2, 4) past due or due within 3 days.",
            ),
            overrides=[
                rename("due_at", T("Hạn trả", "Due")),
                rename("dossier_id", T("Mã hồ sơ", "Dossier")),
                rename("procedure", T("Thủ tục", "Procedure")),
                rename("agency", T("Đơn vị", "Agency")),
                rename("received_at", T("Tiếp nhận", "Received")),
                rename("state", T("Tình trạng", "State")),
                column("due_at", unit="dateTimeFromNow"),
                column("received_at", unit="dateTimeAsLocal"),
                column(
                    "state",
                    mappings=[
                        {
                            "type": "value",
                            "options": {
                                "overdue": {"text": T("Quá hạn", "Overdue"), "color": "red"},
                                "at_risk": {
                                    "text": T("Sắp đến hạn", "Due soon"),
                                    "color": "orange",
                                },
                            },
                        }
                    ],
                    **{"custom__cellOptions": {"type": "color-background"}},
                ),
            ],
        ),
    ]
    fourth = [
        bargauge(
            T("Điểm 766 theo chỉ số (năm)", "766 points per indicator (year)"),
            sql(
                """
                SELECT replace(p.key, 'points_', '') AS indicator, avg(p.value::numeric) AS points
                FROM kpi_current k, jsonb_each_text(k."values") AS p
                WHERE k.scope = 'agency' AND k.period = 'year'
                  AND k.key = ANY(ARRAY[${agency:sqlstring}]::text[])
                  AND p.key LIKE 'points\\_%' AND p.value IS NOT NULL
                GROUP BY 1
                ORDER BY 1
                """
            ),
            w=24,
            h=6,
            decimals=2,
            thresholds=steps(NEUTRAL),
            description=T(
                "Trung bình các đơn vị đã chọn; chỉ các chỉ số tính được từ dữ liệu hồ sơ.",
                "Average of the selected agencies; only indicators computable from dossiers.",
            ),
        )
    ]
    fourth[0].options["orientation"] = "vertical"
    return Dashboard(
        uid=UID,
        title=T("Dịch vụ công", "Public services"),
        description=T(
            "Hồ sơ thủ tục hành chính: tiếp nhận, giải quyết, đúng hạn, quá hạn, kênh, điểm 766.",
            "Administrative dossiers: received, resolved, on time, overdue, channels, 766 points.",
        ),
        tags=["wall", "dossiers"],
        rows=[first, second, third, fourth],
        variables=[
            custom_variable("period", T("Kỳ", "Period"), PERIODS),
            custom_variable("level", T("Cấp", "Level"), LEVELS),
            query_variable(
                "agency",
                T("Đơn vị", "Agency"),
                "SELECT name AS __text, code AS __value FROM agencies"
                " WHERE level = '$level' ORDER BY name",
                multi=True,
                include_all=True,
            ),
        ],
        refresh="1m",
        time_from="now-30d",
        links=[dashboard_link(link(T("Tổng quan IOC", "IOC overview"), "/d/ioc-overview"))],
    )
