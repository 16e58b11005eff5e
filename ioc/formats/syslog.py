"""Syslog lines (RFC 5424 and RFC 3164) and TCP framing (RFC 6587), for SOC senders.

Line formats report errors with JSON-pointer-like paths into the line rather than a document:
``/syslog/pri``, ``/syslog/timestamp``, ``/syslog/structured_data`` for the envelope (and
``/frame`` for framing), ``/header/<n>`` and ``/extension/<key>`` for the CEF or LEEF body.

Time: RFC 3164 stamps carry neither year nor zone. They are read in ``default_tz`` (the sender's
zone; Vietnam by default) and given the year that puts them no more than one day after
``received_at`` — so "Dec 31 23:59:58" received at 00:00:05 on 1 January is last year's. A line
without ``<PRI>`` is accepted: if it starts with a 3164 stamp (QRadar documents the PRI as
optional there) it is read as 3164; otherwise the whole line is the message and the time is
unknown (``timestamp`` None), so the body parser falls back to ``received_at``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ioc.formats.common import FormatError, pointer

SyslogFormat = Literal["rfc5424", "rfc3164", "none"]
MONTHS = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
DEFAULT_MAX_FRAME = 64 * 1024


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    """One syslog envelope; fields the sender left out (or sent as ``-``) are None."""

    facility: int | None
    severity: int | None
    timestamp: datetime | None
    hostname: str | None
    app_name: str | None
    procid: str | None
    msgid: str | None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)
    message: str = ""
    format: SyslogFormat = "none"

    def as_raw(self) -> dict[str, object]:
        """The envelope as JSON-ready values, for an event's ``raw``."""
        return {
            "format": self.format,
            "facility": self.facility,
            "severity": self.severity,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "hostname": self.hostname,
            "app_name": self.app_name,
            "procid": self.procid,
            "msgid": self.msgid,
            "structured_data": self.structured_data,
        }


