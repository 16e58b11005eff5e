"""JSON formats (ECS, OCSF, Wazuh, Uptime Kuma, Alertmanager) become native events, or a
FormatError that points at the offending field; nothing else ever comes out."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.clock import ManualClock
from ioc.events import SecurityEvent, UptimeEvent
from ioc.formats import alertmanager_webhook, ecs, ocsf, uptime_kuma, wazuh
from ioc.formats.common import FormatError
from ioc.validation import EventParser

SAMPLES = Path(__file__).parent.parent / "samples" / "formats"
RECEIVED = datetime(2026, 11, 20, 12, tzinfo=UTC)
SOURCE = "soc-tinh"

SECURITY: dict[str, Callable[..., SecurityEvent]] = {
    "ecs": ecs.parse,
    "ocsf": ocsf.parse,
    "wazuh": wazuh.parse,
}
UPTIME: dict[str, Callable[..., list[UptimeEvent]]] = {
    "uptime_kuma": uptime_kuma.parse,
    "alertmanager_webhook": alertmanager_webhook.parse,
}
FORMATS = [*SECURITY, *UPTIME]


def load(fmt: str, name: str) -> Any:
    return json.loads((SAMPLES / fmt / name).read_text(encoding="utf-8"))


def sample_names(fmt: str) -> list[str]:
    return sorted(p.name for p in (SAMPLES / fmt).glob("*.json"))


def run(fmt: str, doc: object) -> list[SecurityEvent | UptimeEvent]:
    """Any format's parser, with the result as a list."""
    if fmt in SECURITY:
        return [SECURITY[fmt](doc, source=SOURCE, received_at=RECEIVED)]
    return list(UPTIME[fmt](doc, received_at=RECEIVED))


def error(fmt: str, doc: object) -> FormatError:
    with pytest.raises(FormatError) as caught:
        run(fmt, doc)
    return caught.value


def assert_native(event: SecurityEvent | UptimeEvent) -> None:
    """The event survives the wire: encode, decode with the contract type, same fields."""
    decoded = msgspec.json.Decoder(type(event)).decode(msgspec.json.encode(event))
    if isinstance(event, SecurityEvent):
        assert isinstance(decoded, SecurityEvent)
        assert msgspec.structs.replace(decoded, raw=None) == msgspec.structs.replace(
            event, raw=None
        )
        for ip in (event.src_ip, event.dst_ip):
            if ip is not None:
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                socket.inet_pton(family, ip)
    else:
        assert decoded == event
    assert not event.event_id.endswith("\n")


# --- Every sample parses to the expected event, and passes the ingest contract. ---

