"""A pushed request body → one outcome per item: events ready for the broker, or a rejection.

Bodies are one JSON document (``application/json``), one document per line
(``application/x-ndjson``) or one CEF/LEEF line per line, optionally behind a syslog header
(``text/plain``). Each item is read in the format the request names, converted to the native
event, and checked exactly as the ingest worker will check it (the same msgspec types, time
bounds and address rules, from :mod:`ioc.validation`), so an accepted event is never
dead-lettered downstream. A rejection carries a stable kind (a metric label), a reason and the
JSON pointer (RFC 6901) of the field at fault: ``/status``, ``/rule/level``, ``/extension/src``.

A native item is forwarded as the bytes it came in (it already is a valid native message);
a converted one is encoded from the event. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import msgspec

from ioc.clock import Clock
from ioc.events import Event, partition_key
from ioc.formats import alertmanager_webhook, ecs, ocsf, uptime_kuma, wazuh
from ioc.formats.cef import parse_cef
from ioc.formats.common import FormatError
from ioc.formats.leef import parse_leef
from ioc.formats.syslog import SyslogMessage, parse_syslog
from ioc.gateway.integrations import Integration
from ioc.streams import BY_NAME, Stream
from ioc.validation import EventParser, Rejection, TimeBounds

ContentType = Literal["application/json", "application/x-ndjson", "text/plain"]
JSON_TYPES: Final = ("application/json", "application/x-ndjson")
ITEM_MAX_BYTES: Final = 256 * 1024

JsonParser = Callable[[object, str, datetime], list[Event]]
LineParser = Callable[[str, str, datetime, SyslogMessage | None], Event]


def _one(parse: Callable[..., Event]) -> JsonParser:
    return lambda doc, source, at: [parse(doc, source=source, received_at=at)]


JSON_FORMATS: Final[dict[str, dict[str, JsonParser]]] = {
    "security": {"ecs": _one(ecs.parse), "ocsf": _one(ocsf.parse), "wazuh": _one(wazuh.parse)},
    "uptime": {
        "uptime-kuma": lambda doc, source, at: list(uptime_kuma.parse(doc, received_at=at)),
        "alertmanager": lambda doc, source, at: list(
            alertmanager_webhook.parse(doc, received_at=at)
        ),
    },
    "dossier": {},
}
LINE_FORMATS: Final[dict[str, LineParser]] = {
    "cef": lambda text, source, at, sl: parse_cef(text, source=source, received_at=at, syslog=sl),
    "leef": lambda text, source, at, sl: parse_leef(text, source=source, received_at=at, syslog=sl),
}


def formats_of(stream: str) -> tuple[str, ...]:
    """Every format a stream's endpoint takes; ``native`` first (the default)."""
    lines = tuple(LINE_FORMATS) if stream == "security" else ()
    return ("native", *JSON_FORMATS[stream], *lines)


def content_types_of(fmt: str) -> tuple[ContentType, ...]:
    return ("text/plain",) if fmt in LINE_FORMATS else JSON_TYPES


@dataclass(frozen=True, slots=True)
class Record:
    """One message for the stream's topic."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    index: int
    event_ids: tuple[str, ...]
    records: tuple[Record, ...]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    kind: str  # the reason's first word: a bounded label for metrics and audit
    reason: str
    pointer: str


Outcome = Accepted | Rejected
_AT = re.compile(r"\s+- at `\$([^`]*)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode


def rejection_parts(reason: str) -> tuple[str, str, str]:
    """``"invalid: Expected `int` - at `$.a[0]`"`` → ``("invalid", "Expected `int`", "/a/0")``."""
    kind, _, text = reason.partition(": ")
    m = _AT.search(text)
    if m is None:
        return kind, text, ""
    path = "".join(
        "/" + (name or index).replace("~", "~0").replace("/", "~1")
        for name, index in _PATH_PART.findall(m.group(1))
    )
    return kind, text[: m.start()], path


def split_lines(body: bytes) -> list[tuple[int, bytes]]:
    """Non-blank lines with their 0-based line number (blank lines count, but carry nothing)."""
    out = []
    for i, line in enumerate(body.split(b"\n")):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            out.append((i, line))
    return out


def split_items(body: bytes, content_type: ContentType) -> list[tuple[int, bytes]]:
    """A body's items: the whole document for JSON, else its non-blank lines."""
    if content_type == "application/json":
        return [(0, body)]
    return split_lines(body)


