"""The national 766 scoring (Decision 766/QĐ-TTg, 2022): one table of indicators and the rule
that turns a ratio into points.

Every indicator's maximum, target and empty-period rule lives in :data:`INDICATORS`, so a
change in the national rules is a one-line change here. Sources and which facts are confirmed
are in ``docs/kpi-766-sources.md``; ``confirmed=False`` marks an indicator whose split or
target is inferred (fitted to the national portal's published scores), not published.

Arithmetic is decimal with half-up rounding, as the portal displays two decimals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Group = Literal["transparency", "progress", "online", "payment", "digitisation", "satisfaction"]
WhenEmpty = Literal["zero", "full", "none"]

GROUP_MAX: Mapping[Group, Decimal] = {
    "transparency": Decimal(18),
    "progress": Decimal(20),
    "online": Decimal(12),
    "payment": Decimal(10),
    "digitisation": Decimal(22),
    "satisfaction": Decimal(18),
}
TWO_PLACES = Decimal("0.01")
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Indicator:
    """One scored indicator.

    ``target`` is the percent at which full marks are reached (partial credit up to it);
    ``None`` means linear (max × ratio). ``when_empty`` is the score with nothing to count:
    ``zero``, ``full`` marks, or ``none`` (no score, not zero). ``round_percent`` rounds the
    percent to two decimals before scoring, as the portal does for online payment.
    """

    code: str
    group: Group
    name_vi: str
    name_en: str
    max_points: Decimal
    target: Decimal | None = None
    when_empty: WhenEmpty = "zero"
    round_percent: bool = False
    confirmed: bool = True


def _i(code: str, group: Group, vi: str, en: str, max_points: int, **kw: object) -> Indicator:
    target = kw.pop("target", None)
    return Indicator(
        code,
        group,
        vi,
        en,
        Decimal(max_points),
        target=Decimal(str(target)) if target is not None else None,
        **kw,  # type: ignore[arg-type]
    )


# fmt: off
INDICATORS: tuple[Indicator, ...] = (
    _i("1.1", "transparency", "TTHC công bố đúng hạn", "procedures published on time", 6, when_empty="none"),
    _i("1.2", "transparency", "TTHC cập nhật, công khai đúng hạn", "procedures made public on time", 4, when_empty="none"),
    _i("1.3", "transparency", "TTHC công khai đầy đủ các bộ phận", "procedures published with all parts", 2, when_empty="none"),
    _i("1.4", "transparency", "Hồ sơ đồng bộ lên Cổng DVCQG", "dossiers synced to the national portal", 6, when_empty="none"),
    _i("2.1", "progress", "Hồ sơ xử lý trước hạn, đúng hạn", "dossiers processed on time", 20),
    _i("3.1", "online", "TTHC cung cấp DVCTT", "procedures offered online", 2, target=80, confirmed=False),
    _i("3.2", "online", "DVCTT có phát sinh hồ sơ", "online services with dossiers", 4, confirmed=False),
    _i("3.3", "online", "Hồ sơ nộp trực tuyến", "dossiers submitted online", 6, target=50, confirmed=False),
    _i("3.5", "payment", "TTHC có nghĩa vụ tài chính thanh toán trực tuyến", "fee procedures payable online", 2, target=80, round_percent=True, confirmed=False),
    _i("3.5b", "payment", "TTHC có giao dịch thanh toán trực tuyến", "procedures with an online payment", 2, target=80, round_percent=True, confirmed=False),
    _i("3.6", "payment", "Hồ sơ thanh toán trực tuyến", "dossiers paid online", 6, round_percent=True, confirmed=False),
    _i("4.1", "digitisation", "Hồ sơ cấp kết quả điện tử", "electronic results", 6),
    _i("4.2", "digitisation", "Hồ sơ số hóa thành phần", "digitised dossier components", 4),
    _i("4.c", "digitisation", "Chứng thực bản sao điện tử", "e-certified copies offered", 2, confirmed=False),
    _i("4.3", "digitisation", "Khai thác, tái sử dụng dữ liệu số hóa", "reused digitised data", 2, target=80),
    _i("4.4", "digitisation", "Chia sẻ dữ liệu số hóa", "digitised data shared for reuse", 4, confirmed=False),
    _i("4.5a", "digitisation", "TTHC sử dụng CSDL dân cư", "procedures using population data", 2),
    _i("4.5b", "digitisation", "Hồ sơ sử dụng CSDL dân cư", "dossiers using population data", 2),
    _i("5.2", "satisfaction", "Tiến độ xử lý PAKN", "feedback handled on time", 6, when_empty="full"),
    _i("5.3", "satisfaction", "Hài lòng xử lý PAKN", "feedback satisfaction", 6, when_empty="full"),
    _i("5.4", "satisfaction", "Hài lòng tiếp nhận, giải quyết TTHC", "dossier satisfaction", 6, target=90),
)
# fmt: on
BY_CODE: Mapping[str, Indicator] = {i.code: i for i in INDICATORS}


def round2(value: Decimal) -> Decimal:
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def indicator_points(indicator: Indicator, numerator: int, denominator: int) -> Decimal | None:
    """Points for ``numerator / denominator`` under the indicator's rule."""
    if numerator < 0 or denominator < 0 or numerator > denominator:
        raise ValueError(f"{indicator.code}: need 0 ≤ numerator ≤ denominator")
    if denominator == 0:
        if indicator.when_empty == "none":
            return None
        return indicator.max_points if indicator.when_empty == "full" else Decimal(0)
    percent = HUNDRED * Decimal(numerator) / Decimal(denominator)
    if indicator.round_percent:
        percent = round2(percent)
    if indicator.target is None:
        raw = indicator.max_points * percent / HUNDRED
    else:
        raw = min(indicator.max_points, indicator.max_points * percent / indicator.target)
    return round2(raw)


def group_points(scores: Mapping[str, Decimal | None]) -> dict[Group, Decimal | None]:
    """Sum indicator points per group; a group none of whose indicators scored is ``None``."""
    out: dict[Group, Decimal | None] = {}
    for group in GROUP_MAX:
        values = [
            v for i in INDICATORS if i.group == group and (v := scores.get(i.code)) is not None
        ]
        out[group] = sum(values, Decimal(0)) if values else None
    return out
