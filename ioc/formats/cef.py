"""ArcSight CEF lines → security events, and the mapping rules CEF and LEEF share.

``CEF:Version|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|
Extension``: ``\\|`` and ``\\\\`` are escapes in the header; the extension is space-separated
``key=value`` pairs where ``\\=``, ``\\\\``, ``\\n`` and ``\\r`` are escapes and a value runs
to the space before the next ``key=``. Text before ``CEF:`` (a syslog header the caller did not
strip) is ignored. A repeated key keeps its last value.

Mapping (LEEF uses the same rules, see :mod:`ioc.formats.leef`):

- ``severity``: a 0-10 score via :func:`severity_from_score`, or the words Unknown → info,
  Low, Medium, High, Very-High → critical; ``source_severity`` keeps the text as sent.
- ``category``: :data:`CATEGORY_RULES`, tried on ``cat``, then the Device Event Class ID, then
  the Name — the first field with a match decides.
- ``src_ip``/``dst_ip``: ``src``/``dst`` (or ``sourceAddress``/``destinationAddress``); a value
  that is not an IP address is an error, not a silent drop.
- ``asset_id``: ``dhost`` (the targeted host), else ``dvchost``/``deviceHostName`` (the
  reporting device), else the syslog hostname.
- ``rule_id``: the Device Event Class ID (≤ 64 characters, else an error).
- ``message``: Name and ``msg``, cut to 1,024 characters.
- ``event_time``: ``rt``, else ``end``, else ``start`` (epoch milliseconds, or
  ``MMM dd [yyyy] HH:mm:ss[.SSS] [zone]`` read in ``default_tz`` when zoneless); else the
  syslog timestamp; else ``received_at`` cut to the second. Senders should set ``rt``: a
  timeless message resent in a later second is stored twice, since the idempotency key is
  ``(event_id, event_time)``.
- ``event_id``: derived (:func:`stable_event_id`) from source, vendor, product and
  ``externalId`` when the sender gives one (its own event id: a resend with other formatting is
  still one event), else from source and the whole CEF text. ``deviceExternalId`` names the
  device, not the event, so it is never the id. Ids are hashed because the table's key is not
  scoped by source and raw ids may break the id pattern.
"""

from __future__ import annotations

import re
import socket
from datetime import datetime

from ioc.events import SecurityCategory, SecurityEvent, Severity
from ioc.formats.common import (
    FormatError,
    parse_time,
    pointer,
    severity_from_score,
    stable_event_id,
)
from ioc.formats.syslog import MONTHS, SyslogMessage, build_time, zone_from_text, zone_named

MAX_CODE = 64
MAX_MESSAGE = 1024


def _rule(category: SecurityCategory, pattern: str) -> tuple[SecurityCategory, re.Pattern[str]]:
    return category, re.compile(pattern, re.IGNORECASE)


CATEGORY_RULES: tuple[tuple[SecurityCategory, re.Pattern[str]], ...] = (
    _rule(
        "brute_force",
        r"brute[\s_-]*forc|authenticat\w*[\s_-]*fail|(?:login|logon)[\s_-]*fail"
        r"|fail\w*[\s_-]*(?:to[\s_-]*)?(?:password|log[\s_-]*[io]n)|password[\s_-]*spray",
    ),
    _rule("ddos", r"(?<![a-z])d?dos(?![a-z])|flood"),
    _rule("phishing", r"phish"),
    _rule("web_defacement", r"deface"),
    _rule("data_leak", r"exfiltrat|leak"),
    _rule("malware", r"malware|virus|trojan|ransom|worm|backdoor|spyware|botnet"),
    _rule("vulnerability", r"vulnerab"),
    _rule("intrusion", r"scan|intrusion|exploit|attack|inject|xss"),
    _rule("vulnerability", r"(?<![a-z])cve-\d{4}-\d+"),
    _rule("policy", r"polic(?:y|ies)"),
)
"""The one keyword table for line formats, in priority order: the specific kinds first, so
"brute force attack" is brute force and "DDoS attack" is DDoS, not intrusion; a bare CVE id
is a vulnerability unless the text also says exploit or attack."""

