"""``ioc doctor``: check what a deployment depends on and say, in one screen, what is wrong.

Each check answers within a few seconds (a service that does not answer is a finding, not a
hang) and says what to do about what it found. Broker: reachable, the pipeline's topics
there with enough partitions and replicas. Database: reachable, the storage mode against the
TimescaleDB extension, migrations applied (and not newer than this release). Alert rules
load; each Alertmanager and Grafana they name, and Grafana at ``GRAFANA_URL``, answers its
health endpoint. The retention plan is printed, so the days kept are never a surprise.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import aiohttp
import psycopg
from aiokafka.admin import AIOKafkaAdminClient
from psycopg.conninfo import conninfo_to_dict

from ioc.broker import topic_plan
from ioc.config import Settings, mask_password

Status = Literal["ok", "info", "warn", "FAIL", "skip"]
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: Status
    detail: str
    hint: str = ""


def render(findings: Sequence[Finding]) -> str:
    """One line per finding, its hint under it; a last line with the verdict."""
    width = max((len(f.check) for f in findings), default=0)
    lines = []
    for f in findings:
        lines.append(f"{f.status:<5} {f.check:<{width}}  {f.detail}")
        if f.hint:
            lines.append(f"{'':<5} {'':<{width}}  → {f.hint}")
    failed = sum(f.status == "FAIL" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    if failed:
        lines.append(f"{failed} problem(s), {warned} warning(s): see the → lines above")
    else:
        lines.append(f"healthy ({warned} warning(s))" if warned else "healthy")
    return "\n".join(lines)


def exit_code(findings: Sequence[Finding]) -> int:
    return 1 if any(f.status == "FAIL" for f in findings) else 0


def _reason(exc: BaseException) -> str:
    """The exception's class and message, once (client libraries often repeat the class)."""
    name, text = type(exc).__name__, str(exc).strip()
    text = text.removeprefix(f"{name}: ").removeprefix(name).strip(": ")
    return f"{name}: {text}" if text else name


def retention_findings(lines: Sequence[tuple[str, int | None]]) -> list[Finding]:
    """The retention plan on a few lines: tables grouped by days kept."""
    groups: dict[int | None, list[str]] = {}
    for table, days in lines:
        groups.setdefault(days, []).append(table)
    ordered = sorted(groups, key=lambda d: (d is None, d or 0))
    return [
        Finding(
            "retention",
            "info",
            f"{'forever' if d is None else f'{d} days'}: {', '.join(groups[d])}",
        )
        for d in ordered
    ]


# --- broker -------------------------------------------------------------------------------


async def check_broker(settings: Settings) -> list[Finding]:
    where = settings.kafka_bootstrap
    admin = AIOKafkaAdminClient(
        bootstrap_servers=where, request_timeout_ms=int(TIMEOUT_SECONDS * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), TIMEOUT_SECONDS)
        cluster = await asyncio.wait_for(admin.describe_cluster(), TIMEOUT_SECONDS)
        # Only topics that exist: describing a missing one can create it (a broker with
        # auto-creation on, as the embedded one has), which would hide the finding.
        existing = set(await asyncio.wait_for(admin.list_topics(), TIMEOUT_SECONDS))
        wanted = [t for t in topic_plan(settings) if t in existing]
        described = (
            await asyncio.wait_for(admin.describe_topics(wanted), TIMEOUT_SECONDS) if wanted else []
        )
    except Exception as exc:  # every client error means the same to the operator
        return [
            Finding(
                "broker",
                "FAIL",
                f"no answer from {where}: {_reason(exc)}",
                "is Kafka running and IOC_KAFKA_URL right? (`ioc services up` starts the"
                " embedded one for development)",
            )
        ]
    finally:
        await admin.close()
    brokers = len(cluster.get("brokers", []))
    flavor = "embedded Tansu (development only)" if settings.broker_flavor == "tansu" else "Kafka"
    found = [Finding("broker", "ok", f"{flavor} at {where}: {brokers} broker(s)")]
    return found + _topic_findings(settings, described, brokers)


