"""The acknowledgement API: security staff list alerts, acknowledge, resolve and silence them.

The API never changes alert state. An action is queued in ``alert_actions`` for the alert
evaluator (the one writer of alert state) and the request waits for its outcome: 200 when
applied, 409 when refused (e.g. already resolved), 503 when no evaluator answered in time —
the row is then refused in the database, so the action is never applied later behind the
person's back. That row, with who, from where, what and why, is the audit trail.

Each person has a bearer token and a role (viewer < responder < admin). Requests refused for
their credentials or role are audited too, at most a few rows per client address and minute
(the rest only counted in ``ioc_alert_api_denied_unaudited_total``), so a flood of bad tokens
cannot fill the database.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
import psycopg
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from ioc.alerts.routing import Matcher
from ioc.api import ApiError, DeniedAuditBound, json_errors, json_response, open_lazy_pool
from ioc.clock import Clock, SystemClock
from ioc.storage.alert_users import (
    Role,
    User,
    audit_denied,
    audit_log,
    authenticate,
    enqueue_action,
    record_rejected,
    wait_action,
)
from ioc.storage.writer import with_connection_defaults

log = logging.getLogger(__name__)

COMMENT_MAX = 2000
MATCHER_MAX = 256  # characters of one matcher: enough for any label, bounds regex nesting
MATCHERS_MAX = 32
LIMIT_MAX = 500
BODY_MAX = 64 * 1024
SEVERITIES = ("info", "low", "medium", "high", "critical")
STATES: dict[str, tuple[str, ...]] = {
    "open": ("firing", "acknowledged"),
    "firing": ("firing",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "all": ("firing", "acknowledged", "resolved"),
}
NOTIFICATION_STATES = ("failed", "pending", "sent")

# -- request bodies ------------------------------------------------------------------------

Comment = Annotated[str, msgspec.Meta(max_length=COMMENT_MAX)]
Why = Annotated[str, msgspec.Meta(min_length=1, max_length=COMMENT_MAX)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
MatcherText = Annotated[str, msgspec.Meta(min_length=1, max_length=MATCHER_MAX)]


class CommentBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Acknowledge, unacknowledge, expire a silence: saying why is welcome, not required."""

    comment: Comment | None = None


class ResolveBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Resolving by hand needs a reason: the condition may still hold."""

    comment: Why


class SilenceBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    matchers: Annotated[list[MatcherText], msgspec.Meta(min_length=1, max_length=MATCHERS_MAX)]
    ends_at: AwareTime
    comment: Why
    starts_at: AwareTime | None = None


B = TypeVar("B", CommentBody, ResolveBody, SilenceBody)


class BodyError(ValueError):
    """A request body we refuse; the message says what and where (``- at `$.path```)."""


def decode_body(raw: bytes, kind: type[B]) -> B:
    """The body as ``kind``, or BodyError. An empty body is ``{}``. Control characters are
    kept as sent; NUL is refused because PostgreSQL text cannot hold it."""
    if not raw.strip():
        raw = b"{}"
    try:
        body = msgspec.json.decode(raw, type=kind)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # includes ValidationError
        raise BodyError(str(exc)) from None
    if body.comment is not None:
        if "\x00" in body.comment:
            raise BodyError("NUL characters cannot be stored - at `$.comment`")
        if not isinstance(body, CommentBody) and not body.comment.strip():
            raise BodyError("say why: the comment must not be blank - at `$.comment`")
    if isinstance(body, SilenceBody):
        for i, text in enumerate(body.matchers):
            if "\x00" in text:
                raise BodyError(f"NUL characters cannot be stored - at `$.matchers[{i}]`")
    return body


def parse_matchers(texts: list[str]) -> tuple[Matcher, ...]:
    """Matchers a silence may use; at least one must not match the empty string (as in
    Alertmanager), or the silence would mute every alert."""
    matchers: list[Matcher] = []
    for i, text in enumerate(texts):
        try:
            m = Matcher.parse(text)
            same = Matcher.parse(str(m)) == m
        except (ValueError, RecursionError) as exc:
            msg = str(exc) if isinstance(exc, ValueError) else "regular expression nested too deep"
            raise BodyError(f"{msg} - at `$.matchers[{i}]`") from None
        if not same:
            raise BodyError(f"ambiguous quotes in {text!r} - at `$.matchers[{i}]`")
        matchers.append(m)
    if not matchers:
        raise BodyError("a silence needs at least one matcher - at `$.matchers`")
    if all(m.matches({}) for m in matchers):
        raise BodyError(
            "every matcher also matches an absent label, so this silence would mute every"
            " alert; add one that needs a value - at `$.matchers`"
        )
    return tuple(matchers)


def silence_params(
    matchers: list[str], starts_at: datetime | None, ends_at: datetime, now: datetime
) -> dict[str, Any]:
    """The queued ``silence`` action's params, checked as the evaluator will check them."""
    parsed = parse_matchers(matchers)
    for name, t in (("starts_at", starts_at), ("ends_at", ends_at)):
        if t is not None and t.tzinfo is None:
            raise BodyError(f"a time needs a UTC offset - at `$.{name}`")
    if ends_at <= (starts_at or now):
        raise BodyError("a silence must end after it starts - at `$.ends_at`")
    if ends_at <= now:
        raise BodyError("a silence must end in the future - at `$.ends_at`")
    return {
        "matchers": [str(m) for m in parsed],
        "starts_at": starts_at.isoformat() if starts_at else None,
        "ends_at": ends_at.isoformat(),
    }