_PRI = re.compile(r"<(\d{1,3})>", re.ASCII)
_VERSION = re.compile(r"[1-9]\d? ", re.ASCII)
_RFC5424_HEAD = re.compile(r"([1-9]\d?) (\S+) (\S+) (\S+) (\S+) (\S+) ", re.ASCII)
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?",
    re.IGNORECASE | re.ASCII,
)
_BSD_STAMP = re.compile(
    r"([A-Za-z]{3}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?", re.ASCII
)
_SD_NAME = r'[^= \]"]{1,32}'
_SD_ID = re.compile(_SD_NAME)
_SD_PARAM = re.compile(rf' ({_SD_NAME})="((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(r'\\(["\\\]])')
_TAG = re.compile(r"([^\s\[\]:]{1,48})(?:\[([^\]\s]{0,128})\])?:(?: |$)", re.ASCII)
_BOM = "\ufeff"


def parse_syslog(
    line: bytes, *, received_at: datetime, default_tz: str = "Asia/Ho_Chi_Minh"
) -> SyslogMessage:
    """One syslog line (its framing already removed) → envelope and message text.

    Bytes are decoded as UTF-8 with invalid sequences replaced, so a sender's stray Latin-1
    byte costs one character, not the event.
    """
    if received_at.tzinfo is None:
        raise FormatError("", "received_at must be timezone-aware")
    if b"\x00" in line:
        raise FormatError("", "NUL bytes cannot be stored in text fields")
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    pri = _PRI.match(text)
    if pri is None:
        stamp = _BSD_STAMP.match(text)
        if stamp is not None and text[stamp.end() : stamp.end() + 1] in ("", " "):
            return _rfc3164(text, 0, None, received_at, default_tz)
        return SyslogMessage(None, None, None, None, None, None, None, message=text)
    value = int(pri.group(1))
    if value > 191:
        raise FormatError("/syslog/pri", f"priority {value} is above 191")
    pos = pri.end()
    if _VERSION.match(text, pos):
        return _rfc5424(text, pos, value)
    return _rfc3164(text, pos, value, received_at, default_tz)


def _rfc5424(text: str, pos: int, pri: int) -> SyslogMessage:
    head = _RFC5424_HEAD.match(text, pos)
    if head is None:
        raise FormatError(
            "/syslog",
            "an RFC 5424 header needs VERSION TIMESTAMP HOSTNAME "
            "APP-NAME PROCID MSGID separated by single spaces",
        )
    stamp = head.group(2)
    timestamp = None if stamp == "-" else _rfc5424_time(stamp)
    hostname, app_name, procid, msgid = (None if v == "-" else v for v in head.group(3, 4, 5, 6))
    pos = head.end()
    if text.startswith("-", pos):
        sd: dict[str, dict[str, str]] = {}
        pos += 1
    elif text.startswith("[", pos):
        sd, pos = _structured_data(text, pos)
    else:  # tolerated: a sender that leaves out the SD field and goes straight to MSG
        sd, pos = {}, pos - 1
    if pos < len(text) and text[pos] != " ":
        raise FormatError("/syslog/structured_data", "expected a space after structured data")
    message = text[pos + 1 :].removeprefix(_BOM)
    return SyslogMessage(
        pri >> 3, pri & 7, timestamp, hostname, app_name, procid, msgid, sd, message, "rfc5424"
    )


def _rfc5424_time(stamp: str) -> datetime:
    match = _ISO.fullmatch(stamp)
    if match is None or match.group(8) is None:
        raise FormatError("/syslog/timestamp", f"not an RFC 5424 timestamp: {stamp[:40]!r}")
    return _iso_datetime(match, None, "/syslog/timestamp")


def _iso_datetime(match: re.Match[str], zone: tzinfo | None, at: str) -> datetime:
    """An ``_ISO`` match → aware datetime; ``zone`` is used when the stamp has no offset."""
    year, month, day, hour, minute, second = (int(v) for v in match.group(1, 2, 3, 4, 5, 6))
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    offset = match.group(8)
    try:
        if offset is not None:
            zone = UTC if offset.upper() == "Z" else _offset(offset)
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError as exc:
        raise FormatError(at, f"invalid timestamp: {exc}") from None


def _offset(text: str) -> timezone:
    """``+07:00`` / ``+0700`` / ``-04`` → fixed offset."""
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or "0")
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset out of range: {text}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def _structured_data(text: str, pos: int) -> tuple[dict[str, dict[str, str]], int]:
    sd: dict[str, dict[str, str]] = {}
    while text.startswith("[", pos):
        sd_id = _SD_ID.match(text, pos + 1)
        if sd_id is None:
            raise FormatError("/syslog/structured_data", "an SD element needs an SD-ID")
        params = sd.setdefault(sd_id.group(), {})
        pos = sd_id.end()
        while (param := _SD_PARAM.match(text, pos)) is not None:
            params[param.group(1)] = _SD_ESCAPE.sub(r"\1", param.group(2))
            pos = param.end()
        if not text.startswith("]", pos):
            raise FormatError(
                pointer("syslog", "structured_data", sd_id.group()),
                'expected name="value" parameters and a closing "]"',
            )
        pos += 1
    return sd, pos


def _rfc3164(
    text: str, pos: int, pri: int | None, received_at: datetime, default_tz: str
) -> SyslogMessage:
    facility, severity = (None, None) if pri is None else (pri >> 3, pri & 7)
    timestamp: datetime | None = None
    iso = _ISO.match(text, pos)
    bsd = None if iso else _BSD_STAMP.match(text, pos)
    stamp = iso or bsd
    if stamp is None or text[stamp.end() : stamp.end() + 1] not in ("", " "):
        # No stamp: RFC 3164 §4.3.3 treats everything after PRI as the content.
        return SyslogMessage(
            facility, severity, None, None, None, None, None, {}, text[pos:], "rfc3164"
        )
    zone = zone_named(default_tz, "/syslog/timestamp")
    if iso is not None:
        timestamp = _iso_datetime(iso, zone, "/syslog/timestamp")
    elif bsd is not None:
        timestamp = _bsd_datetime(bsd, zone, received_at)
    rest = text[stamp.end() + 1 :]
    hostname: str | None = None
    if not (_TAG.match(rest) or rest.startswith(("CEF:", "LEEF:"))):
        hostname, _, rest = rest.partition(" ")
        hostname = hostname or None
    app_name = procid = None
    tag = _TAG.match(rest)
    if tag is not None:
        app_name, procid = tag.group(1), tag.group(2) or None
        rest = rest[tag.end() :]
    return SyslogMessage(
        facility, severity, timestamp, hostname, app_name, procid, None, {}, rest, "rfc3164"
    )


def _bsd_datetime(match: re.Match[str], zone: tzinfo, received_at: datetime) -> datetime:
    month = MONTHS.get(match.group(1).lower())
    if month is None:
        raise FormatError("/syslog/timestamp", f"unknown month {match.group(1)!r}")
    day, hour, minute, second = (int(v) for v in match.group(2, 3, 4, 5))
    return build_time(
        None,
        month,
        day,
        hour,
        minute,
        second,
        match.group(6),
        zone,
        received_at,
        "/syslog/timestamp",
    )


def build_time(
    year: int | None,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    fraction: str | None,
    zone: tzinfo,
    received_at: datetime,
    at: str,
) -> datetime:
    """Clock fields read from a line → aware datetime; a missing year is resolved with
    :func:`resolve_year`. ``fraction`` is the digits after the decimal point."""
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if year is None:
        when = resolve_year(month, day, hour, minute, second, micro, zone, received_at)
        if when is None:
            raise FormatError(at, f"not a valid date: month {month}, day {day}")
        return when
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError as exc:
        raise FormatError(at, f"invalid timestamp: {exc}") from None


def resolve_year(
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    micro: int,
    zone: tzinfo,
    received_at: datetime,
) -> datetime | None:
    """A year-less local time → the latest year that puts it at most one day after
    ``received_at`` (a clock a little ahead is tolerated; more means it is last year's).
    None when the fields make no date in the three years around ``received_at``."""
    now = received_at.astimezone(zone)
    limit = now + timedelta(days=1)
    for year in (now.year + 1, now.year, now.year - 1):
        try:
            candidate = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        except ValueError:
            continue
        if candidate <= limit:
            return candidate
    return None


_ZONE_NAME = re.compile(r"(?:[A-Za-z_]+/)?[A-Za-z_]+(?:/[A-Za-z0-9_+-]+)?")


def zone_named(name: str, at: str) -> tzinfo:
    """An IANA zone (``Asia/Ho_Chi_Minh``, ``UTC``) or FormatError; names are checked before
    the lookup because they may come from the line itself."""
    if not _ZONE_NAME.fullmatch(name):
        raise FormatError(at, f"unknown time zone {name[:40]!r}")
    return _zone(name, at)


@lru_cache(maxsize=64)
def _zone(name: str, at: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise FormatError(at, f"unknown time zone {name!r}") from None


_FIXED_ZONES = {"Z": 0, "UT": 0, "UTC": 0, "GMT": 0, "ICT": 7 * 60}  # ICT: Indochina Time
_OFFSET_TEXT = re.compile(r"(?:GMT|UTC)?([+-])(\d{1,2})(?::?(\d{2}))?", re.ASCII | re.IGNORECASE)


def zone_from_text(text: str, at: str) -> tzinfo:
    """A zone written in a line: ``Z``/``UTC``/``GMT``/``ICT``, an offset (``+0700``,
    ``-04:00``, ``GMT+07:00``) or an IANA name. Other abbreviations are ambiguous (IST, CST)
    and refused."""
    fixed = _FIXED_ZONES.get(text.upper())
    if fixed is not None:
        return timezone(timedelta(minutes=fixed)) if fixed else UTC
    offset = _OFFSET_TEXT.fullmatch(text)
    if offset is not None:
        hours, minutes = int(offset.group(2)), int(offset.group(3) or "0")
        if hours > 23 or minutes > 59:
            raise FormatError(at, f"UTC offset out of range: {text!r}")
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if offset.group(1) == "-" else delta)
    return zone_named(text, at)


_ZONE_FIELD = r"(?P<zone>[A-Za-z][A-Za-z0-9_/+:-]*|[+-]\d{2}:?\d{2})"
_JAVA_FIELDS = {
    "yyyy": r"(?P<year>\d{4})",
    "MMM": r"(?P<monthname>[A-Za-z]{3})",
    "MM": r"(?P<month>\d{1,2})",
    "dd": r"(?P<day>\d{1,2})",
    "HH": r"(?P<hour>\d{1,2})",
    "mm": r"(?P<minute>\d{1,2})",
    "ss": r"(?P<second>\d{1,2})",
    "SSS": r"(?P<fraction>\d{1,9})",
    "Z": r"(?P<zone>[+-]\d{4})",
    "X": r"(?P<zone>Z|[+-]\d{2})",
    "XX": r"(?P<zone>Z|[+-]\d{4})",
    "XXX": r"(?P<zone>Z|[+-]\d{2}:\d{2})",
    "z": _ZONE_FIELD,
    "EEE": r"[A-Za-z]{3}",
    "EEEE": r"[A-Za-z]{3,9}",
}
MAX_DATE_FORMAT = 64


def parse_java_time(
    text: str, pattern: str, *, zone: tzinfo, received_at: datetime, at: str, at_format: str
) -> datetime:
    """``text`` read with a Java ``SimpleDateFormat`` pattern (LEEF ``devTimeFormat``).

    Supported letters: ``yyyy MM MMM dd HH mm ss SSS`` for the clock, ``Z`` (+0700), ``X``/
    ``XX``/``XXX`` (Z, +07, +0700, +07:00), ``z``-``zzzz`` (UTC, GMT+07:00, ICT, IANA names),
    ``EEE``/``EEEE`` (day names, ignored), quoted literals ``'T'``; anything else is refused
    at ``at_format``. Without a zone field the time is read in ``zone``; without ``yyyy`` the
    year is resolved as for RFC 3164.
    """
    match = _java_regex(pattern, at_format).fullmatch(text.strip())
    if match is None:
        raise FormatError(at, f"{text[:40]!r} does not match the date format {pattern!r}")
    fields = match.groupdict()
    month_name = fields.get("monthname")
    month = MONTHS.get(month_name.lower()) if month_name else _int(fields.get("month"))
    day = _int(fields.get("day"))
    if month is None or day is None:
        raise FormatError(at, f"no valid month and day in {text[:40]!r}")
    zone_text = fields.get("zone")
    return build_time(
        _int(fields.get("year")),
        month,
        day,
        _int(fields.get("hour")) or 0,
        _int(fields.get("minute")) or 0,
        _int(fields.get("second")) or 0,
        fields.get("fraction"),
        zone_from_text(zone_text, at) if zone_text else zone,
        received_at,
        at,
    )


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


@lru_cache(maxsize=64)
def _java_regex(pattern: str, at: str) -> re.Pattern[str]:
    if len(pattern) > MAX_DATE_FORMAT:
        raise FormatError(at, f"date format longer than {MAX_DATE_FORMAT} characters")
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise FormatError(at, "unterminated quote in the date format")
            parts.append(re.escape(pattern[i + 1 : end]) if end > i + 1 else "'")
            i = end + 1
        elif char.isascii() and char.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == char:
                j += 1
            run = pattern[i:j]
            token = "z" if char == "z" and len(run) <= 4 else run
            if token not in _JAVA_FIELDS:
                raise FormatError(at, f"unsupported date format letters {run!r}")
            parts.append(_JAVA_FIELDS[token])
            i = j
        else:
            parts.append(re.escape(char))
            i += 1
    try:
        return re.compile("".join(parts), re.ASCII)
    except re.error:
        raise FormatError(at, f"a field appears twice in the date format {pattern!r}") from None


class Framer:
    """Cuts a TCP byte stream into syslog frames (RFC 6587).

    The first bytes of a connection choose the framing for its whole life: digits then a space
    mean octet counting (``LEN SP MSG``; a stray newline between frames is skipped), anything
    else newline framing (LF; a CR before it is dropped; empty lines skipped). A frame longer
    than ``max_frame`` raises FormatError at ``/frame`` — the listener drops the connection —
    and so does every later ``feed``: after a bad length there is no telling where the next
    frame starts. ``pending`` (bytes held between feeds) never exceeds ``max_frame``.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self.max_frame = max_frame
        self.mode: Literal["octet", "newline"] | None = None
        self._buffer = bytearray()
        self._expect: int | None = None  # octet mode: length of the frame being read
        self._failed: FormatError | None = None
        self._max_digits = len(str(max_frame))

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Append received bytes; return the frames they complete, in order."""
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        try:
            if self.mode is None:
                self.mode = self._detect()
                if self.mode is None:
                    return []
            return self._octet_frames() if self.mode == "octet" else self._line_frames()
        except FormatError as exc:
            self._failed = exc
            self._buffer.clear()
            raise

    def _detect(self) -> Literal["octet", "newline"] | None:
        buf = self._buffer
        if not buf:
            return None
        if not buf[:1].isdigit() or buf[:1] == b"0":
            return "newline"
        digits = len(buf) - len(buf.lstrip(b"0123456789"))
        if digits == len(buf):
            if digits > self._max_digits:
                raise FormatError("/frame", f"frame longer than {self.max_frame} bytes")
            return None  # wait for the byte after the digits
        return "octet" if buf[digits : digits + 1] == b" " else "newline"

    def _octet_frames(self) -> list[bytes]:
        frames: list[bytes] = []
        buf = self._buffer
        while True:
            if self._expect is None:
                if buf.startswith((b"\n", b"\r")):  # tolerated: a newline after each counted frame
                    del buf[: len(buf) - len(buf.lstrip(b"\r\n"))]
                space = buf.find(b" ", 0, self._max_digits + 1)
                if space < 0:
                    if len(buf) > self._max_digits or (buf and not buf.isdigit()):
                        raise FormatError("/frame", "expected a frame length (digits, space)")
                    return frames
                head = bytes(buf[:space])
                if not head.isdigit() or head.startswith(b"0"):
                    raise FormatError("/frame", f"invalid frame length {head[:16]!r}")
                length = int(head)
                if length > self.max_frame:
                    raise FormatError("/frame", f"frame of {length} bytes exceeds {self.max_frame}")
                del buf[: space + 1]
                self._expect = length
            if len(buf) < self._expect:
                return frames
            frames.append(bytes(buf[: self._expect]))
            del buf[: self._expect]
            self._expect = None

    def _line_frames(self) -> list[bytes]:
        frames: list[bytes] = []
        buf = self._buffer
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if end - start > self.max_frame:
                raise FormatError("/frame", f"line longer than {self.max_frame} bytes")
            frame = bytes(buf[start:end]).removesuffix(b"\r")
            if frame:
                frames.append(frame)
            start = end + 1
        del buf[:start]
        if len(buf) > self.max_frame:
            raise FormatError("/frame", f"line longer than {self.max_frame} bytes")
        return frames