def _topic_findings(
    settings: Settings, described: Sequence[Mapping[str, object]], brokers: int
) -> list[Finding]:
    plan = topic_plan(settings)
    by_name = {str(t["topic"]): t for t in described if not t.get("error_code")}
    missing = sorted(set(plan) - set(by_name))
    out: list[Finding] = []
    if missing:
        out.append(
            Finding(
                "topics",
                "FAIL",
                f"missing: {', '.join(missing)}",
                "run `ioc topics` (workers also create them at start)",
            )
        )
    few: list[str] = []
    thin: list[str] = []
    leaderless: list[str] = []
    short: list[str] = []
    for name, wanted in plan.items():
        topic = by_name.get(name)
        if topic is None:
            continue
        partitions = topic.get("partitions") or []
        assert isinstance(partitions, list)
        if len(partitions) < wanted:
            few.append(f"{name} has {len(partitions)} < {wanted}")
        replicas = min((len(p.get("replicas", [])) for p in partitions), default=0)
        if replicas < settings.topic_replication:
            thin.append(f"{name} {replicas}")
        for part in partitions:
            where = f"{name}/{part.get('partition')}"
            if part.get("leader", -1) == -1 or part.get("error_code"):
                leaderless.append(where)
            # acks=all needs min.insync.replicas (2 of 3 on a production cluster) in sync.
            elif len(part.get("isr", [])) < min(2, len(part.get("replicas", []))):
                short.append(where)
    if leaderless:
        out.append(
            Finding(
                "topics",
                "FAIL",
                f"no leader: {', '.join(leaderless[:8])}{' …' if len(leaderless) > 8 else ''}",
                "a broker holding these partitions is down: pushes to them fail (503)",
            )
        )
    if short:
        out.append(
            Finding(
                "topics",
                "warn",
                f"under-replicated (fewer than 2 in sync): {', '.join(short[:8])}"
                + (" …" if len(short) > 8 else ""),
                "one more broker loss stops writes to them (min.insync.replicas=2)",
            )
        )
    if few:
        out.append(
            Finding(
                "topics",
                "warn",
                "fewer partitions than configured: " + "; ".join(few),
                "workers beyond the partition count sit idle; add partitions with"
                " kafka-topics.sh --alter (keys move: see docs/scaling.md)",
            )
        )
    if thin:
        out.append(
            Finding(
                "topics",
                "warn",
                f"replication below IOC_TOPIC_REPLICATION={settings.topic_replication}: "
                + ", ".join(thin),
                "reassign replicas (kafka-reassign-partitions.sh); a broker loss can lose"
                " acknowledged events",
            )
        )
    if settings.broker_flavor == "kafka" and settings.topic_replication < 3 and brokers >= 3:
        out.append(
            Finding(
                "topics",
                "warn",
                f"IOC_TOPIC_REPLICATION={settings.topic_replication} on a {brokers}-broker cluster",
                "use 3 (with min.insync.replicas=2) so one broker can fail without loss",
            )
        )
    if not out:
        partitions = ", ".join(f"{t.split('.')[1]} {n}" for t, n in plan.items())
        out.append(Finding("topics", "ok", f"all {len(plan)} present ({partitions} partitions)"))
    return out


# --- database -----------------------------------------------------------------------------