SECURITY_EXPECTED: dict[tuple[str, str], dict[str, object]] = {
    ("ecs", "suricata_sql_injection.json"): {
        "event_id": "ecs:b7c1e8f0-4a51-4f0e-9a0d-6f2c1d9e3a77",
        "event_time": datetime(2026, 11, 20, 1, 15, 42, 318000, tzinfo=UTC),
        "severity": "high",  # 73 is the top of the high band
        "source_severity": "73",
        "category": "intrusion",
        "src_ip": "203.0.113.45",
        "dst_ip": "10.20.1.15",
        "asset_id": "dvc-web-01",
        "agency_code": "STTTT",
        "rule_id": "2006445",
        "message": "ET WEB_SERVER Possible SQL Injection Attempt SELECT FROM",
    },
    ("ecs", "ssh_authentication_failures.json"): {
        "event_time": datetime(2026, 11, 20, 1, 2, 11, 540000, tzinfo=UTC),
        "severity": "medium",  # 47 is the top of the medium band
        "category": "brute_force",
        "src_ip": "198.51.100.23",
        "asset_id": "motcua-app-02",
        "agency_code": "SNV",
        "rule_id": "3f0c6d2e-9b41-4d7a-8f3e-2a1b5c6d7e80",
    },
    ("ecs", "endpoint_ransomware.json"): {
        "event_id": "ecs:MzA1NjQ4Nzk3NjU0MzIx",
        "severity": "critical",
        "category": "malware",  # more specific than intrusion_detection
        "src_ip": None,
        "asset_id": "PC-KT-017",
        "agency_code": "STC",
    },
    ("ecs", "syslog_config_change.json"): {
        "severity": "medium",
        "source_severity": "warning",
        "category": "policy",
        "asset_id": "fw-tinh-01",
        "agency_code": None,
        "rule_id": None,
    },
    ("ecs", "ddos_rule_category.json"): {
        "event_id": "ecs:ddos-2026-11-20-0001",
        "event_time": datetime(2026, 11, 20, 2, 15, tzinfo=UTC),
        "severity": "critical",  # 74 is the bottom of the critical band
        "category": "ddos",
        "src_ip": "2001:db8:85a3::8a2e:370:7334",
        "rule_id": "ddos-syn-flood",
    },
    ("ocsf", "ssh_brute_force.json"): {
        "event_id": "ocsf:f3b2a1c0-7e6d-4c5b-9a8f-0e1d2c3b4a59",
        "event_time": datetime(2026, 11, 20, 1, 2, 5, 123000, tzinfo=UTC),
        "severity": "high",
        "source_severity": "High",
        "category": "brute_force",
        "src_ip": "198.51.100.23",
        "dst_ip": "10.20.3.8",
        "asset_id": "motcua-app-02",
        "agency_code": "SNV",
        "rule_id": "5712",
        "message": "sshd: brute force trying to get access to the system",
    },
    ("ocsf", "web_defacement.json"): {
        "event_id": "ocsf:DEF-2026-000318",
        "severity": "critical",
        "category": "web_defacement",
        "src_ip": None,
        "dst_ip": "10.20.1.20",
        "asset_id": "cong-ttdt-tinh",
        "agency_code": "VPUB",
        "rule_id": "homepage-hash-change",
    },
    ("ocsf", "exfiltration_other_severity.json"): {
        "event_id": "ocsf:dlp-7781",
        "severity": "medium",  # 99 Other with the caption "Other"
        "source_severity": "Other",
        "category": "data_leak",
        "src_ip": "10.20.5.31",
        "dst_ip": "192.0.2.77",
        "asset_id": "qlvb-db-01",
    },
    ("ocsf", "informational_scan.json"): {
        "event_id": "ocsf:scan-2026-11-20-0001",
        "severity": "info",
        "source_severity": "1",
        "category": "other",
        "src_ip": "10.20.0.250",
        "asset_id": None,
        "message": "Port scan observed from a monitoring host (allow-listed)",
    },
    ("wazuh", "sshd_brute_force.json"): {
        "event_id": "wazuh:wazuh-manager-tinh:1795136525.1843920",
        "event_time": datetime(2026, 11, 20, 1, 2, 5, 417000, tzinfo=UTC),
        "severity": "high",  # level 10 is the bottom of the high band
        "source_severity": "10",
        "category": "brute_force",
        "src_ip": "198.51.100.23",
        "dst_ip": None,
        "asset_id": "motcua-app-02",
        "agency_code": "SNV",
        "rule_id": "5712",
    },
    ("wazuh", "web_attack_success.json"): {
        "severity": "low",  # level 6 is the top of the low band
        "category": "intrusion",
        "src_ip": "203.0.113.45",
        "dst_ip": "10.20.1.15",
        "agency_code": "STTTT",
        "rule_id": "31106",
        "message": "A web attack returned code 200 (success).",
    },
    ("wazuh", "syscheck_modified.json"): {
        "severity": "medium",  # level 7 is the bottom of the medium band
        "category": "policy",
        "asset_id": "cong-ttdt-web",
        "agency_code": "VPUB",
    },
    ("wazuh", "rootcheck_anomaly.json"): {
        "severity": "medium",
        "category": "malware",
        "agency_code": None,
    },
    ("wazuh", "vulnerability_critical.json"): {
        "severity": "critical",  # level 13 is the bottom of the critical band
        "category": "vulnerability",
        "rule_id": "23506",
    },
    ("wazuh", "manager_started.json"): {
        "event_id": "wazuh:wazuh-manager-tinh:1795107612.0",
        "severity": "low",  # level 3 is the bottom of the low band
        "category": "other",
        "asset_id": "wazuh-manager-tinh",
    },
}

