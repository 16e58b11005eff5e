"""The simulated province: deterministic, valid, realistic enough to drive every KPI and rule."""

from __future__ import annotations

import ipaddress
import random
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.catalogue import PROVINCE_CODE
from ioc.clock import ManualClock
from ioc.events import DossierEvent, SecurityEvent, UptimeEvent
from ioc.simulator import (
    INVALID_KINDS,
    ProvinceSimulator,
    SimEvent,
    invalid_record,
    invalid_records,
)
from ioc.simulator.invalid import kinds_for
from ioc.streams import BY_NAME
from ioc.validation import EventParser, Rejection

ICT = timezone(timedelta(hours=7))
MONDAY = datetime(2025, 3, 3, tzinfo=ICT)  # a Monday, 00:00 in Hà Nội
HISTORY_SEED = 11

# Which status may follow which: the national codes 1-10 as a dossier really moves.
NEXT: dict[int | None, set[int]] = {
    None: {1, 2, 3},
    1: {2, 3},
    2: {4},
    4: {5, 6, 7, 8, 9},
    5: {4},  # the citizen answered the supplement request
    6: {9},
    9: {10},
}


@pytest.fixture(scope="module")
def day() -> list[SimEvent]:
    """One default day of the reference province (dossiers, 30 services, SOC traffic)."""
    return ProvinceSimulator(seed=7, start=MONDAY).advance(MONDAY + timedelta(days=1))


@pytest.fixture(scope="module")
def dossier_histories() -> dict[str, list[DossierEvent]]:
    """Two weeks of arrivals followed long enough for nearly every dossier to finish."""
    sim = ProvinceSimulator(
        seed=HISTORY_SEED,
        start=MONDAY,
        dossiers_per_day=80,
        services=0,
        security_events_per_minute=0,
    )
    events = sim.advance(MONDAY + timedelta(days=75))
    histories: dict[str, list[DossierEvent]] = defaultdict(list)
    for e in events:
        assert isinstance(e, DossierEvent)
        histories[e.dossier_id].append(e)
    return {d: h for d, h in histories.items() if h[0].event_time < MONDAY + timedelta(days=14)}


@pytest.fixture(scope="module")
def week() -> dict[str, DossierEvent]:
    """The first event of each dossier submitted in a default week."""
    sim = ProvinceSimulator(seed=21, start=MONDAY, services=0, security_events_per_minute=0)
    first: dict[str, DossierEvent] = {}
    for e in sim.advance(MONDAY + timedelta(days=7)):
        assert isinstance(e, DossierEvent)
        first.setdefault(e.dossier_id, e)
    return first


def _run(sim: ProvinceSimulator, steps: list[timedelta]) -> list[SimEvent]:
    out: list[SimEvent] = []
    when = sim.now
    for step in steps:
        when += step
        out.extend(sim.advance(when))
    return out


def test_same_seed_gives_the_same_hour_in_one_call_or_in_3600_one_second_calls() -> None:
    whole = ProvinceSimulator(seed=5, start=MONDAY + timedelta(hours=9))
    chunked = ProvinceSimulator(seed=5, start=MONDAY + timedelta(hours=9))

    one_call = whole.advance(whole.now + timedelta(hours=1))
    many_calls = _run(chunked, [timedelta(seconds=1)] * 3600)

    assert len(one_call) > 1000
    assert one_call == many_calls


@settings(max_examples=8, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 30 * 60 * 1000), max_size=25),
    seed=st.integers(-(2**31), 2**31),
    two_level=st.booleans(),
)
def test_chunking_never_changes_the_events(cuts: list[int], seed: int, two_level: bool) -> None:
    start = MONDAY + timedelta(hours=8)
    end = start + timedelta(minutes=30)
    points = [start + timedelta(milliseconds=c) for c in sorted(cuts)] + [end]
    reference = ProvinceSimulator(seed=seed, start=start, two_level=two_level).advance(end)
    sim = ProvinceSimulator(seed=seed, start=start, two_level=two_level)

    assert [e for p in points for e in sim.advance(p)] == reference


def test_different_seeds_give_different_provinces() -> None:
    a = ProvinceSimulator(seed=1, start=MONDAY).advance(MONDAY + timedelta(hours=2))
    b = ProvinceSimulator(seed=2, start=MONDAY).advance(MONDAY + timedelta(hours=2))

    assert a != b


def test_each_window_holds_only_its_events_in_event_time_order() -> None:
    sim = ProvinceSimulator(seed=3, start=MONDAY)
    previous = sim.now
    for minutes in (1, 7, 0, 30, 120, 3):
        until = previous + timedelta(minutes=minutes)
        events = sim.advance(until)
        times = [e.event_time for e in events]
        assert times == sorted(times)
        assert all(previous < t <= until for t in times)
        previous = until


