"""The HTTP push API: ``POST /v1/events/{dossier|uptime|security}``.

aiohttp rather than FastAPI: the project already serves the alert API with it, it reads
request bodies as bytes straight into msgspec (no per-item model layer on the hot path of a
1,000-event batch), and the contract we publish is the JSON Schemas in ``schemas/`` — which
FastAPI could not generate from msgspec types anyway. The OpenAPI document is therefore
written by hand (``schemas/gateway.openapi.json``), served here with the schemas it
references, and tested against this server with schemathesis.

Answers: 202 once the broker acknowledged every accepted item (per-item results: accepted
with the event ids, or rejected with the kind, reason and JSON pointer); 400 when no item
was accepted or the request itself is wrong; 401/403 for credentials and scopes; 409/422 for
Idempotency-Key conflicts; 413 for bodies, batches or items too large; 415 for media types a
format does not come in; 429 with ``Retry-After`` past the integration's rate; 503 with
``Retry-After`` while the broker is unreachable (nothing of that request is guaranteed
stored: resend it, which is safe). Never 500 for anything a client sends.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from psycopg_pool import AsyncConnectionPool

from ioc.api import ApiError, json_errors, json_response, open_lazy_pool
from ioc.api.push import (
    BrokerUnavailable,
    GatewayMetrics,
    IntegrationRegistry,
    PushResult,
    PushService,
)
from ioc.gateway.integrations import STREAM_NAMES, Integration
from ioc.gateway.items import (
    Accepted,
    ContentType,
    content_types_of,
    formats_of,
    split_items,
)
from ioc.gateway.ratelimit import retry_after_seconds
from ioc.storage.integrations import (
    AuditRow,
    body_digest,
    claim_key,
    finish_key,
    release_key,
)
from ioc.storage.writer import with_connection_defaults

log = logging.getLogger(__name__)

SCHEMAS_DIR = Path(__file__).resolve().parent.parent.parent / "schemas"
OPENAPI_FILE = "gateway.openapi.json"
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as in the IETF draft
_MEDIA = {"application/json", "application/x-ndjson", "text/plain"}


@dataclass
class GatewayState:
    service: PushService
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None

    @property
    def metrics(self) -> GatewayMetrics:
        return self.service.metrics

    @property
    def registry(self) -> IntegrationRegistry:
        return self.service.registry


STATE = web.AppKey("gateway", GatewayState)
METRICS = web.AppKey("metrics", CollectorRegistry)


def gateway_app(service: PushService, registry: CollectorRegistry) -> web.Application:
    """The push API around ``service``; ``registry`` is what ``/metrics`` shows."""
    limit = service.settings.gateway_max_body_bytes
    app = web.Application(middlewares=[json_errors], client_max_size=limit + 1)
    app[STATE] = GatewayState(service)
    app[METRICS] = registry
    app.cleanup_ctx.append(_pool)
    r = app.router
    r.add_post("/v1/events/{stream}", post_events)
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics)
    r.add_get("/openapi.json", openapi)
    r.add_get("/schemas/{name}", schema_file)
    return app


async def _pool(app: web.Application) -> AsyncIterator[None]:
    st = app[STATE]
    conninfo = with_connection_defaults(st.service.settings.database_url)
    st.pool = pool = await open_lazy_pool(conninfo, wait_seconds=3.0)
    try:
        yield
    finally:
        st.pool = None
        await pool.close()


# -- ops endpoints -----------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Restarting it would not fix a broker outage."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the broker answers and the integrations are loaded; else 503 and why."""
    st = request.app[STATE]
    broker = st.service.broker
    checks = {
        "broker": "ok" if broker.ready else (broker.problem or "unreachable"),
        "integrations": "ok" if st.registry.loaded.is_set() else "not loaded yet",
    }
    ready = all(v == "ok" for v in checks.values())
    return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    """To the document beside its schemas, so its relative ``$ref`` s resolve."""
    raise web.HTTPPermanentRedirect(f"/schemas/{OPENAPI_FILE}")


async def schema_file(request: web.Request) -> web.Response:
    return await _file(request.match_info["name"])


async def _file(name: str) -> web.Response:
    """A published contract file, from ``schemas/`` only (no paths, no other files)."""
    if "/" in name or "\\" in name or not name.endswith(".json") or name.startswith("."):
        raise ApiError(404, "no such schema")
    path = SCHEMAS_DIR / name
    if not path.is_file():
        raise ApiError(404, "no such schema", name)
    return web.Response(body=path.read_bytes(), content_type="application/json")