UPTIME_EXPECTED: dict[tuple[str, str], list[dict[str, object]]] = {
    ("uptime_kuma", "http_down_503.json"): [
        {
            "event_id": "kuma:3:1795136717412",
            "event_time": datetime(2026, 11, 20, 1, 5, 17, 412000, tzinfo=UTC),
            "service_id": "svc-dvc",
            "status": "down",
            "kind": "probe",
            "latency_ms": None,
            "http_status": 503,
            "error": "Request failed with status code 503",
        }
    ],
    ("uptime_kuma", "http_up_200.json"): [
        {
            "service_id": "svc-dvc",
            "status": "up",
            "latency_ms": 182.0,
            "http_status": 200,
            "error": None,
        }
    ],
    ("uptime_kuma", "keyword_pending_timeout.json"): [
        {
            "service_id": "Hệ thống một cửa điện tử",
            "status": "degraded",
            "latency_ms": 48012.5,
            "http_status": None,
            "error": "timeout of 48000ms exceeded",
        }
    ],
    ("uptime_kuma", "push_heartbeat_up.json"): [
        {
            "event_time": datetime(2026, 11, 19, 20, 0, 0, 250000, tzinfo=UTC),
            "service_id": "svc-qlvb",
            "status": "up",
            "kind": "heartbeat",
        }
    ],
    ("uptime_kuma", "maintenance.json"): [],
    ("uptime_kuma", "test_notification.json"): [],
    ("alertmanager_webhook", "probe_failed_firing.json"): [
        {
            "event_id": "am:5c2a9e1f03b47d88:firing:1795136730123",
            "event_time": datetime(2026, 11, 20, 1, 5, 30, 123456, tzinfo=UTC),
            "service_id": "svc-dvc",
            "status": "down",
            "probe_id": "blackbox-http",
            "error": "Cổng dịch vụ công không phản hồi (probe_success == 0 for 2m)",
        },
        {"service_id": "svc-motcua", "status": "down", "error": "Hệ thống một cửa không phản hồi"},
    ],
    ("alertmanager_webhook", "probe_failed_resolved.json"): [
        {
            "event_id": "am:5c2a9e1f03b47d88:resolved:1795136985500",
            "event_time": datetime(2026, 11, 20, 1, 9, 45, 500000, tzinfo=UTC),
            "service_id": "svc-dvc",
            "status": "up",
            "error": None,
        }
    ],
    ("alertmanager_webhook", "slow_probe_warning.json"): [
        {
            "event_time": datetime(2026, 11, 19, 20, 20, tzinfo=UTC),
            "service_id": "mail.tinh.gov.vn:443",  # no service label: the instance
            "status": "degraded",
            "probe_id": "blackbox-tcp",
            "error": "probe_duration_seconds > 2 for 10m on mail.tinh.gov.vn:443",
        }
    ],
    ("alertmanager_webhook", "endpoint_down_mixed.json"): [
        {"service_id": "10.20.1.30:25", "status": "down", "error": "EndpointDown"},
        {
            "event_time": datetime(2026, 11, 19, 21, 5, tzinfo=UTC),
            "service_id": "10.20.1.31:993",
            "status": "up",
        },
    ],
}


def test_every_sample_file_has_expectations() -> None:
    on_disk = {(fmt, name) for fmt in FORMATS for name in sample_names(fmt)}
    assert on_disk == set(SECURITY_EXPECTED) | set(UPTIME_EXPECTED)


@pytest.mark.parametrize(("fmt", "name"), sorted(SECURITY_EXPECTED))
def test_security_samples_map_to_the_expected_native_event(fmt: str, name: str) -> None:
    doc = load(fmt, name)
    event = SECURITY[fmt](doc, source=SOURCE, received_at=RECEIVED)
    expected = SECURITY_EXPECTED[fmt, name]
    assert {k: getattr(event, k) for k in expected} == expected
    assert event.source == SOURCE
    assert event.raw == doc
    assert_native(event)
    accepted = EventParser(SecurityEvent, ManualClock(RECEIVED)).parse(msgspec.json.encode(event))
    assert accepted == event, accepted


