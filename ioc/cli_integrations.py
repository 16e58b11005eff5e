"""``ioc integrations``: the credentials SOC tools, portals and probes push to the gateway
with. A token is printed once, on creation and rotation; only its hash is kept. Gateways
pick up every change within a round-trip (``NOTIFY``).

Exit codes: 0 done, 1 refused (exists, unknown), 2 configuration or usage.
"""

from __future__ import annotations

from typing import Annotated

import typer

# The shell helpers of `ioc users` and `ioc alerts`: one database runner, one table printer.
from ioc.cli_alerts import _fail, _login, _run, _table, _when, parse_duration

integrations_app = typer.Typer(
    help="Integrations pushing to the gateway: a token, streams, agencies, a rate each.",
    no_args_is_help=True,
)


def _list(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


def _rate(text: str | None) -> float | None:
    from ioc.gateway.ratelimit import Rate

    if text is None:
        return None
    try:
        return Rate.parse(text).per_second
    except ValueError as exc:
        raise _fail(str(exc), 2) from None


def _networks(values: list[str] | None) -> tuple[object, ...] | None:
    from ioc.gateway.integrations import parse_networks

    if values is None:
        return None
    try:
        return parse_networks(values)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None


Streams = Annotated[str, typer.Option(help="Comma-separated: dossier, uptime, security.")]
Agencies = Annotated[
    str | None,
    typer.Option(help="Comma-separated agency codes it may push for (default: any)."),
]
RateOpt = Annotated[str, typer.Option(help="Events per second, e.g. 500/s or 30000/min.")]
Burst = Annotated[
    float | None,
    typer.Option(help="Events at once (default: 2 s worth, at least 1,000).", min=1),
]
Syslog = Annotated[
    list[str] | None,
    typer.Option(
        "--syslog-from", help="Address or CIDR block allowed to send syslog (repeatable)."
    ),
]


@integrations_app.command("add")
def integrations_add(
    name: Annotated[str, typer.Argument(help="Also the `source` of its security events.")],
    streams: Streams = "security",
    agencies: Agencies = None,
    rate: RateOpt = "500/s",
    burst: Burst = None,
    syslog_from: Syslog = None,
    by: Annotated[str | None, typer.Option(help="Who creates it (default: you).")] = None,
) -> None:
    """Create an integration and print its token, once."""
    from ioc.storage.integrations import IntegrationExists, add_integration

    per_second = _rate(rate)
    assert per_second is not None
    networks = _networks(syslog_from) or ()
    creator = by or _login()
    try:
        token = _run(
            lambda conn: add_integration(
                conn,
                name,
                streams=_list(streams) or [],
                rate=per_second,
                burst=burst,
                agencies=_list(agencies),
                syslog_sources=networks,  # type: ignore[arg-type]
                created_by=creator,
            )
        )
    except IntegrationExists as exc:
        raise _fail(str(exc)) from None
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    typer.echo(token)
    typer.echo(
        f"integration {name} created. The token above is shown only once: put it in the"
        f" sender's configuration now (a lost one is replaced: `ioc integrations rotate {name}`).",
        err=True,
    )


@integrations_app.command("set")
def integrations_set(
    name: Annotated[str, typer.Argument()],
    streams: Annotated[str | None, typer.Option(help="Comma-separated streams.")] = None,
    agencies: Agencies = None,
    any_agency: Annotated[bool, typer.Option(help="Lift the agency scope.")] = False,
    rate: Annotated[str | None, typer.Option(help="e.g. 500/s")] = None,
    burst: Burst = None,
    syslog_from: Syslog = None,
    no_syslog: Annotated[bool, typer.Option(help="Remove every syslog address.")] = False,
) -> None:
    """Change an integration's streams, agencies, rate or syslog addresses."""
    from ioc.storage.integrations import change_integration

    networks = () if no_syslog else _networks(syslog_from)
    try:
        _run(
            lambda conn: change_integration(
                conn,
                name,
                streams=_list(streams),
                rate=_rate(rate),
                burst=burst,
                agencies=_list(agencies),
                any_agency=any_agency,
                syslog_sources=networks,  # type: ignore[arg-type]
            )
        )
    except LookupError as exc:
        raise _fail(str(exc.args[0])) from None
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    typer.echo(f"integration {name} changed", err=True)


@integrations_app.command("list")
def integrations_list() -> None:
    """Every integration, revoked ones included (their names are never reused)."""
    from ioc.gateway.ratelimit import Rate
    from ioc.storage.integrations import list_integrations

    rows = _run(list_integrations)
    _table(
        ("name", "streams", "agencies", "rate", "burst", "syslog from", "created", "revoked"),
        [
            (
                r.name,
                ",".join(r.streams),
                ",".join(r.agencies) if r.agencies is not None else "any",
                str(Rate(r.rate_per_second)),
                f"{r.burst:g}",
                ",".join(str(n) for n in r.syslog_sources) or "-",
                _when(r.created_at),
                _when(r.revoked_at),
            )
            for r in rows
        ],
    )


@integrations_app.command("rotate")
def integrations_rotate(
    name: Annotated[str, typer.Argument()],
    grace: Annotated[
        str, typer.Option(help="Keep the old token valid this long, e.g. 1h (default 0).")
    ] = "0s",
) -> None:
    """Print a new token, once; the old one stops at once or after --grace."""
    from ioc.storage.integrations import rotate_integration

    try:
        period = parse_duration(grace) if grace not in ("0", "0s") else None
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    try:
        token = _run(
            lambda conn: (
                rotate_integration(conn, name, period) if period else rotate_integration(conn, name)
            )
        )
    except LookupError as exc:
        raise _fail(str(exc.args[0])) from None
    typer.echo(token)
    until = f"for {grace}" if period else "no longer"
    typer.echo(f"integration {name}: new token above; the old one works {until}.", err=True)


@integrations_app.command("revoke")
def integrations_revoke(name: Annotated[str, typer.Argument()]) -> None:
    """Revoke for good: its tokens fail from now on."""
    from ioc.storage.integrations import revoke_integration

    try:
        _run(lambda conn: revoke_integration(conn, name))
    except LookupError as exc:
        raise _fail(str(exc.args[0])) from None
    typer.echo(f"integration {name} revoked", err=True)


@integrations_app.command("audit")
def integrations_audit(
    name: Annotated[str | None, typer.Argument(help="One integration (default: all).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Recent refused requests and rejected items, newest first."""
    from ioc.storage.integrations import read_audit

    rows = _run(lambda conn: read_audit(conn, name, limit))
    _table(
        ("at", "integration", "remote", "via", "status", "kind", "reason"),
        [
            (
                _when(r["at"]),
                r["integration"] or "-",
                r["remote"] or "-",
                r["transport"],
                r["status"] or "-",
                r["kind"],
                r["reason"],
            )
            for r in rows
        ],
    )