# -- pushing -----------------------------------------------------------------------------


def _refuse(
    request: web.Request,
    status: int,
    kind: str,
    error: str,
    detail: Any = None,
    *,
    stream: str,
    integ: Integration | None,
    headers: dict[str, str] | None = None,
) -> ApiError:
    """Count and audit a refused request; the ApiError to raise."""
    st = request.app[STATE]
    name = integ.name if integ else None
    st.metrics.requests.labels(stream, name or "-", str(status)).inc()
    row = AuditRow(name, request.remote, "http", request.path, status, kind, error, None)
    st.service.audit.add(row, name or request.remote)
    return ApiError(status, error, detail, headers)


def _authenticate(request: web.Request, stream: str) -> Integration:
    st = request.app[STATE]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not header:
        problem = "missing bearer token"
    elif scheme.lower() != "bearer" or not token.strip():
        problem = "expected the header Authorization: Bearer <token>"
    else:
        integ = st.registry.authenticate(token.strip())
        if integ is not None:
            return integ
        problem = "invalid or revoked token"
    raise _refuse(
        request,
        401,
        "unauthenticated",
        problem,
        stream=stream,
        integ=None,
        headers={"WWW-Authenticate": 'Bearer realm="ioc-gateway"'},
    )


def _media_type(request: web.Request, fmt: str, stream: str, integ: Integration) -> ContentType:
    allowed = content_types_of(fmt)
    ctype = request.content_type  # lower-cased by aiohttp; application/octet-stream if absent
    charset = request.charset
    utf8 = charset is None or charset.lower() in ("utf-8", "utf8")
    if ctype not in allowed or ctype not in _MEDIA or not utf8:
        raise _refuse(
            request,
            415,
            "unsupported_media_type",
            f"format {fmt!r} comes as {' or '.join(allowed)} (UTF-8), not {ctype}"
            + (f"; charset={charset}" if charset else ""),
            {"accepted": list(allowed)},
            stream=stream,
            integ=integ,
        )
    return ctype  # type: ignore[return-value]


async def post_events(request: web.Request) -> web.Response:
    st = request.app[STATE]
    settings = st.service.settings
    stream = request.match_info["stream"]
    if stream not in STREAM_NAMES:
        raise ApiError(404, "no such stream", {"streams": list(STREAM_NAMES)})
    integ = _authenticate(request, stream)
    if not integ.may_push(stream):
        raise _refuse(
            request,
            403,
            "forbidden",
            f"integration {integ.name!r} may not push {stream} events",
            {"streams": sorted(integ.streams)},
            stream=stream,
            integ=integ,
        )
    fmt = request.query.get("format", "native")
    if fmt not in formats_of(stream):
        raise _refuse(
            request,
            400,
            "bad_request",
            f"{stream} events do not come as {fmt!r}",
            {"formats": list(formats_of(stream))},
            stream=stream,
            integ=integ,
        )
    ctype = _media_type(request, fmt, stream, integ)
    limit = settings.gateway_max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _refuse(
            request, 413, "too_large", f"the body exceeds {limit} bytes", stream=stream, integ=integ
        )
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise _refuse(
            request,
            400,
            "bad_request",
            "Idempotency-Key must be 1-255 visible ASCII characters",
            stream=stream,
            integ=integ,
        )
    body = await request.read()  # aiohttp answers 413 past client_max_size
    started = time.perf_counter()
    items = split_items(body, ctype)
    if not items:
        raise _refuse(
            request, 400, "bad_request", "the body holds no item", stream=stream, integ=integ
        )
    if len(items) > settings.gateway_max_items:
        raise _refuse(
            request,
            413,
            "too_large",
            f"{len(items)} items exceed the batch limit of {settings.gateway_max_items}",
            {"max_items": settings.gateway_max_items},
            stream=stream,
            integ=integ,
        )
    claimed = False
    if key is not None:
        replay = await _claim(request, integ, key, body, ctype)
        if replay is not None:
            return replay
        claimed = True
    try:
        response = await _push(request, integ, stream, fmt, items)
    except BaseException:
        if claimed:
            await _release(request, integ.name, key or "")
        raise
    if claimed:
        await _finish(request, integ.name, key or "", response)
    st.metrics.latency.labels(stream).observe(time.perf_counter() - started)
    return response


