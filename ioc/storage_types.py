"""Plain values passed between the pipeline and the storage adapter."""

from __future__ import annotations

from dataclasses import dataclass

from ioc.events import Event


@dataclass(frozen=True, slots=True)
class Consumed:
    """A valid event and the Kafka position it was read from."""

    event: Event
    partition: int
    offset: int