async def check_database(settings: Settings) -> list[Finding]:
    from ioc.storage.migrations import MIGRATIONS

    shown = _database_shown(settings.database_url)
    try:
        conn = await psycopg.AsyncConnection.connect(
            settings.database_url, connect_timeout=int(TIMEOUT_SECONDS), autocommit=True
        )
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        if password := conninfo_to_dict(settings.database_url).get("password"):
            first = first.replace(str(password), "***")
        return [
            Finding(
                "database",
                "FAIL",
                f"cannot connect to {shown}: {first}",
                "is the server running, and IOC_DATABASE_URL (host, database, password) right?",
            )
        ]
    async with conn:
        version = await _one(conn, "SHOW server_version")
        out = [Finding("database", "ok", f"PostgreSQL {version} at {shown}")]
        installed = await _one(
            conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        )
        available = await _one(
            conn, "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
        )
        has_table = await _one(conn, "SELECT to_regclass('ioc_schema_migrations') IS NOT NULL")
        mode = applied = None
        if has_table:
            mode = await _one(
                conn, "SELECT mode FROM ioc_schema_migrations ORDER BY version LIMIT 1"
            )
            cur = await conn.execute("SELECT version FROM ioc_schema_migrations")
            applied = {int(r[0]) for r in await cur.fetchall()}
    out.append(_extension_finding(mode, installed, available))
    out.append(_migration_finding(applied, {m.version for m in MIGRATIONS}))
    return out


def _database_shown(url: str) -> str:
    """Where the database is, never with a password (URL, ``?password=`` or key=value form)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(IOC_DATABASE_URL, unparsable)"
    user = str(parts.get("user", ""))
    host, port = parts.get("host", "localhost"), parts.get("port", "5432")
    return f"{user + '@' if user else ''}{host}:{port}/{parts.get('dbname', '')}"


async def _one(conn: psycopg.AsyncConnection, query: str) -> object | None:
    cur = await conn.execute(query)  # type: ignore[arg-type]
    row = await cur.fetchone()
    return row[0] if row else None


def _extension_finding(mode: object, installed: object, available: object) -> Finding:
    if mode == "timescale" and installed is None:
        return Finding(
            "timescaledb",
            "FAIL",
            "the schema was created for TimescaleDB but the extension is not installed",
            "restore into a server with the same TimescaleDB version"
            " (docs/operations.md#backup-and-restore)",
        )
    if mode == "timescale":
        return Finding("timescaledb", "ok", f"extension {installed}: hypertables, compression")
    if mode == "plain" and (installed or available):
        return Finding(
            "timescaledb",
            "warn",
            f"extension {installed or available} is available, but the schema was created on"
            " plain PostgreSQL (range partitions; same answers, no compression)",
            "the mode is fixed at the first migration: to switch, migrate a new database and"
            " replay into it (docs/operations.md)",
        )
    if mode == "plain":
        return Finding("timescaledb", "info", "not installed: plain PostgreSQL mode")
    what = f"extension {available} available" if available else "extension not available"
    return Finding("timescaledb", "info", f"{what}; the first migration chooses the mode")


def _migration_finding(applied: set[int] | None, known: set[int]) -> Finding:
    latest = max(known)
    if not applied:
        return Finding(
            "migrations",
            "FAIL",
            "the database is not migrated",
            "run `ioc migrate` (workers and gateways also migrate at start)",
        )
    if newer := sorted(applied - known):
        return Finding(
            "migrations",
            "FAIL",
            f"the database has migration(s) {newer} this release does not know",
            "this ioc is older than the schema: run the release that migrated it",
        )
    if pending := sorted(known - applied):
        return Finding(
            "migrations",
            "FAIL",
            f"pending: {pending} (applied up to {max(applied)})",
            "run `ioc migrate` before starting the new release's workers",
        )
    return Finding("migrations", "ok", f"all {len(known)} applied (version {latest})")


# --- HTTP services ------------------------------------------------------------------------


async def _get(
    session: aiohttp.ClientSession, check: str, url: str, what: str, hint: str
) -> tuple[Finding, str]:
    """GET a health endpoint: ok on 2xx; the finding, and the whole body for a caller that
    reads it. Addresses are shown without their credentials."""
    shown = mask_password(url)
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)) as r:
            body = (await r.text(errors="replace")).strip()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Finding(check, "FAIL", f"{what} at {shown}: {_reason(exc)}", hint), ""
    if not 200 <= r.status < 300:
        return Finding(check, "FAIL", f"{what} at {shown} answered HTTP {r.status}", hint), body
    return Finding(
        check, "ok", f"{what} at {shown}: {' '.join(body.split())[:80] or 'ready'}"
    ), body


async def check_grafana(session: aiohttp.ClientSession, url: str) -> Finding:
    shown = mask_password(url)
    finding, body = await _get(
        session,
        "grafana",
        url.rstrip("/") + "/api/health",
        "Grafana",
        "is Grafana running at that address? (GRAFANA_URL, or the url of a grafana receiver)",
    )
    return finding if finding.status != "ok" else grafana_health(shown, body)


def grafana_health(shown: str, body: str) -> Finding:
    """What Grafana's ``/api/health`` body says (``{"database": "ok", "version": …}``)."""
    try:
        health = json.loads(body)
    except ValueError:
        health = None
    if not isinstance(health, dict) or "database" not in health:
        return Finding(
            "grafana",
            "FAIL",
            f"{shown} answered, but not as Grafana's /api/health does",
            "is GRAFANA_URL Grafana's own address (not a proxy's login page)?",
        )
    if health.get("database") != "ok":
        return Finding(
            "grafana",
            "FAIL",
            f"Grafana at {shown} reports its database as {health.get('database')!r}",
            "see Grafana's own log",
        )
    return Finding("grafana", "ok", f"Grafana {health.get('version', '?')} at {shown}")


