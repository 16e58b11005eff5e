"""The incremental dossier book always equals counting every dossier from scratch."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import fields
from datetime import datetime, timedelta

from ioc.events import DossierEvent
from ioc.kpi.calendar import REPORTING_TZ, WorkCalendar, periods_at
from ioc.kpi.dossier_book import DossierBook
from ioc.kpi.dossier_kpis import DossierCounts, counts_by_agency
from ioc.kpi.dossier_rules import DossierFacts
from ioc.kpi.holidays import VN_PUBLIC_HOLIDAYS
from ioc.simulator import ProvinceSimulator

CAL = WorkCalendar(VN_PUBLIC_HOLIDAYS)
START = datetime(2026, 3, 20, 0, 0, tzinfo=REPORTING_TZ)  # crosses a month and a quarter end


def same(a: dict[str, DossierCounts], b: dict[str, DossierCounts]) -> bool:
    if a.keys() != b.keys():
        return False
    for agency in a:
        for f in fields(DossierCounts):
            x, y = getattr(a[agency], f.name), getattr(b[agency], f.name)
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-3):
                return False
    return True


def test_book_fed_hour_by_hour_equals_a_full_count_at_every_checkpoint() -> None:
    sim = ProvinceSimulator(
        seed=11, start=START, dossiers_per_day=120, services=0, security_events_per_minute=0
    )
    procedures = {p.code: p.max_days for p in sim.procedures}
    book = DossierBook(CAL, procedures.get, at_risk_working_days=2)
    history: dict[str, list[DossierEvent]] = defaultdict(list)
    now = START
    checks = 0
    for step in range(24 * 16):
        now += timedelta(hours=1, minutes=17 if step % 5 == 0 else 0)
        touched = set()
        for e in sim.advance(now):
            assert isinstance(e, DossierEvent)
            history[e.dossier_id].append(e)
            touched.add(e.dossier_id)
        book.upsert(DossierFacts.from_events(history[d]) for d in touched)
        live = book.counts(now)
        if step % 23 == 0 or now.astimezone(REPORTING_TZ).hour == 0:
            every = [DossierFacts.from_events(h) for h in history.values()]
            for name, period in periods_at(now).items():
                expected = counts_by_agency(every, period, CAL, procedures.get, 2)
                assert same(live[name], expected), (name, now)
            checks += 1
    assert checks > 20 and len(book) > 1000
    assert sum(c.overdue for c in live["year"].values()) > 0
    assert sum(c.at_risk for c in live["year"].values()) > 0


def test_evicting_dossiers_finished_before_the_year_leaves_the_year_unchanged() -> None:
    sim = ProvinceSimulator(
        seed=5, start=START, dossiers_per_day=80, services=0, security_events_per_minute=0
    )
    book = DossierBook(CAL)
    history: dict[str, list[DossierEvent]] = defaultdict(list)
    for e in sim.advance(START + timedelta(days=12)):
        assert isinstance(e, DossierEvent)
        history[e.dossier_id].append(e)
    now = START + timedelta(days=12)
    book.upsert(DossierFacts.from_events(h) for h in history.values())
    before = book.counts(now)
    month_start = periods_at(now)["month"].start
    assert book.evict_finished_before(month_start - timedelta(days=1)) > 0
    after = book.counts(now)
    for name in ("today", "month", "rolling_24h"):
        assert same(after[name], before[name]), name
