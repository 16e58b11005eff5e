"""Integrations in the database (``integrations``), the gateway's audit of refused requests
(``gateway_audit``) and its Idempotency-Key answers (``gateway_idempotency``).

Tokens are stored as SHA-256 only, as for API users (:mod:`ioc.storage.alert_users` says
why). Rotation may keep the previous token valid for a grace period, so a SOC can redeploy its
collector without losing a minute of events. Every change ends with ``NOTIFY
ioc_integrations``: gateways reload at once, so a revoked token stops working within a
round-trip rather than at the next periodic reload.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from ioc.deadletter import pg_text
from ioc.gateway.integrations import (
    Integration,
    Network,
    check_name,
    parse_streams,
)
from ioc.storage.alert_users import hash_token

TOKEN_PREFIX = "iocg_"  # gateway tokens: told apart from API users' `ioc_` in logs and scans
TOKEN_MAX = 128
CHANNEL = "ioc_integrations"
_COLUMNS = (
    "name, streams, agencies, rate_per_second, burst, syslog_sources, created_at, created_by,"
    " changed_at, revoked_at, previous_valid_until"
)


class IntegrationExists(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class IntegrationRecord:
    name: str
    streams: list[str]
    agencies: list[str] | None
    rate_per_second: float
    burst: float
    syslog_sources: list[Network]
    created_at: datetime
    created_by: str | None
    changed_at: datetime | None
    revoked_at: datetime | None
    previous_valid_until: datetime | None


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def plausible_token(token: str) -> bool:
    """Worth hashing and looking up: one of ours by shape."""
    return token.startswith(TOKEN_PREFIX) and len(token) <= TOKEN_MAX and token.isascii()


def default_burst(rate: float) -> float:
    """Two seconds' worth, and never below one 1,000-event batch."""
    return max(2 * rate, 1000.0)


async def _notify(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(f"NOTIFY {CHANNEL}")


async def add_integration(
    conn: psycopg.AsyncConnection[Any],
    name: str,
    *,
    streams: list[str],
    rate: float,
    burst: float | None = None,
    agencies: list[str] | None = None,
    syslog_sources: tuple[Network, ...] = (),
    created_by: str | None = None,
) -> str:
    """Create an integration; returns its token, stored nowhere (show it once)."""
    check_name(name)
    token = new_token()
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO integrations (name, streams, agencies, rate_per_second, burst,"
                " syslog_sources, token_hash, created_by) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    name,
                    sorted(parse_streams(streams)),
                    sorted(set(agencies)) if agencies else None,
                    rate,
                    burst or default_burst(rate),
                    list(syslog_sources),
                    hash_token(token),
                    created_by,
                ),
            )
            await _notify(conn)
    except psycopg.errors.UniqueViolation:
        raise IntegrationExists(
            f"integration {name!r} exists (revoked names are not reused)"
        ) from None
    return token


async def change_integration(
    conn: psycopg.AsyncConnection[Any],
    name: str,
    *,
    streams: list[str] | None = None,
    rate: float | None = None,
    burst: float | None = None,
    agencies: list[str] | None = None,
    any_agency: bool = False,
    syslog_sources: tuple[Network, ...] | None = None,
) -> None:
    """Change an active integration's scopes or limits; what is not given stays."""
    sets: list[str] = []
    params: list[Any] = []
    if streams is not None:
        sets.append("streams = %s")
        params.append(sorted(parse_streams(streams)))
    if rate is not None:
        sets.append("rate_per_second = %s")
        params.append(rate)
        if burst is None:
            sets.append("burst = %s")
            params.append(default_burst(rate))
    if burst is not None:
        sets.append("burst = %s")
        params.append(burst)
    if any_agency:
        sets.append("agencies = NULL")
    elif agencies is not None:
        sets.append("agencies = %s")
        params.append(sorted(set(agencies)))
    if syslog_sources is not None:
        sets.append("syslog_sources = %s")
        params.append(list(syslog_sources))
    if not sets:
        raise ValueError("nothing to change")
    async with conn.transaction():
        cur = await conn.execute(
            f"UPDATE integrations SET {', '.join(sets)}, changed_at = now()"
            " WHERE name = %s AND revoked_at IS NULL",
            (*params, name),
        )
        if cur.rowcount != 1:
            raise LookupError(f"no active integration {name!r}")
        await _notify(conn)


async def rotate_integration(
    conn: psycopg.AsyncConnection[Any], name: str, grace: timedelta = timedelta(0)
) -> str:
    """A new token; the old one keeps working for ``grace`` (0: stops at once)."""
    token = new_token()
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE integrations SET previous_token_hash = CASE WHEN %(g)s > interval '0'"
            " THEN token_hash END, previous_valid_until = CASE WHEN %(g)s > interval '0'"
            " THEN now() + %(g)s END, token_hash = %(h)s, changed_at = now()"
            " WHERE name = %(n)s AND revoked_at IS NULL",
            {"g": grace, "h": hash_token(token), "n": name},
        )
        if cur.rowcount != 1:
            raise LookupError(f"no active integration {name!r}")
        await _notify(conn)
    return token


