"""Event types of the three ingest streams: the code side of the contracts in ``schemas/``.

Each type is a frozen msgspec ``Struct``: decoding JSON straight into it validates types,
ranges and enums in one pass with a precise error path (``at `$.status```), which is what the
dead-letter reasons quote. ``tests/unit/test_contracts.py`` proves these types and the published
JSON Schemas accept and reject the same documents.

Every event carries an ``event_id`` (the idempotency key together with ``event_time``) and a
timezone-aware ``event_time``: naive timestamps are rejected, never guessed.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Annotated, Literal

import msgspec

EventId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/-]+$")
]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ShortText = Annotated[str, msgspec.Meta(max_length=1024)]


class DossierStatus(IntEnum):
    """National dossier status codes (trạng thái hồ sơ)."""

    NEW = 1  # Mới đăng ký
    RECEIVED = 2  # Được tiếp nhận
    NOT_RECEIVED = 3  # Không được tiếp nhận
    PROCESSING = 4  # Đang xử lý
    SUPPLEMENT_REQUESTED = 5  # Yêu cầu bổ sung giấy tờ
    FINANCIAL_OBLIGATION = 6  # Yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWN = 7  # Công dân yêu cầu rút hồ sơ
    STOPPED = 8  # Dừng xử lý
    PROCESSED = 9  # Đã xử lý xong
    RETURNED = 10  # Đã trả kết quả


class Channel(IntEnum):
    """How the dossier was submitted (hình thức nộp); absent counts as direct."""

    DIRECT = 1  # trực tiếp
    ONLINE = 2  # trực tuyến
    POSTAL = 3  # bưu chính công ích


OnlineLevel = Literal["full", "partial", "none"]  # toàn trình / một phần / không trực tuyến
Rating = Literal["very_satisfied", "satisfied", "dissatisfied"]
ProbeStatus = Literal["up", "degraded", "down"]
ProbeKind = Literal["probe", "heartbeat"]
Severity = Literal["info", "low", "medium", "high", "critical"]
SecurityCategory = Literal[
    "malware",
    "intrusion",
    "ddos",
    "phishing",
    "web_defacement",
    "brute_force",
    "data_leak",
    "vulnerability",
    "policy",
    "other",
]

SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class DossierEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A status change of an administrative dossier (hồ sơ thủ tục hành chính).

    Keyed by ``dossier_id`` so one dossier's events stay on one partition, in order.
    """

    event_id: EventId
    event_time: AwareDatetime
    dossier_id: Code
    status: Annotated[int, msgspec.Meta(ge=1, le=10)]
    procedure_code: Code
    agency_code: Code
    channel: Annotated[int, msgspec.Meta(ge=1, le=3)] | None = None
    received_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    online_level: OnlineLevel = "none"
    fee_required: bool = False
    fee_amount: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None  # bigint
    paid_online: bool = False
    e_result: bool = False
    e_result_required: bool = False
    rating: Rating | None = None
    source: Code | None = None


class UptimeEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A probe result or heartbeat for one e-government service. Keyed by ``service_id``."""

    event_id: EventId
    event_time: AwareDatetime
    service_id: Code
    status: ProbeStatus
    kind: ProbeKind = "probe"
    probe_id: Code | None = None
    latency_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    http_status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    tls_expires_at: AwareDatetime | None = None
    error: ShortText | None = None


class SecurityEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A normalised security event from a SOC integration. Keyed by ``source``.

    ``severity`` is our five-level scale; ``source_severity`` keeps the tool's own value.
    """

    event_id: EventId
    event_time: AwareDatetime
    source: Code
    severity: Severity
    category: SecurityCategory
    source_severity: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    src_ip: Annotated[str, msgspec.Meta(max_length=45)] | None = None
    dst_ip: Annotated[str, msgspec.Meta(max_length=45)] | None = None
    asset_id: Code | None = None
    agency_code: Code | None = None
    rule_id: Code | None = None
    message: ShortText | None = None
    raw: dict[str, object] | None = None


Event = DossierEvent | UptimeEvent | SecurityEvent


def partition_key(event: Event) -> str:
    """The Kafka key that keeps one dossier / service / source on one partition."""
    if isinstance(event, DossierEvent):
        return event.dossier_id
    if isinstance(event, UptimeEvent):
        return event.service_id
    return event.source