# -- reads ---------------------------------------------------------------------------------

_ALERT_COLUMNS = (
    "id, fingerprint, rule, state, severity, summary, labels, starts_at, ends_at,"
    " acknowledged_by, acknowledged_at, resolved_by, escalation_level, event_count, muted,"
    " coalesce(doc->'evidence', '[]'::jsonb)"
)
_ALERT_KEYS = (
    "id",
    "fingerprint",
    "rule",
    "state",
    "severity",
    "summary",
    "labels",
    "starts_at",
    "ends_at",
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "escalation_level",
    "event_count",
    "muted",
    "evidence",
)


def alert_link(link_base: str, alert_id: str) -> str:
    """Where a person follows an alert: this API's page of the occurrence."""
    return f"{link_base.rstrip('/')}/v1/alerts/{alert_id}"


def _alert(row: tuple[Any, ...], link_base: str | None) -> dict[str, Any]:
    alert = dict(zip(_ALERT_KEYS, row, strict=True))
    alert["id"] = str(alert["id"])
    if link_base:
        alert["link"] = alert_link(link_base, alert["id"])
    return alert


async def list_alerts(
    conn: psycopg.AsyncConnection[Any],
    states: tuple[str, ...],
    *,
    severity: str | None = None,
    rule: str | None = None,
    limit: int = 100,
    link_base: str | None = None,
) -> list[dict[str, Any]]:
    """Alerts newest first."""
    cur = await conn.execute(
        f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE state = ANY(%(states)s)"
        " AND (%(severity)s::text IS NULL OR severity = %(severity)s)"
        " AND (%(rule)s::text IS NULL OR rule = %(rule)s)"
        " ORDER BY starts_at DESC, id DESC LIMIT %(limit)s",
        {"states": list(states), "severity": severity, "rule": rule, "limit": limit},
    )
    return [_alert(row, link_base) for row in await cur.fetchall()]


async def find_alert(
    conn: psycopg.AsyncConnection[Any], ref: str, link_base: str | None = None
) -> dict[str, Any] | None:
    """By occurrence id, or by fingerprint: its open occurrence, else the newest."""
    if not ref or len(ref) > 128 or "\x00" in ref:
        return None
    try:
        alert_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        alert_id = None
    if alert_id is not None:
        cur = await conn.execute(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = %s", (alert_id,))
    else:
        cur = await conn.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE fingerprint = %s"
            " ORDER BY state <> 'resolved' DESC, starts_at DESC, id DESC LIMIT 1",
            (ref,),
        )
    row = await cur.fetchone()
    return _alert(row, link_base) if row else None


