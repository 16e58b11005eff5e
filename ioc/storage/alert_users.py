"""Users of the acknowledgement API and the queue of their actions (``alert_users``,
``alert_actions``).

A user holds one bearer token. Only its SHA-256 is stored: the token is 256 random bits, so
nobody can guess a preimage and a slow password hash would add latency without adding
safety. Looking a user up by that hash is also what makes authentication constant-time-safe:
a timing difference can only tell an attacker about a hash, never about a token.

People's actions are never applied here: they are queued as ``pending`` rows for the alert
evaluator, the one writer of alert state, and each row stays as the audit trail, with the
outcome (``done``, ``rejected``) or, for refused requests, ``denied``. Revoked users keep
their name forever, so a name in the audit trail always means one person.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

Role = Literal["viewer", "responder", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "responder", "admin")  # each may do what those before may
TOKEN_PREFIX = "ioc_"  # recognisable in logs and by secret scanners
_TOKEN_MAX = 128  # anything longer is not one of ours: refused before hashing
_NAME = re.compile(r"[\w.@+-]{1,64}")

ConnectionFactory = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        return role_allows(self.role, needed)


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    role: Role
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    requested_at: datetime
    user_name: str | None
    role: str | None
    action: str
    target: str | None
    comment: str | None
    params: dict[str, Any]
    remote: str | None
    status: str  # pending | done | rejected | denied
    result: dict[str, Any] | None
    done_at: datetime | None


def role_allows(role: str, needed: Role) -> bool:
    """viewer < responder < admin; an unknown role allows nothing."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class UserExists(ValueError):
    pass


def check_name(name: str) -> None:
    """Names appear on alerts and in the audit: short, no spaces, nothing invisible."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad user name {name!r}: 1-64 letters, digits or . _ @ + - (no spaces)")


def _check(name: str, role: str) -> None:
    check_name(name)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")


# -- users -------------------------------------------------------------------------------


async def add_user(
    conn: psycopg.AsyncConnection[Any], name: str, role: str, created_by: str | None
) -> str:
    """Create a user; returns its token, which is stored nowhere (show it once)."""
    _check(name, role)
    token = _new_token()
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO alert_users (name, role, token_hash, created_by)"
                " VALUES (%s, %s, %s, %s)",
                (name, role, hash_token(token), created_by),
            )
    except psycopg.errors.UniqueViolation:
        raise UserExists(f"user {name!r} exists (revoked names are not reused)") from None
    return token


async def rotate_user(conn: psycopg.AsyncConnection[Any], name: str) -> str:
    """A new token for an active user; the old one stops working at once."""
    token = _new_token()
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE alert_users SET token_hash = %s WHERE name = %s AND revoked_at IS NULL",
            (hash_token(token), name),
        )
    if cur.rowcount != 1:
        raise LookupError(f"no active user {name!r}")
    return token


async def revoke_user(conn: psycopg.AsyncConnection[Any], name: str) -> None:
    """Revoke for good: the token fails from now on, the name stays in the audit trail."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE alert_users SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL",
            (name,),
        )
    if cur.rowcount != 1:
        raise LookupError(f"no active user {name!r}")


async def list_users(conn: psycopg.AsyncConnection[Any]) -> list[UserRecord]:
    cur = await conn.execute(
        "SELECT name, role, created_at, created_by, revoked_at FROM alert_users ORDER BY name"
    )
    return [UserRecord(*row) for row in await cur.fetchall()]


