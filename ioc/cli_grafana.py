"""``ioc grafana``: the wall dashboards as files, their database login, and an upload.

- ``build`` writes ``grafana/dashboards/**`` and ``grafana/playlists/*`` from
  :mod:`ioc.dashboards` (``--check`` only compares, for CI);
- ``reader NAME`` creates or updates the login Grafana's PostgreSQL datasource uses: a member
  of the read-only ``ioc_grafana_reader`` role, read-only by default, with a statement timeout;
- ``push`` creates folders and upserts dashboards and playlists in a running Grafana.

Exit codes: 0 done, 1 differences found or Grafana refused, 2 configuration or usage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

grafana_app = typer.Typer(
    help="Wall dashboards: build the files, create Grafana's database login, push to Grafana.",
    no_args_is_help=True,
)

REPO_GRAFANA = Path(__file__).resolve().parents[1] / "grafana"


@grafana_app.command("build")
def build(
    out: Annotated[Path, typer.Option(help="The grafana/ directory to write.")] = REPO_GRAFANA,
    check: Annotated[
        bool, typer.Option(help="Only compare; exit 1 if a file differs or is missing.")
    ] = False,
) -> None:
    """Render every dashboard (Vietnamese and English, Full HD and 4K) and playlist."""
    from ioc.dashboards import render_files

    files = render_files()
    stale = [p for p, text in files.items() if _read(out / p) != text]
    managed = {out / p for p in files}
    extra = [
        p
        for sub in ("dashboards", "playlists")
        for p in sorted((out / sub).rglob("*.json"))
        if p not in managed
    ]
    if check:
        for p in stale:
            typer.echo(f"differs: {p}", err=True)
        for path in extra:
            typer.echo(f"not generated: {path}", err=True)
        if stale or extra:
            raise typer.Exit(1)
        typer.echo(f"{len(files)} files up to date")
        return
    for p in stale:
        target = out / p
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[p], encoding="utf-8")
    for path in extra:
        path.unlink()
    typer.echo(f"{len(stale)} written, {len(extra)} removed, {len(files)} in all")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


@grafana_app.command("reader")
def reader(
    name: Annotated[str, typer.Argument(help="Login role name, e.g. grafana.")],
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding its password.")
    ] = "IOC_GRAFANA_DB_PASSWORD",
    statement_timeout: Annotated[str, typer.Option(help="Longest query Grafana may run.")] = "10s",
) -> None:
    """Create or update the database login for Grafana (a member of ioc_grafana_reader)."""
    import psycopg
    from psycopg import sql

    from ioc.cli import _settings
    from ioc.storage.migrations import READER_ROLE, ensure_reader_role

    password = os.environ.get(password_env)
    if not password:
        typer.echo(f"set {password_env} to the password first", err=True)
        raise typer.Exit(2)
    settings = _settings()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        if not ensure_reader_role(conn):
            raise typer.Exit(1)
        role = sql.Identifier(name)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        # Hashed here, so the password itself never reaches the server's statement log.
        hashed = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                sql.SQL(verb), role, sql.Literal(hashed.decode())
            )
        )
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(READER_ROLE), role))
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
        conn.execute(
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                role, sql.Literal(statement_timeout)
            )
        )
    typer.echo(f"{name}: {'updated' if exists else 'created'}, member of {READER_ROLE}")


@grafana_app.command("push")
def push(
    url: Annotated[
        str, typer.Option(envvar="GRAFANA_URL", help="Grafana's address, e.g. http://grafana:3000/")
    ],
    token_env: Annotated[
        str, typer.Option(help="Environment variable holding a service-account token.")
    ] = "GRAFANA_TOKEN",
    lang: Annotated[list[str] | None, typer.Option(help="vi and/or en (default: both).")] = None,
    screen: Annotated[
        list[str] | None, typer.Option(help="1080p and/or 4k (default: both).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per call.")] = 10.0,
    playlists_only: Annotated[
        bool,
        typer.Option(help="Only the playlists: the dashboards are provisioned from files."),
    ] = False,
) -> None:
    """Create the folders, upsert every dashboard by uid and the playlists by name."""
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaException

    from ioc.grafana_push import apply, plan

    token = os.environ.get(token_env)
    if not token:
        typer.echo(f"set {token_env} to a Grafana service-account token", err=True)
        raise typer.Exit(2)
    langs = lang or ["vi", "en"]
    if not set(langs) <= {"vi", "en"}:
        typer.echo("--lang takes vi or en", err=True)
        raise typer.Exit(2)
    screens = screen or ["1080p", "4k"]
    if not set(screens) <= {"1080p", "4k"}:
        typer.echo("--screen takes 1080p or 4k", err=True)
        raise typer.Exit(2)
    steps = plan(langs, screens)  # type: ignore[arg-type]
    if playlists_only:
        steps = [s for s in steps if s.kind == "playlist"]
    api = GrafanaApi.from_url(url if url.endswith("/") else url + "/", token, timeout=timeout)
    try:
        for line in apply(api, steps):
            typer.echo(line)
    except (GrafanaException, OSError) as exc:
        typer.echo(f"Grafana refused or is unreachable: {exc}", err=True)
        raise typer.Exit(1) from None