async def alert_history(conn: psycopg.AsyncConnection[Any], alert_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT kind, at, actor, comment FROM alert_events WHERE alert_id = %s ORDER BY id",
        (uuid.UUID(alert_id),),
    )
    return [
        {"kind": kind, "at": at, "actor": actor, "comment": comment}
        for kind, at, actor, comment in await cur.fetchall()
    ]


_SILENCE_COLUMNS = (
    "id, matchers, starts_at, ends_at, author, comment, created_at, expired_at, expired_by"
)


def _silence(row: tuple[Any, ...], now: datetime) -> dict[str, Any]:
    sid, matchers, starts, ends, author, comment, created, expired_at, expired_by = row
    status = (
        "expired"
        if expired_at is not None or ends <= now
        else ("pending" if starts > now else "active")
    )
    return {
        "id": sid,
        "status": status,
        "matchers": matchers,
        "starts_at": starts,
        "ends_at": ends,
        "author": author,
        "comment": comment,
        "created_at": created,
        "expired_at": expired_at,
        "expired_by": expired_by,
    }


async def list_silences(
    conn: psycopg.AsyncConnection[Any], now: datetime, *, expired: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Active and pending silences (and expired ones with ``expired``), latest start first."""
    cur = await conn.execute(
        f"SELECT {_SILENCE_COLUMNS} FROM silences"
        " WHERE %(expired)s OR (expired_at IS NULL AND ends_at > %(now)s)"
        " ORDER BY starts_at DESC, id LIMIT %(limit)s",
        {"expired": expired, "now": now, "limit": limit},
    )
    return [_silence(row, now) for row in await cur.fetchall()]


async def find_silence(
    conn: psycopg.AsyncConnection[Any], silence_id: str, now: datetime
) -> dict[str, Any] | None:
    if not silence_id or len(silence_id) > 128 or "\x00" in silence_id:
        return None
    cur = await conn.execute(
        f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE id = %s", (silence_id,)
    )
    row = await cur.fetchone()
    return _silence(row, now) if row else None


async def list_notifications(
    conn: psycopg.AsyncConnection[Any], state: str, limit: int = 100
) -> list[dict[str, Any]]:
    """Notifications in ``state``, newest first; ``failed`` ones failed for good."""
    cur = await conn.execute(
        "SELECT id, receiver, reason, group_key, state, attempts, last_status, last_error,"
        " created_at, done_at,"
        " ARRAY(SELECT a->>'fingerprint' FROM jsonb_array_elements(payload->'alerts') a)"
        " FROM notifications WHERE state = %s ORDER BY created_at DESC, id LIMIT %s",
        (state, limit),
    )
    keys = (
        "id",
        "receiver",
        "reason",
        "group_key",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "done_at",
        "alerts",
    )
    out = [dict(zip(keys, row, strict=True)) for row in await cur.fetchall()]
    for n in out:
        n["id"] = str(n["id"])
    return out


# -- the application -----------------------------------------------------------------------


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.denied = Counter(
            "ioc_alert_api_denied",
            "Requests refused for their credentials (unauthenticated) or role (forbidden).",
            ["reason"],
            registry=registry,
        )
        self.denied_unaudited = Counter(
            "ioc_alert_api_denied_unaudited",
            "Refused requests past the per-minute audit bound: counted, not written.",
            registry=registry,
        )
        self.actions = Counter(
            "ioc_alert_api_actions",
            "Actions queued for the evaluator, by outcome (done, rejected, unanswered).",
            ["action", "outcome"],
            registry=registry,
        )


@dataclass
class _State:
    database_url: str
    timeout: float
    link_base: str | None
    clock: Clock
    metrics: ApiMetrics
    bound: DeniedAuditBound
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = field(default=None)

    @property
    def db(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self.pool is None:
            raise ApiError(503, "database unavailable", "the API is starting or stopping")
        return self.pool


STATE = web.AppKey("alert_api", _State)


def alert_api(
    database_url: str,
    *,
    action_timeout: float = 5.0,
    link_base: str | None = None,
    registry: CollectorRegistry | None = None,
    denied_audit_per_remote: int = 10,
    denied_audit_total: int = 600,
    clock: Clock | None = None,
) -> web.Application:
    """The acknowledgement API. ``registry`` receives its metrics (a private one if None);
    ``denied_audit_*`` bound the denied-request rows written per minute."""
    app = web.Application(middlewares=[json_errors], client_max_size=BODY_MAX)
    app[STATE] = _State(
        database_url=database_url,
        timeout=action_timeout,
        link_base=link_base,
        clock=clock or SystemClock(),
        metrics=ApiMetrics(registry or CollectorRegistry()),
        bound=DeniedAuditBound(denied_audit_per_remote, denied_audit_total),
    )
    app.cleanup_ctx.append(_pool)
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/v1/me", me)
    r.add_get("/v1/alerts", get_alerts)
    r.add_get("/v1/alerts/{ref}", get_alert)
    r.add_post("/v1/alerts/{ref}/acknowledge", acknowledge)
    r.add_post("/v1/alerts/{ref}/unacknowledge", unacknowledge)
    r.add_post("/v1/alerts/{ref}/resolve", resolve)
    r.add_get("/v1/silences", get_silences)
    r.add_post("/v1/silences", post_silence)
    r.add_delete("/v1/silences/{id}", delete_silence)
    r.add_get("/v1/notifications", get_notifications)
    r.add_get("/v1/audit", get_audit)
    return app


def pool_conninfo(database_url: str) -> str:
    """The URL with the pipeline's fail-fast connection defaults and our application name."""
    given = conninfo_to_dict(database_url)
    conninfo = with_connection_defaults(database_url)
    if "application_name" not in given:
        conninfo = make_conninfo(conninfo, application_name="ioc-alert-api")
    return conninfo


async def _pool(app: web.Application) -> AsyncIterator[None]:
    st = app[STATE]
    st.pool = pool = await open_lazy_pool(pool_conninfo(st.database_url), wait_seconds=5.0)
    try:
        yield
    finally:
        st.pool = None
        await pool.close()


# -- auth ----------------------------------------------------------------------------------


def _clean(text: str | None, cap: int = 200) -> str | None:
    """Attacker-chosen text bound for an audit row: no NUL, bounded length."""
    return None if text is None else text.replace("\x00", "\ufffd")[:cap]


async def _authorize(
    request: web.Request, needed: Role, action: str, target: str | None = None
) -> User:
    st = request.app[STATE]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    user: User | None = None
    if not header:
        problem = "missing bearer token"
    elif scheme.lower() != "bearer" or not token.strip():
        problem = "expected the header Authorization: Bearer <token>"
    else:
        async with st.db.connection() as conn:
            user = await authenticate(conn, token.strip())
        problem = "" if user is not None else "invalid or revoked token"
    if user is not None and user.may(needed):
        return user
    if user is not None:
        problem = f"role {user.role} may not {action} (needs {needed})"
    status = 401 if user is None else 403
    st.metrics.denied.labels("unauthenticated" if user is None else "forbidden").inc()
    if st.bound.admit(request.remote):
        try:  # briefly: a refusal must not wait long on a database that does not answer
            async with st.db.connection(timeout=1.0) as conn:
                await audit_denied(conn, user, action, _clean(target), request.remote, problem)
        except psycopg.Error as exc:  # the refusal stands; a database outage is not a 503
            log.warning("could not audit a denied %s: %s", action, exc)
            st.metrics.denied_unaudited.inc()
    else:
        st.metrics.denied_unaudited.inc()
    headers = {"WWW-Authenticate": 'Bearer realm="ioc"'} if status == 401 else None
    detail = {"needs": needed} if status == 403 else None
    raise ApiError(status, problem, detail, headers)


# -- input helpers -------------------------------------------------------------------------


def _query(request: web.Request, name: str, default: str | None = None) -> str | None:
    value = request.query.get(name, default)
    if value is not None and ("\x00" in value or len(value) > 256):
        raise ApiError(400, "invalid query parameter", f"{name}: NUL or longer than 256")
    return value


def _choice(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = _query(request, name, default) or default
    if value not in choices:
        raise ApiError(
            400, "invalid query parameter", f"{name} must be one of {', '.join(choices)}"
        )
    return value


def _limit(request: web.Request, default: int = 100) -> int:
    text = _query(request, "limit")
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= LIMIT_MAX:
        raise ApiError(400, "invalid query parameter", f"limit must be an integer 1..{LIMIT_MAX}")
    return int(text)


def _flag(request: web.Request, name: str) -> bool:
    return _choice(request, name, ("true", "false", "1", "0"), "false") in ("true", "1")


def _since(request: web.Request) -> datetime | None:
    text = _query(request, "since")
    if text is None:
        return None
    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise ApiError(400, "invalid query parameter", "since must be an ISO time with offset")
    return since


async def _body(request: web.Request, kind: type[B]) -> B:
    raw = await request.read()
    if raw.strip() and request.content_type != "application/json":
        raise ApiError(
            415, "expected a JSON body (Content-Type: application/json)", request.content_type
        )
    try:
        return decode_body(raw, kind)
    except BodyError as exc:
        raise ApiError(400, "invalid request body", str(exc)) from None


def _outcome_error(status: str, result: dict[str, Any], action_id: int) -> ApiError:
    error = str(result.get("error") or f"action {action_id} ended {status}")
    if status == "rejected":
        return ApiError(409, error, {"action_id": action_id})
    return ApiError(503, error, {"action_id": action_id})


# -- handlers ------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    async with request.app[STATE].db.connection(timeout=2.0) as conn:
        await conn.execute("SELECT 1")
    return json_response({"status": "ok"})


async def me(request: web.Request) -> web.Response:
    user = await _authorize(request, "viewer", "whoami")
    return json_response({"name": user.name, "role": user.role})


async def get_alerts(request: web.Request) -> web.Response:
    st = request.app[STATE]
    await _authorize(request, "viewer", "list_alerts")
    state = _choice(request, "state", tuple(STATES), "open")
    severity = _query(request, "severity") or None
    if severity is not None and severity not in SEVERITIES:
        raise ApiError(
            400, "invalid query parameter", f"severity must be one of {', '.join(SEVERITIES)}"
        )
    rule, limit = _query(request, "rule") or None, _limit(request)
    async with st.db.connection() as conn:
        alerts = await list_alerts(
            conn, STATES[state], severity=severity, rule=rule, limit=limit, link_base=st.link_base
        )
    return json_response({"alerts": alerts})


async def get_alert(request: web.Request) -> web.Response:
    st = request.app[STATE]
    ref = request.match_info["ref"]
    await _authorize(request, "viewer", "get_alert", ref)
    async with st.db.connection() as conn:
        alert = await find_alert(conn, ref, st.link_base)
        if alert is None:
            raise ApiError(404, f"no alert {ref!r}")
        alert["history"] = await alert_history(conn, alert["id"])
    return json_response(alert)


async def _alert_action(request: web.Request, action: str, kind: type[B]) -> web.Response:
    st = request.app[STATE]
    ref = request.match_info["ref"]
    user = await _authorize(request, "responder", action, ref)
    body = await _body(request, kind)
    comment = body.comment
    async with st.db.connection() as conn:
        alert = await find_alert(conn, ref)
        if alert is None:
            error = f"no alert {_clean(ref)!r}"
            await record_rejected(
                conn, user, action, _clean(ref), comment, None, request.remote, error
            )
            raise ApiError(404, error)
        action_id = await enqueue_action(conn, user, action, ref, comment, None, request.remote)
    status, result = await wait_action(st.db.connection, action_id, st.timeout)
    st.metrics.actions.labels(action, status).inc()
    if status != "done":
        raise _outcome_error(status, result, action_id)
    done = result.get("alert")
    alert_id = done.get("id") if isinstance(done, dict) else None
    async with st.db.connection() as conn:
        now_alert = await find_alert(conn, str(alert_id or alert["id"]), st.link_base)
    return json_response(
        {"action_id": action_id, "changed": bool(result.get("changed")), "alert": now_alert}
    )


async def acknowledge(request: web.Request) -> web.Response:
    return await _alert_action(request, "acknowledge", CommentBody)


async def unacknowledge(request: web.Request) -> web.Response:
    return await _alert_action(request, "unacknowledge", CommentBody)


async def resolve(request: web.Request) -> web.Response:
    return await _alert_action(request, "resolve", ResolveBody)


async def get_silences(request: web.Request) -> web.Response:
    st = request.app[STATE]
    await _authorize(request, "viewer", "list_silences")
    expired, limit = _flag(request, "all"), _limit(request)
    async with st.db.connection() as conn:
        silences = await list_silences(conn, st.clock.now(), expired=expired, limit=limit)
    return json_response({"silences": silences})


async def post_silence(request: web.Request) -> web.Response:
    st = request.app[STATE]
    user = await _authorize(request, "responder", "silence")
    body = await _body(request, SilenceBody)
    try:
        params = silence_params(body.matchers, body.starts_at, body.ends_at, st.clock.now())
    except BodyError as exc:
        raise ApiError(400, "invalid request body", str(exc)) from None
    async with st.db.connection() as conn:
        action_id = await enqueue_action(
            conn, user, "silence", None, body.comment, params, request.remote
        )
    status, result = await wait_action(st.db.connection, action_id, st.timeout)
    st.metrics.actions.labels("silence", status).inc()
    if status != "done":
        raise _outcome_error(status, result, action_id)
    sid = str(result.get("silence", {}).get("id", ""))
    async with st.db.connection() as conn:
        silence = await find_silence(conn, sid, st.clock.now())
    return json_response({"action_id": action_id, "silence": silence}, status=201)


async def delete_silence(request: web.Request) -> web.Response:
    st = request.app[STATE]
    sid = request.match_info["id"]
    user = await _authorize(request, "responder", "expire_silence", sid)
    body = await _body(request, CommentBody)
    async with st.db.connection() as conn:
        if await find_silence(conn, sid, st.clock.now()) is None:
            error = f"no silence {_clean(sid)!r}"
            await record_rejected(
                conn,
                user,
                "expire_silence",
                _clean(sid),
                body.comment,
                None,
                request.remote,
                error,
            )
            raise ApiError(404, error)
        action_id = await enqueue_action(
            conn, user, "expire_silence", sid, body.comment, None, request.remote
        )
    status, result = await wait_action(st.db.connection, action_id, st.timeout)
    st.metrics.actions.labels("expire_silence", status).inc()
    if status != "done":
        raise _outcome_error(status, result, action_id)
    async with st.db.connection() as conn:
        silence = await find_silence(conn, sid, st.clock.now())
    return json_response({"action_id": action_id, "silence": silence})


async def get_notifications(request: web.Request) -> web.Response:
    st = request.app[STATE]
    await _authorize(request, "viewer", "list_notifications")
    state, limit = _choice(request, "state", NOTIFICATION_STATES, "failed"), _limit(request)
    async with st.db.connection() as conn:
        notifications = await list_notifications(conn, state, limit)
    return json_response({"notifications": notifications})


async def get_audit(request: web.Request) -> web.Response:
    st = request.app[STATE]
    await _authorize(request, "admin", "read_audit")
    limit, since, user = _limit(request), _since(request), _query(request, "user")
    async with st.db.connection() as conn:
        entries = await audit_log(conn, limit, since, user)
    return json_response({"actions": entries})  # msgspec encodes the dataclasses
