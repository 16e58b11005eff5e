"""Hand-built event sets for integration tests: lifecycles, duplicates, disorder, bad records."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ioc.events import DossierEvent, Event, SecurityEvent, UptimeEvent, partition_key
from ioc.producer import encode, stream_of

LIFECYCLES = (
    (1, 2, 4, 9, 10),
    (2, 4, 5, 4, 9, 10),
    (2, 4, 5, 4, 5),
    (2, 3),
    (2, 4, 7),
    (2, 4, 6, 4, 8),
)

BAD_RECORDS: dict[str, list[bytes]] = {
    "dossier": [
        b'{"event_id": "bad-1", "event_time": "2026-11-20T08:00:00+07:00"',
        b'{"event_id": "bad-2", "event_time": "2026-11-20T08:00:00+07:00", "dossier_id": "X",'
        b' "status": 11, "procedure_code": "1.000001", "agency_code": "SO-01"}',
        b'{"event_id": "bad-3", "event_time": "2026-11-20T08:00:00", "dossier_id": "X",'
        b' "status": 2, "procedure_code": "1.000001", "agency_code": "SO-01"}',
        b"",
    ],
    "uptime": [
        b'{"event_id": "bad-u1", "event_time": "2026-11-20T08:00:00Z", "service_id": "svc",'
        b' "status": "sideways"}',
        b"not json at all",
    ],
    "security": [
        b'{"event_id": "bad-s1", "event_time": "2026-11-20T08:00:00Z", "source": "ids",'
        b' "severity": "high", "category": "intrusion", "src_ip": "999.1.1.1"}',
        b'{"event_id": "bad-s2", "event_time": "2026-11-20T08:00:00Z", "source": "ids",'
        b' "severity": "urgent", "category": "intrusion"}',
        b'{"event_id": "bad-s3", "event_time": "2026-11-20T08:00:00Z", "source": "ids",'
        b' "severity": "low", "category": "policy", "colour": "red"}',
    ],
}


def dossier_events(
    n_dossiers: int, rng: random.Random, start: datetime, prefix: str = "dos"
) -> list[DossierEvent]:
    """Events of ``n_dossiers`` dossiers, each in lifecycle order with rising times."""
    out: list[DossierEvent] = []
    for d in range(n_dossiers):
        t = start + timedelta(minutes=rng.randint(0, 600))
        due = t + timedelta(days=rng.randint(2, 15))
        channel = rng.choice([None, 1, 2, 3])
        for i, status in enumerate(LIFECYCLES[d % len(LIFECYCLES)]):
            t += timedelta(minutes=rng.randint(1, 300))
            out.append(
                DossierEvent(
                    event_id=f"{prefix}-{d}-{i}",
                    event_time=t,
                    dossier_id=f"{prefix}-H{d:05d}",
                    status=status,
                    procedure_code=f"1.00{d % 40:04d}",
                    agency_code=f"SO-{d % 18 + 1:02d}",
                    channel=channel,
                    due_at=due,
                    online_level=rng.choice(["full", "partial", "none"]),
                    fee_required=d % 3 == 0,
                    paid_online=d % 6 == 0,
                    e_result=status in (9, 10),
                    rating=rng.choice([None, "satisfied", "dissatisfied"])
                    if status == 10
                    else None,
                )
            )
    return out


def uptime_events(n: int, start: datetime) -> list[UptimeEvent]:
    return [
        UptimeEvent(
            event_id=f"up-{i}",
            event_time=start + timedelta(seconds=30 * (i // 30)),
            service_id=f"svc-{i % 30:02d}",
            status="down" if i % 97 == 0 else "up",
            latency_ms=50.0 + i % 200,
            http_status=503 if i % 97 == 0 else 200,
        )
        for i in range(n)
    ]


def security_events(n: int, start: datetime, prefix: str = "sec") -> list[SecurityEvent]:
    severities = ("info", "low", "medium", "high", "critical")
    return [
        SecurityEvent(
            event_id=f"{prefix}-{i}",
            event_time=start + timedelta(milliseconds=50 * i),
            source=f"wazuh-{i % 7}",
            severity=severities[i % 5],
            category="brute_force",
            source_severity=str(i % 15),
            src_ip=f"203.0.113.{i % 250}",
            dst_ip="10.1.2.3",
            asset_id=f"asset-{i % 40}",
            agency_code="SO-01",
            raw={"rule": {"level": i % 15}},
        )
        for i in range(n)
    ]


def shuffled_within_key(events: list[Event], rng: random.Random) -> list[Event]:
    """Reorder events so each key's events arrive out of order (they share a partition)."""
    shuffled = list(events)
    rng.shuffle(shuffled)
    return shuffled


def as_records(events: list[Event]) -> list[tuple[str, bytes | None, bytes]]:
    return [(stream_of(e).topic, partition_key(e).encode(), encode(e)) for e in events]


def recent_start(hours_ago: int = 48) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(hours=hours_ago)