_SEVERITY_WORDS: dict[str, Severity] = {
    "unknown": "info",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "veryhigh": "critical",
}
_HEADER_FIELD = re.compile(r"(?:[^|\\]|\\.)*", re.DOTALL)
_HEADER_ESCAPE = re.compile(r"\\([|\\])")
_EXT_KEY = re.compile(r"(?:^|(?<=[ \t]))([A-Za-z0-9_.\[\]-]+)=", re.ASCII)
_EXT_ESCAPE = re.compile(r"\\([\\=nr|])")
_EXT_UNESCAPED = {"\\": "\\", "=": "=", "n": "\n", "r": "\r", "|": "|"}
_VERSION = re.compile(r"\d{1,3}(?:\.\d{1,3})?", re.ASCII)
_EPOCH_MS = re.compile(r"\d{1,15}(?:\.\d+)?", re.ASCII)
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}\S*", re.ASCII)
_CEF_TIME = re.compile(
    r"([A-Za-z]{3}) (\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?: (\S+))?",
    re.ASCII,
)


def parse_cef(
    text: str,
    *,
    source: str,
    received_at: datetime,
    syslog: SyslogMessage | None = None,
    default_tz: str = "Asia/Ho_Chi_Minh",
) -> SecurityEvent:
    """One CEF line (the message part of a syslog line, or an HTTP-posted line) → event."""
    check_line(text, source, received_at)
    start = text.find("CEF:")
    if start < 0:
        raise FormatError("/header/0", "not a CEF line: no 'CEF:' header")
    body = text[start:].rstrip("\r\n")
    header, pos = split_header(body, len("CEF:"), 7)
    version = header[0].strip()
    if not _VERSION.fullmatch(version):
        raise FormatError("/header/0", f"invalid CEF version {version[:16]!r}")
    ext = parse_extension(body[pos:])
    severity = cef_severity(header[6], "/header/6")
    external_id = ext.get("externalId", "").strip()
    identity = (header[1], header[2], external_id) if external_id else (body,)
    return SecurityEvent(
        event_id=stable_event_id("cef", source, *identity),
        event_time=device_time(ext, ("rt", "end", "start"), syslog, received_at, default_tz),
        source=source,
        severity=severity,
        category=classify(ext.get("cat"), header[4], header[5]),
        source_severity=header[6].strip()[:64] or None,
        src_ip=address(ext, "src", "sourceAddress"),
        dst_ip=address(ext, "dst", "destinationAddress"),
        asset_id=host(ext, syslog, "dhost", "destinationHostName", "dvchost", "deviceHostName"),
        rule_id=code(header[4], "/header/4"),
        message=short_text(header[5], ext.get("msg")),
        raw={
            "format": "cef",
            "version": version,
            "header": header,
            "extension": ext,
            "syslog": syslog.as_raw() if syslog else None,
            "text": text,
        },
    )


def check_line(text: str, source: str, received_at: datetime) -> None:
    """What every line parser refuses before reading anything."""
    if received_at.tzinfo is None:
        raise FormatError("", "received_at must be timezone-aware")
    if not 0 < len(source) <= MAX_CODE:
        raise FormatError("", f"source must be 1-{MAX_CODE} characters")
    if "\x00" in text:
        raise FormatError("", "NUL characters cannot be stored in text fields")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError("", "the line is not valid Unicode (lone surrogate)") from None


def split_header(body: str, pos: int, count: int) -> tuple[list[str], int]:
    """``count`` pipe-terminated header fields from ``pos`` (``\\|`` and ``\\\\`` unescaped)
    and the position after the last pipe."""
    fields: list[str] = []
    for index in range(count):
        match = _HEADER_FIELD.match(body, pos)
        end = match.end() if match else pos
        if not body.startswith("|", end):
            raise FormatError(pointer("header", index), f"header field {index} has no closing '|'")
        fields.append(_HEADER_ESCAPE.sub(r"\1", body[pos:end]))
        pos = end + 1
    return fields, pos


def parse_extension(ext: str) -> dict[str, str]:
    """``key=value key=value`` with CEF escapes; a value runs to the space before the next
    unescaped ``key=``, surrounding spaces and tabs dropped."""
    ext = ext.strip(" \t\r\n")
    keys = list(_EXT_KEY.finditer(ext))
    if not keys:
        if ext:
            raise FormatError("/extension", "expected space-separated key=value pairs")
        return {}
    if keys[0].start() != 0:
        raise FormatError("/extension", f"text before the first key=value: {ext[:32]!r}")
    values: dict[str, str] = {}
    ends = [k.start() for k in keys[1:]] + [len(ext)]
    for key, end in zip(keys, ends, strict=True):
        value = ext[key.end() : end].strip(" \t")
        values[key.group(1)] = _EXT_ESCAPE.sub(lambda m: _EXT_UNESCAPED[m.group(1)], value)
    return values


