"""The gateway process: the push API, the syslog listener and their background work.

Glue only: it builds the pieces of :mod:`ioc.api.push`, serves :mod:`ioc.api.gateway` and
:mod:`ioc.api.syslog`, and stops them in order on SIGTERM/SIGINT — first no new requests,
then the requests in flight finish (their events acknowledged), then the producer flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field

import psycopg
from aiohttp import web
from prometheus_client import CollectorRegistry

from ioc.api.gateway import gateway_app
from ioc.api.push import AuditWriter, BrokerLink, GatewayMetrics, IntegrationRegistry, PushService
from ioc.api.syslog import SyslogListener
from ioc.broker import ensure_topics
from ioc.clock import Clock
from ioc.config import Settings
from ioc.gc_tuning import settle_after_startup
from ioc.storage.integrations import expire_keys
from ioc.storage.writer import with_connection_defaults

log = logging.getLogger(__name__)

EXPIRE_EVERY = 600.0


@dataclass
class Gateway:
    """A running gateway; ``port`` is the bound HTTP port (``IOC_GATEWAY_PORT=0`` asks for any)."""

    settings: Settings
    service: PushService
    registry: CollectorRegistry
    runner: web.AppRunner | None = None
    port: int = 0
    syslog_udp_port: int = 0
    syslog_tcp_port: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closers: list[asyncio.BaseTransport | asyncio.Server] = field(default_factory=list)

    async def stop(self) -> None:
        for c in self.closers:
            c.close()
        if self.runner is not None:
            await self.runner.cleanup()  # waits for requests in flight
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.service.broker.stop()


async def start_gateway(settings: Settings, clock: Clock | None = None) -> Gateway:
    """Everything started and listening; the broker and database may still be on their way
    (readiness says so)."""
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    integrations = IntegrationRegistry(settings.database_url, metrics)
    broker = BrokerLink(settings, metrics)
    audit = AuditWriter(settings.database_url, metrics)
    service = PushService(settings, integrations, broker, metrics, audit, clock)
    gw = Gateway(settings, service, registry)
    gw.tasks += [
        asyncio.create_task(integrations.run(), name="integrations"),
        asyncio.create_task(_topics_then(broker, settings), name="broker"),
        asyncio.create_task(audit.run(), name="audit"),
        asyncio.create_task(_expire_keys(settings), name="idempotency-keys"),
    ]
    gw.runner = web.AppRunner(gateway_app(service, registry), access_log=None)
    await gw.runner.setup()
    site = web.TCPSite(gw.runner, settings.gateway_host, settings.gateway_port)
    await site.start()
    gw.port = int(gw.runner.addresses[0][1])
    listener = SyslogListener(service)
    if settings.syslog_udp_port:
        udp = await listener.start_udp(settings.gateway_host, settings.syslog_udp_port)
        gw.syslog_udp_port = int(udp.get_extra_info("sockname")[1])
        gw.closers.append(udp)
        gw.tasks.append(asyncio.create_task(listener.run_udp(), name="syslog-udp"))
    if settings.syslog_tcp_port:
        tcp = await listener.start_tcp(settings.gateway_host, settings.syslog_tcp_port)
        gw.syslog_tcp_port = int(tcp.sockets[0].getsockname()[1])
        gw.closers.append(tcp)
    log.info(
        "gateway: http %s:%d, syslog udp %s, tcp %s",
        settings.gateway_host,
        gw.port,
        gw.syslog_udp_port or "off",
        gw.syslog_tcp_port or "off",
    )
    return gw


async def _topics_then(broker: BrokerLink, settings: Settings) -> None:
    """Create missing topics once the broker answers (a gateway may start first), then keep
    the producer connected and probed."""
    while True:
        try:
            await ensure_topics(settings)
            break
        except Exception as exc:  # any failure to reach the broker: retry
            log.warning("gateway: cannot create topics yet (%s); retrying", exc)
            await asyncio.sleep(2.0)
    await broker.run()


async def _expire_keys(settings: Settings) -> None:
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                with_connection_defaults(settings.database_url), autocommit=True
            ) as conn:
                n = await expire_keys(conn)
                if n:
                    log.info("gateway: %d expired Idempotency-Keys removed", n)
        except psycopg.Error as exc:
            log.warning("gateway: could not expire Idempotency-Keys: %s", exc)
        await asyncio.sleep(EXPIRE_EVERY)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT."""
    gw = await start_gateway(settings)
    settle_after_startup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("gateway: stopping")
    await gw.stop()
