"""A refused record and where it came from: what goes to ``ioc.deadletter.v1`` and the table.

The original bytes are kept whole (the table stores them as ``bytea``), so an operator can fix
and replay the record; the topic message carries them decoded as UTF-8 with replacement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import msgspec

# Worst case a byte becomes a 6-byte JSON escape: 64 KiB stays far below Kafka's 1 MB default.
MAX_MESSAGE_PAYLOAD = 64 * 1024
MAX_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source_topic: str
    partition: int
    offset: int
    key: bytes | None
    payload: bytes | None
    reason: str
    received_at: datetime

    @property
    def digest(self) -> bytes:
        """Part of the idempotency key: a memory-only broker can reuse offsets after a restart."""
        return hashlib.sha256(self.payload or b"").digest()

    @property
    def key_text(self) -> str | None:
        return _text(self.key)

    @property
    def reason_kind(self) -> str:
        """The stable first word of the reason: a bounded label for metrics."""
        return self.reason.split(":", 1)[0]

    def to_message(self) -> bytes:
        """The topic message. The payload is cut to :data:`MAX_MESSAGE_PAYLOAD` bytes (escaping
        can grow a record sixfold past the broker's message limit); the table keeps it whole."""
        raw = self.payload or b""
        truncated = len(raw) > MAX_MESSAGE_PAYLOAD
        return msgspec.json.encode(
            {
                "source_topic": self.source_topic,
                "partition": self.partition,
                "offset": self.offset,
                "key": self.key_text,
                "reason": pg_text(self.reason)[:MAX_REASON_CHARS],
                "payload": _text(raw[:MAX_MESSAGE_PAYLOAD]) or "",
                "payload_truncated": truncated,
                "payload_bytes": len(raw),
                "received_at": self.received_at.isoformat(),
            }
        )


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else pg_text(raw.decode("utf-8", errors="replace"))


def pg_text(text: str) -> str:
    """PostgreSQL ``text`` cannot hold NUL: replace it, as invalid UTF-8 is replaced."""
    return text.replace("\x00", "\ufffd")
