"""A real gateway (``pipelines.gateway``) on loopback ports, in a thread with its own event
loop, so synchronous clients (urllib, schemathesis, sockets) can talk to it."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import psycopg

from ioc.config import Settings
from ioc.storage.integrations import add_integration
from pipelines.gateway import Gateway, start_gateway
from tests.support.services import wait_for


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class GatewayThread:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.gateway: Gateway | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> GatewayThread:
        self._thread.start()
        self.gateway = self.call(start_gateway(self.settings))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.gateway is not None:
            self.call(self.gateway.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return f"http://127.0.0.1:{self.gateway.port}"

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: self.get("/readyz").status == 200, timeout=timeout, what="readiness")

    def get(self, path: str) -> Answer:
        return request(self.url + path, "GET")

    def post(
        self,
        path: str,
        body: bytes | str,
        token: str | None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        hdrs = {"Content-Type": content_type, **(headers or {})}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = body.encode() if isinstance(body, str) else body
        return request(self.url + path, "POST", data, hdrs)

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        text = self.get("/metrics").body
        total = 0.0
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += float(s.value)
        return total


def request(
    url: str, method: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> Answer:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw, status, hdrs = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        raw, status, hdrs = e.read(), e.code, dict(e.headers)
    text = raw.decode()
    body: Any = (
        json.loads(text) if hdrs.get("Content-Type", "").startswith("application/json") else text
    )
    return Answer(status, hdrs, body)


def create_integration(database_url: str, name: str, **kwargs: Any) -> str:
    """The token of a new integration (see ``ioc.storage.integrations.add_integration``)."""

    async def go() -> str:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
            return await add_integration(c, name, **kwargs)

    return asyncio.run(go())