class ItemReader:
    """Reads one stream's items in one format, checked as the ingest worker checks them."""

    def __init__(
        self,
        stream: Stream | str,
        fmt: str,
        clock: Clock,
        bounds: TimeBounds | None = None,
    ) -> None:
        self.stream = BY_NAME[stream] if isinstance(stream, str) else stream
        if fmt not in formats_of(self.stream.name):
            raise ValueError(f"{self.stream.name} events do not come as {fmt!r}")
        self.format = fmt
        self._parser = EventParser.for_stream(self.stream, clock, bounds)
        self._clock = clock

    def read(
        self,
        items: Sequence[tuple[int, bytes]],
        integration: Integration,
        received_at: datetime | None = None,
    ) -> list[Outcome]:
        now = received_at or self._clock.now()
        return [self.read_one(i, raw, integration, now) for i, raw in items]

    def read_one(self, index: int, raw: bytes, integration: Integration, now: datetime) -> Outcome:
        if len(raw) > ITEM_MAX_BYTES:
            return Rejected(index, "too_large", f"{len(raw)} bytes exceeds {ITEM_MAX_BYTES}", "")
        if self.format == "native":
            return self._native(index, raw, integration, now)
        try:
            if self.format in LINE_FORMATS:
                events = [self._line(raw, integration.name, now)]
            else:
                doc = _decode_any(raw)
                events = JSON_FORMATS[self.stream.name][self.format](doc, integration.name, now)
        except msgspec.DecodeError as exc:
            return Rejected(index, "malformed", str(exc), "")
        except FormatError as exc:
            return Rejected(index, "invalid", exc.reason, exc.pointer)
        records = []
        for event in events:
            value = _encode(event)
            # The converted event is checked like a native one: lengths, patterns, time bounds.
            checked = self._parser.parse(value, now)
            if isinstance(checked, Rejection):
                kind, text, at = rejection_parts(checked.reason)
                return Rejected(index, kind, f"the converted event: {text}", at)
            problem = integration.scope_problem(checked)
            if problem is not None:
                return Rejected(index, "scope", problem.reason, problem.pointer)
            records.append(Record(partition_key(event).encode(), value))
        note = None if events else "nothing to store (e.g. a maintenance beat or a test message)"
        return Accepted(index, tuple(e.event_id for e in events), tuple(records), note)

    def _native(self, index: int, raw: bytes, integration: Integration, now: datetime) -> Outcome:
        event = self._parser.parse(raw, now)
        if isinstance(event, Rejection):
            kind, text, at = rejection_parts(event.reason)
            return Rejected(index, kind, text, at)
        problem = integration.scope_problem(event)
        if problem is not None:
            return Rejected(index, "scope", problem.reason, problem.pointer)
        record = Record(partition_key(event).encode(), raw)
        return Accepted(index, (event.event_id,), (record,))

    def _line(self, raw: bytes, source: str, now: datetime) -> Event:
        envelope = None
        if raw.startswith(b"<"):  # a syslog header in front of the CEF/LEEF text
            envelope = parse_syslog(raw, received_at=now)
            text = envelope.message
        else:
            if b"\x00" in raw:
                raise FormatError("", "NUL bytes cannot be stored in text fields")
            text = raw.decode("utf-8", errors="replace")
        return LINE_FORMATS[self.format](text, source, now, envelope)