def cef_severity(text: str, at: str) -> Severity:
    """CEF Severity: an integer 0-10 or one of the words Unknown, Low, Medium, High, Very-High."""
    value = text.strip()
    if value.isascii() and value.isdigit() and len(value) <= 2 and int(value) <= 10:
        return severity_from_score(int(value))
    word = _SEVERITY_WORDS.get(re.sub(r"[\s_-]", "", value).lower())
    if word is None:
        raise FormatError(at, f"severity must be 0-10 or Low/Medium/High/Very-High: {value[:16]!r}")
    return word


def classify(*texts: str | None) -> SecurityCategory:
    """The category of the first text that any :data:`CATEGORY_RULES` row matches."""
    for text in texts:
        if text:
            for category, rule in CATEGORY_RULES:
                if rule.search(text):
                    return category
    return "other"


def address(fields: dict[str, str], *keys: str) -> str | None:
    """The first non-empty of ``keys`` as an IP address; anything else is an error there."""
    for key in keys:
        value = fields.get(key, "").strip()
        if value:
            if not _is_ip(value):
                raise FormatError(
                    pointer("extension", key), f"not an IPv4 or IPv6 address: {value[:48]!r}"
                )
            return value
    return None


def _is_ip(value: str) -> bool:
    """The same check as :mod:`ioc.validation` (and PostgreSQL ``inet``) applies."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, value)
        except (OSError, ValueError):
            continue
        return True
    return False


def host(fields: dict[str, str], syslog: SyslogMessage | None, *keys: str) -> str | None:
    """The first non-empty host field, else the syslog hostname, as an asset id."""
    for key in keys:
        value = fields.get(key, "").strip()
        if value:
            return code(value, pointer("extension", key))
    if syslog is not None and syslog.hostname:
        return code(syslog.hostname, "/syslog/hostname")
    return None


def code(value: str, at: str) -> str | None:
    """An identifier field: blank is absent, longer than 64 characters is an error."""
    value = value.strip()
    if len(value) > MAX_CODE:
        raise FormatError(at, f"longer than {MAX_CODE} characters")
    return value or None


def short_text(*parts: str | None) -> str | None:
    """Non-empty parts joined with ': ', cut to the message limit."""
    text = ": ".join(p.strip() for p in parts if p and p.strip())
    return text[:MAX_MESSAGE] or None


def device_time(
    fields: dict[str, str],
    keys: tuple[str, ...],
    syslog: SyslogMessage | None,
    received_at: datetime,
    default_tz: str,
) -> datetime:
    """The event time from the first present key, else the syslog stamp, else
    ``received_at`` to the second (see the module docstring for what that costs)."""
    for key in keys:
        value = fields.get(key, "").strip()
        if value:
            return line_time(value, pointer("extension", key), received_at, default_tz)
    if syslog is not None and syslog.timestamp is not None:
        return syslog.timestamp
    return received_at.replace(microsecond=0)


def line_time(value: str, at: str, received_at: datetime, default_tz: str) -> datetime:
    """Epoch milliseconds, ISO 8601, or ``MMM dd [yyyy] HH:mm:ss[.SSS] [zone]``; zoneless
    times are read in ``default_tz``."""
    if _EPOCH_MS.fullmatch(value):
        return parse_time(float(value) if "." in value else int(value), at)
    if _ISO_TIME.fullmatch(value):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise FormatError(at, f"not a valid timestamp: {value[:40]!r}") from None
        return when if when.tzinfo else when.replace(tzinfo=zone_named(default_tz, at))
    match = _CEF_TIME.fullmatch(value)
    month = MONTHS.get(match.group(1).lower()) if match else None
    if match is None or month is None:
        raise FormatError(
            at, f"expected epoch ms or 'MMM dd yyyy HH:mm:ss[.SSS] [zone]': {value[:40]!r}"
        )
    year = match.group(3)
    zone = match.group(8)
    return build_time(
        int(year) if year else None,
        month,
        int(match.group(2)),
        int(match.group(4)),
        int(match.group(5)),
        int(match.group(6)),
        match.group(7),
        zone_from_text(zone, at) if zone else zone_named(default_tz, at),
        received_at,
        at,
    )