async def _push(
    request: web.Request,
    integ: Integration,
    stream: str,
    fmt: str,
    items: list[tuple[int, bytes]],
) -> web.Response:
    st = request.app[STATE]
    wait = st.service.take_tokens(integ, len(items))
    if math.isinf(wait):
        raise _refuse(
            request,
            413,
            "too_large",
            f"{len(items)} items exceed this integration's burst of {integ.burst:g}; split the"
            " batch",
            {"burst": integ.burst},
            stream=stream,
            integ=integ,
        )
    if wait > 0:
        seconds = retry_after_seconds(wait)
        raise _refuse(
            request,
            429,
            "rate_limited",
            f"over this integration's rate of {integ.rate:g} items/s; retry in {seconds} s",
            {"rate_per_second": integ.rate, "retry_after": seconds},
            stream=stream,
            integ=integ,
            headers={"Retry-After": str(seconds)},
        )
    try:
        result = await st.service.push(integ, stream, fmt, items)
    except BrokerUnavailable as exc:
        st.metrics.requests.labels(stream, integ.name, "503").inc()
        log.warning("push from %s refused: %s", integ.name, exc)
        raise ApiError(
            503,
            "broker unavailable: nothing of this request is known to be stored; resend it",
            str(exc),
            {"Retry-After": "5"},
        ) from None
    status = 202 if result.accepted else 400
    st.metrics.requests.labels(stream, integ.name, str(status)).inc()
    if result.rejected:
        st.service.audit_rejections(
            integ,
            result,
            transport="http",
            remote=request.remote,
            target=request.path,
            status=status,
        )
    return json_response(_body(result), status)


def _body(result: PushResult) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for o in result.outcomes:
        if isinstance(o, Accepted):
            item: dict[str, Any] = {
                "index": o.index,
                "status": "accepted",
                "event_ids": o.event_ids,
            }
            if o.note:
                item["note"] = o.note
        else:
            item = {
                "index": o.index,
                "status": "rejected",
                "error": o.kind,
                "reason": o.reason,
                "pointer": o.pointer,
            }
        items.append(item)
    body: dict[str, Any] = {
        "accepted": result.accepted,
        "rejected": result.rejected,
        "events": result.events,
        "items": items,
    }
    if not result.accepted:
        body["error"] = "no item was accepted"
    return body


# -- idempotency -------------------------------------------------------------------------


def _db(request: web.Request) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
    pool = request.app[STATE].pool
    if pool is None:
        raise ApiError(
            503,
            "database unavailable",
            "the gateway is starting or stopping",
            {"Retry-After": "5"},
        )
    return pool


async def _claim(
    request: web.Request, integ: Integration, key: str, body: bytes, ctype: str
) -> web.Response | None:
    """None when this request may go ahead; else the answer to give instead."""
    digest = body_digest(body, ctype, request.query_string)
    try:
        async with _db(request).connection() as conn:
            claim = await claim_key(conn, integ.name, key, digest)
    except psycopg.OperationalError as exc:
        raise ApiError(
            503,
            "database unavailable: Idempotency-Key cannot be checked",
            str(exc),
            {"Retry-After": "5"},
        ) from None
    if claim.outcome == "new":
        return None
    if claim.outcome == "replay":
        return web.Response(
            body=claim.response or b"{}",
            status=claim.status or 202,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    if claim.outcome == "in_progress":
        raise ApiError(
            409,
            "a request with this Idempotency-Key is still being processed",
            None,
            {"Retry-After": "1"},
        )
    raise ApiError(422, "this Idempotency-Key was used with a different request body")


async def _finish(request: web.Request, name: str, key: str, response: web.Response) -> None:
    body = response.body if isinstance(response.body, bytes) else b""
    try:
        async with _db(request).connection() as conn:
            await finish_key(conn, name, key, response.status, body)
    except psycopg.Error as exc:  # the events are sent; a retry would only resend them
        log.warning("could not record the answer for Idempotency-Key %r: %s", key, exc)


async def _release(request: web.Request, name: str, key: str) -> None:
    try:
        async with _db(request).connection() as conn:
            await release_key(conn, name, key)
    except psycopg.Error as exc:
        log.warning("could not release Idempotency-Key %r: %s", key, exc)
