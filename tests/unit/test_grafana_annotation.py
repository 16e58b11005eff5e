"""The Grafana annotation made for an alert (no Grafana runs here: only the payload is tested)."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest
from grafana_client.api import GrafanaApi

from ioc.alerts.model import AlertNotice
from ioc.alerts.receivers import GrafanaReceiver
from ioc.notify.grafana import annotation_for

START = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
RECEIVER = GrafanaReceiver(name="wall", url="http://127.0.0.1:3000", dashboard_uid="ioc-alerts")


def notice(**kw: object) -> AlertNotice:
    fields: dict[str, object] = {
        "id": "al-0001",
        "fingerprint": "a1b2c3d4e5f60718",
        "status": "firing",
        "state": "firing",
        "rule": "service_down",
        "severity": "critical",
        "summary": "Cổng dịch vụ công mất kết nối",
        "labels": {"alertname": "service_down", "severity": "critical"},
        "starts_at": START,
        **kw,
    }
    return AlertNotice(**fields)  # type: ignore[arg-type]


def test_firing_alert_is_a_point_at_its_start() -> None:
    assert annotation_for(notice(link="http://ioc/alerts/a1b2"), RECEIVER) == {
        "dashboard_uid": "ioc-alerts",
        "time_from": 1773972000000,
        "time_to": None,
        "tags": ["ioc-alert", "service_down", "critical", "firing"],
        "text": "Cổng dịch vụ công mất kết nối\nhttp://ioc/alerts/a1b2",
    }


def test_resolved_alert_is_a_region_to_its_end() -> None:
    end = START + timedelta(minutes=42, milliseconds=5)
    a = annotation_for(notice(status="resolved", state="resolved", ends_at=end), RECEIVER)
    assert (a["time_from"], a["time_to"]) == (1773972000000, 1773972000000 + 42 * 60_000 + 5)
    assert a["tags"][-1] == "resolved"
    assert a["text"] == "Cổng dịch vụ công mất kết nối"


def test_acknowledged_is_tagged_and_an_end_before_the_start_is_clamped() -> None:
    acked = annotation_for(notice(state="acknowledged", acknowledged_by="an.nv"), RECEIVER)
    assert acked["tags"][-1] == "acknowledged" and acked["time_to"] is None
    skewed = notice(status="resolved", state="resolved", ends_at=START - timedelta(seconds=3))
    assert annotation_for(skewed, RECEIVER)["time_to"] == 1773972000000


def test_no_dashboard_makes_an_organisation_wide_annotation() -> None:
    plain = GrafanaReceiver(name="wall", url="http://127.0.0.1:3000")
    assert annotation_for(notice(), plain)["dashboard_uid"] is None


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        annotation_for(notice(starts_at=START.replace(tzinfo=None)), RECEIVER)


def test_the_keys_are_add_annotation_parameters() -> None:
    """The payload is passed as ``add_annotation(**payload)``: its keys must exist there."""
    api = GrafanaApi.from_url("http://127.0.0.1:3000")  # no request is made
    params = inspect.signature(api.annotations.add_annotation).parameters
    assert set(annotation_for(notice(), RECEIVER)) <= set(params)
