"""``ioc users`` (tokens of the acknowledgement API) and ``ioc alerts`` (act on alerts from a
shell). Actions from here are queued for the alert evaluator exactly as the API queues them
(as the ``--user`` named, with role admin and remote ``cli``), so they are applied by the one
writer of alert state and audited alike.

Exit codes: 0 done, 1 refused or no evaluator answered, 2 configuration or usage.
"""

from __future__ import annotations

import asyncio
import getpass
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer

from ioc.config import ConfigError, Settings

users_app = typer.Typer(
    help="People who use the acknowledgement API: one token and one role each.",
    no_args_is_help=True,
)
alerts_app = typer.Typer(
    help="Alerts: list them; acknowledge, resolve and silence (applied by the evaluator).",
    no_args_is_help=True,
)

T = TypeVar("T")
_DURATION = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


def _run(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(connection)`` on an autocommit connection to the configured database."""
    import psycopg

    from ioc.storage.writer import with_connection_defaults

    url = _settings().database_url

    async def go() -> T:
        async with await psycopg.AsyncConnection.connect(
            with_connection_defaults(url), autocommit=True
        ) as conn:
            return await work(conn)

    try:
        return asyncio.run(go())
    except psycopg.errors.UndefinedTable:
        raise _fail("the database lacks tables of this version: run `ioc migrate`", 2) from None
    except psycopg.OperationalError as exc:
        raise _fail(f"database unavailable: {exc}") from None


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _when(value: object) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else ""


# -- users ---------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name, e.g. nguyen.van.a")],
    role: Annotated[
        str, typer.Option(help="viewer (read), responder (act on alerts), admin (+ audit).")
    ] = "responder",
    by: Annotated[str | None, typer.Option(help="Who creates it (default: you).")] = None,
) -> None:
    """Create a user and print its token, once: only its hash is kept."""
    from ioc.storage.alert_users import ROLES, UserExists, add_user

    if role not in ROLES:
        raise _fail(f"unknown role {role!r}; one of {', '.join(ROLES)}", 2)
    creator = by or _login()
    try:
        token = _run(lambda conn: add_user(conn, name, role, creator))
    except UserExists as exc:
        raise _fail(str(exc)) from None
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    typer.echo(token)
    typer.echo(
        f"user {name} ({role}) created. The token above is shown only once: hand it over now"
        f" (a lost token is replaced with `ioc users rotate {name}`).",
        err=True,
    )


@users_app.command("list")
def users_list() -> None:
    """Users, their role and whether they are active."""
    from ioc.storage.alert_users import list_users

    users = _run(list_users)
    _table(
        ("NAME", "ROLE", "STATUS", "CREATED", "BY"),
        [
            (
                u.name,
                u.role,
                f"revoked {_when(u.revoked_at)}" if u.revoked_at else "active",
                _when(u.created_at),
                u.created_by,
            )
            for u in users
        ],
    )


@users_app.command("rotate")
def users_rotate(name: Annotated[str, typer.Argument()]) -> None:
    """Replace a user's token (the old one stops working now); prints the new one, once."""
    from ioc.storage.alert_users import rotate_user

    try:
        token = _run(lambda conn: rotate_user(conn, name))
    except LookupError as exc:
        raise _fail(str(exc)) from None
    typer.echo(token)
    typer.echo(f"new token for {name}; shown only once, the old one no longer works.", err=True)


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument()]) -> None:
    """Revoke a user for good (the name stays in the audit trail and is not reused)."""
    from ioc.storage.alert_users import revoke_user

    try:
        _run(lambda conn: revoke_user(conn, name))
    except LookupError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{name}: revoked")


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


# -- alerts --------------------------------------------------------------------------------

UserOpt = Annotated[str, typer.Option("--user", help="Who acts (recorded on the alert).")]
TimeoutOpt = Annotated[
    float, typer.Option(help="Seconds to wait for the alert evaluator to apply it.")
]