def test_every_event_is_valid_and_survives_a_json_round_trip(day: list[SimEvent]) -> None:
    ids = [e.event_id for e in day]
    assert len(set(ids)) == len(ids)
    for event_type in (DossierEvent, UptimeEvent, SecurityEvent):
        events = [e for e in day if isinstance(e, event_type)]
        payload = msgspec.json.encode(events)
        assert msgspec.json.decode(payload, type=list[event_type]) == events  # type: ignore[valid-type]
    clock = ManualClock(MONDAY + timedelta(days=1))
    parsers = {s.event_type: EventParser.for_stream(s, clock) for s in BY_NAME.values()}
    for event in day[::20]:  # the full ingest checks (time bounds, addresses) on a sample
        parsed = parsers[type(event)].parse(msgspec.json.encode(event))
        assert not isinstance(parsed, Rejection), parsed
        assert event.event_time.utcoffset() == timedelta(0)


def test_a_day_has_all_three_streams_in_realistic_volumes(day: list[SimEvent]) -> None:
    kinds = Counter(type(e).__name__ for e in day)

    assert 300 <= len({e.dossier_id for e in day if isinstance(e, DossierEvent)}) <= 900
    assert kinds["UptimeEvent"] >= 30 * 2880  # 30 services every 30 s, plus heartbeats
    assert 25_000 <= kinds["SecurityEvent"] <= 40_000


def test_online_share_over_a_week_is_between_17_and_30_percent(
    week: dict[str, DossierEvent],
) -> None:
    channel = {d: e.channel for d, e in week.items()}

    share = sum(c == 2 for c in channel.values()) / len(channel)
    assert 0.17 <= share <= 0.30
    assert 2_500 <= len(channel) <= 4_000  # ~460 a day
    postal = sum(c == 3 for c in channel.values()) / len(channel)
    assert 0.01 <= postal <= 0.05


def test_counter_submissions_arrive_in_office_hours_and_online_ones_at_any_time(
    week: dict[str, DossierEvent],
) -> None:
    first = week
    for e in first.values():
        local = e.event_time.astimezone(ICT)
        if e.channel != 2:
            assert local.weekday() < 6 and 7 <= local.hour < 17, local
    night = [e for e in first.values() if not 6 <= e.event_time.astimezone(ICT).hour < 22]
    assert night and all(e.channel == 2 for e in night)


def test_each_dossier_follows_a_plausible_lifecycle(
    dossier_histories: dict[str, list[DossierEvent]],
) -> None:
    for history in dossier_histories.values():
        first = history[0]
        status: int | None = None
        for e in history:
            assert e.status in NEXT.get(status, set()), [x.status for x in history]
            status = e.status
            assert (e.procedure_code, e.agency_code, e.channel) == (
                first.procedure_code,
                first.agency_code,
                first.channel,
            )
        times = [e.event_time for e in history]
        assert times == sorted(set(times))
        received = [e for e in history if e.status == 2]
        for e in history:
            if e.status in (1, 3):
                assert e.received_at is None and e.due_at is None
            else:
                assert e.received_at == received[0].event_time
                assert e.due_at is not None and e.due_at > e.received_at


def test_outcome_shares_match_a_real_one_stop_office(
    dossier_histories: dict[str, list[DossierEvent]],
) -> None:
    n = len(dossier_histories)
    statuses = {d: {e.status for e in h} for d, h in dossier_histories.items()}
    share = {s: sum(s in seen for seen in statuses.values()) / n for s in range(1, 11)}

    assert 0.005 <= share[3] <= 0.04  # not received
    assert 0.005 <= share[7] <= 0.04  # withdrawn
    assert 0.002 <= share[8] <= 0.025  # stopped
    assert 0.04 <= share[5] <= 0.13  # supplement requested
    assert share[10] >= 0.85
    finished = [h for h in dossier_histories.values() if h[-1].status in (9, 10)]
    nine = [next(e for e in h if e.status == 9) for h in finished]
    late = sum(e.due_at is not None and e.event_time > e.due_at for e in nine) / len(nine)
    assert 0.04 <= late <= 0.11
    ratings = Counter(h[-1].rating for h in finished)
    rated = len(finished) - ratings[None]
    assert 0.25 <= rated / len(finished) <= 0.35
    assert 0.005 <= ratings["dissatisfied"] / rated <= 0.07