async def authenticate(conn: psycopg.AsyncConnection[Any], token: str) -> User | None:
    """The active user holding ``token``, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > _TOKEN_MAX or not token.isascii():
        return None  # not one of ours (they are URL-safe base64): no need to ask
    cur = await conn.execute(
        "SELECT name, role FROM alert_users WHERE token_hash = %s AND revoked_at IS NULL",
        (hash_token(token),),
    )
    row = await cur.fetchone()
    return User(name=row[0], role=row[1]) if row else None


# -- actions -----------------------------------------------------------------------------


async def enqueue_action(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    action: str,
    target: str | None,
    comment: str | None,
    params: dict[str, Any] | None,
    remote: str | None,
) -> int:
    """Queue an action for the evaluator; returns its id (also its audit row)."""
    return await _insert(conn, user, action, target, comment, params, remote, "pending", None)


async def record_rejected(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    action: str,
    target: str | None,
    comment: str | None,
    params: dict[str, Any] | None,
    remote: str | None,
    error: str,
) -> int:
    """An authorised action refused before queueing (its target does not exist): audited
    like one the evaluator refused."""
    result = {"error": error}
    return await _insert(conn, user, action, target, comment, params, remote, "rejected", result)


async def audit_denied(
    conn: psycopg.AsyncConnection[Any],
    user: User | None,
    action: str,
    target: str | None,
    remote: str | None,
    error: str,
) -> int:
    """A request refused for its credentials (``user`` None) or its role. The caller bounds
    how many of these an unauthenticated client can make us write."""
    return await _insert(conn, user, action, target, None, None, remote, "denied", {"error": error})


async def _insert(
    conn: psycopg.AsyncConnection[Any],
    user: User | None,
    action: str,
    target: str | None,
    comment: str | None,
    params: dict[str, Any] | None,
    remote: str | None,
    status: str,
    result: dict[str, Any] | None,
) -> int:
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO alert_actions (user_name, role, action, target, comment, params,"
            " remote, status, result, done_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " CASE WHEN %s = 'pending' THEN NULL ELSE now() END) RETURNING id",
            (
                user.name if user else None,
                user.role if user else None,
                action,
                target,
                comment,
                Jsonb(params or {}),
                remote,
                status,
                Jsonb(result) if result is not None else None,
                status,
            ),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def no_evaluator(timeout: float) -> str:
    return f"no alert evaluator answered within {timeout:g} s; the action was not applied"


async def wait_action(
    source: psycopg.AsyncConnection[Any] | ConnectionFactory,
    action_id: int,
    timeout: float,  # noqa: ASYNC109 (not a cancellation: past it, the action is refused)
    poll: float = 0.05,
    lock_wait: float = 10.0,
) -> tuple[str, dict[str, Any]]:
    """Wait for the evaluator's outcome: ``(status, result)``.

    ``status`` is ``done`` or ``rejected`` as the evaluator decided, or ``unanswered`` when
    nobody applied it within ``timeout``: the row is then refused in the database
    (``rejected``, ``{"error": "no alert evaluator answered …"}``). The evaluator locks the
    rows it applies, so that refusal waits for its transaction and then finds the row done:
    one outcome, never both, and a late evaluator skips a refused row. If the lock is held
    longer than ``lock_wait`` (an evaluator stuck mid-cycle) the row stays pending and
    ``("pending", {"error": …})`` is returned; its fate is then in the audit.

    ``source`` is an autocommit connection, or a factory of them (a pool's ``connection``),
    which frees the connection between polls.
    """
    deadline = time.monotonic() + timeout
    while True:
        async with _connection(source) as conn:
            if not conn.autocommit:
                raise ValueError("wait_action needs an autocommit connection")
            status, result = await _status(conn, action_id)
            if status != "pending":
                return status, result
            if time.monotonic() >= deadline:
                return await _refuse(conn, action_id, timeout, lock_wait)
        await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))


async def _status(conn: psycopg.AsyncConnection[Any], action_id: int) -> tuple[str, dict[str, Any]]:
    cur = await conn.execute("SELECT status, result FROM alert_actions WHERE id = %s", (action_id,))
    row = await cur.fetchone()
    if row is None:
        raise LookupError(f"no queued action {action_id}")
    return row[0], row[1] or {}


async def _refuse(
    conn: psycopg.AsyncConnection[Any], action_id: int, waited: float, lock_wait: float
) -> tuple[str, dict[str, Any]]:
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_wait * 1000)}ms",)
            )
            cur = await conn.execute(
                "UPDATE alert_actions SET status = 'rejected', result = %s, done_at = now()"
                " WHERE id = %s AND status = 'pending' RETURNING result",
                (Jsonb({"error": no_evaluator(waited)}), action_id),
            )
            refused = await cur.fetchone()
    except psycopg.errors.LockNotAvailable:
        return "pending", {
            "error": f"the alert evaluator is still applying action {action_id}; see the audit"
        }
    if refused is not None:
        return "unanswered", refused[0]
    return await _status(conn, action_id)


def _connection(
    source: psycopg.AsyncConnection[Any] | ConnectionFactory,
) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
    if isinstance(source, psycopg.AsyncConnection):
        return nullcontext(source)
    return source()


async def audit_log(
    conn: psycopg.AsyncConnection[Any],
    limit: int = 100,
    since: datetime | None = None,
    user: str | None = None,
) -> list[AuditEntry]:
    """Actions newest first, every status (denied requests included)."""
    if since is not None and since.tzinfo is None:
        raise ValueError("since needs a UTC offset")
    cur = await conn.execute(
        "SELECT id, requested_at, user_name, role, action, target, comment, params, remote,"
        " status, result, done_at FROM alert_actions"
        " WHERE (%(since)s::timestamptz IS NULL OR requested_at >= %(since)s)"
        " AND (%(user)s::text IS NULL OR user_name = %(user)s)"
        " ORDER BY id DESC LIMIT %(limit)s",
        {"since": since, "user": user, "limit": limit},
    )
    return [AuditEntry(*row) for row in await cur.fetchall()]
