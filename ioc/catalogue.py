"""Agency and procedure catalogues: who receives dossiers, and for which procedures.

The agency tree is data, not code, because provinces changed shape: until 2025 a province had
departments (sở), districts (huyện/thành phố) and communes (xã/phường/thị trấn) under the
districts; from 2025 districts are gone and communes hang directly off the province. Older
data still names districts, so both shapes must load. :class:`AgencyTree` validates the shape
once, in its constructor, so the KPI and alert code can trust ``parent_code`` blindly.

The builders make a deterministic province of the size in the reference figures (18
departments, 8 districts, 145 communes, 1,937 procedures) for the simulator, tests and demos.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, TypeVar, get_args

from ioc.events import OnlineLevel

AgencyLevel = Literal["province", "department", "district", "commune"]
ProcedureLevel = Literal["province", "district", "commune"]

AGENCY_LEVELS: Final[tuple[AgencyLevel, ...]] = get_args(AgencyLevel)
PROCEDURE_LEVELS: Final[tuple[ProcedureLevel, ...]] = get_args(ProcedureLevel)
ONLINE_LEVELS: Final[tuple[OnlineLevel, ...]] = get_args(OnlineLevel)
PROVINCE_CODE: Final = "TINH"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Agency:
    """A unit that receives dossiers; ``parent_code`` is None only for the province."""

    code: str
    name: str
    level: AgencyLevel
    parent_code: str | None = None


class AgencyTree:
    """A validated, immutable agency hierarchy with the look-ups the KPIs need."""

    def __init__(self, agencies: Iterable[Agency]) -> None:
        items = tuple(agencies)
        by_code: dict[str, Agency] = {}
        for agency in items:
            if agency.code in by_code:
                raise ValueError(f"duplicate agency code {agency.code!r}")
            if agency.level not in AGENCY_LEVELS:
                raise ValueError(
                    f"agency {agency.code!r} has unknown level {agency.level!r}; "
                    f"expected one of {', '.join(AGENCY_LEVELS)}"
                )
            by_code[agency.code] = agency
        children: dict[str, list[str]] = {code: [] for code in by_code}
        roots: list[str] = []
        for agency in items:
            if agency.parent_code is None:
                roots.append(agency.code)
            elif agency.parent_code not in by_code:
                raise ValueError(
                    f"agency {agency.code!r} has parent {agency.parent_code!r}, "
                    "which is not in the tree"
                )
            else:
                children[agency.parent_code].append(agency.code)
        if len(roots) != 1:
            found = ", ".join(repr(r) for r in roots) or "none (every agency has a parent: a cycle)"
            raise ValueError(f"an agency tree needs exactly one root; found {found}")
        root = by_code[roots[0]]
        if root.level != "province":
            raise ValueError(
                f"the root {root.code!r} must be at level 'province', not {root.level!r}"
            )
        order = _preorder(root.code, children)
        if len(order) != len(by_code):
            stray = sorted(set(by_code) - set(order))
            raise ValueError(
                f"agencies {', '.join(map(repr, stray[:5]))} are not reachable from the root "
                f"{root.code!r}: their parent links form a cycle"
            )
        for code in order[1:]:
            if by_code[code].level == "province":
                raise ValueError(f"only the root may be at level 'province'; {code!r} is too")
        self._by_code = by_code
        self._children = {code: tuple(kids) for code, kids in children.items()}
        self._order = tuple(order)
        self.root: Agency = root

    def __getitem__(self, code: str) -> Agency:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"unknown agency code {code!r}") from None

    def get(self, code: str) -> Agency | None:
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[Agency]:
        """Agencies in pre-order (parents before children), so output is stable."""
        return (self._by_code[code] for code in self._order)

    def children(self, code: str) -> tuple[Agency, ...]:
        return tuple(self._by_code[c] for c in self._children[self[code].code])

    def ancestors(self, code: str) -> tuple[Agency, ...]:
        """Nearest first, ending at the province; empty for the province itself."""
        out: list[Agency] = []
        parent = self[code].parent_code
        while parent is not None:
            agency = self._by_code[parent]
            out.append(agency)
            parent = agency.parent_code
        return tuple(out)

    def subtree(self, code: str) -> tuple[str, ...]:
        """``code`` and every agency below it, pre-order: what a unit's KPIs roll up."""
        return tuple(_preorder(self[code].code, self._children))

    def by_level(self, level: AgencyLevel) -> tuple[Agency, ...]:
        return tuple(a for a in self if a.level == level)

    @property
    def levels(self) -> Mapping[AgencyLevel, int]:
        """How many agencies each level has, top-down; levels with none are left out."""
        counts = {level: 0 for level in AGENCY_LEVELS}
        for agency in self._by_code.values():
            counts[agency.level] += 1
        return MappingProxyType({level: n for level, n in counts.items() if n})

    @property
    def is_two_level(self) -> bool:
        """True for the post-2025 shape: no districts between province and communes."""
        return "district" not in self.levels

    @property
    def depth(self) -> int:
        """Tiers from the root down, counting the root: 3 before 2025, 2 after."""
        return 1 + max((len(self.ancestors(code)) for code in self._order), default=0)


