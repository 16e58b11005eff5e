"""People's actions on alerts, applied to the book by the evaluator. Pure.

The API only queues an action (``alert_actions``); the evaluator, the one writer of alert
state, applies it in its next cycle with :func:`apply_actions` and records the outcome in the
same transaction as the changes it caused. So an acknowledgement can never race a rule that
resolves the same alert, and every action, applied or refused, stays in the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from ioc.alerts.lifecycle import AlertActionError, AlertBook
from ioc.alerts.model import AlertChange
from ioc.alerts.routing import Matcher, Silence

ALERT_ACTIONS = ("acknowledge", "unacknowledge", "resolve")
SILENCE_ACTIONS = ("silence", "expire_silence")
ACTIONS = ALERT_ACTIONS + SILENCE_ACTIONS


class ActionOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the evaluator made of one queued action."""

    id: int
    status: str  # done | rejected
    result: dict[str, Any]


class QueuedAction(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    action: str
    target: str | None
    user_name: str
    comment: str | None
    params: dict[str, Any]


@dataclass
class Applied:
    changes: list[AlertChange] = field(default_factory=list)
    outcomes: list[ActionOutcome] = field(default_factory=list)
    silences_added: list[Silence] = field(default_factory=list)
    silences_expired: list[tuple[str, str, datetime]] = field(default_factory=list)


def apply_actions(
    book: AlertBook,
    actions: Sequence[QueuedAction],
    now: datetime,
    new_id: Callable[[], str],
) -> Applied:
    out = Applied()
    for action in actions:
        try:
            result = _apply(book, action, now, new_id, out)
        except (AlertActionError, ValueError, KeyError, TypeError, RecursionError) as exc:
            out.outcomes.append(
                ActionOutcome(id=action.id, status="rejected", result={"error": str(exc)})
            )
        else:
            out.outcomes.append(ActionOutcome(id=action.id, status="done", result=result))
    return out


def _apply(
    book: AlertBook, action: QueuedAction, now: datetime, new_id: Callable[[], str], out: Applied
) -> dict[str, Any]:
    user, comment = action.user_name, action.comment
    if not user:
        raise AlertActionError("an action needs the user who takes it")
    if action.action in ALERT_ACTIONS:
        if not action.target:
            raise AlertActionError(f"{action.action} needs an alert id or fingerprint")
        alert = book.find(action.target)
        if alert is None:
            raise AlertActionError(f"no open alert {action.target!r} (resolved, or never fired)")
        step = {
            "acknowledge": book.acknowledge,
            "unacknowledge": book.unacknowledge,
            "resolve": book.resolve,
        }[action.action]
        changes = step(action.target, user, comment, now)
        out.changes += changes
        final = changes[-1].alert if changes else alert
        return {"alert": msgspec.to_builtins(final), "changed": bool(changes)}
    if action.action == "silence":
        if not comment:
            raise AlertActionError("a silence needs a comment saying why")
        p = action.params
        matchers = tuple(Matcher.parse(m) for m in p.get("matchers", []))
        if not matchers:
            raise AlertActionError("a silence needs at least one matcher")
        starts = datetime.fromisoformat(p["starts_at"]) if p.get("starts_at") else now
        ends = datetime.fromisoformat(p["ends_at"])
        if starts.tzinfo is None or ends.tzinfo is None:
            raise AlertActionError("silence times need a UTC offset")
        if ends <= starts or ends <= now:
            raise AlertActionError("a silence must end after it starts and in the future")
        silence = Silence(
            id=new_id(),
            matchers=matchers,
            starts_at=starts,
            ends_at=ends,
            author=user,
            comment=comment,
        )
        out.changes += book.add_silence(silence, now)
        out.silences_added.append(silence)
        return {"silence": _silence_dict(silence)}
    if action.action == "expire_silence":
        if not action.target:
            raise AlertActionError("expire_silence needs a silence id")
        out.changes += book.expire_silence(action.target, user, now, comment)
        out.silences_expired.append((action.target, user, now))
        return {"silence": action.target, "expired_at": now.isoformat()}
    raise AlertActionError(f"unknown action {action.action!r}; known: {', '.join(ACTIONS)}")


def _silence_dict(s: Silence) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": [str(m) for m in s.matchers],
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "author": s.author,
        "comment": s.comment,
    }