async def revoke_integration(conn: psycopg.AsyncConnection[Any], name: str) -> None:
    """Revoke for good: every token fails from now on; the name stays in the audit trail."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE integrations SET revoked_at = now(), previous_token_hash = NULL"
            " WHERE name = %s AND revoked_at IS NULL",
            (name,),
        )
        if cur.rowcount != 1:
            raise LookupError(f"no active integration {name!r}")
        await _notify(conn)


async def list_integrations(conn: psycopg.AsyncConnection[Any]) -> list[IntegrationRecord]:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM integrations ORDER BY name")
    return [IntegrationRecord(*row) for row in await cur.fetchall()]


async def load_active(
    conn: psycopg.AsyncConnection[Any],
) -> tuple[dict[str, Integration], dict[str, datetime]]:
    """Token hash → integration for every token valid now, and when each rotated token's
    grace ends (the caller refuses it from then on, without waiting for a reload)."""
    cur = await conn.execute(
        "SELECT name, streams, agencies, rate_per_second, burst, syslog_sources, token_hash,"
        " CASE WHEN previous_valid_until > now() THEN previous_token_hash END,"
        " previous_valid_until FROM integrations WHERE revoked_at IS NULL"
    )
    out: dict[str, Integration] = {}
    until: dict[str, datetime] = {}
    rows = await cur.fetchall()
    for name, streams, agencies, rate, burst, sources, current, previous, valid_until in rows:
        integ = Integration(
            name=name,
            streams=frozenset(streams),
            rate=rate,
            burst=burst,
            agencies=frozenset(agencies) if agencies is not None else None,
            syslog_sources=tuple(sources),
        )
        out[current] = integ
        if previous:
            out[previous] = integ
            until[previous] = valid_until
    return out, until


# -- audit -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRow:
    integration: str | None
    remote: str | None
    transport: str  # http | udp | tcp
    target: str | None
    status: int | None
    kind: str
    reason: str
    detail: dict[str, Any] | None = None


async def write_audit(conn: psycopg.AsyncConnection[Any], rows: list[AuditRow]) -> None:
    """Refused requests and rejected items, as the gateway saw them (text made storable)."""
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO gateway_audit (integration, remote, transport, target, status, kind,"
            " reason, detail) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
            [
                (
                    r.integration,
                    _clean(r.remote),
                    r.transport,
                    _clean(r.target),
                    r.status,
                    r.kind,
                    _clean(r.reason, 2000) or "",
                    Jsonb(r.detail) if r.detail is not None else None,
                )
                for r in rows
            ],
        )


def _clean(text: str | None, cap: int = 200) -> str | None:
    """Sender-chosen text bound for an audit row: storable, bounded."""
    return None if text is None else pg_text(text)[:cap]


async def read_audit(
    conn: psycopg.AsyncConnection[Any], integration: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT id, at, integration, remote, transport, target, status, kind, reason, detail"
        " FROM gateway_audit WHERE %(i)s::text IS NULL OR integration = %(i)s"
        " ORDER BY id DESC LIMIT %(l)s",
        {"i": integration, "l": limit},
    )
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]


# -- idempotency keys --------------------------------------------------------------------

Claim = Literal["new", "replay", "in_progress", "mismatch"]
KEY_TTL = timedelta(hours=24)
ABANDONED_AFTER = timedelta(seconds=60)  # an answer this late was never going to be sent


@dataclass(frozen=True, slots=True)
class KeyClaim:
    outcome: Claim
    status: int | None = None
    response: bytes | None = None


def body_digest(body: bytes, content_type: str, query: str) -> bytes:
    """What a retry must repeat exactly: body, media type and format."""
    h = hashlib.sha256(content_type.encode() + b"\n" + query.encode() + b"\n")
    h.update(body)
    return h.digest()


async def claim_key(
    conn: psycopg.AsyncConnection[Any], integration: str, key: str, digest: bytes
) -> KeyClaim:
    """Take ``key`` for this request, or say why not: answered before (replay), taken by a
    request still running, or used for a different body. Expired answers and requests
    abandoned by a gateway that died are taken over."""
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO gateway_idempotency (integration, key, body_sha256, state)"
            " VALUES (%s, %s, %s, 'in_progress')"
            " ON CONFLICT (integration, key) DO UPDATE"
            " SET body_sha256 = EXCLUDED.body_sha256, state = 'in_progress', status = NULL,"
            "     response = NULL, claimed_at = now()"
            " WHERE gateway_idempotency.claimed_at < now() - %s"
            "    OR (gateway_idempotency.state = 'in_progress'"
            "        AND gateway_idempotency.claimed_at < now() - %s)"
            " RETURNING 1",
            (integration, key, digest, KEY_TTL, ABANDONED_AFTER),
        )
        if await cur.fetchone() is not None:
            return KeyClaim("new")
        cur = await conn.execute(
            "SELECT body_sha256, state, status, response FROM gateway_idempotency"
            " WHERE integration = %s AND key = %s",
            (integration, key),
        )
        row = await cur.fetchone()
    if row is None:  # deleted between the two statements: a released claim
        return KeyClaim("in_progress")
    stored, state, status, response = row
    if bytes(stored) != digest:
        return KeyClaim("mismatch")
    if state == "in_progress":
        return KeyClaim("in_progress")
    return KeyClaim("replay", status, bytes(response) if response is not None else None)


async def finish_key(
    conn: psycopg.AsyncConnection[Any], integration: str, key: str, status: int, response: bytes
) -> None:
    await conn.execute(
        "UPDATE gateway_idempotency SET state = 'done', status = %s, response = %s"
        " WHERE integration = %s AND key = %s",
        (status, response, integration, key),
    )


async def release_key(conn: psycopg.AsyncConnection[Any], integration: str, key: str) -> None:
    """The request failed in a way a retry may fix (broker down): the key is free again."""
    await conn.execute(
        "DELETE FROM gateway_idempotency WHERE integration = %s AND key = %s AND state ="
        " 'in_progress'",
        (integration, key),
    )


async def expire_keys(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute(
        "DELETE FROM gateway_idempotency WHERE claimed_at < now() - %s", (KEY_TTL,)
    )
    return cur.rowcount
