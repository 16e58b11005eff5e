"""Operations commands: ``ioc replay`` (load events again) and ``ioc doctor`` (what is wrong)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ioc.config import ConfigError, Settings
from ioc.streams import BY_NAME, Stream

replay_app = typer.Typer(
    help="Load events into storage again (idempotent: nothing is stored twice).",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from ioc.cli import _settings as settings  # late: ioc.cli imports this module

    return settings()


def _stream(name: str) -> Stream:
    try:
        return BY_NAME[name]
    except KeyError:
        raise typer.BadParameter(f"{name!r}: one of {', '.join(BY_NAME)}") from None


def _time(value: str | None) -> datetime | None:
    from ioc.cli import _aware  # the same check as every other command's times

    return None if value is None else _aware(value)


StreamOption = Annotated[str, typer.Option("--stream", help="dossier, uptime or security.")]
BatchOption = Annotated[int, typer.Option("--batch", min=1, help="Records per write.")]


@replay_app.command("file")
def replay_file(
    paths: Annotated[
        list[Path], typer.Argument(help="NDJSON files, one event per line (.gz too).")
    ],
    stream: StreamOption,
    batch: BatchOption = 1000,
) -> None:
    """Store the events of NDJSON files (an archive, a fixed dead-letter export) through the
    worker's validation and idempotent write. Refused lines go to the dead_letters table as
    file:<name>, with their line number as offset."""
    from pipelines.replay import Replayer, batches, file_records

    settings, chosen = _settings(), _stream(stream)
    for path in paths:
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    async def go() -> None:
        replayer = Replayer(settings, chosen)
        try:
            for path in paths:
                before = replayer.report.read
                for records in batches(file_records(path), batch):
                    await replayer.feed(records)
                typer.echo(f"{path}: {replayer.report.read - before} records", err=True)
        finally:
            await replayer.close()
        typer.echo(f"{chosen.name}: {replayer.report.line()}")

    asyncio.run(go())


@replay_app.command("topic")
def replay_topic(
    stream: StreamOption,
    partition: Annotated[
        list[int] | None, typer.Option(help="Only these partitions (repeat; default: all).")
    ] = None,
    from_offset: Annotated[
        int | None, typer.Option(help="First offset (per partition), included.")
    ] = None,
    until_offset: Annotated[
        int | None, typer.Option(help="First offset not replayed (excluded).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Records with a broker timestamp from then, with offset.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="… and before then (excluded).")] = None,
    batch: BatchOption = 1000,
) -> None:
    """Store a range of the stream's topic again, by offsets or broker timestamps, without a
    consumer group: the workers' offsets are not touched. Stops at each partition's end as
    found at the start."""
    from aiokafka.errors import KafkaError

    from pipelines.replay import Replayer, TopicRange, topic_batches

    settings, chosen = _settings(), _stream(stream)
    try:
        wanted = TopicRange(
            tuple(partition) if partition else None,
            from_offset,
            until_offset,
            _time(since),
            _time(until),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    async def go() -> None:
        replayer = Replayer(settings, chosen)
        try:
            async for records in topic_batches(settings, chosen, wanted, batch):
                await replayer.feed(records)
        finally:
            await replayer.close()
        typer.echo(f"{chosen.name}: {replayer.report.line()}")

    try:
        asyncio.run(go())
    except (LookupError, KafkaError) as exc:
        typer.secho(f"replay: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None


def doctor(
    quiet: Annotated[bool, typer.Option(help="Leave out the retention plan.")] = False,
) -> None:
    """Check the broker (topics, partitions, replicas), the database (TimescaleDB, migrations),
    the alert rules and the Alertmanager and Grafana they name (and GRAFANA_URL); print what
    is wrong and what to do. Exit 1 on any problem."""
    from ioc.doctor import Finding, diagnose, exit_code, render

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        found = [Finding("config", "FAIL", str(exc), "fix the variable it names")]
        typer.echo(render(found))
        raise typer.Exit(1) from None
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the findings say it once
    findings = asyncio.run(diagnose(settings))
    if quiet:
        findings = [f for f in findings if f.check != "retention"]
    typer.echo(render(findings))
    raise typer.Exit(exit_code(findings))