@pytest.mark.parametrize(("fmt", "name"), sorted(UPTIME_EXPECTED))
def test_uptime_samples_map_to_the_expected_native_events(fmt: str, name: str) -> None:
    events = UPTIME[fmt](load(fmt, name), received_at=RECEIVED)
    expected = UPTIME_EXPECTED[fmt, name]
    assert [{k: getattr(e, k) for k in x} for e, x in zip(events, expected, strict=True)] == (
        expected
    )
    parser = EventParser(UptimeEvent, ManualClock(RECEIVED))
    for event in events:
        assert_native(event)
        assert parser.parse(msgspec.json.encode(event)) == event


# --- Severity scales, edge by edge. ---


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (0, "info"),
        (1, "low"),
        (21, "low"),
        (22, "medium"),
        (47, "medium"),
        (48, "high"),
        (73, "high"),
        (74, "critical"),
        (100, "critical"),
    ],
)
def test_ecs_risk_scores_band_like_elastic_rules(score: int, severity: str) -> None:
    doc = load("ecs", "suricata_sql_injection.json")
    doc["event"]["severity"] = score
    event = ecs.parse(doc, source=SOURCE, received_at=RECEIVED)
    assert (event.severity, event.source_severity) == (severity, str(score))


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        ("EMERGENCY", "critical"),
        ("crit", "critical"),
        ("Error", "high"),
        ("warn", "medium"),
        ("notice", "low"),
        ("informational", "info"),
        ("debug", "info"),
    ],
)
def test_ecs_without_a_score_uses_the_log_level(level: str, severity: str) -> None:
    doc = load("ecs", "syslog_config_change.json")
    doc["log"]["level"] = level
    assert ecs.parse(doc, source=SOURCE, received_at=RECEIVED).severity == severity


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (0, "info"),
        (2, "info"),
        (3, "low"),
        (6, "low"),
        (7, "medium"),
        (9, "medium"),
        (10, "high"),
        (12, "high"),
        (13, "critical"),
        (15, "critical"),
    ],
)
def test_wazuh_rule_levels_band_on_the_five_level_scale(level: int, severity: str) -> None:
    doc = load("wazuh", "sshd_brute_force.json")
    doc["rule"]["level"] = level
    assert wazuh.parse(doc, source=SOURCE, received_at=RECEIVED).severity == severity


@pytest.mark.parametrize(
    ("severity_id", "caption", "severity"),
    [
        (0, None, "info"),
        (1, None, "info"),
        (2, None, "low"),
        (3, None, "medium"),
        (4, None, "high"),
        (5, None, "critical"),
        (6, "Fatal", "critical"),
        (99, "Critical", "critical"),
        (99, "low", "low"),
        (99, "Other", "medium"),
        (99, None, "medium"),
    ],
)
def test_ocsf_severity_ids_map_and_other_reads_the_caption(
    severity_id: int, caption: str | None, severity: str
) -> None:
    doc = load("ocsf", "ssh_brute_force.json")
    doc["severity_id"] = severity_id
    doc["severity"] = caption
    event = ocsf.parse(doc, source=SOURCE, received_at=RECEIVED)
    assert (event.severity, event.source_severity) == (severity, caption or str(severity_id))


# --- Invalid documents are refused at the field that is wrong. ---


def _set(doc: Any, pointer: str, value: object) -> Any:
    """A copy of ``doc`` with the value at ``pointer`` replaced (``...`` deletes it)."""
    doc = copy.deepcopy(doc)
    *parents, last = pointer.strip("/").split("/")
    target = doc
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is ...:
        del target[key]
    else:
        target[key] = value
    return doc