@alerts_app.command("list")
def alerts_list(
    state: Annotated[str, typer.Option(help="open, firing, acknowledged, resolved, all.")] = "open",
    severity: Annotated[str | None, typer.Option()] = None,
    rule: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Alerts, newest first."""
    from ioc.api.alerts import SEVERITIES, STATES, list_alerts

    if state not in STATES:
        raise _fail(f"--state must be one of {', '.join(STATES)}", 2)
    if severity is not None and severity not in SEVERITIES:
        raise _fail(f"--severity must be one of {', '.join(SEVERITIES)}", 2)
    alerts = _run(
        lambda conn: list_alerts(conn, STATES[state], severity=severity, rule=rule, limit=limit)
    )
    _table(
        ("ID", "FINGERPRINT", "STATE", "SEVERITY", "RULE", "STARTED", "ACK BY", "SUMMARY"),
        [
            (
                a["id"],
                a["fingerprint"],
                a["state"] + (" (muted)" if a["muted"] else ""),
                a["severity"],
                a["rule"],
                _when(a["starts_at"]),
                a["acknowledged_by"],
                a["summary"],
            )
            for a in alerts
        ],
    )


def _act(
    action: str,
    user: str,
    target: str | None,
    comment: str | None,
    params: dict[str, Any] | None,
    timeout: float,
) -> dict[str, Any]:
    """Queue an action as ``user`` and wait for the evaluator; exits 1 unless done."""
    from ioc.api.alerts import find_alert, find_silence
    from ioc.storage.alert_users import (
        User,
        check_name,
        enqueue_action,
        record_rejected,
        wait_action,
    )

    try:
        check_name(user)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    if comment is not None and "\x00" in comment:
        raise _fail("a comment cannot contain NUL characters", 2)
    who = User(name=user, role="admin")

    async def go(conn: Any) -> tuple[int, str, dict[str, Any]]:
        if target is not None:
            now = datetime.now(UTC)
            found = (
                await find_silence(conn, target, now)
                if action == "expire_silence"
                else await find_alert(conn, target)
            )
            if found is None:
                what = "silence" if action == "expire_silence" else "alert"
                error = f"no {what} {target!r}"
                action_id = await record_rejected(
                    conn, who, action, target, comment, params, "cli", error
                )
                return action_id, "rejected", {"error": error}
        action_id = await enqueue_action(conn, who, action, target, comment, params, "cli")
        status, result = await wait_action(conn, action_id, timeout)
        return action_id, status, result

    action_id, status, result = _run(go)
    if status != "done":
        raise _fail(f"action {action_id} {status}: {result.get('error')}")
    return result


@alerts_app.command("ack")
def alerts_ack(
    ref: Annotated[str, typer.Argument(help="Alert id or fingerprint.")],
    user: UserOpt,
    comment: Annotated[str | None, typer.Option()] = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Acknowledge an alert: it stops escalating; people see who took it."""
    result = _act("acknowledge", user, ref, comment, None, timeout)
    _said(result, "acknowledged")


@alerts_app.command("unack")
def alerts_unack(
    ref: Annotated[str, typer.Argument(help="Alert id or fingerprint.")],
    user: UserOpt,
    comment: Annotated[str | None, typer.Option()] = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Hand an acknowledged alert back: it fires again and escalation restarts."""
    _said(_act("unacknowledge", user, ref, comment, None, timeout), "unacknowledged")


@alerts_app.command("resolve")
def alerts_resolve(
    ref: Annotated[str, typer.Argument(help="Alert id or fingerprint.")],
    user: UserOpt,
    comment: Annotated[str, typer.Option(help="Why (required).")],
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Resolve an alert by hand; if its condition still holds, it fires anew."""
    if not comment.strip():
        raise _fail("say why: --comment must not be blank", 2)
    _said(_act("resolve", user, ref, comment, None, timeout), "resolved")


def _said(result: dict[str, Any], verb: str) -> None:
    alert = result.get("alert") or {}
    changed = "" if result.get("changed") else " (already so: nothing changed)"
    typer.echo(f"{alert.get('id')}\t{alert.get('state')}\t{verb}{changed}")


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1d12h``: a positive duration."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r} (e.g. 30m, 2h, 1d12h)")
    total = sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())
    if total <= timedelta():
        raise ValueError(f"a duration must be positive: {text!r}")
    return total


def _aware(text: str, option: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option}: not an ISO time: {text!r}", 2) from None
    if t.tzinfo is None:
        raise _fail(f"{option}: give a UTC offset, e.g. {text}+07:00", 2)
    return t


@alerts_app.command("silence")
def alerts_silence(
    match: Annotated[
        list[str], typer.Option("--match", help='Label matcher, e.g. service_id="portal".')
    ],
    user: UserOpt,
    comment: Annotated[str, typer.Option(help="Why (required).")],
    until: Annotated[str | None, typer.Option(help="End, ISO time with offset.")] = None,
    for_: Annotated[str | None, typer.Option("--for", help="Or a duration: 30m, 2h, 1d.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start (default now).")] = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Silence matching alerts for a while; prints the silence id."""
    from ioc.api.alerts import BodyError, silence_params

    if (until is None) == (for_ is None):
        raise _fail("give exactly one of --until and --for", 2)
    if not comment.strip():
        raise _fail("say why: --comment must not be blank", 2)
    now = datetime.now(UTC)
    starts = _aware(start, "--from") if start else None
    if for_ is not None:
        try:
            ends = (starts or now) + parse_duration(for_)
        except ValueError as exc:
            raise _fail(str(exc), 2) from None
    else:
        ends = _aware(str(until), "--until")
    try:
        params = silence_params(match, starts, ends, now)
    except BodyError as exc:
        raise _fail(str(exc), 2) from None
    result = _act("silence", user, None, comment, params, timeout)
    silence = result.get("silence") or {}
    typer.echo(f"{silence.get('id')}\t{silence.get('starts_at')}\t{silence.get('ends_at')}")


@alerts_app.command("expire-silence")
def alerts_expire_silence(
    silence_id: Annotated[str, typer.Argument(help="The silence's id.")],
    user: UserOpt,
    comment: Annotated[str | None, typer.Option()] = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """End a silence now (or withdraw one still to come)."""
    _act("expire_silence", user, silence_id, comment, None, timeout)
    typer.echo(f"{silence_id}: expired")
