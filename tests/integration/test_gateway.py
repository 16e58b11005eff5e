"""The integration gateway as SOC tools, portals and probes meet it: a real gateway on
loopback ports, the embedded broker and a fresh database; the end-to-end test adds a real
worker and reads the rows it stored.

Covers who may push what (the authentication and scope matrix), per-item answers with JSON
pointers, every format over HTTP and syslog, size limits, rate limits, Idempotency-Key,
readiness while the broker is unreachable, the audit of refused requests, and the
``ioc integrations`` commands.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from ioc.cli_integrations import integrations_app
from ioc.config import Settings
from ioc.gateway.integrations import parse_networks
from ioc.storage.integrations import revoke_integration
from ioc.storage.migrations import migrate
from tests.support.gateway import GatewayThread, create_integration
from tests.support.services import Stack, WorkerProcess, free_port, start_stack, wait_for

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
MAX_ITEMS = 50
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def gw_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(Path(tmp_path_factory.mktemp("gateway")))
    migrate(s.database_url)
    s.extra_env.update(
        IOC_GATEWAY_PORT="0",
        IOC_SYSLOG_UDP_PORT=str(free_port()),
        IOC_SYSLOG_TCP_PORT=str(free_port()),
        IOC_GATEWAY_MAX_ITEMS=str(MAX_ITEMS),
        IOC_GATEWAY_MAX_BODY_BYTES=str(MAX_BODY),
    )
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def tokens(gw_stack: Stack) -> dict[str, str]:
    db = gw_stack.database_url
    return {
        "soc": create_integration(db, "soc-tinh", streams=["security", "uptime"], rate=100000),
        "portal": create_integration(
            db, "portal-dvc", streams=["dossier"], rate=100000, agencies=["000.00.01.H57"]
        ),
        "slow": create_integration(db, "slow-probe", streams=["security"], rate=5, burst=10),
        "fw": create_integration(
            db,
            "fw-01",
            streams=["security"],
            rate=100000,
            syslog_sources=parse_networks(["127.0.0.1/32"]),
        ),
        "revoked": create_integration(db, "old-siem", streams=["security"], rate=100),
    }


@pytest.fixture(scope="module")
def gw(gw_stack: Stack, tokens: dict[str, str]) -> Iterator[GatewayThread]:
    with GatewayThread(gw_stack.settings) as g:
        g.wait_ready()
        yield g


def now() -> str:
    return datetime.now(UTC).isoformat()


def security(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time": now(),
        "source": "soc-tinh",
        "severity": "high",
        "category": "brute_force",
        **extra,
    }


def dossier(event_id: str, agency: str = "000.00.01.H57") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time": now(),
        "dossier_id": f"H57-{event_id}",
        "status": 2,
        "procedure_code": "1.001234",
        "agency_code": agency,
    }


def ndjson(*docs: dict[str, Any]) -> str:
    return "".join(json.dumps(d) + "\n" for d in docs)


# -- who may push what -----------------------------------------------------------------


def test_requests_without_a_valid_token_are_refused_and_audited(
    gw: GatewayThread, gw_stack: Stack, tokens: dict[str, str]
) -> None:
    body = json.dumps(security("auth-1"))
    missing = gw.post("/v1/events/security", body, None)
    assert missing.status == 401 and missing.body["error"] == "missing bearer token"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    basic = gw.post("/v1/events/security", body, None, headers={"Authorization": "Basic eDp5"})
    assert basic.status == 401 and "Bearer" in basic.body["error"]
    wrong = gw.post("/v1/events/security", body, "iocg_" + "x" * 43)
    assert wrong.status == 401 and wrong.body["error"] == "invalid or revoked token"
    asyncio.run(_revoke(gw_stack.database_url, "old-siem"))
    wait_for(  # NOTIFY reaches the gateway within a round-trip
        lambda: gw.post("/v1/events/security", body, tokens["revoked"]).status == 401,
        timeout=5,
        what="the revoked token to be refused",
    )
    wait_for(lambda: _audited(gw_stack, "unauthenticated") >= 4, timeout=10, what="audit rows")


async def _revoke(url: str, name: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await revoke_integration(conn, name)


def _audited(stack: Stack, kind: str) -> int:
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM gateway_audit WHERE kind = %s", (kind,)).fetchone()
    return int(row[0]) if row else 0


def test_scope_matrix_streams_and_agencies(gw: GatewayThread, tokens: dict[str, str]) -> None:
    cases = [  # (token, stream, document, expected status)
        ("soc", "security", security("m-1"), 202),
        ("soc", "dossier", dossier("m-2"), 403),
        ("portal", "dossier", dossier("m-3"), 202),
        ("portal", "security", security("m-4"), 403),
        ("fw", "uptime", {}, 403),
    ]
    for who, stream, doc, expected in cases:
        answer = gw.post(f"/v1/events/{stream}", json.dumps(doc), tokens[who])
        assert answer.status == expected, (who, stream, answer.body)
    foreign = gw.post(
        "/v1/events/dossier", json.dumps(dossier("m-5", "000.00.99.H99")), tokens["portal"]
    )
    assert foreign.status == 400
    [item] = foreign.body["items"]
    assert item["error"] == "scope" and item["pointer"] == "/agency_code"
    # a security event speaks for its own integration only
    other = gw.post(
        "/v1/events/security", json.dumps(security("m-6", source="fw-01")), tokens["soc"]
    )
    assert other.status == 400 and other.body["items"][0]["pointer"] == "/source"


# -- per-item answers, formats, limits ---------------------------------------------------


def test_a_batch_is_answered_item_by_item_with_json_pointers(
    gw: GatewayThread, tokens: dict[str, str]
) -> None:
    lines = [
        json.dumps(security("b-1")),
        "",  # blank lines are skipped but keep the numbering
        json.dumps(security("b-2", severity="urgent")),
        json.dumps(security("b-3", src_ip="10.0.0.300")),
        '{"event_id": "b-4", ',
        json.dumps(security("b-5", event_time="2026-01-01T00:00:00")),
        json.dumps(security("b-6")) + "\r",
    ]
    answer = gw.post("/v1/events/security", "\n".join(lines), tokens["soc"], "application/x-ndjson")
    assert answer.status == 202, answer.body
    assert (answer.body["accepted"], answer.body["rejected"]) == (2, 4)
    by_index = {i["index"]: i for i in answer.body["items"]}
    assert set(by_index) == {0, 2, 3, 4, 5, 6}
    assert by_index[0] == {"index": 0, "status": "accepted", "event_ids": ["b-1"]}
    assert (by_index[2]["error"], by_index[2]["pointer"]) == ("invalid", "/severity")
    assert (by_index[3]["error"], by_index[3]["pointer"]) == ("invalid", "/src_ip")
    assert by_index[4]["error"] == "malformed"
    assert (by_index[5]["error"], by_index[5]["pointer"]) == ("invalid", "/event_time")
    assert by_index[6]["status"] == "accepted"


def test_every_format_is_accepted_over_http(gw: GatewayThread, tokens: dict[str, str]) -> None:
    json_samples = {
        ("security", "ecs"): "formats/ecs/ssh_authentication_failures.json",
        ("security", "ocsf"): "formats/ocsf/ssh_brute_force.json",
        ("security", "wazuh"): "formats/wazuh/sshd_brute_force.json",
        ("uptime", "uptime-kuma"): "formats/uptime_kuma/http_down_503.json",
        ("uptime", "alertmanager"): "formats/alertmanager_webhook/endpoint_down_mixed.json",
    }
    for (stream, fmt), path in json_samples.items():
        doc = (SAMPLES / path).read_text()
        answer = gw.post(f"/v1/events/{stream}?format={fmt}", doc, tokens["soc"])
        assert answer.status == 202, (fmt, answer.body)
        assert answer.body["events"] >= 1 and answer.body["items"][0]["event_ids"]
        # the same documents, one per line
        batch = gw.post(
            f"/v1/events/{stream}?format={fmt}",
            json.dumps(json.loads(doc)) + "\n",
            tokens["soc"],
            "application/x-ndjson",
        )
        assert (
            batch.status == 202
            and batch.body["items"][0]["event_ids"] == answer.body["items"][0]["event_ids"]
        )
    for fmt, names in {
        "cef": ("cef_ids_alert", "cef_malware"),
        "leef": ("leef2_caret_scan",),
    }.items():
        text = "\n".join((SAMPLES / "lines" / f"{n}.log").read_text().strip() for n in names)
        answer = gw.post(f"/v1/events/security?format={fmt}", text, tokens["soc"], "text/plain")
        assert answer.status == 202, answer.body
        assert answer.body["accepted"] == len(names)
    wrong_type = gw.post("/v1/events/security?format=cef", "{}", tokens["soc"])
    assert wrong_type.status == 415 and wrong_type.body["detail"] == {"accepted": ["text/plain"]}
    unknown = gw.post("/v1/events/uptime?format=ecs", "{}", tokens["soc"])
    assert unknown.status == 400 and "native" in unknown.body["detail"]["formats"]


def test_oversized_and_malformed_bodies(gw: GatewayThread, tokens: dict[str, str]) -> None:
    too_big = gw.post("/v1/events/security", b"x" * (MAX_BODY + 1), tokens["soc"])
    assert too_big.status == 413
    too_many = gw.post(
        "/v1/events/security",
        ndjson(*(security(f"many-{i}") for i in range(MAX_ITEMS + 1))),
        tokens["soc"],
        "application/x-ndjson",
    )
    assert too_many.status == 413 and too_many.body["detail"] == {"max_items": MAX_ITEMS}
    for body in (b"", b"\n \n", b"\xff\xfe{", b"[1, 2]", b"null", b'"\\u0000"'):
        answer = gw.post("/v1/events/security", body, tokens["soc"])
        assert answer.status == 400, (body, answer.body)
    latin1 = gw.post(
        "/v1/events/security", b"{}", tokens["soc"], "application/json; charset=latin-1"
    )
    assert latin1.status == 415
    upper = gw.post(
        "/v1/events/security",
        json.dumps(security("charset-1")),
        tokens["soc"],
        "application/json; charset=UTF-8",
    )
    assert upper.status == 202
    form = gw.post(
        "/v1/events/security", b"a=b", tokens["soc"], "application/x-www-form-urlencoded"
    )
    assert form.status == 415
    assert gw.post("/v1/events/nothing", b"{}", tokens["soc"]).status == 404


def test_rate_limit_answers_429_with_retry_after_and_takes_nothing(
    gw: GatewayThread, tokens: dict[str, str]
) -> None:
    slow = tokens["slow"]
    doc = lambda i: security(f"slow-{i}", source="slow-probe")  # noqa: E731
    first = gw.post(
        "/v1/events/security", ndjson(*(doc(i) for i in range(10))), slow, "application/x-ndjson"
    )
    assert first.status == 202
    refused = gw.post("/v1/events/security", ndjson(doc(10), doc(11)), slow, "application/x-ndjson")
    assert refused.status == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 2 and refused.body["detail"]["retry_after"] == wait
    beyond = gw.post(
        "/v1/events/security", ndjson(*(doc(i) for i in range(11))), slow, "application/x-ndjson"
    )
    assert beyond.status == 413  # larger than the burst: waiting would never help
    time.sleep(wait)
    again = gw.post("/v1/events/security", ndjson(doc(10), doc(11)), slow, "application/x-ndjson")
    assert again.status == 202
    assert gw.metric("ioc_gateway_requests_total", integration="slow-probe", status="429") == 1


def test_idempotency_key_replays_the_first_answer_and_sends_nothing_again(
    gw: GatewayThread, tokens: dict[str, str]
) -> None:
    body = ndjson(security("idem-1"), security("idem-2"), security("idem-3", severity="x"))
    headers = {"Idempotency-Key": "batch-2026-11-22-0001"}
    first = gw.post("/v1/events/security", body, tokens["soc"], "application/x-ndjson", headers)
    sent = gw.metric("ioc_gateway_events_produced_total", stream="security")
    again = gw.post("/v1/events/security", body, tokens["soc"], "application/x-ndjson", headers)
    assert first.status == again.status == 202
    assert again.body == first.body and again.headers.get("Idempotent-Replayed") == "true"
    assert gw.metric("ioc_gateway_events_produced_total", stream="security") == sent
    other = gw.post(
        "/v1/events/security",
        ndjson(security("idem-4")),
        tokens["soc"],
        "application/x-ndjson",
        headers,
    )
    assert other.status == 422
    bad_key = gw.post(
        "/v1/events/security",
        body,
        tokens["soc"],
        "application/x-ndjson",
        {"Idempotency-Key": "has space"},
    )
    assert bad_key.status == 400


# -- syslog ----------------------------------------------------------------------------


def _cef(i: int) -> bytes:
    ms = int(time.time() * 1000)
    return (
        f"<134>1 {now()} fw01 fortigate - - - CEF:0|Fortinet|FortiGate|7.2|13053|SSH login"
        f" failed|7|rt={ms} src=203.0.113.{i % 250} dst=10.20.1.5 externalId=sys-{i}"
    ).encode()


def test_syslog_udp_and_tcp_from_allowed_senders_only(
    gw: GatewayThread, gw_stack: Stack, tokens: dict[str, str]
) -> None:
    settings = gw_stack.settings
    before = gw.metric("ioc_gateway_syslog_messages_total", outcome="accepted")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for i in range(20):
            udp.sendto(_cef(i), ("127.0.0.1", settings.syslog_udp_port))
    with socket.create_connection(("127.0.0.1", settings.syslog_tcp_port)) as tcp:
        leef = (SAMPLES / "lines" / "leef2_caret_scan.log").read_bytes().strip()
        frames = [_cef(100 + i) for i in range(30)] + [leef]
        tcp.sendall(b"".join(b"%d %s" % (len(f), f) for f in frames))  # octet counting
    wait_for(
        lambda: gw.metric("ioc_gateway_syslog_messages_total", outcome="accepted") - before >= 51,
        timeout=10,
        what="51 syslog messages accepted",
    )
    # a sender in no integration's allow-list (127.0.0.2 is loopback too)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.2", 0))
        stranger.sendto(_cef(999), ("127.0.0.1", settings.syslog_udp_port))
    wait_for(
        lambda: gw.metric("ioc_gateway_syslog_messages_total", outcome="unknown_sender") >= 1,
        timeout=5,
        what="the stranger to be refused",
    )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stranger:
        stranger.bind(("127.0.0.2", 0))
        stranger.connect(("127.0.0.1", settings.syslog_tcp_port))
        stranger.settimeout(5)
        assert stranger.recv(1) == b""  # closed at once
    assert gw.metric("ioc_gateway_syslog_messages_total", outcome="accepted") - before == 51


# -- readiness -------------------------------------------------------------------------


def test_not_ready_and_503_while_the_broker_is_unreachable(
    gw_stack: Stack, tokens: dict[str, str]
) -> None:
    env = {**gw_stack.env, "IOC_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}"}
    env.update(IOC_SYSLOG_UDP_PORT="0", IOC_SYSLOG_TCP_PORT="0")
    with GatewayThread(Settings.from_env(env)) as g:
        wait_for(lambda: g.get("/readyz").status == 503, timeout=10, what="not ready")
        ready = g.get("/readyz")
        assert ready.body["ready"] is False and ready.body["checks"]["broker"] != "ok"
        assert g.get("/healthz").status == 200
        wait_for(
            lambda: g.get("/readyz").body["checks"]["integrations"] == "ok",
            timeout=10,
            what="integrations loaded",
        )
        answer = g.post("/v1/events/security", json.dumps(security("down-1")), tokens["soc"])
        assert answer.status == 503 and int(answer.headers["Retry-After"]) >= 1


# -- end to end --------------------------------------------------------------------------


def test_push_to_broker_to_worker_to_rows_verbatim(
    gw: GatewayThread, gw_stack: Stack, tokens: dict[str, str], tmp_path: Path
) -> None:
    nasty = [
        "'; DROP TABLE security_events; --",
        "Robert'); DELETE FROM dossiers WHERE ('1'='1",
        "tab\there, bell\x07, escape\x1b[31m red, CR\r, unicode Đà Nẵng ✓",
        "$(rm -rf /) `id` {{7*7}} <script>alert(1)</script>",
    ]
    docs = [security(f"e2e-{i}", message=m, rule_id="R'1;--") for i, m in enumerate(nasty)]
    answer = gw.post("/v1/events/security", ndjson(*docs), tokens["soc"], "application/x-ndjson")
    assert answer.status == 202 and answer.body["accepted"] == len(nasty)
    probe = {
        "event_id": "e2e-up",
        "event_time": now(),
        "service_id": "dvc-portal",
        "status": "down",
        "error": "HTTP 503; DROP TABLE uptime_checks",
    }
    assert gw.post("/v1/events/uptime", json.dumps(probe), tokens["soc"]).status == 202
    assert (
        gw.post("/v1/events/dossier", json.dumps(dossier("e2e-d")), tokens["portal"]).status == 202
    )
    worker = WorkerProcess(gw_stack, tmp_path / "worker.log")
    worker.start()
    try:

        def stored() -> dict[str, str]:
            with psycopg.connect(gw_stack.database_url) as conn:
                rows = conn.execute(
                    "SELECT event_id, message FROM security_events WHERE event_id LIKE 'e2e-%'"
                ).fetchall()
            return dict(rows)

        wait_for(
            lambda: len(stored()) == len(nasty), timeout=60, what="rows", on_fail=worker.log_tail
        )
        assert stored() == {f"e2e-{i}": m for i, m in enumerate(nasty)}
        with psycopg.connect(gw_stack.database_url) as conn:
            wait_for(
                lambda: (
                    conn.execute(
                        "SELECT count(*) FROM uptime_checks WHERE event_id = 'e2e-up'"
                    ).fetchone()
                    == (1,)
                    and conn.execute(
                        "SELECT count(*) FROM dossier_events WHERE event_id = 'e2e-d'"
                    ).fetchone()
                    == (1,)
                ),
                timeout=30,
                what="uptime and dossier rows",
            )
            [(error,)] = conn.execute(
                "SELECT error FROM uptime_checks WHERE event_id = 'e2e-up'"
            ).fetchall()
            assert error == probe["error"]
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
            assert {"security_events", "dossiers", "uptime_checks"} <= tables
    finally:
        worker.stop()


# -- the command -------------------------------------------------------------------------


def test_integrations_command_add_rotate_with_grace_revoke(
    gw: GatewayThread, gw_stack: Stack
) -> None:
    runner = CliRunner()
    env = {"IOC_DATABASE_URL": gw_stack.database_url}
    added = runner.invoke(
        integrations_app,
        ["add", "waf-dvc", "--streams", "security", "--rate", "600/min", "--by", "test"],
        env=env,
    )
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[0]
    assert token.startswith("iocg_")
    with psycopg.connect(gw_stack.database_url) as conn:
        stored = conn.execute(
            "SELECT token_hash FROM integrations WHERE name = 'waf-dvc'"
        ).fetchone()
    assert stored is not None and token not in stored[0]  # only the hash is kept
    doc = json.dumps(security("cli-1", source="waf-dvc"))
    wait_for(lambda: gw.post("/v1/events/security", doc, token).status == 202, 5, "new token")
    rotated = runner.invoke(integrations_app, ["rotate", "waf-dvc", "--grace", "1h"], env=env)
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip().splitlines()[0]
    wait_for(lambda: gw.post("/v1/events/security", doc, new).status == 202, 5, "rotated token")
    assert gw.post("/v1/events/security", doc, token).status == 202  # still in its grace
    listed = runner.invoke(integrations_app, ["list"], env=env)
    assert "waf-dvc" in listed.stdout and "10/s" in listed.stdout
    duplicate = runner.invoke(integrations_app, ["add", "waf-dvc"], env=env)
    assert duplicate.exit_code == 1
    bad = runner.invoke(integrations_app, ["add", "x", "--rate", "fast"], env=env)
    assert bad.exit_code == 2
    assert runner.invoke(integrations_app, ["revoke", "waf-dvc"], env=env).exit_code == 0
    wait_for(lambda: gw.post("/v1/events/security", doc, new).status == 401, 5, "revoked")
    assert gw.post("/v1/events/security", doc, token).status == 401
    audit = runner.invoke(integrations_app, ["audit"], env=env)
    assert audit.exit_code == 0 and "unauthenticated" in audit.stdout
