"""IBM QRadar LEEF 1.0 and 2.0 lines → security events.

``LEEF:1.0|Vendor|Product|Version|EventID|`` then tab-separated ``key=value`` attributes;
``LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|`` where the delimiter is one character
(``^``) or hex (``x5E``, ``0x09``); an empty or missing delimiter field means tab. LEEF has no
escapes: a piece without ``=`` belongs to the previous value (the delimiter occurred inside it).
LEEF 1.0 lines with spaces instead of tabs (a common sender bug) are split like CEF.

Mapping follows :mod:`ioc.formats.cef` (one category table, one severity scale) with LEEF keys:
``sev`` (0-10; absent → info), ``cat`` then EventID for the category, ``src`` (else
``identSrc``) and ``dst``, ``identHostName`` else the syslog hostname as asset, EventID as
``rule_id``, ``msg`` as message. ``devTime`` is read with ``devTimeFormat`` (the
``SimpleDateFormat`` subset of :func:`~ioc.formats.syslog.parse_java_time`) or, without one, as
epoch milliseconds / ``MMM dd yyyy HH:mm:ss``; without ``devTime`` the syslog stamp, else
``received_at`` cut to the second. LEEF has no event-instance id, so ``event_id`` is derived
from the source and the whole LEEF text.
"""

from __future__ import annotations

import re
from datetime import datetime

from ioc.events import SecurityEvent, Severity
from ioc.formats.cef import (
    address,
    check_line,
    classify,
    code,
    device_time,
    host,
    line_time,
    parse_extension,
    short_text,
    split_header,
)
from ioc.formats.common import FormatError, pointer, severity_from_score, stable_event_id
from ioc.formats.syslog import SyslogMessage, parse_java_time, zone_named

_HEX_DELIMITER = re.compile(r"(?:0x|x)([0-9a-f]{1,4})", re.IGNORECASE | re.ASCII)
_KEY = re.compile(r"[^\s=]{1,128}")
_SPACED_KEY = re.compile(r"(?:^|(?<= ))[A-Za-z0-9_.\[\]-]+=", re.ASCII)


def parse_leef(
    text: str,
    *,
    source: str,
    received_at: datetime,
    syslog: SyslogMessage | None = None,
    default_tz: str = "Asia/Ho_Chi_Minh",
) -> SecurityEvent:
    """One LEEF 1.0 or 2.0 line (the message part of a syslog line, or posted) → event."""
    check_line(text, source, received_at)
    start = text.find("LEEF:")
    if start < 0:
        raise FormatError("/header/0", "not a LEEF line: no 'LEEF:' header")
    body = text[start:].rstrip("\r\n")
    header, pos = split_header(body, len("LEEF:"), 5)
    version = header[0].strip()
    if version in ("1.0", "1"):
        delimiter = "\t"
    elif version in ("2.0", "2"):
        delimiter, pos = _delimiter(body, pos, header)
    else:
        raise FormatError("/header/0", f"unsupported LEEF version {version[:16]!r}")
    attrs = _attributes(body[pos:], delimiter)
    return SecurityEvent(
        event_id=stable_event_id("leef", source, body),
        event_time=_event_time(attrs, syslog, received_at, default_tz),
        source=source,
        severity=_severity(attrs.get("sev", "")),
        category=classify(attrs.get("cat"), header[4]),
        source_severity=attrs.get("sev", "").strip() or None,
        src_ip=address(attrs, "src", "identSrc"),
        dst_ip=address(attrs, "dst"),
        asset_id=host(attrs, syslog, "identHostName"),
        rule_id=code(header[4], "/header/4"),
        message=short_text(attrs.get("msg")),
        raw={
            "format": "leef",
            "version": version,
            "header": header,
            "delimiter": delimiter,
            "extension": attrs,
            "syslog": syslog.as_raw() if syslog else None,
            "text": text,
        },
    )


def _delimiter(body: str, pos: int, header: list[str]) -> tuple[str, int]:
    """LEEF 2.0's delimiter field → (delimiter, attribute start); appended to ``header``."""
    bar = body.find("|", pos, pos + 7)
    field = body[pos:bar] if bar >= 0 else ""
    if bar < 0 or "=" in field:  # the sender left the field out
        return "\t", pos
    header.append(field)
    if field == "":
        return "\t", bar + 1
    hex_code = _HEX_DELIMITER.fullmatch(field)
    delimiter = chr(int(hex_code.group(1), 16)) if hex_code else field
    if len(delimiter) != 1 or delimiter in "=\x00" or 0xD800 <= ord(delimiter) <= 0xDFFF:
        raise FormatError("/header/5", f"delimiter must be one character or hex: {field!r}")
    return delimiter, bar + 1


def _attributes(text: str, delimiter: str) -> dict[str, str]:
    if delimiter == "\t" and "\t" not in text and len(_SPACED_KEY.findall(text.strip())) > 1:
        return parse_extension(text)
    attrs: dict[str, str] = {}
    last: str | None = None
    for piece in text.split(delimiter):
        if not piece.strip():
            continue
        key, eq, value = piece.partition("=")
        key = key.strip()
        if eq and _KEY.fullmatch(key):
            attrs[key] = value
            last = key
        elif last is not None:
            attrs[last] += delimiter + piece
        else:
            raise FormatError("/extension", f"expected key=value attributes: {piece[:32]!r}")
    return attrs


def _severity(sev: str) -> Severity:
    value = sev.strip()
    if not value:
        return "info"
    if value.isascii() and value.isdigit() and len(value) <= 2 and int(value) <= 10:
        return severity_from_score(int(value))
    raise FormatError("/extension/sev", f"sev must be an integer 0-10: {value[:16]!r}")


def _event_time(
    attrs: dict[str, str], syslog: SyslogMessage | None, received_at: datetime, default_tz: str
) -> datetime:
    value = attrs.get("devTime", "").strip()
    pattern = attrs.get("devTimeFormat", "").strip()
    if value and pattern:
        return parse_java_time(
            value,
            pattern,
            zone=zone_named(default_tz, "/extension/devTime"),
            received_at=received_at,
            at=pointer("extension", "devTime"),
            at_format=pointer("extension", "devTimeFormat"),
        )
    if value:
        return line_time(value, "/extension/devTime", received_at, default_tz)
    return device_time(attrs, (), syslog, received_at, default_tz)