def _preorder(root: str, children: Mapping[str, Iterable[str]]) -> list[str]:
    out: list[str] = []
    stack = [root]
    seen: set[str] = set()
    while stack:
        code = stack.pop()
        if code in seen:  # only reachable through a cycle below the root
            continue
        seen.add(code)
        out.append(code)
        stack.extend(reversed(tuple(children[code])))
    return out


# -- a deterministic province -------------------------------------------------------------

DEPARTMENT_NAMES: Final = (
    "Văn phòng UBND tỉnh",
    "Sở Nội vụ",
    "Sở Tư pháp",
    "Sở Kế hoạch và Đầu tư",
    "Sở Tài chính",
    "Sở Công Thương",
    "Sở Nông nghiệp và Phát triển nông thôn",
    "Sở Giao thông vận tải",
    "Sở Xây dựng",
    "Sở Tài nguyên và Môi trường",
    "Sở Thông tin và Truyền thông",
    "Sở Lao động - Thương binh và Xã hội",
    "Sở Văn hóa và Thể thao",
    "Sở Du lịch",
    "Sở Khoa học và Công nghệ",
    "Sở Giáo dục và Đào tạo",
    "Sở Y tế",
    "Thanh tra tỉnh",
    "Ban Dân tộc",
    "Sở Ngoại vụ",
)
DISTRICT_NAMES: Final = (
    "Thành phố Hoa Lư",
    "Thành phố Tam Điệp",
    "Huyện Nho Quan",
    "Huyện Gia Viễn",
    "Huyện Yên Khánh",
    "Huyện Kim Sơn",
    "Huyện Yên Mô",
    "Huyện Yên Thành",
)
_NAME_HEADS: Final = (
    "An", "Bình", "Hòa", "Tân", "Phú", "Long", "Thạnh", "Phước", "Hưng", "Minh", "Vĩnh",
    "Đông", "Tây", "Nam", "Bắc", "Trung", "Quang", "Thuận", "Mỹ", "Gia", "Khánh", "Yên",
    "Kim", "Ninh", "Xuân", "Thanh", "Đức", "Lạc", "Sơn", "Hồng",
)  # fmt: skip
_NAME_TAILS: Final = (
    "Phú", "Lộc", "Thịnh", "Hòa", "Lợi", "Thành", "Tiến", "Phong", "Hải", "Lâm", "Sơn",
    "Trạch", "Thủy", "Vân", "Mỹ", "Ninh", "Khang", "Hưng", "Định", "Bình", "Tân", "Long",
    "Thắng", "Xuân", "Hợp", "Nghĩa", "Quý", "Điền", "Dương", "Cường",
)  # fmt: skip


