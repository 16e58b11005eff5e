"""The database's dossier merge and the pure ``fold`` agree on every column, for any split of
the events into batches, any order, repeats, and ties on time, status and rating."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.dossier_state import fold
from ioc.events import DossierEvent
from ioc.storage.writer import EventWriter
from ioc.storage_types import Consumed
from ioc.streams import DOSSIER

pytestmark = pytest.mark.integration

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
TIMES = [BASE + timedelta(hours=h) for h in (0, 0, 1, 5)]  # repeated on purpose: ties
RUN = itertools.count()


@st.composite
def dossier_histories(draw: st.DrawFn) -> tuple[list[DossierEvent], list[int]]:
    run = next(RUN)
    n = draw(st.integers(1, 12))
    events = [
        DossierEvent(
            event_id=f"r{run}-e{i}-{draw(st.sampled_from(['a', 'b']))}",
            event_time=draw(st.sampled_from(TIMES)),
            dossier_id=f"r{run}-d{draw(st.integers(0, 2))}",
            status=draw(st.integers(1, 10)),
            procedure_code=draw(st.sampled_from(["1.000001", "1.000002"])),
            agency_code=draw(st.sampled_from(["SO-01", "XA-001"])),
            channel=draw(st.sampled_from([None, 1, 2, 3])),
            received_at=draw(st.sampled_from([None, BASE - timedelta(days=1), BASE])),
            due_at=draw(st.sampled_from([None, BASE + timedelta(days=5)])),
            online_level=draw(st.sampled_from(["full", "partial", "none"])),
            fee_required=draw(st.booleans()),
            paid_online=draw(st.booleans()),
            e_result=draw(st.booleans()),
            rating=draw(st.sampled_from([None, "satisfied", "dissatisfied", "very_satisfied"])),
        )
        for i in range(n)
    ]
    repeats = draw(st.lists(st.sampled_from(events), max_size=4))
    stream = draw(st.permutations(events + repeats))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=3)))
    return stream, cuts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dossier_histories())
def test_stored_dossier_state_equals_the_pure_merge(
    database: str, history: tuple[list[DossierEvent], list[int]]
) -> None:
    stream, cuts = history
    bounds = [0, *cuts, len(stream)]
    batches = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    async def write() -> None:
        writer = EventWriter(database, DOSSIER, lambda: datetime.now(UTC))
        for batch in batches:
            await writer.write([Consumed(e, 0, i) for i, e in enumerate(batch)])
        await writer.close()

    asyncio.run(write())
    expected = {k: asdict(v) for k, v in fold(stream).items()}
    with psycopg.connect(database) as conn:
        cur = conn.execute("SELECT * FROM dossiers WHERE dossier_id = ANY(%s)", (list(expected),))
        cols = [c.name for c in cur.description or ()]
        stored = {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}
    assert stored.keys() == expected.keys()
    for dossier_id, state in expected.items():
        assert {k: stored[dossier_id][k] for k in state} == state
