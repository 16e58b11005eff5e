"""The ``ioc`` command: services, migrations, the worker, the simulator and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ioc.cli_alerts import alerts_app, users_app
from ioc.cli_grafana import grafana_app
from ioc.cli_integrations import integrations_app
from ioc.cli_ops import doctor, replay_app
from ioc.config import ConfigError, Settings, mask_password

if TYPE_CHECKING:
    from ioc.alerts.rules import AlertConfig
    from ioc.services.tansu import TansuBroker

app = typer.Typer(help="IOC stream backend.", no_args_is_help=True, add_completion=False)
services_app = typer.Typer(
    help="Local broker and database for development and tests.", no_args_is_help=True
)
app.add_typer(services_app, name="services")
app.add_typer(users_app, name="users")
app.add_typer(alerts_app, name="alerts")
app.add_typer(integrations_app, name="integrations")
app.add_typer(grafana_app, name="grafana")
app.add_typer(replay_app, name="replay")
app.command()(doctor)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None


def _broker(settings: Settings) -> TansuBroker:
    from ioc.services.tansu import TansuBroker

    return TansuBroker(port=settings.first_broker[1], state_dir=settings.state_dir)


@services_app.command("up")
def services_up() -> None:
    """Start the embedded broker (unless IOC_KAFKA_URL is set) and the local database."""
    from ioc.services.postgres import ensure_database

    settings = _settings()
    if settings.embedded_broker:
        pid = _broker(settings).start()
        typer.echo(f"broker: Tansu on {settings.kafka_bootstrap} (pid {pid})")
    else:
        typer.echo(f"broker: external at {settings.kafka_url} (not managed)")
    created = ensure_database(settings.database_url)
    typer.echo(
        f"database: {mask_password(settings.database_url)} ({'created' if created else 'exists'})"
    )


@services_app.command("down")
def services_down() -> None:
    """Stop the embedded broker (the database server is shared and left running)."""
    settings = _settings()
    if settings.embedded_broker and _broker(settings).stop():
        typer.echo("broker: stopped")
    else:
        typer.echo("broker: not running")


@services_app.command("status")
def services_status() -> None:
    """Show whether the broker and the database answer; exit 1 if either does not."""
    from ioc.services.postgres import server_reachable
    from ioc.services.tansu import port_open

    settings = _settings()
    broker_ok = port_open(*settings.first_broker)
    db_ok = server_reachable(settings.database_url)
    typer.echo(f"broker   {settings.kafka_bootstrap}: {'up' if broker_ok else 'down'}")
    typer.echo(f"database {mask_password(settings.database_url)}: {'up' if db_ok else 'down'}")
    raise typer.Exit(0 if broker_ok and db_ok else 1)


@app.command()
def migrate() -> None:
    """Apply pending database migrations (idempotent; safe to run from every worker)."""
    from ioc.storage.migrations import migrate as run

    settings = _settings()
    mode, applied = run(settings.database_url)
    typer.echo(f"storage mode: {mode}; applied: {applied or 'nothing (up to date)'}")


kpi_app = typer.Typer(help="Live KPIs: recompute from stored events.", no_args_is_help=True)
app.add_typer(kpi_app, name="kpi")


def _aware(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise typer.BadParameter(f"{value!r} needs a UTC offset, e.g. 2026-03-01T00:00+07:00")
    return t


@kpi_app.command("recompute")
def kpi_recompute(
    start: Annotated[str, typer.Option("--from", help="Whole hour with offset.")],
    end: Annotated[str, typer.Option("--to", help="Whole hour with offset.")],
    at: Annotated[
        str | None,
        typer.Option("--at", help="Snapshot time with offset (default: now)."),
    ] = None,
    write: Annotated[
        bool,
        typer.Option(
            help="Also store the snapshot: in kpi_snapshots, and in kpi_current (what the"
            " walls show) unless a newer snapshot is already there."
        ),
    ] = False,
) -> None:
    """Rebuild the KPI summaries of [--from, --to) from the raw events with SQL, then print
    every KPI as it stood at --at (NDJSON), derived from storage alone.

    Events with a later event time are left out, except inside the summary buckets holding
    --at (5 minutes for availability and security counts, an hour for the top lists), which
    count whole. The worker's live engine keeps its own state: restart the workers after a
    recompute that changed the past, so their next refresh starts from the rebuilt tables."""
    import msgspec
    import psycopg

    from ioc.clock import SystemClock
    from ioc.storage.kpi_store import publish_recomputed
    from ioc.storage.summaries import rebuild
    from ioc.storage.writer import with_connection_defaults
    from pipelines.kpi import live_kpis

    settings = _settings()
    lo, hi = _aware(start), _aware(end)
    now = SystemClock().now()
    when = _aware(at) if at is not None else now
    if write and when > now:
        raise typer.BadParameter("--write with --at in the future would store values not seen yet")
    earliest = settings.retention.rebuildable_from(now)
    if earliest is not None and lo < earliest:
        raise typer.BadParameter(
            f"--from {lo.isoformat()} is before {earliest.isoformat(timespec='hours')}: raw"
            " events that old are past retention (IOC_RETENTION_DAYS / IOC_RETENTION), and"
            " rebuilding would replace the summaries and daily rollups kept there with nothing"
        )

    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(
            with_connection_defaults(settings.database_url), autocommit=True
        ) as conn:
            written = await rebuild(conn, lo, hi)
            typer.echo(f"rebuilt: {written}", err=True)
            rows = await live_kpis(settings, as_of=True).refresh(conn, when)
            if write:
                current = await publish_recomputed(conn, rows)
                where = "kpi_snapshots and kpi_current" if current else "kpi_snapshots only"
                typer.echo(f"stored in {where}", err=True)
        for row in rows:
            sys.stdout.write(msgspec.json.encode(row).decode() + "\n")

    try:
        asyncio.run(go())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


maintenance_app = typer.Typer(
    help="Declared maintenance windows: left out of availability and incidents.",
    no_args_is_help=True,
)
app.add_typer(maintenance_app, name="maintenance")


@maintenance_app.command("add")
def maintenance_add(
    start: Annotated[str, typer.Option("--from", help="Start, with offset.")],
    end: Annotated[str, typer.Option("--to", help="End (excluded), with offset.")],
    author: Annotated[str, typer.Option(help="Who declares it.")],
    service: Annotated[
        str | None, typer.Option(help="The service_id (default: every service).")
    ] = None,
    comment: Annotated[str, typer.Option(help="Why: shown to operators.")] = "",
) -> None:
    """Declare a maintenance window; prints its id. Applies at the next KPI refresh, also to
    the past (a window declared after the fact)."""
    import psycopg

    from ioc.storage.maintenance_windows import declare

    settings = _settings()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        try:
            w = declare(
                conn, _aware(start), _aware(end), author, service_id=service, comment=comment
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    typer.echo(f"{w.id}\t{w.service_id or '*'}\t{w.starts_at.isoformat()}\t{w.ends_at.isoformat()}")


@maintenance_app.command("list")
def maintenance_list(
    all_windows: Annotated[bool, typer.Option("--all", help="Also windows that are over.")] = False,
) -> None:
    """Windows running or to come (all with --all): id, service (* = all), start, end,
    author, comment; tab-separated."""
    import psycopg

    from ioc.clock import SystemClock
    from ioc.storage.maintenance_windows import listed

    settings = _settings()
    with psycopg.connect(settings.database_url) as conn:
        windows = listed(conn, ending_after=None if all_windows else SystemClock().now())
    for w in windows:
        typer.echo(
            "\t".join(
                (
                    str(w.id),
                    w.service_id or "*",
                    w.starts_at.isoformat(),
                    w.ends_at.isoformat(),
                    w.author,
                    w.comment,
                )
            )
        )


@maintenance_app.command("end")
def maintenance_end(window_id: Annotated[int, typer.Argument(help="The window's id.")]) -> None:
    """End a window now: a running one is cut short, one still to come is withdrawn."""
    import psycopg

    from ioc.clock import SystemClock
    from ioc.storage.maintenance_windows import end

    settings = _settings()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        try:
            outcome = end(conn, window_id, SystemClock().now())
        except LookupError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"{window_id}: {outcome}")


@app.command()
def topics() -> None:
    """Create the pipeline's topics with the configured partition counts."""
    from ioc.broker import ensure_topics

    plan = asyncio.run(ensure_topics(_settings()))
    for topic, n in plan.items():
        typer.echo(f"{topic}: {n} partitions")


