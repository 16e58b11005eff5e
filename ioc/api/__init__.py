"""HTTP APIs (aiohttp) and what they share: JSON answers and JSON errors.

Every error is ``{"error": "...", "detail": ...}`` with a 4xx status that says whose fault it
is, so a client script or a phone app can act on it; bad input never becomes a 500, and a
database that does not answer is a 503 (retry later), not a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import psycopg
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An answer other than success; raised anywhere in a handler."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(
    status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"error": error, "detail": detail}, status, headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error: ours, aiohttp's (404 route, 405, 413), and a
    database that is down or busy (503)."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.error, exc.detail, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, exc.reason, exc.text, headers)
    except psycopg.OperationalError as exc:  # connection lost, pool exhausted, server down
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        return error_response(503, "database unavailable", "retry later")
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal error")


class DeniedAuditBound:
    """At most ``per_remote`` denied-audit rows per client address and ``total`` in all per
    minute. Entries never outnumber ``total``, so memory is bounded too, whatever the
    number of addresses an attacker has."""

    def __init__(
        self, per_remote: int, total: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_remote, self.total, self.clock = per_remote, total, clock
        self.window = -1
        self.used = 0
        self.counts: dict[str, int] = {}

    def admit(self, remote: str | None) -> bool:
        window = int(self.clock() // 60)
        if window != self.window:
            self.window, self.used = window, 0
            self.counts.clear()
        key = remote or ""
        n = self.counts.get(key, 0)
        if self.used >= self.total or n >= self.per_remote:
            return False
        self.counts[key] = n + 1
        self.used += 1
        return True


async def open_lazy_pool(
    conninfo: str, wait_seconds: float
) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    """A small autocommit pool, opened without waiting for the first connection: an API
    starts while the database is down and answers 503 until it is back."""
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        timeout=wait_seconds,  # for a connection from the pool
        kwargs={"autocommit": True},
        open=False,
    )
    await pool.open(wait=False)
    return pool
