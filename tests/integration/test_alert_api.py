"""The acknowledgement API as security staff and attackers meet it: the real aiohttp app on a
loopback port, a real database, and an evaluator doing what the real one does (claim queued
actions, apply them to its book, save the cycle) every 50 ms.

Covers who may do what, that an acknowledgement reaches the alert and stops its escalation,
that an action nobody applies in time is refused for good, that refused requests are audited
without letting a flood fill the database, and the ``ioc users`` / ``ioc alerts`` commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from ioc.alerts.actions import apply_actions
from ioc.alerts.lifecycle import AlertBook
from ioc.alerts.model import AlertNotice, DeliveryResult, Notification, Signal
from ioc.alerts.routing import Matcher, Route
from ioc.api.alerts import alert_api
from ioc.cli_alerts import alerts_app, users_app
from ioc.storage.alert_store import claim_actions, load_open_alerts, record_delivery, save_cycle
from ioc.storage.alert_users import (
    User,
    add_user,
    authenticate,
    enqueue_action,
    revoke_user,
    wait_action,
)
from tests.support.services import free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")
ESCALATE_AFTER = timedelta(minutes=15)
SECURITY = Route(
    name="security",
    matchers=(Matcher.parse('team="security"'),),
    receivers=("phone",),
    escalate_after=ESCALATE_AFTER,
    escalate_to=("ciso",),
)
ACTION_TIMEOUT = 1.0


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Harness:
    """An event loop in a thread running the API(s) and the evaluator; tests talk HTTP."""

    database: str
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    book: AlertBook = field(default_factory=lambda: AlertBook((SECURITY,)))
    evaluating: threading.Event = field(default_factory=threading.Event)
    runners: list[web.AppRunner] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    url: str = ""
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    hold: float = 0.0  # seconds a cycle keeps its claimed rows locked after saving

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.lock = asyncio.Lock()
        self.evaluator = self.call(self._spawn())

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _spawn(self) -> asyncio.Task[None]:
        return asyncio.create_task(self._evaluate())

    async def start_api(self, database: str | None = None, **kw: Any) -> str:
        port = free_port()
        runner = web.AppRunner(alert_api(database or self.database, **kw))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.runners.append(runner)
        return f"http://127.0.0.1:{port}"

    async def _evaluate(self) -> None:
        """What the real evaluator does with people's actions, every 50 ms."""
        async with await psycopg.AsyncConnection.connect(self.database, autocommit=True) as conn:
            while True:
                if self.evaluating.is_set():
                    async with self.lock, conn.transaction():
                        actions = await claim_actions(conn)
                        if actions:
                            applied = apply_actions(self.book, actions, datetime.now(UTC), _new_id)
                            await save_cycle(
                                conn,
                                applied.changes,
                                self.book.alerts,
                                [],
                                applied.outcomes,
                                applied.silences_added,
                                applied.silences_expired,
                            )
                            await asyncio.sleep(self.hold)
                await asyncio.sleep(0.05)

    async def fire(self, src_ip: str) -> tuple[str, str]:
        """A firing intrusion alert, saved as the evaluator saves it: ``(id, fingerprint)``."""
        now = datetime.now(UTC)
        signal = Signal(
            rule="intrusion",
            group={"src_ip": src_ip},
            firing=True,
            at=now,
            severity="critical",
            summary=f"intrusion from {src_ip}",
            labels={"team": "security", "service_id": "portal"},
            evidence=(f"evt-{src_ip}",),
        )
        async with (
            self.lock,
            await psycopg.AsyncConnection.connect(self.database, autocommit=True) as conn,
            conn.transaction(),
        ):
            changes = self.book.apply(signal, now)
            await save_cycle(conn, changes, self.book.alerts, [])
        alert = self.book.alerts[signal.fingerprint]
        return alert.id, alert.fingerprint

    async def escalations_at(self, fingerprint: str, alerts_from_db: bool) -> list[str]:
        """The changes ``tick`` makes to this alert ``escalate_after`` after it fired, on a
        copy of the evaluator's book (or one rebuilt from the database, as after a restart)."""
        async with self.lock:
            if alerts_from_db:
                async with await psycopg.AsyncConnection.connect(self.database) as conn:
                    alerts = await load_open_alerts(conn)
            else:
                alerts = [a.copy() for a in self.book.alerts.values()]
        book = AlertBook((SECURITY,), alerts=alerts)
        fired = book.alerts[fingerprint].fired_at
        return [c.kind for c in book.tick(fired + ESCALATE_AFTER) if c.fingerprint == fingerprint]

    async def _stop(self) -> None:
        self.evaluator.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.evaluator
        for runner in self.runners:
            await runner.cleanup()

    def close(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def api(database: str) -> Iterator[Harness]:
    h = Harness(database)
    h.url = h.call(
        h.start_api(
            action_timeout=ACTION_TIMEOUT,
            link_base="https://ioc.tinh.vn/api/",
            registry=h.registry,
            denied_audit_per_remote=1000,
        )
    )

    async def users() -> None:
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            for role in ("viewer", "responder", "admin"):
                h.tokens[role] = await add_user(conn, role, role, "test")
            h.tokens["revoked"] = await add_user(conn, "former", "admin", "test")
            await revoke_user(conn, "former")

    h.call(users())
    h.evaluating.set()
    try:
        yield h
    finally:
        h.close()


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def http(
    base: str,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    *,
    raw: bytes | None = None,
    content_type: str = "application/json",
    authorization: str | None = None,
) -> Answer:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if authorization is not None:
        req.add_header("Authorization", authorization)
    elif token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Answer(resp.status, json.loads(resp.read()), dict(resp.headers))
    except urllib.error.HTTPError as err:
        return Answer(err.code, json.loads(err.read()), dict(err.headers))


def db_one(database: str, query: str, *params: Any) -> Any:
    with psycopg.connect(database) as conn:
        return conn.execute(query, params).fetchone()


def last_action(database: str) -> Any:
    return db_one(
        database,
        "SELECT user_name, role, action, target, status, result, remote, comment"
        " FROM alert_actions ORDER BY id DESC LIMIT 1",
    )


# -- who may do what ---------------------------------------------------------------------


def test_who_may_do_what(api: Harness) -> None:
    t, url = api.tokens, api.url
    alert_id, _ = api.call(api.fire("10.0.0.1"))
    other_id, _ = api.call(api.fire("10.0.0.2"))

    assert http(url, "GET", "/healthz").status == 200
    nobody = http(url, "GET", "/v1/alerts")
    assert (nobody.status, nobody.body["error"]) == (401, "missing bearer token")
    assert nobody.headers["WWW-Authenticate"].startswith("Bearer")
    assert last_action(api.database)[:5] == (None, None, "list_alerts", None, "denied")
    assert http(url, "GET", "/v1/alerts", "ioc_guessed").status == 401
    assert http(url, "GET", "/v1/alerts", "ioc_\xff\u00e9").status == 401  # not UTF-8 on the wire
    assert http(url, "GET", "/v1/alerts", authorization=f"Basic {t['admin']}").status == 401
    revoked = http(url, "GET", "/v1/me", t["revoked"])
    assert (revoked.status, revoked.body["error"]) == (401, "invalid or revoked token")

    for role in ("viewer", "responder", "admin"):
        assert http(url, "GET", "/v1/me", t[role]).body == {"name": role, "role": role}
    listed = http(url, "GET", "/v1/alerts", t["viewer"])
    assert listed.status == 200
    assert {a["id"] for a in listed.body["alerts"]} >= {alert_id, other_id}
    first = next(a for a in listed.body["alerts"] if a["id"] == alert_id)
    assert first["link"] == f"https://ioc.tinh.vn/api/v1/alerts/{alert_id}"
    assert first["evidence"] == ["evt-10.0.0.1"] and first["state"] == "firing"

    denied = http(url, "POST", f"/v1/alerts/{alert_id}/acknowledge", t["viewer"], {})
    assert (denied.status, denied.body["detail"]) == (403, {"needs": "responder"})
    assert denied.body["error"] == "role viewer may not acknowledge (needs responder)"
    user, role, action, target, status, result, remote, _ = last_action(api.database)
    assert (user, role, action, target, status) == (
        "viewer",
        "viewer",
        "acknowledge",
        alert_id,
        "denied",
    )
    assert result == {"error": denied.body["error"]} and remote == "127.0.0.1"
    assert db_one(api.database, "SELECT state FROM alerts WHERE id = %s", alert_id) == ("firing",)

    assert http(url, "POST", f"/v1/alerts/{alert_id}/acknowledge", t["responder"]).status == 200
    assert http(url, "POST", f"/v1/alerts/{other_id}/acknowledge", t["admin"], {}).status == 200

    assert http(url, "GET", "/v1/audit", t["responder"]).status == 403
    assert http(url, "GET", "/v1/audit", t["viewer"]).status == 403
    audit = http(url, "GET", "/v1/audit?limit=500", t["admin"])
    assert audit.status == 200
    statuses = {(a["user_name"], a["action"], a["status"]) for a in audit.body["actions"]}
    assert ("responder", "acknowledge", "done") in statuses
    assert ("viewer", "acknowledge", "denied") in statuses
    assert (None, "list_alerts", "denied") in statuses
    mine = http(url, "GET", "/v1/audit?user=admin", t["admin"]).body["actions"]
    assert mine and {a["user_name"] for a in mine} == {"admin"}
    assert api.registry.get_sample_value(
        "ioc_alert_api_denied_total", {"reason": "forbidden"}
    ) == pytest.approx(3)


# -- acknowledging, resolving ------------------------------------------------------------


def test_acknowledging_records_who_and_stops_escalation(api: Harness) -> None:
    alert_id, fp = api.call(api.fire("10.0.1.1"))
    assert api.call(api.escalations_at(fp, alerts_from_db=False)) == ["escalated"]

    why = "đang kiểm tra tường lửa"
    ack = http(
        api.url, "POST", f"/v1/alerts/{fp}/acknowledge", api.tokens["responder"], {"comment": why}
    )
    assert ack.status == 200, ack.body
    assert ack.body["changed"] is True
    assert ack.body["alert"]["state"] == "acknowledged"
    assert ack.body["alert"]["acknowledged_by"] == "responder"
    state, by, at = db_one(
        api.database,
        "SELECT state, acknowledged_by, acknowledged_at FROM alerts WHERE id = %s",
        alert_id,
    )
    assert (state, by) == ("acknowledged", "responder") and at is not None
    assert db_one(
        api.database,
        "SELECT actor, comment FROM alert_events WHERE alert_id = %s AND kind = 'acknowledged'",
        alert_id,
    ) == ("responder", why)

    assert api.call(api.escalations_at(fp, alerts_from_db=False)) == []
    assert api.call(api.escalations_at(fp, alerts_from_db=True)) == []

    again = http(api.url, "POST", f"/v1/alerts/{alert_id}/acknowledge", api.tokens["admin"])
    assert again.status == 200 and again.body["changed"] is False
    assert again.body["alert"]["acknowledged_by"] == "responder"
    shown = http(api.url, "GET", f"/v1/alerts/{fp}", api.tokens["viewer"]).body
    assert shown["id"] == alert_id
    assert [(e["kind"], e["actor"], e["comment"]) for e in shown["history"]] == [
        ("fired", None, None),
        ("acknowledged", "responder", why),
    ]

    back = http(api.url, "POST", f"/v1/alerts/{fp}/unacknowledge", api.tokens["responder"])
    assert back.status == 200 and back.body["alert"]["state"] == "firing"
    assert back.body["alert"]["acknowledged_by"] is None


def test_resolving_and_acting_on_a_resolved_alert(api: Harness) -> None:
    alert_id, _ = api.call(api.fire("10.0.2.1"))
    token = api.tokens["responder"]
    unsaid = http(api.url, "POST", f"/v1/alerts/{alert_id}/resolve", token, {})
    assert unsaid.status == 400
    assert unsaid.body["detail"] == "Object missing required field `comment`"

    done = http(api.url, "POST", f"/v1/alerts/{alert_id}/resolve", token, {"comment": "chặn IP"})
    assert done.status == 200, done.body
    assert (done.body["alert"]["state"], done.body["alert"]["resolved_by"]) == (
        "resolved",
        "responder",
    )
    assert db_one(api.database, "SELECT state FROM alerts WHERE id = %s", alert_id) == ("resolved",)
    late = http(api.url, "POST", f"/v1/alerts/{alert_id}/acknowledge", token)
    assert late.status == 409
    assert "no open alert" in late.body["error"]
    assert db_one(
        api.database,
        "SELECT status FROM alert_actions WHERE id = %s",
        late.body["detail"]["action_id"],
    ) == ("rejected",)

    def ids(state: str) -> set[str]:
        got = http(api.url, "GET", f"/v1/alerts?state={state}&limit=500", token)
        return {a["id"] for a in got.body["alerts"]}

    assert alert_id in ids("resolved") and alert_id in ids("all")
    assert alert_id not in ids("open")

    unknown = http(api.url, "POST", "/v1/alerts/not-an-alert/acknowledge", token)
    assert (unknown.status, unknown.body["error"]) == (404, "no alert 'not-an-alert'")
    assert last_action(api.database)[2:5] == ("acknowledge", "not-an-alert", "rejected")


def test_with_no_evaluator_the_action_is_refused_for_good(api: Harness) -> None:
    alert_id, fp = api.call(api.fire("10.0.3.1"))
    api.evaluating.clear()
    try:
        answer = http(api.url, "POST", f"/v1/alerts/{fp}/acknowledge", api.tokens["responder"])
    finally:
        api.evaluating.set()
    assert answer.status == 503
    assert answer.body["error"].startswith("no alert evaluator answered within 1 s")
    action_id = answer.body["detail"]["action_id"]
    status, result = db_one(
        api.database, "SELECT status, result FROM alert_actions WHERE id = %s", action_id
    )
    assert status == "rejected" and result == {"error": answer.body["error"]}

    # The evaluator is back: a later action goes through, the refused one never does.
    assert http(api.url, "GET", "/v1/me", api.tokens["viewer"]).status == 200
    probe = http(api.url, "POST", "/v1/alerts/ffffffffffffffff/acknowledge", api.tokens["admin"])
    assert probe.status == 404
    other_id, _ = api.call(api.fire("10.0.3.2"))
    assert (
        http(api.url, "POST", f"/v1/alerts/{other_id}/acknowledge", api.tokens["admin"]).status
        == 200
    )
    assert db_one(api.database, "SELECT status FROM alert_actions WHERE id = %s", action_id) == (
        "rejected",
    )
    assert db_one(api.database, "SELECT state FROM alerts WHERE id = %s", alert_id) == ("firing",)
    assert api.book.alerts[fp].state == "firing"
    assert api.registry.get_sample_value(
        "ioc_alert_api_actions_total", {"action": "acknowledge", "outcome": "unanswered"}
    ) == pytest.approx(1)


def test_an_evaluator_applying_past_the_timeout_wins(api: Harness) -> None:
    """The refusal at the timeout waits for the evaluator's lock and then finds the row
    done: the person is told what really happened, and it happened once."""
    alert_id, _ = api.call(api.fire("10.0.3.3"))
    api.hold = ACTION_TIMEOUT + 0.5
    try:
        ack = http(api.url, "POST", f"/v1/alerts/{alert_id}/acknowledge", api.tokens["responder"])
    finally:
        api.hold = 0.0
    assert ack.status == 200, ack.body
    assert ack.body["alert"]["state"] == "acknowledged"
    assert db_one(
        api.database,
        "SELECT status FROM alert_actions WHERE id = %s",
        ack.body["action_id"],
    ) == ("done",)


def test_a_stuck_evaluator_leaves_the_action_to_it(api: Harness) -> None:
    """An evaluator holding its lock past ``lock_wait`` (stuck mid-cycle): the wait gives up
    without refusing, so the row keeps a single fate — the evaluator's."""
    alert_id, _ = api.call(api.fire("10.0.3.4"))
    who = User(name="responder", role="responder")
    api.evaluating.clear()

    async def stuck() -> tuple[str, dict[str, Any]]:
        async with (
            await psycopg.AsyncConnection.connect(api.database, autocommit=True) as conn,
            await psycopg.AsyncConnection.connect(api.database, autocommit=True) as evaluator,
        ):
            action_id = await enqueue_action(conn, who, "acknowledge", alert_id, None, None, "t")
            async with evaluator.transaction():
                assert [a.id for a in await claim_actions(evaluator)] == [action_id]
                return await wait_action(conn, action_id, 0.2, lock_wait=0.3)

    try:
        status, result = api.call(stuck())
    finally:
        api.evaluating.set()
    assert status == "pending" and "still applying" in result["error"]
    for _ in range(100):
        row = last_action(api.database)
        if row[4] != "pending":
            break
        time.sleep(0.05)
    assert row[4] == "done"
    assert db_one(api.database, "SELECT state FROM alerts WHERE id = %s", alert_id) == (
        "acknowledged",
    )


def test_comments_are_stored_verbatim(api: Harness) -> None:
    alert_id, _ = api.call(api.fire("10.0.4.1"))
    comment = "'); DELETE FROM alerts; --\" OR 1=1 \\x00 \t\x1b[2J\r\nline\x07\x7f ⚠"
    ack = http(
        api.url,
        "POST",
        f"/v1/alerts/{alert_id}/acknowledge",
        api.tokens["responder"],
        {"comment": comment},
    )
    assert ack.status == 200, ack.body
    assert db_one(
        api.database,
        "SELECT comment FROM alert_events WHERE alert_id = %s AND kind = 'acknowledged'",
        alert_id,
    ) == (comment,)
    assert last_action(api.database)[7] == comment
    assert db_one(api.database, "SELECT count(*) FROM alerts")[0] >= 1
    history = http(api.url, "GET", f"/v1/alerts/{alert_id}", api.tokens["viewer"]).body["history"]
    assert history[-1]["comment"] == comment

    nul = http(
        api.url,
        "POST",
        f"/v1/alerts/{alert_id}/acknowledge",
        api.tokens["responder"],
        raw=b'{"comment": "a\\u0000b"}',
    )
    assert (nul.status, nul.body["detail"]) == (
        400,
        "NUL characters cannot be stored - at `$.comment`",
    )


def test_bad_input_is_a_4xx_never_a_500(api: Harness) -> None:
    alert_id, _ = api.call(api.fire("10.0.5.1"))
    tok = api.tokens["admin"]
    ack = f"/v1/alerts/{alert_id}/acknowledge"
    cases = [
        (http(api.url, "POST", ack, tok, raw=b"{not json"), 400),
        (http(api.url, "POST", ack, tok, {"comment": "x", "by": "boss"}), 400),
        (http(api.url, "POST", ack, tok, {"comment": "x" * 2001}), 400),
        (http(api.url, "POST", ack, tok, raw=b"comment=x", content_type="text/plain"), 415),
        (http(api.url, "POST", ack, tok, raw=b'{"comment": "' + b"x" * 70000 + b'"}'), 413),
        (http(api.url, "GET", "/v1/alerts?limit=abc", tok), 400),
        (http(api.url, "GET", "/v1/alerts?limit=501", tok), 400),
        (http(api.url, "GET", "/v1/alerts?state=gone", tok), 400),
        (http(api.url, "GET", "/v1/alerts?severity=urgent", tok), 400),
        (http(api.url, "GET", "/v1/alerts?rule=%00", tok), 400),
        (http(api.url, "GET", "/v1/alerts/%00", tok), 404),
        (http(api.url, "GET", "/v1/alerts/%ff%fe", tok), 404),
        (http(api.url, "GET", "/v1/alerts?rule=%ff", tok), 200),
        (http(api.url, "GET", "/v1/audit?user=%ff", tok), 200),
        (http(api.url, "DELETE", "/v1/silences/%ff", tok), 404),
        (http(api.url, "POST", "/v1/alerts/%ff/resolve", tok, {"comment": "x"}), 404),
        (http(api.url, "GET", "/v1/alerts/" + "f" * 300, tok), 404),
        (http(api.url, "POST", "/v1/alerts/%00/acknowledge", tok), 404),
        (http(api.url, "GET", "/v1/audit?since=yesterday", tok), 400),
        (http(api.url, "GET", "/v1/audit?since=2026-01-01T00:00:00", tok), 400),
        (http(api.url, "GET", "/v1/silences?all=maybe", tok), 400),
        (http(api.url, "DELETE", "/v1/alerts", tok), 405),
        (http(api.url, "GET", "/v1/nothing", tok), 404),
    ]
    for answer, status in cases:
        assert answer.status == status, answer
        assert status == 200 or answer.body["error"]
    assert db_one(api.database, "SELECT state FROM alerts WHERE id = %s", alert_id) == ("firing",)


# -- silences, notifications -------------------------------------------------------------


def test_silences_are_created_listed_and_expired(api: Harness) -> None:
    alert_id, _ = api.call(api.fire("10.0.6.1"))
    tok = api.tokens["responder"]
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    bad = [
        {"matchers": ["no matcher"], "ends_at": ends, "comment": "x"},
        {"matchers": ['src_ip="10.0.6.1"'], "ends_at": ends[:19], "comment": "x"},
        {"matchers": ['src_ip=~".*"'], "ends_at": ends, "comment": "x"},
        {"matchers": ['src_ip="10.0.6.1"'], "ends_at": ends},
        {"matchers": ['src_ip="10.0.6.1"'], "ends_at": "2020-01-01T00:00:00Z", "comment": "x"},
    ]
    for body in bad:
        answer = http(api.url, "POST", "/v1/silences", tok, body)
        assert answer.status == 400, (body, answer)
    assert http(api.url, "POST", "/v1/silences", api.tokens["viewer"], bad[0]).status == 403

    body = {"matchers": ['src_ip="10.0.6.1"'], "ends_at": ends, "comment": "bảo trì WAF"}
    made = http(api.url, "POST", "/v1/silences", tok, body)
    assert made.status == 201, made.body
    silence = made.body["silence"]
    assert silence["status"] == "active" and silence["author"] == "responder"
    assert silence["matchers"] == ['src_ip="10.0.6.1"']
    sid = silence["id"]
    assert db_one(api.database, "SELECT muted FROM alerts WHERE id = %s", alert_id) == (True,)

    listed = http(api.url, "GET", "/v1/silences", api.tokens["viewer"]).body["silences"]
    assert sid in {s["id"] for s in listed}

    gone = http(api.url, "DELETE", f"/v1/silences/{sid}", tok, {"comment": "xong"})
    assert gone.status == 200, gone.body
    assert gone.body["silence"]["status"] == "expired"
    assert gone.body["silence"]["expired_by"] == "responder"
    assert db_one(api.database, "SELECT muted FROM alerts WHERE id = %s", alert_id) == (False,)
    listed = http(api.url, "GET", "/v1/silences", api.tokens["viewer"]).body["silences"]
    assert sid not in {s["id"] for s in listed}
    everything = http(api.url, "GET", "/v1/silences?all=true", api.tokens["viewer"])
    assert sid in {s["id"] for s in everything.body["silences"]}

    assert http(api.url, "DELETE", f"/v1/silences/{sid}", tok).status == 409
    assert http(api.url, "DELETE", "/v1/silences/nope", tok).status == 404


def test_failed_notifications_are_listed(api: Harness) -> None:
    _, fp = api.call(api.fire("10.0.7.1"))
    now = datetime.now(UTC)
    alert = api.book.alerts[fp]
    notification = Notification(
        id=str(uuid.uuid4()),
        receiver="phone",
        reason="firing",
        group_key=alert.group_key,
        alerts=(AlertNotice.of(alert),),
        created_at=now,
    )

    async def deliver_and_fail() -> None:
        async with await psycopg.AsyncConnection.connect(api.database, autocommit=True) as conn:
            async with conn.transaction():
                await save_cycle(conn, [], {}, [notification])
            failed = DeliveryResult(
                ok=False, attempts=5, permanent=True, status=410, error="410 Gone: hook removed"
            )
            await record_delivery(conn, notification.id, failed, now)

    api.call(deliver_and_fail())
    failed = http(api.url, "GET", "/v1/notifications", api.tokens["viewer"])
    assert failed.status == 200
    [shown] = [n for n in failed.body["notifications"] if n["id"] == notification.id]
    assert shown["receiver"] == "phone" and shown["reason"] == "firing"
    assert (shown["attempts"], shown["last_status"], shown["last_error"]) == (
        5,
        410,
        "410 Gone: hook removed",
    )
    assert shown["alerts"] == [fp]
    pending = http(api.url, "GET", "/v1/notifications?state=pending", api.tokens["viewer"])
    assert notification.id not in {n["id"] for n in pending.body["notifications"]}
    assert http(api.url, "GET", "/v1/notifications?state=lost", api.tokens["viewer"]).status == 400


# -- floods ------------------------------------------------------------------------------


def test_a_flood_of_bad_tokens_is_audited_within_bounds(api: Harness) -> None:
    registry = CollectorRegistry()
    url = api.call(
        api.start_api(registry=registry, denied_audit_per_remote=3, denied_audit_total=100)
    )
    before = db_one(api.database, "SELECT count(*) FROM alert_actions WHERE status = 'denied'")[0]
    for i in range(10):
        assert http(url, "GET", "/v1/alerts", f"ioc_attempt{i}").status == 401
    after = db_one(api.database, "SELECT count(*) FROM alert_actions WHERE status = 'denied'")[0]
    assert after - before == 3
    assert registry.get_sample_value(
        "ioc_alert_api_denied_total", {"reason": "unauthenticated"}
    ) == pytest.approx(10)
    assert registry.get_sample_value("ioc_alert_api_denied_unaudited_total") == pytest.approx(7)


def test_the_api_answers_while_the_database_is_down(api: Harness) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/ioc?connect_timeout=1"
    url = api.call(api.start_api(down))
    health = http(url, "GET", "/healthz")
    assert (health.status, health.body["error"]) == (503, "database unavailable")
    assert http(url, "GET", "/v1/alerts").status == 401  # no token needs no database
    assert http(url, "GET", "/v1/alerts", api.tokens["admin"]).status == 503


# -- the commands ------------------------------------------------------------------------


def test_users_commands_show_a_token_once_and_store_only_its_hash(api: Harness) -> None:
    runner = CliRunner()
    env = {"IOC_DATABASE_URL": api.database}
    added = runner.invoke(users_app, ["add", "nguyen.van.a", "--role", "responder"], env=env)
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    assert token.startswith("ioc_") and added.stdout.count(token) == 1
    assert "shown only once" in added.stderr

    with psycopg.connect(api.database) as conn:
        dump = conn.execute("SELECT alert_users::text FROM alert_users").fetchall()
        actions = conn.execute("SELECT alert_actions::text FROM alert_actions").fetchall()
    assert not any(token in row[0] or token[4:] in row[0] for row in dump + actions)
    assert any(hashlib.sha256(token.encode()).hexdigest() in row[0] for row in dump)
    me = http(api.url, "GET", "/v1/me", token)
    assert me.body == {"name": "nguyen.van.a", "role": "responder"}

    assert runner.invoke(users_app, ["add", "nguyen.van.a"], env=env).exit_code == 1
    assert runner.invoke(users_app, ["add", "x", "--role", "root"], env=env).exit_code == 2
    assert runner.invoke(users_app, ["add", "has space"], env=env).exit_code == 2

    rotated = runner.invoke(users_app, ["rotate", "nguyen.van.a"], env=env)
    assert rotated.exit_code == 0
    new = rotated.stdout.strip()
    assert http(api.url, "GET", "/v1/me", token).status == 401
    assert http(api.url, "GET", "/v1/me", new).status == 200

    listed = runner.invoke(users_app, ["list"], env=env)
    assert "nguyen.van.a" in listed.stdout and "responder" in listed.stdout
    assert runner.invoke(users_app, ["revoke", "nguyen.van.a"], env=env).exit_code == 0
    assert http(api.url, "GET", "/v1/me", new).status == 401
    assert runner.invoke(users_app, ["revoke", "nguyen.van.a"], env=env).exit_code == 1
    assert "revoked" in runner.invoke(users_app, ["list"], env=env).stdout

    async def check() -> None:
        async with await psycopg.AsyncConnection.connect(api.database) as conn:
            assert await authenticate(conn, new) is None

    api.call(check())


def test_alert_commands_act_like_the_api(api: Harness) -> None:
    runner = CliRunner()
    env = {"IOC_DATABASE_URL": api.database}
    alert_id, fp = api.call(api.fire("10.0.8.1"))

    listed = runner.invoke(alerts_app, ["list", "--state", "open"], env=env)
    assert listed.exit_code == 0 and alert_id in listed.stdout
    assert runner.invoke(alerts_app, ["list", "--state", "bogus"], env=env).exit_code == 2

    ack = runner.invoke(alerts_app, ["ack", fp, "--user", "tran.thi.b", "--comment", "ok"], env=env)
    assert ack.exit_code == 0, ack.output
    assert db_one(
        api.database, "SELECT state, acknowledged_by FROM alerts WHERE id = %s", alert_id
    ) == ("acknowledged", "tran.thi.b")
    user, role, action, target, status, _, remote, _ = last_action(api.database)
    assert (user, role, action, target, status, remote) == (
        "tran.thi.b",
        "admin",
        "acknowledge",
        fp,
        "done",
        "cli",
    )

    silenced = runner.invoke(
        alerts_app,
        [
            "silence",
            "--match",
            "src_ip=10.0.8.1",
            "--for",
            "2h",
            "--user",
            "tran.thi.b",
            "--comment",
            "bảo-trì",
        ],
        env=env,
    )
    assert silenced.exit_code == 0, silenced.output
    sid = silenced.stdout.split("\t")[0]
    assert db_one(api.database, "SELECT author FROM silences WHERE id = %s", sid) == ("tran.thi.b",)
    assert (
        runner.invoke(
            alerts_app,
            ["silence", "--match", 'x=~".*"', "--for", "2h", "--user", "u", "--comment", "c"],
            env=env,
        ).exit_code
        == 2
    )
    assert (
        runner.invoke(
            alerts_app, ["expire-silence", sid, "--user", "tran.thi.b"], env=env
        ).exit_code
        == 0
    )

    resolved = runner.invoke(
        alerts_app, ["resolve", alert_id, "--user", "tran.thi.b", "--comment", "xong"], env=env
    )
    assert resolved.exit_code == 0, resolved.output
    again = runner.invoke(alerts_app, ["ack", alert_id, "--user", "tran.thi.b"], env=env)
    assert again.exit_code == 1 and "no open alert" in again.stderr
    assert (
        runner.invoke(alerts_app, ["ack", "nope", "--user", "tran.thi.b"], env=env).exit_code == 1
    )