rules_app = typer.Typer(help="Alert rule files: validate them.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def rules_check(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Rule files or directories (default: IOC_ALERT_RULES)."),
    ] = None,
) -> None:
    """Load the rule files as the worker would (secrets from the environment) and report
    every problem with its file and place, or what was loaded. Exit 1 on any problem."""
    import os

    from ioc.alerts.rules import check

    sources = list(paths) if paths else list(_settings().alert_rules)
    ok, report = check(sources, os.environ)
    typer.echo(report, err=not ok)
    raise typer.Exit(0 if ok else 1)


def _alert_config(settings: Settings) -> AlertConfig | None:
    """The rule files the worker evaluates, or None with alerting off. A broken file stops
    the worker at start (with every problem listed), never half-way through the night."""
    import logging
    import os

    from ioc.alerts.rules import RuleFileError, load_config

    if not settings.alerts_enabled:
        return None
    try:
        config = load_config(list(settings.alert_rules), os.environ)
    except RuleFileError as exc:
        typer.secho(f"alert rules: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    for warning in config.warnings:
        logging.getLogger("ioc.alerts").warning("alert rules: %s", warning)
    return config


@app.command()
def worker() -> None:
    """Run a Faust worker: the ingest agents for the three streams, with /metrics."""
    from ioc.broker import ensure_topics
    from ioc.logs import setup_logging
    from ioc.storage.migrations import migrate as run_migrations
    from pipelines.app import create_app

    settings = _settings()
    setup_logging(settings.log_level)
    run_migrations(settings.database_url)
    asyncio.run(ensure_topics(settings))
    import faust

    faust_app = create_app(settings, alert_config=_alert_config(settings))
    loglevel = {"warning": "warn", "critical": "crit"}.get(settings.log_level, settings.log_level)
    faust.Worker(faust_app, loglevel=loglevel, quiet=True).execute_from_commandline()


@app.command()
def gateway() -> None:
    """Run the integration gateway: the push API, syslog (UDP/TCP), /metrics, /readyz."""
    from ioc.logs import setup_logging
    from ioc.storage.migrations import migrate as run_migrations
    from pipelines.gateway import serve

    settings = _settings()
    setup_logging(settings.log_level)
    run_migrations(settings.database_url)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


@app.command()
def simulate(
    speedup: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 720.0,
    backfill_days: Annotated[float, typer.Option(help="Start this many days ago.")] = 7.0,
    seed: Annotated[int, typer.Option(help="Same seed, same province and events.")] = 7,
    duration: Annotated[float | None, typer.Option(help="Stop after N real seconds.")] = None,
    max_events: Annotated[int | None, typer.Option(help="Stop after N events.")] = None,
    invalid_ratio: Annotated[
        float, typer.Option(help="Share of deliberately bad records.")
    ] = 0.002,
    two_level: Annotated[bool, typer.Option(help="Province → commune tree (2025 reform).")] = False,
) -> None:
    """Simulate a province and publish its dossier, uptime and security events."""
    from ioc.broker import ensure_topics
    from ioc.simulator.runner import SimulationPlan, run_simulation

    settings = _settings()
    plan = SimulationPlan(
        seed=seed,
        speedup=speedup,
        backfill=timedelta(days=backfill_days),
        invalid_ratio=invalid_ratio,
        two_level=two_level,
        duration_seconds=duration,
        max_events=max_events,
    )

    async def go() -> None:
        await ensure_topics(settings)
        stats = await run_simulation(settings, plan)
        typer.echo(f"produced: {dict(stats.produced)}; deliberately invalid: {dict(stats.invalid)}")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())


@app.command()
def demo(
    speedup: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 720.0,
    duration: Annotated[float | None, typer.Option(help="Stop after N seconds.")] = None,
) -> None:
    """Start broker and database, a worker and a simulated province; show the live view."""
    from ioc.demo import run_demo

    raise typer.Exit(run_demo(_settings(), speedup=speedup, duration=duration))


def main() -> None:
    from ioc.services.postgres import DatabaseError
    from ioc.services.tansu import BrokerError

    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except (BrokerError, DatabaseError, ConfigError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