def build_province(
    seed: int,
    *,
    two_level: bool = False,
    departments: int = 18,
    districts: int = 8,
    communes: int = 145,
) -> AgencyTree:
    """A province like the reference one; the seed only changes names and the commune split.

    In ``two_level`` mode there are no districts (``districts`` is ignored) and the communes sit
    directly under the province, as after the 2025 reform.
    """
    for label, n in (
        ("departments", departments),
        ("districts", districts),
        ("communes", communes),
    ):
        if n < 0:
            raise ValueError(f"{label} must be >= 0, got {n}")
    if not two_level and communes and not districts:
        raise ValueError("a three-level province needs at least one district for its communes")
    rng = random.Random(f"catalogue:province:{seed}")
    agencies = [Agency(PROVINCE_CODE, "UBND tỉnh", "province")]
    for i in range(1, departments + 1):
        name = DEPARTMENT_NAMES[i - 1] if i <= len(DEPARTMENT_NAMES) else f"Sở số {i}"
        agencies.append(Agency(f"SO-{i:02d}", name, "department", PROVINCE_CODE))
    commune_names = _place_names(rng, communes)
    if two_level:
        for i, place in enumerate(commune_names, start=1):
            kind = "Phường" if rng.random() < 0.15 else "Xã"
            agencies.append(Agency(f"XA-{i:03d}", f"{kind} {place}", "commune", PROVINCE_CODE))
        return AgencyTree(agencies)
    district_names = [
        DISTRICT_NAMES[i] if i < len(DISTRICT_NAMES) else f"Huyện số {i + 1}"
        for i in range(districts)
    ]
    counts = _split(rng, communes, districts)
    number = 0
    for d, (district_name, count) in enumerate(zip(district_names, counts, strict=True), 1):
        district_code = f"HUYEN-{d:02d}"
        agencies.append(Agency(district_code, district_name, "district", PROVINCE_CODE))
        urban = district_name.startswith("Thành phố")
        for k in range(count):
            number += 1
            if urban:
                kind = "Phường" if k < count * 0.7 else "Xã"
            else:
                kind = "Thị trấn" if k == 0 else "Xã"
            name = f"{kind} {commune_names[number - 1]}"
            agencies.append(Agency(f"XA-{number:03d}", name, "commune", district_code))
    return AgencyTree(agencies)