async def check_alerting(
    settings: Settings, env: Mapping[str, str], session: aiohttp.ClientSession
) -> list[Finding]:
    from ioc.alerts.receivers import AlertmanagerReceiver, GrafanaReceiver
    from ioc.alerts.rules import RuleFileError, load_config

    if not settings.alerts_enabled:
        return [Finding("alert rules", "info", "alerting is off (IOC_ALERTS=off)")]
    try:
        config = load_config(list(settings.alert_rules), env)
    except RuleFileError as exc:
        return [
            Finding(
                "alert rules",
                "FAIL",
                str(exc).splitlines()[0],
                "run `ioc rules check` for every problem with its file and line",
            )
        ]
    out = [
        Finding(
            "alert rules",
            "ok",
            f"{len(config.enabled_rules)} rules, {len(config.receivers)} receivers enabled",
        )
    ]
    out += [Finding("alert rules", "warn", w) for w in config.warnings]
    managers = [r for r in config.receivers.values() if isinstance(r, AlertmanagerReceiver)]
    grafanas = {r.url for r in config.receivers.values() if isinstance(r, GrafanaReceiver)}
    if not managers:
        out.append(
            Finding(
                "alertmanager",
                "warn",
                "no Alertmanager receiver is enabled",
                "set IOC_ALERTMANAGER_URL (the committed routing.yaml reads it)",
            )
        )
    for m in managers:
        finding, _ = await _get(
            session,
            "alertmanager",
            m.url.rstrip("/") + "/-/ready",
            f"receiver {m.name}",
            "is Alertmanager running at that address?",
        )
        out.append(finding)
    if grafana := env.get("GRAFANA_URL"):
        grafanas.add(grafana)
    if not grafanas:
        out.append(Finding("grafana", "skip", "no Grafana address (set GRAFANA_URL to check)"))
    for url in sorted(grafanas):
        out.append(await check_grafana(session, url))
    return out


# --- all ----------------------------------------------------------------------------------


async def diagnose(settings: Settings, env: Mapping[str, str] | None = None) -> list[Finding]:
    """Every check, concurrently; findings in a fixed order."""
    env = os.environ if env is None else env

    async def guarded(check: str, run: Callable[[], Awaitable[list[Finding]]]) -> list[Finding]:
        try:
            return await run()
        except Exception as exc:  # a bug in a check must not hide the other findings
            return [Finding(check, "FAIL", f"the check itself failed: {type(exc).__name__}: {exc}")]

    async with aiohttp.ClientSession() as session:
        parts = await asyncio.gather(
            guarded("broker", lambda: check_broker(settings)),
            guarded("database", lambda: check_database(settings)),
            guarded("alerting", lambda: check_alerting(settings, env, session)),
        )
    plan = [(t.name, days) for t, days in settings.retention.plan()]
    return [f for part in parts for f in part] + retention_findings(plan)
