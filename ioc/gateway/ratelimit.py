"""Token buckets: each integration may push ``rate`` events per second, in bursts of ``burst``.

A request costs one token per item it carries, taken whole or not at all, so a refused request
has pushed nothing and the client can retry it as it was. A refusal says how long until the
bucket holds enough (the ``Retry-After`` of a 429). Buckets live in one gateway process: with
several gateways behind a load balancer, an integration's ceiling is the sum of theirs.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*", re.ASCII)
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_PER.update({"h": 3600, "hour": 3600})


@dataclass(frozen=True, slots=True)
class Rate:
    """Events per second (the stored unit) as given, e.g. ``500/s`` or ``30000/min``."""

    per_second: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        m = _RATE.fullmatch(text)
        if m is None:
            raise ValueError(f"a rate looks like 500/s, 30000/min or 100000/h, not {text!r}")
        per_second = float(m.group(1)) / _PER[m.group(2)]
        if per_second <= 0:
            raise ValueError(f"a rate must be positive, not {text!r}")
        return cls(per_second)

    def __str__(self) -> str:
        value = self.per_second
        return f"{value:g}/s" if value >= 1 else f"{value * 3600:g}/h"


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second from an injectable clock."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate, self.burst, self._clock = rate, burst, clock
        self.tokens = burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, n: int) -> float:
        """Take ``n`` tokens and return 0, or take nothing and return the seconds until ``n``
        are there (``inf`` if ``n`` exceeds the burst: that request can never pass)."""
        self._refill()
        if n <= self.tokens:
            self.tokens -= n
            return 0.0
        if n > self.burst:
            return math.inf
        return (n - self.tokens) / self.rate

    def reconfigure(self, rate: float, burst: float) -> None:
        """New limits after an integration was changed; tokens already earned stay (capped)."""
        self._refill()
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, burst)


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for a ``Retry-After`` header: never 0, which clients read as 'now'."""
    return max(1, math.ceil(wait))