ECS = "ecs/suricata_sql_injection.json"
ECS_LOG = "ecs/syslog_config_change.json"
OCSF = "ocsf/ssh_brute_force.json"
WAZUH = "wazuh/sshd_brute_force.json"
KUMA = "uptime_kuma/http_down_503.json"
KUMA_PENDING = "uptime_kuma/keyword_pending_timeout.json"
KUMA_TEST = "uptime_kuma/test_notification.json"
AM_FIRING = "alertmanager_webhook/probe_failed_firing.json"
AM_RESOLVED = "alertmanager_webhook/probe_failed_resolved.json"
AM_WARNING = "alertmanager_webhook/slow_probe_warning.json"

INVALID: list[tuple[str, str, object, str]] = [
    # sample, field changed, new value (... deletes), expected pointer
    (ECS_LOG, "/@timestamp", ..., "/@timestamp"),
    (ECS, "/@timestamp", "yesterday", "/@timestamp"),
    (ECS, "/@timestamp", "2026-11-20T01:15:42", "/@timestamp"),
    (ECS, "/event/severity", 101, "/event/severity"),
    (ECS, "/event/severity", -1, "/event/severity"),
    (ECS, "/event/severity", "73", "/event/severity"),
    (ECS, "/event/severity", True, "/event/severity"),
    (ECS, "/event/category", [1], "/event/category/0"),
    (ECS, "/source", "203.0.113.45", "/source"),
    (ECS, "/source/ip", "203.0.113.450", "/source/ip"),
    (ECS, "/destination/ip", "dvc-web-01", "/destination/ip"),
    (ECS, "/host/name", "h" * 65, "/host/name"),
    (ECS, "/labels/agency_code", 17, "/labels/agency_code"),
    (ECS, "/url/original", "/a\x00b", "/url/original"),
    (ECS_LOG, "/log/level", "loud", "/log/level"),
    (ECS_LOG, "/log", ..., "/event/severity"),
    (OCSF, "/class_uid", 2003, "/class_uid"),
    (OCSF, "/finding_info/uid", ..., "/finding_info/uid"),
    (OCSF, "/finding_info", "x", "/finding_info"),
    (OCSF, "/time", ..., "/time"),
    (OCSF, "/time", -5, "/time"),
    (OCSF, "/severity_id", 7, "/severity_id"),
    (OCSF, "/severity_id", "4", "/severity_id"),
    (OCSF, "/evidences/0/src_endpoint/ip", "::g", "/evidences/0/src_endpoint/ip"),
    (OCSF, "/evidences", {}, "/evidences"),
    (OCSF, "/resources/0/uid", "r" * 65, "/resources/0/uid"),
    (OCSF, "/finding_info/types/0", None, "/finding_info/types/0"),
    (WAZUH, "/rule/level", 16, "/rule/level"),
    (WAZUH, "/rule/level", "10", "/rule/level"),
    (WAZUH, "/rule", ..., "/rule/level"),
    (WAZUH, "/timestamp", "2026-11-20T08:02:05", "/timestamp"),
    (WAZUH, "/data/srcip", "any", "/data/srcip"),
    (WAZUH, "/rule/groups", [None], "/rule/groups/0"),
    (WAZUH, "/rule/description", "a\x00", "/rule/description"),
    (WAZUH, "/agent/labels", ["SNV"], "/agent/labels"),
    (KUMA, "/monitor", ..., "/monitor"),
    (KUMA, "/heartbeat/status", 4, "/heartbeat/status"),
    (KUMA, "/heartbeat/status", "0", "/heartbeat/status"),
    (KUMA, "/heartbeat/time", "soon", "/heartbeat/time"),
    (KUMA, "/heartbeat/ping", -1, "/heartbeat/ping"),
    (KUMA, "/heartbeat/msg", "x\x00", "/heartbeat/msg"),
    (KUMA, "/monitor/id", "3", "/monitor/id"),
    (KUMA, "/monitor/tags/0/value", "s" * 65, "/monitor/tags/0/value"),
    (KUMA_PENDING, "/monitor/name", ..., "/monitor/name"),
    (KUMA_TEST, "/msg", ..., "/msg"),
    (AM_FIRING, "/version", "3", "/version"),
    (AM_FIRING, "/alerts", ..., "/alerts"),
    (AM_FIRING, "/alerts/1/status", "pending", "/alerts/1/status"),
    (AM_FIRING, "/alerts/1/startsAt", "now", "/alerts/1/startsAt"),
    (AM_FIRING, "/alerts/0/fingerprint", "5c 2a", "/alerts/0/fingerprint"),
    (AM_FIRING, "/alerts/0/labels/service", 1, "/alerts/0/labels/service"),
    (AM_FIRING, "/alerts/0/labels", [], "/alerts/0/labels"),
    (AM_RESOLVED, "/alerts/0/endsAt", "0001-01-01T00:00:00Z", "/alerts/0/endsAt"),
    (AM_WARNING, "/alerts/0/labels/instance", ..., "/alerts/0/labels"),
]


