"""Garbage-collector settings for a long-running server process.

CPython's full (generation 2) collection walks every tracked object. In a gateway that has
imported aiohttp, aiokafka, psycopg and msgspec, that is tens of milliseconds each time, and
with 1,000-item requests it ran every half second: it was the whole p99 tail of
``bench/gateway.py`` (40–50 ms pauses that collected nothing). Freezing the objects that exist
once start-up is done moves them out of every later collection, and a larger generation-0
threshold makes the young collections rarer without making them longer.
"""

from __future__ import annotations

import gc

#: Allocations between young collections (CPython's default is 700), then how many young
#: collections per middle one and middle ones per full one.
SERVER_THRESHOLDS = (50_000, 20, 100)


def settle_after_startup(thresholds: tuple[int, int, int] = SERVER_THRESHOLDS) -> None:
    """Collect once, freeze what survived start-up (modules, app, pools), raise the thresholds.

    Call it when the process is listening and before it serves load; the frozen objects are
    never collected, which is what start-up objects of a server are anyway.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
