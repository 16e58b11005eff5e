"""Deliberately broken records, one kind of mistake at a time, to exercise the dead-letter path.

Each kind is a mistake real producers make: a truncated body, a forgotten field, a status code
the national list does not have, a local time without its offset, a renamed field, a number
sent as a string, an address typed by hand. Every record is refused either by decoding into the
stream's event type or, for ``bad_ip``, by the address check in :mod:`ioc.validation`.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Final

import msgspec

from ioc.streams import BY_NAME

INVALID_KINDS: Final = (
    "malformed_json",
    "missing_field",
    "out_of_range",
    "naive_timestamp",
    "unknown_field",
    "wrong_type",
    "bad_ip",
)
_ICT: Final = timezone(timedelta(hours=7))
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "dossier": ("event_id", "event_time", "dossier_id", "status", "procedure_code", "agency_code"),
    "uptime": ("event_id", "event_time", "service_id", "status"),
    "security": ("event_id", "event_time", "source", "severity", "category"),
}
_OUT_OF_RANGE: Final[dict[str, tuple[tuple[str, object], ...]]] = {
    "dossier": (("status", 11), ("status", 0), ("channel", 4), ("fee_amount", -50_000)),
    "uptime": (("status", "unknown"), ("http_status", 700), ("latency_ms", -3.5)),
    "security": (("severity", "urgent"), ("category", "spam"), ("severity", "CRITICAL")),
}
_WRONG_TYPE: Final[dict[str, tuple[tuple[str, object], ...]]] = {
    "dossier": (("status", "2"), ("fee_required", "yes"), ("received_at", 1717200000)),
    "uptime": (("latency_ms", "fast"), ("http_status", "200"), ("status", True)),
    "security": (("src_ip", 167772161), ("severity", 3), ("raw", "not an object")),
}
_BAD_IPS: Final = ("300.1.2.3", "10.0.0", "1.2.3.4.5", "localhost", "2001:db8::zz", "192.168.1.")


def kinds_for(stream_name: str) -> tuple[str, ...]:
    """The kinds that make sense for a stream: only security events carry addresses."""
    _check_stream(stream_name)
    return INVALID_KINDS if stream_name == "security" else INVALID_KINDS[:-1]


def invalid_records(rng: random.Random, stream_name: str) -> bytes:
    """A broken record for ``stream_name`` ("dossier", "uptime", "security"), kind drawn by rng."""
    kinds = kinds_for(stream_name)
    return invalid_record(rng, stream_name, kinds[rng.randrange(len(kinds))])


def invalid_record(rng: random.Random, stream_name: str, kind: str) -> bytes:
    """A record for ``stream_name`` broken in the way ``kind`` names."""
    if kind not in kinds_for(stream_name):
        raise ValueError(f"kind {kind!r} does not apply to stream {stream_name!r}")
    doc = _valid_document(rng, stream_name)
    if kind == "malformed_json":
        return _malformed(rng, msgspec.json.encode(doc))
    if kind == "missing_field":
        del doc[rng.choice(_REQUIRED[stream_name])]
    elif kind == "out_of_range":
        field, value = rng.choice(_OUT_OF_RANGE[stream_name])
        doc[field] = value
    elif kind == "naive_timestamp":
        field = "event_time" if stream_name != "dossier" or rng.random() < 0.5 else "due_at"
        doc[field] = _time(rng).replace(tzinfo=None).isoformat()
    elif kind == "unknown_field":
        doc[rng.choice(("ma_ho_so", "priority", "eventTime", "tenant"))] = "x"
    elif kind == "wrong_type":
        field, value = rng.choice(_WRONG_TYPE[stream_name])
        doc[field] = value
    else:  # bad_ip
        doc[rng.choice(("src_ip", "dst_ip"))] = rng.choice(_BAD_IPS)
    return msgspec.json.encode(doc)


def _check_stream(stream_name: str) -> None:
    if stream_name not in BY_NAME:
        raise ValueError(f"unknown stream {stream_name!r}; expected one of {', '.join(BY_NAME)}")


def _time(rng: random.Random) -> datetime:
    return datetime(2025, 1, 1, tzinfo=_ICT) + timedelta(seconds=rng.randrange(365 * 86_400))


def _valid_document(rng: random.Random, stream_name: str) -> dict[str, object]:
    when = _time(rng)
    base: dict[str, object] = {
        "event_id": f"bad-{stream_name}-{rng.randrange(10**9)}",
        "event_time": when.isoformat(),
    }
    if stream_name == "dossier":
        return base | {
            "dossier_id": f"HS-{rng.randrange(10**6):06d}",
            "status": rng.randint(1, 10),
            "procedure_code": f"1.00{rng.randrange(10_000):04d}",
            "agency_code": f"SO-{rng.randint(1, 18):02d}",
            "channel": rng.randint(1, 3),
            "due_at": (when + timedelta(days=10)).isoformat(),
        }
    if stream_name == "uptime":
        return base | {
            "service_id": "svc-dvc",
            "status": "up",
            "latency_ms": round(rng.uniform(50, 300), 1),
            "http_status": 200,
        }
    return base | {
        "source": "wazuh-01",
        "severity": "high",
        "category": "brute_force",
        "source_severity": "10",
        "src_ip": f"203.0.113.{rng.randint(1, 254)}",
        "dst_ip": f"10.20.1.{rng.randint(1, 254)}",
    }


def _malformed(rng: random.Random, payload: bytes) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:  # cut off mid-stream: any proper prefix of an object is unclosed
        return payload[: rng.randrange(1, len(payload) - 1)]
    if choice == 1:
        return payload[:-1] + b",}"  # trailing comma
    if choice == 2:
        return payload.replace(b'"event_id"', b"event_id", 1)  # unquoted key
    if choice == 3:
        return b"<html><body>502 Bad Gateway</body></html>"
    return payload.replace(b'"', b"'")  # single quotes, as from a Python repr