def _place_names(rng: random.Random, n: int) -> list[str]:
    combos = [f"{h} {t}" for h in _NAME_HEADS for t in _NAME_TAILS if h != t]
    picked = rng.sample(combos, min(n, len(combos)))
    picked.extend(f"Số {i}" for i in range(len(picked) + 1, n + 1))
    return picked


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` uneven shares (largest remainder), as districts differ."""
    if parts == 0:
        return []
    weights = [rng.uniform(0.6, 1.6) for _ in range(parts)]
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(parts), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


# -- procedures ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Procedure:
    """An administrative procedure (thủ tục hành chính) as published in the national catalogue.

    ``max_days`` is the legal processing time in working days; it gives the due time when a
    dossier carries none.
    """

    code: str
    name: str
    level: ProcedureLevel
    max_days: int
    online_level: OnlineLevel
    fee_required: bool
    e_result_required: bool


PROCEDURE_COUNTS: Final[Mapping[ProcedureLevel, int]] = MappingProxyType(
    {"province": 1539, "district": 281, "commune": 117}
)
ONLINE_SHARES: Final[Mapping[OnlineLevel, float]] = MappingProxyType(
    {"full": 0.40, "partial": 0.35, "none": 0.25}
)
FEE_SHARE: Final = 0.30

_ACTIONS: Final = (
    "Cấp", "Cấp lại", "Cấp đổi", "Điều chỉnh", "Gia hạn", "Đăng ký", "Đăng ký thay đổi",
    "Xác nhận", "Thẩm định", "Phê duyệt", "Công nhận", "Thu hồi", "Chấp thuận",
)  # fmt: skip
_SUBJECTS: Final[Mapping[ProcedureLevel, tuple[str, ...]]] = MappingProxyType(
    {
        "province": (
            "giấy phép xây dựng công trình", "giấy chứng nhận đăng ký doanh nghiệp",
            "giấy phép lái xe", "chứng chỉ hành nghề khám bệnh, chữa bệnh",
            "giấy phép môi trường", "giấy chứng nhận đủ điều kiện an toàn thực phẩm",
            "giấy phép kinh doanh vận tải", "giấy phép lao động cho người nước ngoài",
            "dự án đầu tư", "giấy phép khai thác khoáng sản", "giấy phép hoạt động giáo dục",
            "giấy chứng nhận quyền sử dụng đất cho tổ chức", "phiếu lý lịch tư pháp",
            "giấy phép bán lẻ rượu", "chứng chỉ hành nghề dược", "giấy phép xuất bản bản tin",
        ),
        "district": (
            "giấy chứng nhận đăng ký hộ kinh doanh", "giấy phép xây dựng nhà ở riêng lẻ",
            "giấy chứng nhận quyền sử dụng đất", "giấy phép bán lẻ sản phẩm thuốc lá",
            "trợ cấp xã hội hàng tháng", "thành lập trường mầm non",
            "hỗ trợ học nghề", "giấy phép kinh doanh karaoke",
        ),
        "commune": (
            "khai sinh", "khai tử", "kết hôn", "thường trú", "tạm trú",
            "chứng thực bản sao từ bản chính", "xác nhận tình trạng hôn nhân",
            "hỗ trợ hộ nghèo", "giám hộ", "nhận cha, mẹ, con",
        ),
    }
)  # fmt: skip
# Legal durations in working days, weighted towards what each level's procedures allow.
_MAX_DAYS: Final[Mapping[ProcedureLevel, tuple[tuple[int, ...], tuple[float, ...]]]] = (
    MappingProxyType(
        {
            "province": ((3, 5, 7, 10, 15, 20, 30, 45), (6, 14, 12, 22, 18, 12, 12, 4)),
            "district": ((1, 3, 5, 7, 10, 15, 20, 30), (4, 12, 20, 14, 22, 14, 8, 6)),
            "commune": ((1, 2, 3, 5, 7, 10, 15), (25, 15, 20, 18, 10, 8, 4)),
        }
    )
)
_E_RESULT_REQUIRED: Final[Mapping[OnlineLevel, float]] = MappingProxyType(
    {"full": 0.9, "partial": 0.5, "none": 0.1}
)


def build_procedures(
    seed: int, *, counts: Mapping[ProcedureLevel, int] = PROCEDURE_COUNTS
) -> list[Procedure]:
    """The province's procedure catalogue, deterministic for a seed.

    Online and fee shares are exact (shuffled labels, not coin flips), so a KPI on the
    catalogue does not move with the seed: 40 % toàn trình, 35 % một phần, 30 % with a fee.
    """
    rng = random.Random(f"catalogue:procedures:{seed}")
    total = sum(counts.values())
    if total > 20_000 or min(counts.values(), default=0) < 0:
        raise ValueError("procedure counts must be >= 0 and at most 20,000 in total")
    numbers = rng.sample(range(20_000), total)  # national codes 1.00xxxx and 2.00xxxx
    online = _shuffled_labels(rng, total, ONLINE_SHARES)
    fees = _shuffled_labels(rng, total, {True: FEE_SHARE, False: 1 - FEE_SHARE})
    out: list[Procedure] = []
    i = 0
    for level in PROCEDURE_LEVELS:
        days, weights = _MAX_DAYS[level]
        subjects = _SUBJECTS[level]
        for _ in range(counts.get(level, 0)):
            n = numbers[i]
            level_online = online[i]
            out.append(
                Procedure(
                    code=f"{1 + n // 10_000}.00{n % 10_000:04d}",
                    name=f"{rng.choice(_ACTIONS)} {rng.choice(subjects)}",
                    level=level,
                    max_days=rng.choices(days, weights)[0],
                    online_level=level_online,
                    fee_required=fees[i],
                    e_result_required=rng.random() < _E_RESULT_REQUIRED[level_online],
                )
            )
            i += 1
    return out


def _shuffled_labels(rng: random.Random, n: int, shares: Mapping[T, float]) -> list[T]:
    labels: list[T] = []
    items = list(shares.items())
    for label, share in items[:-1]:
        labels.extend([label] * round(n * share))
    labels.extend([items[-1][0]] * (n - len(labels)))
    rng.shuffle(labels)
    return labels
