"""Who hears about an alert: label matchers, routes with escalation, inhibition, silences.

Matching follows Alertmanager's semantics where it has them (``=``, ``!=``, ``=~``, ``!~``
matchers, anchored regular expressions; inhibition with ``equal`` labels; a label that is
absent matches as the empty string), so a rule file reads the same to someone who knows
Alertmanager, and what we send to Alertmanager groups there the way it grouped here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

import msgspec

MatchOp = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


class Matcher(msgspec.Struct, frozen=True):
    name: str
    op: MatchOp
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``severity="critical"``, ``site=~"dc-.*"``; raises ValueError with the text."""
        m = _MATCHER.match(text)
        if not m:
            raise ValueError(f"not a label matcher: {text!r} (expected name=value, name=~regex…)")
        name, op, value = m.groups()
        matcher = cls(name, op, value)  # type: ignore[arg-type]
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regular expression in {text!r}: {exc}") from None
        return matcher

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = _anchored(self.value).match(got) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@lru_cache(maxsize=1024)
def _anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^(?:{pattern})$")


def matches_all(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """Alerts whose labels match go to ``receivers``; unacknowledged after ``escalate_after``,
    also to ``escalate_to``. Routes are tried in order; the first match wins unless
    ``continue_`` is set (then later routes are tried too)."""

    name: str
    matchers: tuple[Matcher, ...] = ()
    receivers: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ("alertname",)
    escalate_after: timedelta | None = None
    escalate_to: tuple[str, ...] = ()
    continue_: bool = False

    def group_key(self, labels: Mapping[str, str]) -> str:
        """The notification group: the route and the values of its ``group_by`` labels."""
        parts = ",".join(f"{k}={labels.get(k, '')}" for k in self.group_by)
        return f"{self.name}:{{{parts}}}"


def routes_for(routes: tuple[Route, ...], labels: Mapping[str, str]) -> list[Route]:
    """The routes an alert with ``labels`` takes (first match, plus ``continue`` ones)."""
    out: list[Route] = []
    for route in routes:
        if matches_all(route.matchers, labels):
            out.append(route)
            if not route.continue_:
                break
    return out


class InhibitRule(msgspec.Struct, frozen=True, kw_only=True):
    """While an open alert matches ``source``, alerts matching ``target`` with the same
    values of the ``equal`` labels are muted (e.g. a data-centre network outage mutes the
    services behind it). An alert never inhibits itself."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def inhibits(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        return (
            matches_all(self.source, source)
            and matches_all(self.target, target)
            and all(source.get(k, "") == target.get(k, "") for k in self.equal)
        )


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    """Mutes matching alerts between ``starts_at`` and ``ends_at`` (maintenance, known issue).

    Who and why are required: a silence without an author and a comment is how alerts get
    lost.
    """

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.active(now) and matches_all(self.matchers, labels)
