"""Line formats from SOC senders: CEF, LEEF 1.0/2.0, syslog RFC 5424/3164 and TCP framing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.events import SecurityEvent
from ioc.formats.cef import classify, parse_cef
from ioc.formats.common import FormatError
from ioc.formats.leef import parse_leef
from ioc.formats.syslog import Framer, SyslogMessage, parse_syslog

SAMPLES = Path(__file__).parent.parent / "samples" / "lines"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
ICT = timezone(timedelta(hours=7))
RECEIVED = datetime(2026, 3, 10, 9, 30, 0, 654321, tzinfo=UTC)  # 16:30:00 in Hanoi


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def from_syslog(name: str, received_at: datetime = RECEIVED) -> SecurityEvent:
    """What the listener does: framing removed, envelope parsed, body parsed by its marker."""
    msg = parse_syslog(sample(name).rstrip(b"\n"), received_at=received_at)
    parse = parse_leef if msg.message.lstrip().startswith("LEEF:") else parse_cef
    return parse(msg.message, source="soc-hcm", received_at=received_at, syslog=msg)


def valid(event: SecurityEvent) -> SecurityEvent:
    """The event passes the native contract (lengths, pattern, aware time) as JSON."""
    decoded = msgspec.json.decode(msgspec.json.encode(event), type=SecurityEvent)
    assert re.fullmatch(r"[A-Za-z0-9._:@/-]{1,128}", decoded.event_id)
    assert decoded.event_time.tzinfo is not None
    return event


# --- CEF samples -------------------------------------------------------------------------


def test_cef_firewall_deny_over_rfc3164() -> None:
    event = valid(from_syslog("cef_firewall_deny.log"))
    assert event.event_time == datetime(2026, 3, 10, 14, 59, 58, tzinfo=ICT)  # rt, epoch ms
    assert (event.severity, event.source_severity, event.category) == ("medium", "5", "policy")
    assert (event.src_ip, event.dst_ip) == ("45.135.232.17", "10.20.1.15")
    assert event.asset_id == "fw-hcm-01"  # dvchost: no dhost in a firewall line
    assert event.rule_id == "0000000013"
    assert event.message == "Firewall policy deny: Connection denied by policy 12"
    assert event.raw is not None
    assert event.raw["format"] == "cef"
    assert event.raw["extension"]["cs1"] == "Block-RDP-Inbound"  # type: ignore[index]
    assert event.raw["syslog"]["hostname"] == "fw-hcm-01"  # type: ignore[index]


def test_cef_ids_alert_over_rfc5424() -> None:
    event = valid(from_syslog("cef_ids_alert.log"))
    assert event.event_time == datetime(2026, 3, 10, 15, 2, 11, 482000, tzinfo=ICT)
    assert (event.severity, event.category) == ("critical", "intrusion")  # "EXPLOIT" in Name
    assert event.asset_id == "dichvucong.hochiminhcity.gov.vn"  # the target, not the sensor
    assert event.rule_id == "1:2034647:3"
    assert event.message is not None and event.message.endswith("in User-Agent header")


def test_cef_auth_failure_text_severity_and_zone_abbreviation() -> None:
    event = valid(from_syslog("cef_auth_failure.log"))
    assert event.event_time == datetime(2026, 3, 10, 15, 10, 42, tzinfo=ICT)
    assert (event.severity, event.source_severity) == ("medium", "Medium")
    assert event.category == "brute_force"
    assert event.asset_id == "srv-egov-db01"


def test_cef_malware_without_syslog_and_escaped_backslashes() -> None:
    text = sample("cef_malware.log").decode()
    event = valid(parse_cef(text, source="kaspersky-ksc", received_at=RECEIVED))
    assert event.event_time == datetime(2026, 3, 10, 15, 30, tzinfo=ICT)
    assert (event.severity, event.source_severity) == ("critical", "Very-High")
    assert event.category == "malware"  # from the Device Event Class ID
    assert event.asset_id == "PC-KETOAN-07"
    assert event.raw is not None
    ext = event.raw["extension"]
    assert ext["duser"] == "SOTTTT\\nguyen.van.a"  # type: ignore[index]  # \\n is not a newline
    assert ext["filePath"].startswith("C:\\Users\\")  # type: ignore[index]
    assert event.raw["syslog"] is None


def test_cef_escapes_in_header_and_extension() -> None:
    text = sample("cef_escapes.log").decode()
    event = valid(parse_cef(text, source="waf", received_at=RECEIVED))
    assert event.raw is not None
    assert event.raw["header"] == [
        "0",
        "Vendor|Corp",
        "Web\\Gateway",
        "1.0",
        "waf-942100",
        "SQL injection | blocked",
        "7",
    ]
    assert event.raw["extension"] == {
        "request": "https://dichvucong.gov.vn/search?q=1' or '1'='1",
        "msg": "line1\nline2 with spaces and = sign",
        "cs2Label": "note",
        "cs2": "a\\b c=d",
        "rt": "Mar 10 2026 16:00:00.250",
    }
    assert event.event_time == datetime(2026, 3, 10, 16, 0, 0, 250000, tzinfo=VN)
    assert (event.severity, event.category) == ("high", "intrusion")


def test_cef_prefix_before_marker_is_skipped() -> None:
    line = "Oct 30 2025 10:34:23 host.example CEF:0|V|P|1|id|Name|3|src=10.0.0.1"
    event = parse_cef(line, source="s", received_at=RECEIVED)
    assert event.raw is not None and event.raw["header"][1] == "V"  # type: ignore[index]
    assert event.src_ip == "10.0.0.1"


# --- LEEF samples ------------------------------------------------------------------------


def test_leef1_tab_delimited_logon_failure() -> None:
    event = valid(from_syslog("leef1_logon_failure.log"))
    assert event.event_time == datetime(2026, 3, 10, 16, 4, 59, tzinfo=VN)  # default format
    assert (event.severity, event.category) == ("medium", "brute_force")
    assert (event.src_ip, event.dst_ip) == ("10.30.8.47", "10.30.0.10")
    assert event.asset_id == "PC-KETOAN-07"  # identHostName over the syslog hostname
    assert event.rule_id == "4625"
    assert event.message == "An account failed to log on"
    assert event.raw is not None and event.raw["version"] == "1.0"


def test_leef2_caret_delimiter() -> None:
    event = valid(from_syslog("leef2_caret_scan.log"))
    assert event.event_time == datetime(2026, 3, 10, 9, 12, 30, tzinfo=UTC)  # epoch ms devTime
    assert (event.severity, event.source_severity, event.category) == ("high", "8", "intrusion")
    assert event.asset_id == "sw-collector"
    assert event.raw is not None
    assert event.raw["delimiter"] == "^"
    assert event.raw["header"][-1] == "^"  # type: ignore[index]


def test_leef2_hex_delimiter_and_dev_time_format() -> None:
    text = sample("leef2_hex_tab_malware.log").decode()
    event = valid(parse_leef(text, source="deep-security", received_at=RECEIVED))
    assert event.event_time == datetime(2026, 3, 10, 16, 20, 5, 123000, tzinfo=ICT)
    assert (event.severity, event.category) == ("critical", "malware")
    assert event.asset_id == "srv-portal-02"
    assert event.raw is not None and event.raw["delimiter"] == "\t"


@pytest.mark.parametrize(
    ("delimiter_field", "attrs"),
    [
        ("^", "src=10.0.0.1^sev=2"),
        ("x5E", "src=10.0.0.1^sev=2"),
        ("0x5e", "src=10.0.0.1^sev=2"),
        ("", "src=10.0.0.1\tsev=2"),
        ("x7C", "src=10.0.0.1|sev=2"),
    ],
)
def test_leef2_delimiter_spellings(delimiter_field: str, attrs: str) -> None:
    line = f"LEEF:2.0|V|P|1|ev|{delimiter_field}|{attrs}"
    event = parse_leef(line, source="s", received_at=RECEIVED)
    assert (event.src_ip, event.severity) == ("10.0.0.1", "low")


def test_leef2_without_delimiter_field_and_value_containing_delimiter() -> None:
    event = parse_leef("LEEF:2.0|V|P|1|ev|src=10.0.0.1\tmsg=a\tb", source="s", received_at=RECEIVED)
    assert event.message == "a\tb"  # a piece without '=' belongs to the previous value
    assert event.severity == "info"  # no sev


def test_leef1_space_separated_sender_bug_is_tolerated() -> None:
    line = "LEEF:1.0|Microsoft|MSExchange|2016|15345|src=10.50.1.1  dst=2.10.20.20  spt=1200"
    event = parse_leef(line, source="s", received_at=RECEIVED)
    assert (event.src_ip, event.dst_ip) == ("10.50.1.1", "2.10.20.20")


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        (
            "MMM dd yyyy HH:mm:ss",
            "Mar 10 2026 16:04:59",
            datetime(2026, 3, 10, 16, 4, 59, tzinfo=VN),
        ),
        (
            "dd/MM/yyyy HH:mm:ss Z",
            "10/03/2026 09:04:59 +0000",
            datetime(2026, 3, 10, 9, 4, 59, tzinfo=UTC),
        ),
        (
            "yyyy-MM-dd HH:mm:ss.SSS z",
            "2026-03-10 16:04:59.5 ICT",
            datetime(2026, 3, 10, 16, 4, 59, 500000, tzinfo=ICT),
        ),
        (
            "EEE MMM dd HH:mm:ss zzz yyyy",
            "Tue Mar 10 16:04:59 GMT+07:00 2026",
            datetime(2026, 3, 10, 16, 4, 59, tzinfo=ICT),
        ),
        ("MMM dd HH:mm:ss", "Mar 10 16:04:59", datetime(2026, 3, 10, 16, 4, 59, tzinfo=VN)),
    ],
)
def test_leef_dev_time_format_subset(fmt: str, value: str, expected: datetime) -> None:
    line = f"LEEF:1.0|V|P|1|ev|devTime={value}\tdevTimeFormat={fmt}"
    assert parse_leef(line, source="s", received_at=RECEIVED).event_time == expected


# --- mapping rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("0", "info"),
        ("1", "low"),
        ("3", "low"),
        ("4", "medium"),
        ("6", "medium"),
        ("7", "high"),
        ("8", "high"),
        ("9", "critical"),
        ("10", "critical"),
        ("Unknown", "info"),
        ("Low", "low"),
        ("medium", "medium"),
        ("HIGH", "high"),
        ("Very-High", "critical"),
        ("Very High", "critical"),
    ],
)
def test_cef_severity_bands(severity: str, expected: str) -> None:
    line = f"CEF:0|V|P|1|id|Name|{severity}|"
    event = parse_cef(line, source="s", received_at=RECEIVED)
    assert (event.severity, event.source_severity) == (expected, severity)


@pytest.mark.parametrize("sev", ["1", "3", "4", "6", "7", "8", "9", "10"])
def test_leef_sev_uses_the_same_bands(sev: str) -> None:
    cef = parse_cef(f"CEF:0|V|P|1|id|N|{sev}|", source="s", received_at=RECEIVED)
    leef = parse_leef(f"LEEF:1.0|V|P|1|id|sev={sev}", source="s", received_at=RECEIVED)
    assert cef.severity == leef.severity


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("Brute force attack on SSH",), "brute_force"),
        (("Authentication failure",), "brute_force"),
        (("DDoS attack detected",), "ddos"),
        (("SYN flood",), "ddos"),
        (("Phishing URL blocked",), "phishing"),
        (("Web page defaced",), "web_defacement"),
        (("Data exfiltration over DNS",), "data_leak"),
        (("Trojan.Win32.Agent",), "malware"),
        (("Vulnerability found: CVE-2024-3400",), "vulnerability"),
        (("CVE-2024-3400",), "vulnerability"),
        (("Exploit attempt CVE-2024-3400",), "intrusion"),
        (("Port scan",), "intrusion"),
        (("Policy violation",), "policy"),
        (("Something else",), "other"),
        (("/Firewall/Deny", "Port scan"), "intrusion"),  # the first matching field decides
        (("Malware", "Port scan"), "malware"),
        ((None, ""), "other"),
    ],
)
def test_category_table(texts: tuple[str | None, ...], expected: str) -> None:
    assert classify(*texts) == expected


# --- time fallbacks and idempotency ------------------------------------------------------


def test_resend_is_idempotent_when_the_line_has_a_time() -> None:
    line = sample("cef_firewall_deny.log").rstrip(b"\n")
    first = from_syslog("cef_firewall_deny.log")
    again = parse_syslog(line, received_at=RECEIVED + timedelta(minutes=5))
    second = parse_cef(
        again.message, source="soc-hcm", received_at=RECEIVED + timedelta(hours=1), syslog=again
    )
    assert (first.event_id, first.event_time) == (second.event_id, second.event_time)


def test_external_id_survives_reformatting_but_not_another_source() -> None:
    a = "CEF:0|Cisco|Snort|2.9|1:1:1|X|5|externalId=42 src=10.0.0.1 rt=1773129598000"
    b = "CEF:0|Cisco|Snort|2.9|1:1:1|X|5|rt=1773129598000 src=10.0.0.1  externalId=42"
    ea, eb = (parse_cef(t, source="ids", received_at=RECEIVED) for t in (a, b))
    assert ea.event_id == eb.event_id
    assert parse_cef(a, source="other", received_at=RECEIVED).event_id != ea.event_id


def test_device_external_id_is_not_an_event_id() -> None:
    a = "CEF:0|F|G|1|13|deny|5|deviceExternalId=FG1 src=10.0.0.1 rt=1773129598000"
    b = "CEF:0|F|G|1|13|deny|5|deviceExternalId=FG1 src=10.0.0.2 rt=1773129598000"
    ids = {parse_cef(t, source="fw", received_at=RECEIVED).event_id for t in (a, b)}
    assert len(ids) == 2


def test_time_falls_back_to_syslog_then_received_at_to_the_second() -> None:
    body = "CEF:0|V|P|1|id|N|5|src=10.0.0.1"
    msg = parse_syslog(
        f"<13>1 2026-03-10T16:00:00Z h a - - - {body}".encode(), received_at=RECEIVED
    )
    assert parse_cef(body, source="s", received_at=RECEIVED, syslog=msg).event_time == datetime(
        2026, 3, 10, 16, tzinfo=UTC
    )
    bare = parse_cef(body, source="s", received_at=RECEIVED)
    assert bare.event_time == RECEIVED.replace(microsecond=0)
    later = parse_cef(body, source="s", received_at=RECEIVED + timedelta(milliseconds=100))
    assert (later.event_id, later.event_time) == (bare.event_id, bare.event_time)


@pytest.mark.parametrize(
    ("rt", "expected"),
    [
        ("1773129598000", datetime(2026, 3, 10, 7, 59, 58, tzinfo=UTC)),
        ("Mar 10 2026 14:59:58", datetime(2026, 3, 10, 14, 59, 58, tzinfo=VN)),
        ("Mar 10 2026 14:59:58.120 UTC", datetime(2026, 3, 10, 14, 59, 58, 120000, tzinfo=UTC)),
        ("Mar 10 14:59:58 GMT+07:00", datetime(2026, 3, 10, 14, 59, 58, tzinfo=ICT)),
        ("Mar 10 2026 14:59:58 Asia/Bangkok", datetime(2026, 3, 10, 14, 59, 58, tzinfo=ICT)),
        ("2026-03-10T14:59:58+07:00", datetime(2026, 3, 10, 14, 59, 58, tzinfo=ICT)),
    ],
)
def test_cef_time_formats(rt: str, expected: datetime) -> None:
    line = f"CEF:0|V|P|1|id|N|5|rt={rt} src=10.0.0.1"
    assert parse_cef(line, source="s", received_at=RECEIVED).event_time == expected


def test_end_then_start_when_no_rt() -> None:
    line = "CEF:0|V|P|1|id|N|5|start=1773129590000 end=1773129598000"
    event = parse_cef(line, source="s", received_at=RECEIVED)
    assert event.event_time == datetime(2026, 3, 10, 7, 59, 58, tzinfo=UTC)


# --- errors name the field ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "pointer"),
    [
        ("CEF:0|V|P|1|id|N|5|src=10.0.0.300", "/extension/src"),
        ("CEF:0|V|P|1|id|N|5|dst=evil.example", "/extension/dst"),
        ("CEF:0|V|P|1|" + "x" * 65 + "|N|5|", "/header/4"),
        ("CEF:0|V|P|1|id|N|5|dhost=" + "h" * 65, "/extension/dhost"),
        ("CEF:0|V|P|1", "/header/3"),
        ("CEF:0|V|P|1|id|N|11|", "/header/6"),
        ("CEF:0|V|P|1|id|N|Critical|", "/header/6"),
        ("CEF:x|V|P|1|id|N|5|", "/header/0"),
        ("CEF:0|V|P|1|id|N|5|garbage src=10.0.0.1", "/extension"),
        ("CEF:0|V|P|1|id|N|5|rt=yesterday", "/extension/rt"),
        ("CEF:0|V|P|1|id|N|5|rt=Feb 30 2026 10:00:00", "/extension/rt"),
        ("CEF:0|V|P|1|id|N|5|rt=Mar 10 2026 10:00:00 IST", "/extension/rt"),
        ("no marker at all", "/header/0"),
        ("CEF:0|V|P|1|id|N|5|msg=a\x00b", ""),
    ],
)
def test_cef_errors_point_at_the_field(line: str, pointer: str) -> None:
    with pytest.raises(FormatError) as err:
        parse_cef(line, source="s", received_at=RECEIVED)
    assert err.value.pointer == pointer


@pytest.mark.parametrize(
    ("line", "pointer"),
    [
        ("LEEF:1.0|V|P|1|ev|sev=high", "/extension/sev"),
        ("LEEF:2.0|V|P|1|ev|xZZ|src=10.0.0.1", "/header/5"),
        ("LEEF:3.0|V|P|1|ev|src=10.0.0.1", "/header/0"),
        ("LEEF:1.0|V|P|1|ev|identSrc=::1::2", "/extension/identSrc"),
        (
            "LEEF:1.0|V|P|1|ev|devTime=10.03.2026\tdevTimeFormat=dd.MM.yyyy GG",
            "/extension/devTimeFormat",
        ),
        ("LEEF:1.0|V|P|1|ev|devTime=2026-03-10\tdevTimeFormat=dd.MM.yyyy", "/extension/devTime"),
        ("LEEF:1.0|V|P|1|ev|no attributes here", "/extension"),
    ],
)
def test_leef_errors_point_at_the_field(line: str, pointer: str) -> None:
    with pytest.raises(FormatError) as err:
        parse_leef(line, source="s", received_at=RECEIVED)
    assert err.value.pointer == pointer


# --- syslog ------------------------------------------------------------------------------


def test_rfc5424_structured_data_and_bom() -> None:
    msg = parse_syslog(sample("syslog5424_sd_bom.log"), received_at=RECEIVED)
    assert msg.format == "rfc5424"
    assert (msg.facility, msg.severity) == (20, 5)
    assert msg.timestamp == datetime(2026, 3, 10, 16, 30, 0, 123, tzinfo=ICT)
    assert (msg.hostname, msg.app_name, msg.procid, msg.msgid) == (
        "portal-01.sotttt.gov.vn",
        "dvc-portal",
        "2841",
        "AUTH",
    )
    assert msg.structured_data == {
        "exampleSDID@32473": {
            "iut": "3",
            "eventSource": "Application",
            "note": 'a "quoted" ] value',
        },
        "origin": {"ip": "10.40.1.5", "software": "nginx"},
    }
    assert msg.message == "Đăng nhập thất bại cho tài khoản cán bộ"  # BOM dropped


def test_rfc5424_nil_values() -> None:
    msg = parse_syslog(b"<13>1 - - - - - -", received_at=RECEIVED)
    assert msg == SyslogMessage(1, 5, None, None, None, None, None, {}, "", "rfc5424")


@pytest.mark.parametrize(
    ("line", "pointer"),
    [
        (b"<13>1 2026-03-10T16:00:00 h a - - - naive", "/syslog/timestamp"),
        (b"<13>1 2026-02-30T16:00:00Z h a - - - bad day", "/syslog/timestamp"),
        (b'<13>1 - h a - - [id x="unterminated] msg', "/syslog/structured_data/id"),
        (b"<13>1 - h", "/syslog"),
        (b"<192>Mar 10 16:00:00 h msg", "/syslog/pri"),
        (b"<13>Mar 10 16:00:00 h a\x00b", ""),
    ],
)
def test_syslog_errors(line: bytes, pointer: str) -> None:
    with pytest.raises(FormatError) as err:
        parse_syslog(line, received_at=RECEIVED)
    assert err.value.pointer == pointer


def test_rfc3164_year_rollover_at_new_year() -> None:
    received = datetime(2027, 1, 1, 0, 0, 5, tzinfo=ICT)
    msg = parse_syslog(b"<34>Dec 31 23:59:58 mymachine su: 'su root' failed", received_at=received)
    assert msg.timestamp == datetime(2026, 12, 31, 23, 59, 58, tzinfo=VN)
    assert (msg.facility, msg.severity, msg.hostname, msg.app_name) == (4, 2, "mymachine", "su")
    assert msg.message == "'su root' failed"


def test_rfc3164_sender_clock_slightly_ahead_across_new_year() -> None:
    received = datetime(2026, 12, 31, 23, 59, 50, tzinfo=ICT)
    msg = parse_syslog(b"<13>Jan  1 00:00:02 h app: x", received_at=received)
    assert msg.timestamp == datetime(2027, 1, 1, 0, 0, 2, tzinfo=VN)


def test_rfc3164_more_than_a_day_ahead_is_last_year() -> None:
    msg = parse_syslog(b"<13>Mar 12 10:00:00 h app: x", received_at=RECEIVED)
    assert msg.timestamp is not None and msg.timestamp.year == 2025


def test_rfc3164_default_zone_is_injected() -> None:
    msg = parse_syslog(b"<13>Mar 10 10:00:00 h x", received_at=RECEIVED, default_tz="UTC")
    assert msg.timestamp == datetime(2026, 3, 10, 10, tzinfo=UTC)
    with pytest.raises(FormatError):
        parse_syslog(b"<13>Mar 10 10:00:00 h x", received_at=RECEIVED, default_tz="Mars/Base")


@pytest.mark.parametrize(
    ("line", "hostname", "app_name", "procid", "message"),
    [
        (
            b"<86>Mar 10 16:00:00 srv sshd[4242]: Failed password",
            "srv",
            "sshd",
            "4242",
            "Failed password",
        ),
        (b"<86>Mar 10 16:00:00 sshd[4242]: no host", None, "sshd", "4242", "no host"),
        (
            b"<164>Mar 10 16:00:00 fw01 %ASA-4-106023: Deny tcp",
            "fw01",
            "%ASA-4-106023",
            None,
            "Deny tcp",
        ),
        (
            b"<134>Mar 10 16:00:00 fw01 CEF:0|V|P|1|id|N|5|",
            "fw01",
            None,
            None,
            "CEF:0|V|P|1|id|N|5|",
        ),
        (b"<134>Mar 10 16:00:00 LEEF:1.0|V|P|1|ev|", None, None, None, "LEEF:1.0|V|P|1|ev|"),
        (b"<134>Mar  1 16:00:00 fw01 CEF:0|a\r\n", "fw01", None, None, "CEF:0|a"),
    ],
)
def test_rfc3164_host_and_tag(
    line: bytes, hostname: str | None, app_name: str | None, procid: str | None, message: str
) -> None:
    msg = parse_syslog(line, received_at=RECEIVED)
    assert (msg.hostname, msg.app_name, msg.procid, msg.message) == (
        hostname,
        app_name,
        procid,
        message,
    )


def test_line_without_pri() -> None:
    plain = parse_syslog(b"CEF:0|V|P|1|id|N|5|src=10.0.0.1\n", received_at=RECEIVED)
    assert (plain.format, plain.timestamp, plain.message) == (
        "none",
        None,
        "CEF:0|V|P|1|id|N|5|src=10.0.0.1",
    )
    qradar = parse_syslog(b"Jan 18 11:07:53 myhostname LEEF:1.0|V|P|1|ev|", received_at=RECEIVED)
    assert (qradar.facility, qradar.hostname, qradar.message) == (
        None,
        "myhostname",
        "LEEF:1.0|V|P|1|ev|",
    )
    assert qradar.timestamp == datetime(2026, 1, 18, 11, 7, 53, tzinfo=VN)


def test_rfc3164_with_iso_timestamp() -> None:
    msg = parse_syslog(b"<13>2026-03-10T16:00:00.5+07:00 h app: x", received_at=RECEIVED)
    assert msg.timestamp == datetime(2026, 3, 10, 16, 0, 0, 500000, tzinfo=ICT)
    assert (msg.hostname, msg.app_name, msg.message) == ("h", "app", "x")


# --- framing -----------------------------------------------------------------------------


def octet(*frames: bytes) -> bytes:
    return b"".join(b"%d %s" % (len(f), f) for f in frames)


FRAMES = [b"<13>1 - h a - - - one", b"<13>1 - h a - - - two\nwith newline", b"<13>x"]


def test_octet_counting_several_frames_in_one_feed() -> None:
    framer = Framer()
    assert framer.feed(octet(*FRAMES)) == FRAMES
    assert (framer.mode, framer.pending) == ("octet", 0)


def test_octet_counting_split_across_feeds() -> None:
    data = octet(*FRAMES)
    framer = Framer()
    out: list[bytes] = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    assert out == FRAMES


def test_newline_framing_lf_and_crlf_split() -> None:
    framer = Framer()
    assert framer.feed(b"<13>a\r\n<13>b\n\n<13") == [b"<13>a", b"<13>b"]
    assert framer.pending == 3
    assert framer.feed(b">c\n") == [b"<13>c"]
    assert framer.mode == "newline"


def test_digits_without_space_mean_newline_framing() -> None:
    framer = Framer()
    assert framer.feed(b"12") == []
    assert framer.feed(b"3abc\n") == [b"123abc"]


def test_frame_over_the_maximum_raises_and_stays_failed() -> None:
    framer = Framer(max_frame=16)
    with pytest.raises(FormatError) as err:
        framer.feed(b"17 ")
    assert err.value.pointer == "/frame"
    with pytest.raises(FormatError):
        framer.feed(b"1 x")
    lines = Framer(max_frame=16)
    assert lines.feed(b"x" * 16) == []
    with pytest.raises(FormatError):
        lines.feed(b"x")
    assert lines.pending == 0


def test_newline_after_counted_frames_is_tolerated() -> None:
    assert Framer().feed(b"3 abc\n3 def\r\n") == [b"abc", b"def"]


def test_bad_length_in_octet_mode() -> None:
    framer = Framer()
    framer.feed(b"3 abc")
    with pytest.raises(FormatError):
        framer.feed(b"x3 abc")


# --- properties --------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
ANY_TEXT = st.text()
CEF_LIKE = st.one_of(
    ANY_TEXT,
    ANY_TEXT.map(lambda t: "CEF:" + t),
    st.tuples(st.lists(TEXT, min_size=6, max_size=8), ANY_TEXT).map(
        lambda p: "CEF:" + "|".join(p[0]) + "|" + p[1]
    ),
    st.lists(
        st.tuples(st.sampled_from(["src", "rt", "dhost", "msg", "cat", "end"]), ANY_TEXT),
        max_size=5,
    ).map(lambda kv: "CEF:0|V|P|1|id|N|5|" + " ".join(f"{k}={v}" for k, v in kv)),
)
LEEF_LIKE = st.one_of(
    ANY_TEXT.map(lambda t: "LEEF:" + t),
    st.tuples(st.sampled_from(["1.0|", "2.0|", "2.0|^|", "2.0|x09|"]), ANY_TEXT).map(
        lambda p: "LEEF:" + p[0] + "V|P|1|ev|" + p[1]
    ),
    st.lists(
        st.tuples(
            st.sampled_from(["src", "sev", "devTime", "devTimeFormat", "identHostName"]), ANY_TEXT
        ),
        max_size=5,
    ).map(lambda kv: "LEEF:1.0|V|P|1|ev|" + "\t".join(f"{k}={v}" for k, v in kv)),
)
SYSLOG_LIKE = st.one_of(
    st.binary(),
    st.tuples(st.integers(0, 999), st.binary()).map(lambda p: b"<%d>" % p[0] + p[1]),
    st.tuples(st.integers(0, 191), st.binary()).map(lambda p: b"<%d>1 " % p[0] + p[1]),
    st.tuples(st.sampled_from([b"<13>1 - h a - - ", b"<13>Jan 31 23:59:59 "]), st.binary()).map(
        lambda p: p[0] + p[1]
    ),
)
RECEIVED_ANY = st.datetimes(  # hypothesis takes naive bounds and adds the zone
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001
    max_value=datetime(2090, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(SYSLOG_LIKE, RECEIVED_ANY)
def test_parse_syslog_only_raises_format_error(line: bytes, received_at: datetime) -> None:
    try:
        msg = parse_syslog(line, received_at=received_at)
    except FormatError:
        return
    assert msg.timestamp is None or msg.timestamp.tzinfo is not None
    msgspec.json.encode(msg.as_raw())


@given(CEF_LIKE)
def test_parse_cef_only_raises_format_error(text: str) -> None:
    try:
        event = parse_cef(text, source="s", received_at=RECEIVED)
    except FormatError:
        return
    valid(event)


@given(LEEF_LIKE)
def test_parse_leef_only_raises_format_error(text: str) -> None:
    try:
        event = parse_leef(text, source="s", received_at=RECEIVED)
    except FormatError:
        return
    valid(event)


@given(st.lists(st.binary(max_size=40), max_size=20), st.integers(1, 64))
def test_framer_is_bounded_and_only_raises_format_error(chunks: list[bytes], limit: int) -> None:
    framer = Framer(max_frame=limit)
    for chunk in chunks:
        try:
            frames = framer.feed(chunk)
        except FormatError:
            return
        assert all(len(f) <= limit for f in frames)
        assert framer.pending <= limit


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.data())
def test_octet_frames_survive_any_split(frames: list[bytes], data: st.DataObject) -> None:
    stream = octet(*frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = Framer(max_frame=300)
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += framer.feed(stream[start:end])
    assert out == frames
    assert framer.pending == 0


def escape_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


HEADER_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n"), max_size=40)
EXT_VALUE = TEXT.filter(lambda v: v == v.strip(" \t"))
EXT_KEYS = ["cs1", "cs1Label", "cs2", "suser", "act", "request", "fname", "msg", "cn1", "ad.x[0]"]


@settings(max_examples=300)
@given(
    st.lists(HEADER_TEXT, min_size=4, max_size=4),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=64)
    .map(str.strip)
    .filter(lambda v: "\r" not in v and "\n" not in v),
    st.sampled_from(["0", "5", "10", "Low", "Very-High", "Unknown"]),
    st.dictionaries(st.sampled_from(EXT_KEYS), EXT_VALUE, max_size=6),
)
def test_cef_round_trip(
    fields: list[str], class_id: str, severity: str, extension: dict[str, str]
) -> None:
    vendor, product, version, name = fields
    header = [vendor, product, version, class_id, name, severity]
    line = "CEF:0|" + "|".join(escape_header(f) for f in header) + "|"
    line += " ".join(f"{k}={escape_value(v)}" for k, v in extension.items())
    event = valid(parse_cef(line, source="s", received_at=RECEIVED))
    assert event.raw is not None
    assert event.raw["header"] == ["0", *header]
    assert event.raw["extension"] == extension
    assert event.rule_id == (class_id or None)
    assert event.source_severity == severity