def test_dossier_attributes_follow_the_procedure(
    dossier_histories: dict[str, list[DossierEvent]],
) -> None:
    sim = ProvinceSimulator(seed=HISTORY_SEED, start=MONDAY)
    procedures = {p.code: p for p in sim.procedures}
    online_fee = paid = 0
    for history in dossier_histories.values():
        last = history[-1]
        procedure = procedures[last.procedure_code]
        assert last.online_level == procedure.online_level
        assert last.fee_required == procedure.fee_required
        assert last.e_result_required == procedure.e_result_required
        if last.channel == 2:
            assert procedure.online_level != "none"
            if last.fee_amount and last.status in (9, 10):
                online_fee += 1
                paid += last.paid_online
        assert (
            sim.tree[last.agency_code].level
            == {
                "province": "department",
                "district": "district",
                "commune": "commune",
            }[procedure.level]
        )
    assert 0.3 <= paid / online_fee <= 0.7


def test_two_level_province_receives_district_procedures_at_communes() -> None:
    sim = ProvinceSimulator(
        seed=8, start=MONDAY, two_level=True, services=0, security_events_per_minute=0
    )
    levels = {p.code: p.level for p in sim.procedures}
    events = sim.advance(MONDAY + timedelta(days=3))

    assert sim.tree.is_two_level
    for e in events:
        assert isinstance(e, DossierEvent)
        agency = sim.tree[e.agency_code]
        assert agency.level != "district"
        if levels[e.procedure_code] == "district":
            assert agency.level == "commune"
            assert agency.parent_code == PROVINCE_CODE


def test_every_service_is_probed_every_interval_with_plausible_latency(
    day: list[SimEvent],
) -> None:
    probes = [e for e in day if isinstance(e, UptimeEvent) and e.kind == "probe"]
    per_service = Counter(e.service_id for e in probes)
    sim = ProvinceSimulator(seed=7, start=MONDAY)

    assert len(sim.service_ids) == 30 == len(set(sim.service_ids))
    assert "svc-dvc" in sim.service_ids
    assert set(per_service) == set(sim.service_ids)
    assert all(n == 2880 for n in per_service.values())
    up = [e.latency_ms for e in probes if e.status == "up" and e.latency_ms is not None]
    assert 50 <= statistics.median(up) <= 300
    assert all(e.http_status == 200 for e in probes if e.status == "up")
    assert all(e.tls_expires_at is not None for e in probes)


def test_outages_and_slow_spells_show_as_runs_of_probes(day: list[SimEvent]) -> None:
    runs: dict[tuple[str, str], list[int]] = defaultdict(list)
    current: dict[str, tuple[str, int]] = {}
    for e in day:
        if isinstance(e, UptimeEvent) and e.kind == "probe":
            status, length = current.get(e.service_id, ("", 0))
            if status != e.status and length:
                runs[(e.service_id, status)].append(length)
            current[e.service_id] = (e.status, length + 1 if status == e.status else 1)
    down = [n for (_, status), lengths in runs.items() if status == "down" for n in lengths]
    degraded = [n for (_, status), lengths in runs.items() if status == "degraded" for n in lengths]

    assert down and max(down) >= 4  # several minutes at 30 s
    assert degraded
    failures = [e for e in day if isinstance(e, UptimeEvent) and e.status == "down"]
    assert all(e.error for e in failures)
    assert {e.http_status for e in failures} & {503, None}
    slow = [e.latency_ms for e in day if isinstance(e, UptimeEvent) and e.status == "degraded"]
    assert statistics.median(x for x in slow if x is not None) > 1000


def test_some_certificates_expire_within_30_days() -> None:
    sim = ProvinceSimulator(seed=7, start=MONDAY, security_events_per_minute=0)
    probes = sim.advance(MONDAY + timedelta(minutes=1))
    expiry = {e.service_id: e.tls_expires_at for e in probes if isinstance(e, UptimeEvent)}
    soon = [s for s, t in expiry.items() if t is not None and t - MONDAY < timedelta(days=30)]

    assert 1 <= len(soon) < len(sim.service_ids)


def test_probe_agents_send_heartbeats(day: list[SimEvent]) -> None:
    beats = [e for e in day if isinstance(e, UptimeEvent) and e.kind == "heartbeat"]

    assert {e.service_id for e in beats} == {"probe-01", "probe-02"}
    assert len(beats) >= 2 * 200  # about every 5 minutes each