@pytest.mark.parametrize(("sample", "field", "value", "pointer"), INVALID)
def test_invalid_documents_are_refused_at_the_wrong_field(
    sample: str, field: str, value: object, pointer: str
) -> None:
    fmt, name = sample.split("/")
    assert error(fmt, _set(load(fmt, name), field, value)).pointer == pointer


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("doc", [None, [], "{}", 3, True])
def test_a_document_that_is_not_an_object_is_refused_at_the_root(fmt: str, doc: object) -> None:
    assert error(fmt, doc).pointer == ""


def test_ecs_without_a_timestamp_falls_back_to_event_created() -> None:
    doc = _set(load("ecs", "suricata_sql_injection.json"), "/@timestamp", ...)
    event = ecs.parse(doc, source=SOURCE, received_at=RECEIVED)
    assert event.event_time == datetime(2026, 11, 20, 1, 15, 43, 2000, tzinfo=UTC)


def test_an_empty_alertmanager_group_gives_no_events() -> None:
    doc = _set(load("alertmanager_webhook", "probe_failed_firing.json"), "/alerts", [])
    assert alertmanager_webhook.parse(doc, received_at=RECEIVED) == []


def test_alertmanager_service_label_can_be_chosen() -> None:
    doc = load("alertmanager_webhook", "probe_failed_firing.json")
    events = alertmanager_webhook.parse(doc, received_at=RECEIVED, service_labels=("instance",))
    assert [e.service_id for e in events] == [
        "https://dichvucong.tinh.gov.vn",
        "https://motcua.tinh.gov.vn",
    ]


# --- Text: messages are cut, identifiers are not, control characters stay. ---


def test_long_messages_are_cut_with_an_ellipsis_and_raw_keeps_them_whole() -> None:
    doc = load("ecs", "suricata_sql_injection.json")
    doc["message"] = "x" * 5000
    event = ecs.parse(doc, source=SOURCE, received_at=RECEIVED)
    assert event.message is not None
    assert len(event.message) == 1024
    assert event.message.endswith("…")
    assert event.raw is not None
    assert event.raw["message"] == "x" * 5000
    assert_native(event)


def test_control_characters_other_than_nul_are_kept_verbatim() -> None:
    doc = load("wazuh", "syscheck_modified.json")
    doc["rule"]["description"] = "changed\tby\x1b[31mroot\r\n"
    event = wazuh.parse(doc, source=SOURCE, received_at=RECEIVED)
    assert event.message == "changed\tby\x1b[31mroot\r\n"
    assert_native(event)


def test_a_nul_in_an_object_key_is_refused_at_that_key() -> None:
    doc = load("ocsf", "ssh_brute_force.json")
    doc["unmapped"]["bad\x00key"] = 1
    assert error("ocsf", doc).pointer == "/unmapped/bad\x00key"


@pytest.mark.parametrize(
    ("fmt", "name", "field"),
    [
        ("ecs", "suricata_sql_injection.json", "/url/original"),
        ("uptime_kuma", "http_down_503.json", "/heartbeat/msg"),
        ("alertmanager_webhook", "probe_failed_firing.json", "/alerts/0/annotations/summary"),
    ],
)
def test_lone_surrogates_are_refused_at_their_field(fmt: str, name: str, field: str) -> None:
    assert error(fmt, _set(load(fmt, name), field, "bad \ud800 text")).pointer == field


