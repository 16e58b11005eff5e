"""The syslog listener: CEF and LEEF from firewalls, IDS and SIEMs over UDP and TCP.

A sender is admitted only from an address in some integration's ``syslog_sources`` (the
narrowest block wins) and pushes as that integration: its stream scope, agency scope and
rate apply as over HTTP. Each message (RFC 5424 or 3164 envelope, CEF or LEEF inside, told
apart by its header) is read by the same item reader as a ``text/plain`` push.

Syslog has no answers, so delivery differs by transport, and the difference is the
protocol's, not ours:

- **TCP** (octet counting or newline framing, RFC 6587) pushes back: past the rate, or while
  the broker is unreachable, the listener stops reading that connection and the sender's
  own buffer holds the rest. A frame longer than the limit closes the connection.
- **UDP** cannot push back: messages past the rate, or beyond a bounded queue while the
  broker is away, are dropped and counted (``ioc_gateway_syslog_messages_total``).

Rejected messages and unknown senders are counted per reason and audited (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from ioc.api.push import BrokerUnavailable, PushService
from ioc.formats.common import FormatError
from ioc.formats.syslog import DEFAULT_MAX_FRAME, Framer
from ioc.gateway.integrations import Integration, syslog_owner
from ioc.storage.integrations import AuditRow

log = logging.getLogger(__name__)

UDP_QUEUE_MAX = 20_000
BATCH_MAX = 1000
MAX_CONNECTIONS = 512
RETRY_SECONDS = 1.0


def line_format(frame: bytes) -> str:
    """``leef`` when the message carries a LEEF header, else ``cef`` (which explains itself
    when it is neither)."""
    return "leef" if b"LEEF:" in frame else "cef"


class SyslogListener:
    def __init__(self, service: PushService, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.service = service
        self.max_frame = max_frame
        self.queue: asyncio.Queue[tuple[Integration, bytes]] = asyncio.Queue(UDP_QUEUE_MAX)
        self.connections = 0
        self._count = service.metrics.syslog.labels

    # -- shared --------------------------------------------------------------------------

    def owner(self, address: str, transport: str) -> Integration | None:
        integ = syslog_owner(self.service.registry.integrations, address)
        if integ is None:
            self._count(transport, "unknown_sender").inc()
            self.service.audit.add(
                AuditRow(
                    None,
                    address,
                    transport,
                    None,
                    None,
                    "unknown_sender",
                    "syslog from an address in no integration's syslog_sources",
                ),
                address,
            )
        return integ

    async def deliver(
        self, integ: Integration, frames: list[bytes], transport: str, remote: str | None = None
    ) -> None:
        """Push frames until the broker took them (TCP and the UDP queue wait here)."""
        by_format: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
        for i, frame in enumerate(frames):
            by_format[line_format(frame)].append((i, frame))
        for fmt, items in by_format.items():
            while True:
                try:
                    result = await self.service.push(integ, "security", fmt, items)
                    break
                except BrokerUnavailable as exc:
                    log.warning("syslog from %s waits for the broker: %s", integ.name, exc)
                    await asyncio.sleep(RETRY_SECONDS)
            if result.accepted:
                self._count(transport, "accepted").inc(result.accepted)
            for r in result.rejections:
                self._count(transport, r.kind).inc()
            if result.rejections:
                self.service.audit_rejections(
                    integ,
                    result,
                    transport=transport,
                    remote=remote,
                    target="security",
                    status=None,
                )

    # -- UDP -----------------------------------------------------------------------------

    async def start_udp(self, host: str, port: int) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=(host, port)
        )
        return transport

    def datagram(self, data: bytes, address: str) -> None:
        integ = self.owner(address, "udp")
        if integ is None:
            return
        frame = data.rstrip(b"\r\n")
        if not frame:
            return
        try:
            self.queue.put_nowait((integ, frame))
        except asyncio.QueueFull:
            self._count("udp", "overloaded").inc()

    async def run_udp(self) -> None:
        """Drain the datagram queue in batches, per integration, within its rate."""
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < BATCH_MAX:
                batch.append(self.queue.get_nowait())
            groups: dict[str, tuple[Integration, list[bytes]]] = {}
            for integ, frame in batch:
                groups.setdefault(integ.name, (integ, []))[1].append(frame)
            for integ, frames in groups.values():
                if self.service.take_tokens(integ, len(frames)) > 0:
                    self._count("udp", "rate_limited").inc(len(frames))
                    continue
                await self.deliver(integ, frames, "udp")

    # -- TCP -----------------------------------------------------------------------------

    async def start_tcp(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._connection, host, port, limit=self.max_frame)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        integ = self.owner(address, "tcp")
        if integ is None or self.connections >= MAX_CONNECTIONS:
            if integ is not None:
                self._count("tcp", "overloaded").inc()
            writer.close()
            return
        self.connections += 1
        framer = Framer(self.max_frame)
        try:
            while data := await reader.read(256 * 1024):
                try:
                    frames = framer.feed(data)
                except FormatError as exc:
                    self._count("tcp", "bad_framing").inc()
                    log.warning("syslog from %s (%s): %s; closing", address, integ.name, exc)
                    break
                if frames:
                    await self._within_rate(integ, len(frames))
                    await self.deliver(integ, frames, "tcp", address)
        except (ConnectionError, OSError) as exc:
            log.info("syslog connection from %s ended: %s", address, exc)
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _within_rate(self, integ: Integration, n: int) -> None:
        """Wait until the integration's bucket holds ``n`` (TCP backpressure); a read larger
        than the burst is let through once the bucket is full."""
        while True:
            wait = self.service.take_tokens(integ, n)
            if wait == 0:
                return
            if wait == float("inf"):
                n = int(integ.burst)
                continue
            self._count("tcp", "throttled").inc()
            await asyncio.sleep(min(wait, 5.0))


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, listener: SyslogListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.listener.datagram(data, str(addr[0]))