def test_security_severity_mix_and_sources_look_like_a_provincial_soc(
    day: list[SimEvent],
) -> None:
    events = [e for e in day if isinstance(e, SecurityEvent)]
    background = [e for e in events if "-b" not in e.event_id]
    severity = Counter(e.severity for e in background)
    n = len(background)

    assert abs(severity["info"] / n - 0.50) < 0.03
    assert abs(severity["low"] / n - 0.25) < 0.03
    assert abs(severity["medium"] / n - 0.15) < 0.03
    assert abs(severity["high"] / n - 0.08) < 0.02
    assert abs(severity["critical"] / n - 0.02) < 0.01
    assert {e.source for e in events} >= {"soc-tinh", "wazuh-01", "waf-cong-dvc", "ids-core"}
    wazuh = [e for e in events if e.source == "wazuh-01"]
    assert all(e.source_severity is not None and e.source_severity.isdigit() for e in wazuh)
    tree = ProvinceSimulator(seed=7, start=MONDAY).tree
    for e in events:
        assert e.agency_code in tree
        for address in (e.src_ip, e.dst_ip):
            assert address is not None
            ipaddress.ip_address(address)  # raises on an invalid address


def test_a_simulated_day_contains_each_kind_of_attack_burst(day: list[SimEvent]) -> None:
    events = [e for e in day if isinstance(e, SecurityEvent)]
    by_pair: dict[tuple[str | None, str | None], list[datetime]] = defaultdict(list)
    scanned: dict[str | None, set[str | None]] = defaultdict(set)
    ddos: list[datetime] = []
    for e in events:
        if e.category == "brute_force":
            by_pair[(e.src_ip, e.asset_id)].append(e.event_time)
        elif e.category == "intrusion":
            scanned[e.src_ip].add(e.asset_id)
        elif e.category == "ddos" and e.asset_id == "srv-dvc":
            ddos.append(e.event_time)

    assert any(
        len(ts) >= 30 and max(ts) - min(ts) <= timedelta(minutes=10) for ts in by_pair.values()
    )
    assert max(len(assets) for assets in scanned.values()) >= 20
    ddos.sort()
    assert any(ddos[i + 199] - ddos[i] <= timedelta(minutes=6) for i in range(len(ddos) - 199))
    defaced = [e for e in events if e.category == "web_defacement" and e.severity == "critical"]
    assert any(e.asset_id and e.asset_id.startswith("srv-portal-") for e in defaced)


def test_advance_refuses_to_go_back_in_time_or_take_a_naive_time() -> None:
    sim = ProvinceSimulator(seed=1, start=MONDAY)
    sim.advance(MONDAY + timedelta(minutes=5))

    assert sim.advance(MONDAY + timedelta(minutes=5)) == []
    with pytest.raises(ValueError, match="back in time"):
        sim.advance(MONDAY + timedelta(minutes=4))
    with pytest.raises(ValueError, match="timezone-aware"):
        sim.advance(datetime(2025, 3, 3, 12, 0))  # noqa: DTZ001 - the point of the test


def test_a_quiet_province_can_be_simulated() -> None:
    sim = ProvinceSimulator(
        seed=1, start=MONDAY, dossiers_per_day=0, services=0, security_events_per_minute=0
    )

    assert sim.advance(MONDAY + timedelta(days=2)) == []


def _rejected(stream: str, payload: bytes) -> str:
    """The dead-letter reason the ingest path gives for ``payload``."""
    clock = ManualClock(datetime(2026, 1, 2, tzinfo=UTC))  # after every generated time
    result = EventParser.for_stream(BY_NAME[stream], clock).parse(payload)
    assert isinstance(result, Rejection), payload
    return result.reason


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), stream=st.sampled_from(["dossier", "uptime", "security"]))
def test_invalid_records_are_always_rejected(seed: int, stream: str) -> None:
    payload = invalid_records(random.Random(seed), stream)
    event_type = BY_NAME[stream].event_type
    try:
        event = msgspec.json.decode(payload, type=event_type)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    else:  # only a bad address passes decoding, and the address check catches it
        assert isinstance(event, SecurityEvent)
        with pytest.raises(ValueError):
            for address in (event.src_ip, event.dst_ip):
                ipaddress.ip_address(address or "")
    assert not _rejected(stream, payload).startswith("implausible_time")


@pytest.mark.parametrize("stream", ["dossier", "uptime", "security"])
@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_each_kind_of_mistake_is_caught_for_each_stream(stream: str, kind: str) -> None:
    if kind not in kinds_for(stream):
        with pytest.raises(ValueError, match="does not apply"):
            invalid_record(random.Random(0), stream, kind)
        return
    expected = {
        "malformed_json": "malformed",
        "naive_timestamp": "invalid",
        "bad_ip": "invalid",
    }.get(kind, "invalid")
    for seed in range(20):
        reason = _rejected(stream, invalid_record(random.Random(seed), stream, kind))
        assert reason.startswith(expected), reason


def test_invalid_records_cover_every_kind_and_refuse_unknown_streams() -> None:
    rng = random.Random(1)
    security = {invalid_records(rng, "security") for _ in range(200)}

    assert len(security) > 100
    with pytest.raises(ValueError, match="unknown stream 'weather'"):
        invalid_records(rng, "weather")
