"""A simulated province: dossier, uptime and security events for demos, tests and benchmarks.

Determinism is the point. Every random process (dossier arrivals, each probed service, each
probe agent, background security events, each day's attack bursts) draws from its own seeded
``random.Random`` in its own order, and whatever a draw decides for the future (the rest of a
dossier's lifecycle, the tail of a DDoS) waits in a heap. So :meth:`ProvinceSimulator.advance`
returns the same events for the same seed however the time is chunked: one call to +1 h or
3,600 calls of +1 s. Time is integer milliseconds inside, timezone-aware UTC outside.

The shapes follow the reference province in DESIGN.md: ~460 dossiers a day (166,049 in 2020)
in office hours of Asia/Ho_Chi_Minh, ~20 % submitted online, ~5-10 % finished late; about
thirty e-government services probed every 30 s; SOC tools at ~20 events a minute with a day's
worth of brute force, port scans, a DDoS and a defacement to light up every alert rule.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from statistics import NormalDist
from typing import Final, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from ioc.catalogue import Agency, AgencyTree, Procedure, build_procedures, build_province
from ioc.events import (
    Channel,
    DossierEvent,
    DossierStatus,
    Rating,
    SecurityCategory,
    SecurityEvent,
    Severity,
    UptimeEvent,
)

SimEvent = DossierEvent | UptimeEvent | SecurityEvent
T = TypeVar("T")
_Item = tuple[int, int, int, SimEvent]  # (ms, rank, seq, event): a total, stable order

VN_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
SECOND: Final = 1_000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR

# Ranks order events that share a millisecond; they only need to be distinct per process.
_RANK_DOSSIER: Final = 0
_RANK_SERVICE: Final = 1  # + service index
_RANK_AGENT: Final = 100_000  # + agent index
_RANK_SECURITY: Final = 200_000
_RANK_BURST: Final = 200_001


def to_ms(when: datetime) -> int:
    """Milliseconds since the epoch, floored; refuses naive datetimes."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"timezone-aware datetime required, got naive {when!r}")
    return (when - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class ProvinceSimulator:
    """Deterministic event source for one province; see the module docstring."""

    def __init__(
        self,
        *,
        seed: int,
        start: datetime,
        two_level: bool = False,
        dossiers_per_day: float = 460.0,
        services: int = 30,
        probe_interval: timedelta = timedelta(seconds=30),
        security_events_per_minute: float = 20.0,
    ) -> None:
        if dossiers_per_day < 0 or services < 0 or security_events_per_minute < 0:
            raise ValueError("rates and counts must be >= 0")
        if probe_interval < timedelta(seconds=1):
            raise ValueError(f"probe_interval must be at least 1 s, got {probe_interval}")
        start_ms = to_ms(start)  # refuses a naive start before anything else uses it
        self.seed = seed
        self.start = start.astimezone(UTC)
        self._until_ms = start_ms
        self.tree: AgencyTree = build_province(seed, two_level=two_level)
        self.procedures: list[Procedure] = build_procedures(seed)
        self.services: list[Service] = build_services(self.tree, services)
        self.service_ids: list[str] = [s.service_id for s in self.services]
        calendar = _Calendar(start)
        self._dossiers = _DossierProcess(
            seed, start_ms, calendar, self.tree, self.procedures, dossiers_per_day
        )
        interval_ms = probe_interval // timedelta(milliseconds=1)
        self._probes = [
            _ServiceProbe(seed, start_ms, i, svc, interval_ms)
            for i, svc in enumerate(self.services)
        ]
        agent_ids = sorted({svc.probe_id for svc in self.services})
        self._agents = [_ProbeAgent(seed, start_ms, i, a) for i, a in enumerate(agent_ids)]
        self._security = _SecurityProcess(
            seed, start_ms, self.tree, self.services, security_events_per_minute
        )

    @property
    def now(self) -> datetime:
        """The end of the last window returned by :meth:`advance`."""
        return from_ms(self._until_ms)

    def advance(self, until: datetime) -> list[SimEvent]:
        """Every event with ``now < event_time <= until``, in event-time order."""
        until_ms = to_ms(until)
        if until_ms < self._until_ms:
            raise ValueError(
                f"advance() cannot go back in time: {until.isoformat()} is before "
                f"{self.now.isoformat()}"
            )
        out: list[_Item] = []
        self._dossiers.emit(until_ms, out)
        for probe in self._probes:
            probe.emit(until_ms, out)
        for agent in self._agents:
            agent.emit(until_ms, out)
        self._security.emit(until_ms, out)
        self._until_ms = until_ms
        out.sort()  # each process's output is already sorted: Timsort merges the runs
        return [item[3] for item in out]


# -- calendar -----------------------------------------------------------------------------

# Reception hours of a one-stop office (bộ phận một cửa), minutes of the local day; most
# provinces also receive on Saturday mornings.
_OFFICE: Final[dict[int, tuple[tuple[int, int], ...]]] = {
    **{d: ((450, 690), (810, 1020)) for d in range(5)},
    5: ((450, 690),),
    6: (),
}


_OFFICE_SLOTS: Final = tuple(
    any(a <= s * 30 < b for a, b in _OFFICE[d]) for d in range(7) for s in range(48)
)  # every window starts and ends on a half hour


class _Calendar:
    """Local-time arithmetic in integer ms for Asia/Ho_Chi_Minh (UTC+7, no DST since 1975)."""

    def __init__(self, start: datetime) -> None:
        offset = start.astimezone(VN_TZ).utcoffset()
        assert offset is not None
        self.offset = offset // timedelta(milliseconds=1)

    def weekday(self, ms: int) -> int:
        return ((ms + self.offset) // DAY + 3) % 7  # 1970-01-01 was a Thursday

    def slot(self, ms: int) -> int:
        """The local half-hour of the week, Monday 00:00 being 0."""
        local = ms + self.offset
        return ((local // DAY + 3) % 7) * 48 + local % DAY // (30 * MINUTE)

    def in_office(self, ms: int) -> bool:
        return _OFFICE_SLOTS[self.slot(ms)]

    def next_office(self, ms: int) -> int:
        """``ms`` if the office is open then, else the next opening time."""
        day_start = (ms + self.offset) // DAY * DAY - self.offset
        for day in range(8):
            base = day_start + day * DAY
            for a, b in _OFFICE[self.weekday(base)]:
                if ms < base + b * MINUTE:
                    return max(ms, base + a * MINUTE)
        raise AssertionError("an office opens every week")

    def add_working_days(self, ms: int, days: int) -> int:
        """``days`` working days later at the same local time; Saturdays and Sundays skipped."""
        while days > 0:
            ms += DAY
            if self.weekday(ms) < 5:
                days -= 1
        return ms


# -- dossiers -----------------------------------------------------------------------------

_LEVEL_MIX: Final = (("province", 0.35), ("district", 0.30), ("commune", 0.35))
_ONLINE_IN_OFFICE: Final = 0.14  # off-hours arrivals are all online, which adds ~7 points
_POSTAL: Final = 0.03
_NULL_CHANNEL: Final = 0.03  # of direct ones: older one-stop systems leave it empty
_NOT_RECEIVED: Final = 0.02
_WITHDRAWN: Final = 0.02
_STOPPED: Final = 0.01
_LATE: Final = 0.05
_SUPPLEMENT: Final = 0.08
_SECOND_SUPPLEMENT: Final = 0.12
_NEVER_ANSWERED: Final = 0.10
_FINANCIAL: Final = 0.6  # of fee-bearing dossiers with a non-zero fee
_RATED: Final = 0.30
# Plain-int status sets: enum member look-ups cost more than the rest of an event.
_RECEIVED: Final = int(DossierStatus.RECEIVED)
_UNRECEIVED: Final = frozenset({int(DossierStatus.NEW), int(DossierStatus.NOT_RECEIVED)})
_FINISHED: Final = frozenset({int(DossierStatus.PROCESSED), int(DossierStatus.RETURNED)})
_PAYING: Final = frozenset({int(DossierStatus.FINANCIAL_OBLIGATION), int(DossierStatus.PROCESSED)})
_RATINGS: Final[tuple[tuple[Rating, float], ...]] = (
    ("very_satisfied", 0.55),
    ("satisfied", 0.42),
    ("dissatisfied", 0.03),
)


def _arrival_weight(weekday: int, minute: int) -> float:
    """Relative submission rate in a local half-hour: counters by day, the portal all day."""
    if any(a <= minute < b for a, b in _OFFICE[weekday]):
        if weekday == 5:
            return 0.4
        return 1.3 if 480 <= minute < 630 else 1.0
    return 0.04 if 360 <= minute < 1380 else 0.01


class _Weighted(Generic[T]):
    """Draw from fixed weights with one random() and a bisect (faster than random.choices)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items:
            raise ValueError("nothing to draw from")
        self.items = list(items)
        self._cum = list(accumulate(weights))
        self._total = self._cum[-1]

    def draw(self, rng: random.Random) -> T:
        cum = self._cum
        return self.items[bisect.bisect_right(cum, rng.random() * self._total, 0, len(cum) - 1)]


class _DossierProcess:
    """Poisson arrivals by thinning, each dossier's whole lifecycle drawn when it arrives."""

    def __init__(
        self,
        seed: int,
        start_ms: int,
        calendar: _Calendar,
        tree: AgencyTree,
        procedures: list[Procedure],
        per_day: float,
    ) -> None:
        self.seed = seed
        self.cal = calendar
        shape = random.Random(f"sim:{seed}:shape")
        # Per-half-hour rates for a week, normalised so the weekly mean is per_day a day.
        weights = [_arrival_weight(d, s * 30) for d in range(7) for s in range(48)]
        scale = 7 * per_day / (sum(weights) * 30 * MINUTE) if per_day > 0 else 0.0
        self.rates = [w * scale for w in weights]
        self.max_rate = max(self.rates)
        self.rng = random.Random(f"sim:{seed}:dossier-arrivals")
        self.count = 0
        self.heap: list[tuple[int, int, DossierEvent]] = []
        self.seq = 0
        self.agencies = {
            level: _Weighted(pool, [shape.lognormvariate(0, 0.6) for _ in pool])
            for level, pool in _agency_pools(tree).items()
        }
        popularity = {p.code: shape.paretovariate(1.2) for p in procedures}
        self.procedures: dict[str, _Weighted[Procedure]] = {}
        self.online_procedures: dict[str, _Weighted[Procedure]] = {}
        eligible_all = [p for p in procedures if p.online_level != "none"]
        for level, _ in _LEVEL_MIX:
            pool = [p for p in procedures if p.level == level] or procedures
            eligible = [p for p in pool if p.online_level != "none"] or eligible_all
            if pool:
                self.procedures[level] = _Weighted(pool, [popularity[p.code] for p in pool])
            if eligible:
                self.online_procedures[level] = _Weighted(
                    eligible, [popularity[p.code] for p in eligible]
                )
        self.levels = _Weighted([lv for lv, _ in _LEVEL_MIX], [w for _, w in _LEVEL_MIX])
        self.next_arrival = float(start_ms)
        self._draw_next_arrival()

    def _draw_next_arrival(self) -> None:
        if self.max_rate <= 0 or not self.procedures:
            self.next_arrival = math.inf
            return
        rng, t, cal = self.rng, self.next_arrival, self.cal
        while True:
            t += rng.expovariate(self.max_rate)
            if rng.random() * self.max_rate < self.rates[cal.slot(int(t))]:
                self.next_arrival = t
                return

    def emit(self, until_ms: int, out: list[_Item]) -> None:
        while self.next_arrival <= until_ms:
            ms = int(self.next_arrival)
            self._arrive(ms, random.Random(self.rng.getrandbits(64)))
            self._draw_next_arrival()
        heap = self.heap
        while heap and heap[0][0] <= until_ms:
            ms, seq, event = heapq.heappop(heap)
            out.append((ms, _RANK_DOSSIER, seq, event))

    def _arrive(self, t0: int, r: random.Random) -> None:
        """Draw one dossier's lifecycle and schedule its events."""
        n = self.count
        self.count += 1
        cal = self.cal
        level = self.levels.draw(r)
        channel: int | None
        if not cal.in_office(t0) or r.random() < _ONLINE_IN_OFFICE:
            channel = Channel.ONLINE
        elif r.random() < _POSTAL / (1 - _ONLINE_IN_OFFICE):
            channel = Channel.POSTAL
        else:
            channel = None if r.random() < _NULL_CHANNEL else Channel.DIRECT
        online = channel == Channel.ONLINE
        procedure = (self.online_procedures if online else self.procedures)[level].draw(r)
        agency = self.agencies[procedure.level].draw(r)
        fee_amount: int | None = None
        if procedure.fee_required:
            fee_amount = 0 if r.random() < 0.05 else int(round(r.lognormvariate(11.5, 0.8), -3))
        pays_online = bool(fee_amount) and r.random() < (0.5 if online else 0.05)
        e_result = r.random() < (0.9 if procedure.e_result_required else 0.15)

        steps: list[tuple[int, int]] = []  # (ms, status)
        if online:
            if r.random() < 0.7:
                steps.append((t0, DossierStatus.NEW))
            t_recv = cal.next_office(t0 + int(r.expovariate(1 / (2 * HOUR))))
            t_recv += r.randrange(20 * MINUTE)
        else:
            t_recv = t0
        received = r.random() >= _NOT_RECEIVED
        due = cal.add_working_days(t_recv, max(1, procedure.max_days)) if received else None
        rating: Rating | None = None
        if due is None:
            steps.append((t_recv, DossierStatus.NOT_RECEIVED))
        else:
            steps.append((t_recv, DossierStatus.RECEIVED))
            quick_return = online and procedure.online_level == "full" and e_result
            rating = self._process(r, steps, t_recv, due, bool(fee_amount), quick_return)
        self._schedule(
            n, steps, procedure, agency, channel, fee_amount, pays_online, e_result, rating, due
        )

    def _process(
        self,
        r: random.Random,
        steps: list[tuple[int, int]],
        t_recv: int,
        due: int,
        pays_fee: bool,
        quick_return: bool,
    ) -> Rating | None:
        """Append the steps after reception; return the citizen's rating, if any.

        Processing time is drawn against the due time (most on time, a few late); waits for
        the citizen's supplements come on top of it, as the national on-time rule counts them.
        """
        cal = self.cal
        t = t_recv + r.randrange(2 * MINUTE, 3 * HOUR)
        steps.append((t, DossierStatus.PROCESSING))
        allowed = max(HOUR, due - t)
        late = r.random() < _LATE
        busy = int(
            allowed * r.uniform(0.1, 0.95) if not late else allowed + r.uniform(0.5, 10) * DAY
        )
        u = r.random()
        ending = (
            DossierStatus.WITHDRAWN
            if u < _WITHDRAWN
            else DossierStatus.STOPPED
            if u < _WITHDRAWN + _STOPPED
            else DossierStatus.PROCESSED
        )
        if ending != DossierStatus.PROCESSED:
            busy = int(busy * r.uniform(0.1, 0.9))
        waited = 0
        supplements = 0
        if r.random() < _SUPPLEMENT:
            supplements = 2 if r.random() < _SECOND_SUPPLEMENT else 1
        for frac in sorted(r.uniform(0.1, 0.8) for _ in range(supplements)):
            steps.append((t + int(busy * frac) + waited, DossierStatus.SUPPLEMENT_REQUESTED))
            if r.random() < _NEVER_ANSWERED:
                return None  # the dossier waits on the citizen for good
            waited += int(r.uniform(0.5, 12) * DAY)
            steps.append((t + int(busy * frac) + waited, DossierStatus.PROCESSING))
        end = t + busy + waited
        if ending != DossierStatus.PROCESSED:
            steps.append((end, ending))
            return None
        if pays_fee and r.random() < _FINANCIAL:
            at = t + int(busy * r.uniform(0.82, 0.97)) + waited
            steps.append((at, DossierStatus.FINANCIAL_OBLIGATION))
        snapped = cal.next_office(end) + r.randrange(30 * MINUTE)
        if late or snapped - waited <= due:  # office hours, unless that would make it late
            end = snapped
        steps.append((end, DossierStatus.PROCESSED))
        rating = _draw_rating(r)
        if r.random() < 0.97:  # a few results are never marked as handed over
            if quick_return:  # an electronic result goes out at once
                back = end + r.randrange(MINUTE, 2 * HOUR)
            else:
                back = cal.next_office(end + int(r.uniform(0, 3) * DAY))
                back += r.randrange(MINUTE, 30 * MINUTE)
            steps.append((back, DossierStatus.RETURNED))
        return rating

    def _schedule(
        self,
        n: int,
        steps: list[tuple[int, int]],
        procedure: Procedure,
        agency: Agency,
        channel: int | None,
        fee_amount: int | None,
        pays_online: bool,
        e_result: bool,
        rating: Rating | None,
        due: int | None,
    ) -> None:
        """Turn (time, status) steps into events that each repeat the dossier's attributes."""
        times: list[int] = []
        for ms, _ in steps:  # strictly increasing: one order for every consumer
            times.append(max(ms, times[-1] + SECOND) if times else ms)
        statuses = [int(status) for _, status in steps]
        received_at = next(
            (from_ms(ms) for ms, st in zip(times, statuses, strict=True) if st == _RECEIVED),
            None,
        )
        due_at = from_ms(due) if due is not None else None
        dossier_id = f"HS-{self.seed}-{n:07d}"
        source = "cong-dvc" if channel == Channel.ONLINE else "mot-cua"
        channel = None if channel is None else int(channel)
        code, agency_code, online_level = procedure.code, agency.code, procedure.online_level
        fee_required, e_result_required = procedure.fee_required, procedure.e_result_required
        paid = False
        last = len(steps) - 1
        heap = self.heap
        for k, (ms, status) in enumerate(zip(times, statuses, strict=True)):
            known = status not in _UNRECEIVED
            finished = status in _FINISHED
            paid = paid or (pays_online and status in _PAYING)
            event = DossierEvent(
                event_id=f"dos-{self.seed}-{n}-{k}",
                event_time=from_ms(ms),
                dossier_id=dossier_id,
                status=status,
                procedure_code=code,
                agency_code=agency_code,
                channel=channel,
                received_at=received_at if known else None,
                due_at=due_at if known else None,
                online_level=online_level,
                fee_required=fee_required,
                fee_amount=fee_amount,
                paid_online=paid,
                e_result=e_result and finished,
                e_result_required=e_result_required,
                rating=rating if finished and k == last else None,
                source=source,
            )
            heapq.heappush(heap, (ms, self.seq, event))
            self.seq += 1


def _draw_rating(r: random.Random) -> Rating | None:
    if r.random() >= _RATED:
        return None
    u = r.random()
    for rating, share in _RATINGS:
        u -= share
        if u < 0:
            return rating
    return _RATINGS[-1][0]


def _agency_pools(tree: AgencyTree) -> dict[str, list[Agency]]:
    """Which agencies receive each procedure level; after 2025 communes take district work."""
    root = [tree.root]
    departments = list(tree.by_level("department"))
    districts = list(tree.by_level("district"))
    communes = list(tree.by_level("commune"))
    return {
        "province": departments or root,
        "district": districts or communes or root,
        "commune": communes or districts or root,
    }


# -- services and uptime probes -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Service:
    """An e-government system the province probes, and the server behind it."""

    service_id: str
    name: str
    agency_code: str
    url: str
    asset_id: str
    private_ip: str
    public_ip: str
    probe_id: str


CORE_SERVICES: Final = (
    ("dvc", "Cổng dịch vụ công tỉnh", "dichvucong"),
    ("motcua", "Hệ thống thông tin giải quyết thủ tục hành chính (một cửa điện tử)", "motcua"),
    ("qlvb", "Hệ thống quản lý văn bản và điều hành", "qlvb"),
    ("mail", "Thư điện tử công vụ", "mail"),
    ("portal", "Cổng thông tin điện tử tỉnh", "www"),
    ("lgsp", "Nền tảng tích hợp, chia sẻ dữ liệu (LGSP)", "lgsp"),
    ("sso", "Hệ thống xác thực tập trung", "sso"),
    ("ioc", "Trung tâm giám sát, điều hành thông minh", "ioc"),
    ("thanhtoan", "Nền tảng thanh toán trực tuyến", "thanhtoan"),
    ("hop", "Hệ thống hội nghị truyền hình trực tuyến", "hop"),
    ("baocao", "Hệ thống thông tin báo cáo", "baocao"),
    ("csdl", "Kho dữ liệu dùng chung", "data"),
)
DOMAIN: Final = "tinh.gov.vn"
PROBE_AGENTS: Final = ("probe-01", "probe-02")


def build_services(tree: AgencyTree, count: int) -> list[Service]:
    """The province-wide systems first, then agency portals (departments, then districts)."""
    owner = "SO-11" if "SO-11" in tree else tree.root.code  # Sở Thông tin và Truyền thông
    specs: list[tuple[str, str, str, str]] = [
        (f"svc-{key}", name, owner, f"https://{host}.{DOMAIN}") for key, name, host in CORE_SERVICES
    ]
    for agency in (
        *tree.by_level("department"),
        *tree.by_level("district"),
        *tree.by_level("commune"),
    ):
        code = agency.code.lower()
        specs.append(
            (
                f"svc-portal-{code}",
                f"Trang thông tin điện tử {agency.name}",
                agency.code,
                f"https://{code}.{DOMAIN}",
            )
        )
    while len(specs) < count:
        i = len(specs) + 1
        specs.append(
            (f"svc-app-{i:03d}", f"Ứng dụng nội bộ số {i}", owner, f"https://app{i}.{DOMAIN}")
        )
    return [
        Service(
            service_id=sid,
            name=name,
            agency_code=agency_code,
            url=url,
            asset_id="srv-" + sid.removeprefix("svc-"),
            private_ip=f"10.10.{i // 250}.{i % 250 + 2}",
            public_ip=f"113.160.{200 + i // 250}.{i % 250 + 2}",
            probe_id=PROBE_AGENTS[i % len(PROBE_AGENTS)],
        )
        for i, (sid, name, agency_code, url) in enumerate(specs[:count])
    ]


_UpState = Literal["up", "degraded", "down"]
# Standard normal quantiles: a table look-up is 5x cheaper than random.lognormvariate, and
# latency shapes need no more resolution than this.
_NORMAL_SIZE: Final = 4096
_NORMAL: Final = tuple(NormalDist().inv_cdf((i + 0.5) / _NORMAL_SIZE) for i in range(_NORMAL_SIZE))
_DEGRADED_LATENCY: Final = math.log(2500)
_ERROR_LATENCY: Final = math.log(40)
_DOWN_MODES: Final[tuple[tuple[int | None, str], ...]] = (
    (503, "HTTP 503 Service Unavailable"),
    (None, "timeout after 10 s"),
    (None, "connection refused"),
    (502, "HTTP 502 Bad Gateway"),
)


class _ServiceProbe:
    """One service's probe results: long up runs, slow spells, outages of a few minutes."""

    def __init__(self, seed: int, start_ms: int, index: int, svc: Service, interval: int) -> None:
        self.seed = seed
        self.svc = svc
        self.rank = _RANK_SERVICE + index
        self.rng = r = random.Random(f"sim:{seed}:uptime:{svc.service_id}")
        self.interval = interval
        self.interval_td = timedelta(milliseconds=interval)
        self.nominal = start_ms + r.randint(1, interval)  # stagger
        self.nominal_at = from_ms(self.nominal)
        self.count = 0
        self.flaky = r.uniform(0.3, 3.0)  # some systems are simply less reliable
        self.base_latency = math.log(r.uniform(50, 180))
        self.state: _UpState = "up"
        self.state_until = start_ms + self._up_duration()
        self.down_mode: tuple[int | None, str] = _DOWN_MODES[0]
        days = r.uniform(3, 29) if r.random() < 0.2 else r.uniform(40, 365)
        self.tls_ms = start_ms + int(days * DAY) // SECOND * SECOND
        self.tls_at = from_ms(self.tls_ms)
        self.renew_before = self._renew_margin()

    def _up_duration(self) -> int:
        return int(self.rng.expovariate(self.flaky / (3 * DAY))) + MINUTE

    def _renew_margin(self) -> int:
        # Most certificates renew 10-25 days ahead; some are left to the last days.
        r = self.rng
        return int((r.uniform(10, 25) if r.random() < 0.8 else r.uniform(0.5, 5)) * DAY)

    def _next_state(self) -> None:
        r = self.rng
        if self.state == "up":
            if r.random() < 0.65:
                self.state = "degraded"
                self.state_until += int(r.uniform(5, 45) * MINUTE)
            else:
                self.state = "down"
                self.down_mode = _DOWN_MODES[r.randrange(len(_DOWN_MODES))]
                self.state_until += int(r.lognormvariate(math.log(6), 0.6) * MINUTE)
        elif self.state == "degraded" and r.random() < 0.2:
            self.state = "down"
            self.down_mode = _DOWN_MODES[r.randrange(len(_DOWN_MODES))]
            self.state_until += int(r.lognormvariate(math.log(6), 0.6) * MINUTE)
        else:
            self.state = "up"
            self.state_until += self._up_duration()

    def emit(self, until_ms: int, out: list[_Item]) -> None:
        r, svc, seed, z = self.rng, self.svc, self.seed, _NORMAL
        while self.nominal <= until_ms:
            t = self.nominal
            when = self.nominal_at
            self.nominal += self.interval
            self.nominal_at = when + self.interval_td
            while t >= self.state_until:
                self._next_state()
            if t >= self.tls_ms - self.renew_before:
                self.tls_ms = t + 90 * DAY  # ACME-style 90-day certificates
                self.tls_ms -= self.tls_ms % SECOND
                self.tls_at = from_ms(self.tls_ms)
                self.renew_before = self._renew_margin()
            state = self.state
            http: int | None = 200
            error: str | None = None
            normal = z[int(r.random() * _NORMAL_SIZE)]
            latency: float | None
            if state == "up":
                latency = math.exp(self.base_latency + 0.35 * normal)
            elif state == "degraded":
                latency = math.exp(_DEGRADED_LATENCY + 0.5 * normal)
            else:
                http, error = self.down_mode
                latency = None if http is None else math.exp(_ERROR_LATENCY + 0.5 * normal)
            event = UptimeEvent(
                event_id=f"up-{seed}-{svc.service_id}-{self.count}",
                event_time=when,
                service_id=svc.service_id,
                status=state,
                probe_id=svc.probe_id,
                latency_ms=None if latency is None else int(latency * 10 + 0.5) / 10,
                http_status=http,
                tls_expires_at=self.tls_at,
                error=error,
            )
            out.append((t, self.rank, self.count, event))
            self.count += 1


class _ProbeAgent:
    """Heartbeats of a probe agent every ~5 min, with rare silent spells to be noticed."""

    def __init__(self, seed: int, start_ms: int, index: int, agent_id: str) -> None:
        self.seed = seed
        self.agent_id = agent_id
        self.rank = _RANK_AGENT + index
        self.rng = random.Random(f"sim:{seed}:agent:{agent_id}")
        self.next = start_ms + self.rng.randint(1, 5 * MINUTE)
        self.count = 0

    def emit(self, until_ms: int, out: list[_Item]) -> None:
        r = self.rng
        while self.next <= until_ms:
            t = self.next
            event = UptimeEvent(
                event_id=f"up-{self.seed}-{self.agent_id}-{self.count}",
                event_time=from_ms(t),
                service_id=self.agent_id,
                status="up",
                kind="heartbeat",
                probe_id=self.agent_id,
            )
            out.append((t, self.rank, self.count, event))
            self.count += 1
            gap = 5 * MINUTE + r.randrange(-5 * SECOND, 5 * SECOND)
            if r.random() < 1 / 600:  # about once in two days
                gap += int(r.uniform(15, 60) * MINUTE)
            self.next = t + gap


# -- security -----------------------------------------------------------------------------

_SEVERITY_MIX: Final[tuple[tuple[Severity, float], ...]] = (
    ("info", 50),
    ("low", 25),
    ("medium", 15),
    ("high", 8),
    ("critical", 2),
)
_CATEGORY_BY_SEVERITY: Final[dict[Severity, tuple[tuple[SecurityCategory, float], ...]]] = {
    "info": (("policy", 40), ("intrusion", 20), ("other", 20), ("vulnerability", 10),
             ("brute_force", 10)),
    "low": (("intrusion", 30), ("brute_force", 25), ("policy", 20), ("vulnerability", 15),
            ("phishing", 10)),
    "medium": (("intrusion", 30), ("malware", 20), ("vulnerability", 20), ("phishing", 15),
               ("brute_force", 15)),
    "high": (("intrusion", 30), ("malware", 30), ("data_leak", 10), ("ddos", 10),
             ("phishing", 10), ("vulnerability", 10)),
    "critical": (("malware", 40), ("intrusion", 25), ("data_leak", 20), ("ddos", 10),
                 ("web_defacement", 5)),
}  # fmt: skip
_TOOLS_BY_CATEGORY: Final[dict[SecurityCategory, tuple[str, ...]]] = {
    "malware": ("wazuh-01", "soc-tinh"),
    "intrusion": ("ids-core", "waf-cong-dvc", "fw-bien", "wazuh-01"),
    "ddos": ("waf-cong-dvc", "ids-core"),
    "phishing": ("soc-tinh",),
    "web_defacement": ("soc-tinh", "wazuh-01"),
    "brute_force": ("wazuh-01", "waf-cong-dvc"),
    "data_leak": ("soc-tinh",),
    "vulnerability": ("soc-tinh", "wazuh-01"),
    "policy": ("fw-bien", "wazuh-01"),
    "other": ("soc-tinh", "wazuh-01"),
}
# Each tool's own severity vocabulary, kept in ``source_severity``.
_NATIVE_SEVERITY: Final[dict[str, dict[Severity, tuple[str, ...]]]] = {
    "wazuh-01": {"info": ("2", "3", "4"), "low": ("5", "6"), "medium": ("7", "8", "9"),
                 "high": ("10", "11", "12"), "critical": ("13", "14", "15")},
    "ids-core": {"info": ("4",), "low": ("3",), "medium": ("2",), "high": ("1",),
                 "critical": ("1",)},
    "waf-cong-dvc": {"info": ("INFO",), "low": ("NOTICE",), "medium": ("WARNING",),
                     "high": ("CRITICAL",), "critical": ("EMERGENCY",)},
    "fw-bien": {"info": ("information",), "low": ("notice",), "medium": ("warning",),
                "high": ("alert",), "critical": ("critical",)},
    "soc-tinh": {"info": ("Thông tin",), "low": ("Thấp",), "medium": ("Trung bình",),
                 "high": ("Cao",), "critical": ("Nghiêm trọng",)},
}  # fmt: skip
_RULES: Final[dict[SecurityCategory, tuple[tuple[str, str], ...]]] = {
    "malware": (("554", "Phát hiện mã độc trên máy trạm"),
                ("510", "Host-based anomaly: trojaned file")),
    "intrusion": (("2010937", "ET SCAN Suspicious inbound to mySQL port 3306"),
                  ("942100", "SQL Injection Attack Detected via libinjection"),
                  ("941100", "XSS Attack Detected via libinjection")),
    "ddos": (("912120", "Denial of Service (DoS) attack identified"),),
    "phishing": (("PH-001", "Thư điện tử lừa đảo giả mạo cơ quan nhà nước"),),
    "web_defacement": (("550", "Integrity checksum changed on web root"),),
    "brute_force": (("5710", "sshd: attempt to login using a non-existent user"),
                    ("5503", "PAM: user login failed")),
    "data_leak": (("DL-002", "Dữ liệu nội bộ gửi ra ngoài bất thường"),),
    "vulnerability": (("VA-CVE", "Lỗ hổng bảo mật chưa được vá"),),
    "policy": (("FW-0001", "Kết nối bị chặn theo chính sách"), ("PL-001", "USB storage connected")),
    "other": (("GEN-000", "Sự kiện an toàn thông tin khác"),),
}  # fmt: skip
_OUTBOUND: Final = frozenset({"malware", "data_leak", "policy"})
_SSH_FAILED: Final = ("5710", "sshd: attempt to login using a non-existent user")
_SSH_BRUTE_FORCE: Final = ("5712", "sshd: brute force trying to get access to the system")
_SCAN: Final = ("2001219", "ET SCAN Potential SSH Scan")
_FLOOD: Final = ("912120", "Denial of Service (DoS) attack identified")
_FIM: Final = ("550", "Integrity checksum changed on web root")
_DEFACED: Final = ("DF-001", "Trang thông tin điện tử bị thay đổi giao diện (deface)")
BURSTS_PER_DAY: Final = {
    "brute_force": (3, 6),
    "port_scan": (2, 4),
    "ddos": (1, 1),
    "web_defacement": (1, 1),
}


@dataclass(frozen=True, slots=True)
class Asset:
    asset_id: str
    ip: str
    agency_code: str
    server: bool


def _build_assets(tree: AgencyTree, services: list[Service]) -> list[Asset]:
    assets = [Asset(s.asset_id, s.private_ip, s.agency_code, True) for s in services]
    for idx, agency in enumerate(tree, start=1):
        code = agency.code.lower()
        net = f"10.{20 + idx // 200}.{idx % 200}"
        servers = 0 if agency.level == "commune" else 2
        for h in range(1, servers + 1):
            assets.append(Asset(f"srv-{code}-{h:02d}", f"{net}.{10 + h}", agency.code, True))
        for h in range(1, (2 if agency.level == "commune" else 4) + 1):
            assets.append(Asset(f"pc-{code}-{h:03d}", f"{net}.{100 + h}", agency.code, False))
    return assets


# First octets of ordinary, globally routed unicast space (no private, shared, test or
# multicast blocks), so a random address in them is a valid public source.
_PUBLIC_FIRST_OCTETS: Final = (
    1, 14, 27, 36, 42, 45, 58, 61, 77, 85, 91, 103, 113, 117, 118, 123, 171, 185, 212, 222,
)  # fmt: skip


def _public_ip(r: random.Random) -> str:
    bits = r.getrandbits(32)
    first = _PUBLIC_FIRST_OCTETS[bits % len(_PUBLIC_FIRST_OCTETS)]
    return f"{first}.{(bits >> 8) & 255}.{(bits >> 16) & 255}.{1 + (bits >> 24) % 254}"


_Path = tuple[str, str, Asset]  # source address, destination address, the asset concerned


class _SecurityProcess:
    """Poisson background from the SOC tools, plus each day's drawn attack bursts."""

    def __init__(
        self,
        seed: int,
        start_ms: int,
        tree: AgencyTree,
        services: list[Service],
        per_minute: float,
    ) -> None:
        self.seed = seed
        self.start_ms = start_ms
        self.rate = per_minute / MINUTE
        self.rng = random.Random(f"sim:{seed}:security")
        setup = random.Random(f"sim:{seed}:security-setup")
        self.assets = _build_assets(tree, services)
        self.services = services
        self.servers = [a for a in self.assets if a.server]
        self.by_asset = {a.asset_id: a for a in self.assets}
        self.inbound_targets = _Weighted(
            self.assets, [5.0 if a.server else 1.0 for a in self.assets]
        )
        self.outbound_sources = _Weighted(
            self.assets, [1.0 if a.server else 4.0 for a in self.assets]
        )
        # Few attackers do most of the work: a heavy head over a pool of public addresses.
        pool = [_public_ip(setup) for _ in range(400)]
        self.attackers = _Weighted(pool, [1 / (i + 1) for i in range(len(pool))])
        self.severity = _Weighted([s for s, _ in _SEVERITY_MIX], [w for _, w in _SEVERITY_MIX])
        self.category = {
            sev: _Weighted([c for c, _ in mix], [w for _, w in mix])
            for sev, mix in _CATEGORY_BY_SEVERITY.items()
        }
        self.next = start_ms + self.rng.expovariate(self.rate) if self.rate > 0 else math.inf
        self.count = 0
        self.heap: list[tuple[int, int, SecurityEvent]] = []
        self.seq = 0
        self.day = 0  # next burst day to draw
        self.bursts = self.rate > 0

    def emit(self, until_ms: int, out: list[_Item]) -> None:
        r = self.rng
        while self.next <= until_ms:
            ms = int(self.next)
            out.append((ms, _RANK_SECURITY, self.count, self._background(ms, r)))
            self.count += 1
            self.next += r.expovariate(self.rate)
        while self.bursts and self.start_ms + self.day * DAY <= until_ms:
            self._draw_bursts(self.day)
            self.day += 1
        heap = self.heap
        while heap and heap[0][0] <= until_ms:
            ms, seq, event = heapq.heappop(heap)
            out.append((ms, _RANK_BURST, seq, event))

    def _background(self, ms: int, r: random.Random) -> SecurityEvent:
        severity = self.severity.draw(r)
        category = self.category[severity].draw(r)
        tools = _TOOLS_BY_CATEGORY[category]
        tool = tools[int(r.random() * len(tools))]
        path: _Path
        if category in _OUTBOUND:
            asset = self.outbound_sources.draw(r)
            dst = _public_ip(r) if r.random() < 0.7 else self.inbound_targets.draw(r).ip
            path = (asset.ip, dst, asset)
        else:
            asset = self.inbound_targets.draw(r)
            path = (self.attackers.draw(r), asset.ip, asset)
        rules = _RULES[category]
        rule = rules[int(r.random() * len(rules))]
        event_id = f"sec-{self.seed}-{self.count}"
        return self._event(event_id, ms, tool, severity, category, path, rule, r)

    def _event(
        self,
        event_id: str,
        ms: int,
        tool: str,
        severity: Severity,
        category: SecurityCategory,
        path: _Path,
        rule: tuple[str, str],
        r: random.Random,
    ) -> SecurityEvent:
        src, dst, asset = path
        rule_id, message = rule
        natives = _NATIVE_SEVERITY[tool][severity]
        native = natives[int(r.random() * len(natives))]
        raw: dict[str, object] | None = None
        if tool == "wazuh-01":  # Wazuh alerts keep their own shape, as integrations send them
            raw = {
                "rule": {"level": int(native), "id": rule_id, "description": message},
                "agent": {"name": asset.asset_id, "ip": asset.ip},
            }
        return SecurityEvent(
            event_id=event_id,
            event_time=from_ms(ms),
            source=tool,
            severity=severity,
            category=category,
            source_severity=native,
            src_ip=src,
            dst_ip=dst,
            asset_id=asset.asset_id,
            agency_code=asset.agency_code,
            rule_id=rule_id,
            message=message,
            raw=raw,
        )

    def _burst(
        self,
        event_id: str,
        ms: int,
        tool: str,
        severity: Severity,
        category: SecurityCategory,
        path: _Path,
        rule: tuple[str, str],
        r: random.Random,
    ) -> None:
        """Schedule one event of a burst; bursts run into the future, so they wait in a heap."""
        event = self._event(event_id, ms, tool, severity, category, path, rule, r)
        heapq.heappush(self.heap, (ms, self.seq, event))
        self.seq += 1

    def _draw_bursts(self, day: int) -> None:
        """Each simulated day gets every kind of attack, so a demo day fires every rule."""
        r = random.Random(f"sim:{self.seed}:bursts:{day}")
        day_start = self.start_ms + day * DAY
        plan: list[tuple[int, str]] = []
        for kind, (low, high) in BURSTS_PER_DAY.items():
            count = r.randint(low, high)
            plan.extend((day_start + r.randrange(1, DAY), kind) for _ in range(count))
        for b, (t, kind) in enumerate(sorted(plan)):
            prefix = f"sec-{self.seed}-b{day}.{b}"
            if kind == "brute_force":
                self._brute_force(prefix, t, r)
            elif kind == "port_scan":
                self._port_scan(prefix, t, r)
            elif kind == "ddos":
                self._ddos(prefix, t, r)
            else:
                self._defacement(prefix, t, r)

    def _brute_force(self, prefix: str, t: int, r: random.Random) -> None:
        """Password guessing from one address against one server, a few minutes long."""
        target = self.servers[r.randrange(len(self.servers))] if self.servers else self.assets[0]
        path = (_public_ip(r), target.ip, target)
        n = r.randint(40, 250)
        span = int(r.uniform(2, 10) * MINUTE)
        for i, at in enumerate(sorted(t + r.randrange(span) for _ in range(n))):
            if i % 8 == 7:  # Wazuh's frequency rule fires on top of the single failures
                self._burst(f"{prefix}.{i}", at, "wazuh-01", "high", "brute_force", path,
                            _SSH_BRUTE_FORCE, r)  # fmt: skip
            else:
                self._burst(f"{prefix}.{i}", at, "wazuh-01", "low", "brute_force", path,
                            _SSH_FAILED, r)  # fmt: skip

    def _port_scan(self, prefix: str, t: int, r: random.Random) -> None:
        """One address probing many assets within minutes."""
        attacker = _public_ip(r)
        targets = r.sample(self.assets, min(len(self.assets), r.randint(20, 60)))
        span = int(r.uniform(1, 5) * MINUTE)
        i = 0
        for target in targets:
            for _ in range(r.randint(1, 3)):
                at = t + r.randrange(span)
                severity: Severity = "medium" if r.random() < 0.2 else "low"
                path = (attacker, target.ip, target)
                self._burst(f"{prefix}.{i}", at, "ids-core", severity, "intrusion", path, _SCAN, r)
                i += 1

    def _ddos(self, prefix: str, t: int, r: random.Random) -> None:
        """Hundreds of flood alerts from a botnet against the public-service portal."""
        portal = self.services[0] if self.services else None
        target = self.by_asset[portal.asset_id] if portal else self.assets[0]
        dst = portal.public_ip if portal else target.ip
        n = r.randint(300, 800)
        span = int(r.uniform(2, 6) * MINUTE)
        for i in range(n):
            at = t + r.randrange(span)
            tool = "waf-cong-dvc" if r.random() < 0.7 else "ids-core"
            severity: Severity = "critical" if r.random() < 0.15 else "high"
            path = (_public_ip(r), dst, target)
            self._burst(f"{prefix}.{i}", at, tool, severity, "ddos", path, _FLOOD, r)

    def _defacement(self, prefix: str, t: int, r: random.Random) -> None:
        """A changed web root on an agency portal, then the SOC's critical confirmation."""
        portals = [s for s in self.services if s.service_id.startswith("svc-portal")]
        if portals:
            svc = portals[r.randrange(len(portals))]
            target, dst = self.by_asset[svc.asset_id], svc.public_ip
        else:
            target = self.servers[0] if self.servers else self.assets[0]
            dst = target.ip
        path = (_public_ip(r), dst, target)
        self._burst(f"{prefix}.0", t, "wazuh-01", "high", "web_defacement", path, _FIM, r)
        at = t + r.randrange(MINUTE, 10 * MINUTE)
        self._burst(f"{prefix}.1", at, "soc-tinh", "critical", "web_defacement", path, _DEFACED, r)
