"""The committed OpenAPI document says what the gateway does: the formats and limits it
names are the code's, its references resolve to the published schemas, and every example
request in it is accepted by the reader of its format."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ioc.clock import ManualClock
from ioc.config import Settings
from ioc.gateway.integrations import Integration
from ioc.gateway.items import Accepted, ItemReader, content_types_of, formats_of, split_lines
from ioc.validation import TimeBounds

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
DOC: dict[str, Any] = json.loads((SCHEMAS / "gateway.openapi.json").read_text())
STREAMS = ("dossier", "uptime", "security")
ANY_TIME = TimeBounds(max_age=timedelta(days=36600), max_ahead=timedelta(days=3660))


def push(stream: str) -> dict[str, Any]:
    return DOC["paths"][f"/v1/events/{stream}"]["post"]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


@pytest.mark.parametrize("stream", STREAMS)
def test_formats_and_media_types_are_the_codes(stream: str) -> None:
    op = push(stream)
    [fmt] = [p for p in op["parameters"] if p["name"] == "format"]
    assert fmt["schema"]["enum"] == list(formats_of(stream))
    media = set(op["requestBody"]["content"])
    assert media == {t for f in formats_of(stream) for t in content_types_of(f)}


def test_limits_are_the_default_settings() -> None:
    s = Settings()
    for stream in STREAMS:
        ndjson = push(stream)["requestBody"]["content"]["application/x-ndjson"]["schema"]
        assert ndjson["maxItems"] == s.gateway_max_items
        assert str(s.gateway_max_body_bytes) in push(stream)["description"]


def test_every_reference_resolves() -> None:
    for ref in refs(DOC):
        target, _, fragment = ref.partition("#")
        if target:
            assert re.fullmatch(r"[a-z]+\.v1\.json", target) and (SCHEMAS / target).is_file(), ref
        else:
            node: Any = DOC
            for part in fragment.strip("/").split("/"):
                node = node[part]


def test_rejection_kinds_are_every_kind_the_reader_gives() -> None:
    item = DOC["components"]["schemas"]["ItemResult"]["oneOf"][1]
    kinds = set(item["properties"]["error"]["enum"])
    assert kinds == {
        "malformed",
        "invalid",
        "implausible_time",
        "expired",
        "too_large",
        "empty",
        "scope",
    }


@pytest.mark.parametrize("stream", STREAMS)
def test_every_example_request_is_accepted(stream: str) -> None:
    content = push(stream)["requestBody"]["content"]
    clock = ManualClock(datetime(2026, 11, 22, tzinfo=UTC))
    examples = [
        (name, media, ex["value"])
        for media, spec in content.items()
        for name, ex in spec.get("examples", {}).items()
    ]
    assert {name for name, _, _ in examples} == set(formats_of(stream))
    for name, media, value in examples:
        reader = ItemReader(stream, name, clock, ANY_TIME)
        source = value.get("source", "soc-tinh") if name == "native" else "soc-tinh"
        integ = Integration(source, frozenset(STREAMS), rate=1.0, burst=1.0)
        body = value.encode() if media == "text/plain" else json.dumps(value).encode()
        [out] = reader.read(split_lines(body), integ)
        assert isinstance(out, Accepted), (name, out)