# --- Idempotency: the same document always gets the same id, different ones never share. ---


def test_every_sample_gets_the_same_ids_every_time_and_no_two_share_one() -> None:
    ids: list[str] = []
    for fmt in FORMATS:
        for name in sample_names(fmt):
            first = [e.event_id for e in run(fmt, load(fmt, name))]
            assert [e.event_id for e in run(fmt, load(fmt, name))] == first
            ids += first
    assert len(ids) == len(set(ids))


def test_documents_without_an_id_get_one_from_their_content() -> None:
    doc = load("ecs", "ssh_authentication_failures.json")
    event_id = ecs.parse(doc, source=SOURCE, received_at=RECEIVED).event_id
    assert event_id.startswith("ecs:")
    reordered = dict(reversed(list(doc.items())))
    assert ecs.parse(reordered, source=SOURCE, received_at=RECEIVED).event_id == event_id
    other = _set(doc, "/source/ip", "198.51.100.24")
    assert ecs.parse(other, source=SOURCE, received_at=RECEIVED).event_id != event_id
    later = ecs.parse(doc, source=SOURCE, received_at=RECEIVED + timedelta(hours=1))
    assert later.event_id == event_id


def test_ids_that_do_not_fit_the_native_pattern_are_replaced_by_content_ids() -> None:
    doc = _set(load("ecs", "suricata_sql_injection.json"), "/event/id", "id with spaces")
    event_id = ecs.parse(doc, source=SOURCE, received_at=RECEIVED).event_id
    assert event_id.startswith("ecs:")
    assert " " not in event_id
    long_id = _set(doc, "/event/id", "a" * 200)
    assert len(ecs.parse(long_id, source=SOURCE, received_at=RECEIVED).event_id) <= 128


def test_an_alert_firing_and_resolving_gives_two_events_and_repeats_give_none() -> None:
    firing = alertmanager_webhook.parse(
        load("alertmanager_webhook", "probe_failed_firing.json"), received_at=RECEIVED
    )
    repeat = alertmanager_webhook.parse(
        load("alertmanager_webhook", "probe_failed_firing.json"),
        received_at=RECEIVED + timedelta(hours=4),
    )
    resolved = alertmanager_webhook.parse(
        load("alertmanager_webhook", "probe_failed_resolved.json"), received_at=RECEIVED
    )
    assert [e.event_id for e in repeat] == [e.event_id for e in firing]
    assert resolved[0].event_id != firing[0].event_id


# --- Properties: anything at all gives a valid event or a FormatError, never a crash. ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=24,
)


def check(fmt: str, doc: object) -> None:
    try:
        events = run(fmt, doc)
    except FormatError as exc:
        assert isinstance(exc.pointer, str)
        assert exc.pointer == "" or exc.pointer.startswith("/")
        return
    for event in events:
        assert_native(event)


@pytest.mark.parametrize("fmt", FORMATS)
@given(doc=json_values)
def test_any_json_value_gives_an_event_or_a_format_error(fmt: str, doc: object) -> None:
    check(fmt, doc)


def _paths(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*path, i))


def _mutate(doc: Any, path: tuple[str | int, ...], value: object) -> Any:
    """Replace the value at ``path``; ``...`` deletes it (the root is replaced, not deleted)."""
    if not path:
        return None if value is ... else value
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


ALL_SAMPLES = [(fmt, name) for fmt in FORMATS for name in sample_names(fmt)]


@pytest.mark.parametrize(("fmt", "name"), ALL_SAMPLES)
@settings(max_examples=60)
@given(data=st.data())
def test_mutated_samples_give_an_event_or_a_format_error(
    fmt: str, name: str, data: st.DataObject
) -> None:
    doc = load(fmt, name)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(list(_paths(doc))), label="path")
        value = data.draw(st.just(...) | json_values, label="value")
        doc = _mutate(doc, path, value)
    check(fmt, doc)
