"""Integrations: the credentials SOC tools, portals and probes push with, and their scopes.

An integration may push to the streams it lists and, when it lists agencies, only events of
those agencies (dossier events always name one; a security event that names none is refused
for such an integration, since nobody could tell whose it is). A security event's ``source``
is the integration's own name — the contract's "each source has its own credential" — so one
integration cannot speak for another. Syslog senders are matched to an integration by their
address (``syslog_sources``); a sender in no integration's list is refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ioc.events import DossierEvent, Event, SecurityEvent

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}", re.ASCII)  # also a security event's `source`
STREAM_NAMES = ("dossier", "uptime", "security")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ScopeProblem:
    pointer: str
    reason: str


@dataclass(frozen=True, slots=True)
class Integration:
    name: str
    streams: frozenset[str]
    rate: float  # events per second
    burst: float
    agencies: frozenset[str] | None = None  # None: any agency
    syslog_sources: tuple[Network, ...] = field(default_factory=tuple)

    def may_push(self, stream: str) -> bool:
        return stream in self.streams

    def scope_problem(self, event: Event) -> ScopeProblem | None:
        """Why this integration may not push ``event``, or None."""
        if isinstance(event, SecurityEvent) and event.source != self.name:
            return ScopeProblem(
                "/source",
                f"source {event.source!r} is not this integration's; it pushes as {self.name!r}",
            )
        if self.agencies is None or not isinstance(event, DossierEvent | SecurityEvent):
            return None
        agency = event.agency_code
        if agency is None:
            return ScopeProblem(
                "/agency_code",
                "this integration pushes only for listed agencies; the event names none",
            )
        if agency not in self.agencies:
            return ScopeProblem(
                "/agency_code", f"agency {agency!r} is outside this integration's scope"
            )
        return None


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(
            f"an integration name is 1-64 lower-case letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit, not {name!r}"
        )
    return name


def parse_streams(names: Iterable[str]) -> frozenset[str]:
    streams = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(streams - set(STREAM_NAMES))
    if unknown or not streams:
        raise ValueError(
            f"streams are {', '.join(STREAM_NAMES)}; got {', '.join(unknown) or 'none'}"
        )
    return streams


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR blocks (``10.1.2.3``, ``10.1.2.0/24``, ``fd00::/8``)."""
    out: list[Network] = []
    for text in texts:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or CIDR block: {text!r}") from None
    return tuple(out)


def syslog_owner(integrations: Iterable[Integration], address: str) -> Integration | None:
    """The integration whose allow-list holds this sender, the narrowest block winning (so a
    /32 for one firewall beats the /24 of its network)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    best: tuple[int, Integration] | None = None
    for integ in integrations:
        if "security" not in integ.streams:
            continue
        for net in integ.syslog_sources:
            if ip in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, integ)
    return best[1] if best else None
