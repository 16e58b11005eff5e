"""*Vận hành hệ thống*: the pipeline's own health, from Prometheus.

Every expression names metrics the worker and the gateway export (``ioc/metrics.py``,
``ioc/api/push.py``); a test reads a running worker's ``/metrics`` to keep it so.
"""

from __future__ import annotations

from ioc.dashboards.model import (
    BAD,
    GOOD,
    NEUTRAL,
    Dashboard,
    T,
    dashboard_link,
    link,
    lower_is_better,
    promql,
    stat,
    steps,
    timeseries,
)

UID = "ioc-pipeline"


def pipeline() -> Dashboard:
    first = [
        stat(
            T("Worker đang chạy", "Workers up"),
            promql("sum(ioc_worker_up) or vector(0)"),
            thresholds=steps(BAD, (1, GOOD)),
        ),
        stat(
            T("Ghi cơ sở dữ liệu", "Database writes"),
            promql("min(ioc_database_up)"),
            thresholds=steps(BAD, (1, GOOD)),
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": T("Lỗi", "Failing"), "color": BAD, "index": 0},
                        "1": {"text": T("Bình thường", "OK"), "color": GOOD, "index": 1},
                    },
                }
            ],
        ),
        stat(
            T("Sự kiện lưu/giây", "Events stored/s"),
            promql("sum(rate(ioc_events_stored_total[$__rate_interval]))"),
            unit="short",
            decimals=0,
            thresholds=steps(NEUTRAL),
        ),
        stat(
            T("Độ trễ tiêu thụ", "Consumer lag"),
            promql("sum(ioc_consumer_lag)"),
            unit="short",
            thresholds=lower_is_better(10_000, 100_000),
            description=T(
                "Số bản ghi đã vào Kafka mà worker chưa lưu.",
                "Records in Kafka the workers have not stored yet.",
            ),
        ),
        stat(
            T("Thư chết/phút", "Dead letters/min"),
            promql("sum(rate(ioc_events_dead_lettered_total[5m])) * 60"),
            decimals=1,
            thresholds=lower_is_better(1, 60),
        ),
        stat(
            T("Cổng tiếp nhận sẵn sàng", "Gateways ready"),
            promql("sum(ioc_gateway_broker_ready) or vector(0)"),
            thresholds=steps(BAD, (1, GOOD)),
        ),
    ]
    second = [
        timeseries(
            T("Thông lượng theo luồng", "Throughput per stream"),
            [
                promql(
                    "sum by (stream) (rate(ioc_events_consumed_total[$__rate_interval]))",
                    T("đọc {{stream}}", "read {{stream}}"),
                    "A",
                ),
                promql(
                    "sum by (stream) (rate(ioc_events_stored_total[$__rate_interval]))",
                    T("lưu {{stream}}", "stored {{stream}}"),
                    "B",
                ),
            ],
            unit="short",
            min=0,
        ),
        timeseries(
            T("Độ trễ tiêu thụ theo luồng", "Consumer lag per stream"),
            [promql("sum by (stream) (ioc_consumer_lag)", "{{stream}}")],
            unit="short",
            min=0,
        ),
    ]
    third = [
        timeseries(
            T("Thư chết theo lý do", "Dead letters by reason"),
            [
                promql(
                    "sum by (stream, reason)"
                    " (increase(ioc_events_dead_lettered_total[$__interval]))",
                    "{{stream}}: {{reason}}",
                )
            ],
            unit="short",
            bars=True,
            min=0,
        ),
        timeseries(
            T("Thời gian ghi một lô", "Batch write time"),
            [
                promql(
                    "histogram_quantile(0.5, sum by (le)"
                    " (rate(ioc_batch_write_seconds_bucket[$__rate_interval])))",
                    "p50",
                    "A",
                ),
                promql(
                    "histogram_quantile(0.99, sum by (le)"
                    " (rate(ioc_batch_write_seconds_bucket[$__rate_interval])))",
                    "p99",
                    "B",
                ),
                promql(
                    "sum(rate(ioc_database_write_errors_total[$__rate_interval]))",
                    T("lỗi ghi/giây", "write errors/s"),
                    "C",
                ),
            ],
            unit="s",
            min=0,
            overrides=[
                {
                    "matcher": {"id": "byFrameRefID", "options": "C"},
                    "properties": [
                        {"id": "unit", "value": "short"},
                        {"id": "custom.axisPlacement", "value": "right"},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                    ],
                }
            ],
        ),
    ]
    fourth = [
        timeseries(
            T("Yêu cầu cổng tiếp nhận", "Gateway requests"),
            [
                promql(
                    "sum by (status) (rate(ioc_gateway_requests_total[$__rate_interval]))",
                    "{{status}}",
                )
            ],
            w=8,
            h=7,
            unit="reqps",
            min=0,
        ),
        timeseries(
            T("Thời gian xử lý yêu cầu (p99)", "Gateway request time (p99)"),
            [
                promql(
                    "histogram_quantile(0.99, sum by (le, stream)"
                    " (rate(ioc_gateway_request_seconds_bucket[$__rate_interval])))",
                    "{{stream}}",
                )
            ],
            w=8,
            h=7,
            unit="s",
            min=0,
        ),
        timeseries(
            T("Thông báo cảnh báo", "Alert notifications"),
            [
                promql(
                    "sum by (receiver) (increase(ioc_notifications_sent_total[$__interval]))",
                    T("gửi {{receiver}}", "sent {{receiver}}"),
                    "A",
                ),
                promql(
                    "sum by (receiver) (increase(ioc_notifications_failed_total[$__interval]))",
                    T("lỗi {{receiver}}", "failed {{receiver}}"),
                    "B",
                ),
            ],
            w=8,
            h=7,
            unit="short",
            bars=True,
            min=0,
        ),
    ]
    return Dashboard(
        uid=UID,
        title=T("Vận hành hệ thống", "Pipeline operations"),
        description=T(
            "Sức khỏe đường ống dữ liệu: thông lượng, độ trễ tiêu thụ, thư chết, ghi cơ sở dữ "
            "liệu, cổng tiếp nhận, thông báo.",
            "Pipeline health: throughput, consumer lag, dead letters, database writes, the "
            "gateway, notifications.",
        ),
        tags=["wall", "pipeline"],
        rows=[first, second, third, fourth],
        refresh="30s",
        time_from="now-6h",
        links=[dashboard_link(link(T("Tổng quan IOC", "IOC overview"), "/d/ioc-overview"))],
    )
