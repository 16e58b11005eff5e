"""Split a batch of raw records into valid events and dead letters.

Pure: the pipeline hands in what it read from Kafka, gets back what to store and what to
refuse, each refusal with its reason and Kafka position. One bad record never spoils the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.deadletter import DeadLetter
from ioc.storage_types import Consumed
from ioc.validation import EventParser, Rejection


@dataclass(frozen=True, slots=True)
class RawRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @classmethod
    def from_message(cls, m: Any) -> RawRecord:
        """From anything shaped like a Kafka message (aiokafka's or Faust's)."""
        return cls(m.topic, m.partition, m.offset, m.key, m.value)


def split_batch(
    parser: EventParser,  # type: ignore[type-arg]
    records: Iterable[RawRecord],
    received_at: datetime,
) -> tuple[list[Consumed], list[DeadLetter]]:
    valid: list[Consumed] = []
    dead: list[DeadLetter] = []
    for r in records:
        result = parser.parse(r.value, received_at)
        if isinstance(result, Rejection):
            dead.append(
                DeadLetter(
                    r.topic, r.partition, r.offset, r.key, r.value, result.reason, received_at
                )
            )
        else:
            valid.append(Consumed(result, r.partition, r.offset))
    return valid, dead
