"""Publish events to their stream's topic, keyed so one dossier/service/source keeps order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import msgspec
from aiokafka import AIOKafkaProducer

from ioc.broker import producer_settings
from ioc.config import Settings
from ioc.events import Event, partition_key
from ioc.streams import BY_EVENT_TYPE, Stream

_encoder = msgspec.json.Encoder()


def stream_of(event: Event) -> Stream:
    try:
        return BY_EVENT_TYPE[type(event)]
    except KeyError:
        raise TypeError(f"not an event: {type(event).__name__}") from None


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


class EventProducer:
    """Thin wrapper over aiokafka: ``send_many`` returns once the broker acknowledged all."""

    def __init__(self, settings: Settings) -> None:
        self._producer = AIOKafkaProducer(**producer_settings(settings))

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send_many(self, items: Iterable[tuple[str, bytes | None, bytes]]) -> int:
        futures = [await self._producer.send(t, key=k, value=v) for t, k, v in items]
        if futures:
            await asyncio.gather(*futures)
        return len(futures)

    async def send_events(self, events: Iterable[Event]) -> int:
        return await self.send_many(
            (stream_of(e).topic, partition_key(e).encode(), encode(e)) for e in events
        )
