"""Structure of the wall dashboards: what Grafana would refuse or draw broken, found without
Grafana. The SQL itself runs against real databases in tests/integration/test_dashboards.py."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc.dashboards import playlists, render_all, render_files
from ioc.dashboards.model import SCREENS, fits
from ioc.grafana_push import plan, playlist_call

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = render_all()
ALL = [(name, d) for name, docs in VARIANTS.items() for d in docs]
BUILTINS = {"__interval", "__interval_ms", "__rate_interval", "__data", "__url_time_range",
            "__from", "__to", "__field", "__value", "__series"}  # fmt: skip
VAR_USE = re.compile(r"\$\{(\w+)[^}]*\}|\$(\w+)")
MACRO_USE = re.compile(r"\$(__\w+)\(")


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def test_committed_files_are_what_the_code_renders() -> None:
    """`ioc grafana build` was run: the files Grafana provisions are the reviewed code."""
    for rel, text in render_files().items():
        path = ROOT / "grafana" / rel
        assert path.is_file(), f"missing {path}: run `ioc grafana build`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: `ioc grafana build`"
    committed = {p.relative_to(ROOT / "grafana").as_posix()
                 for sub in ("dashboards", "playlists")
                 for p in (ROOT / "grafana" / sub).rglob("*.json")}  # fmt: skip
    assert committed == set(render_files())


def test_uids_are_unique_and_short_enough_for_grafana() -> None:
    uids = [d["uid"] for _, d in ALL]
    assert len(uids) == len(set(uids))
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", u) for u in uids)
    for _, d in ALL:
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), d["uid"]


@pytest.mark.parametrize(("variant", "doc"), ALL, ids=[d["uid"] for _, d in ALL])
def test_panels_tile_the_grid_and_fit_the_screen(variant: str, doc: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for p in doc["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, (p["title"], g)
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
    screen = next(s for s in SCREENS if s.suffix == variant.removeprefix(variant.split("-")[0]))
    assert fits(doc["panels"], screen), f"{doc['uid']} is taller than a {screen.name} wall"


def test_every_datasource_is_one_the_provisioning_creates() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/ioc.yaml").read_text(encoding="utf-8")
    )
    known = {(d["type"], d["uid"]) for d in provisioned["datasources"]}
    for _, doc in ALL:
        refs = [p["datasource"] for p in doc["panels"]]
        refs += [t["datasource"] for p in doc["panels"] for t in p["targets"]]
        refs += [v["datasource"] for v in doc["templating"]["list"] if "datasource" in v]
        refs += [a["datasource"] for a in doc["annotations"]["list"]]
        for ref in refs:
            assert (ref["type"], ref["uid"]) in known, (doc["uid"], ref)


@pytest.mark.parametrize(("variant", "doc"), ALL, ids=[d["uid"] for _, d in ALL])
def test_every_variable_used_is_defined(variant: str, doc: dict[str, Any]) -> None:
    defined = {v["name"] for v in doc["templating"]["list"]}
    used = set()
    for text in (
        _strings(doc["panels"]) + _strings(doc["templating"]) + _strings(doc["annotations"])
    ):
        text = MACRO_USE.sub("", text)  # $__timeFilter(…) and friends are macros
        used |= {a or b for a, b in VAR_USE.findall(text)}
    assert used - BUILTINS <= defined, f"undefined: {used - BUILTINS - defined}"


def test_every_panel_says_no_data_in_its_language() -> None:
    for variant, doc in ALL:
        expected = "Không có dữ liệu" if variant.startswith("vi") else "No data"
        for p in doc["panels"]:
            assert p["fieldConfig"]["defaults"]["noValue"] == expected, (doc["uid"], p["title"])


def test_english_variants_share_structure_and_queries_not_words() -> None:
    for vi, en in zip(VARIANTS["vi"], VARIANTS["en"], strict=True):
        assert [p["gridPos"] for p in vi["panels"]] == [p["gridPos"] for p in en["panels"]]
        assert _same_queries(vi, en)
        assert vi["title"] != en["title"]
        assert all(
            a["title"] != b["title"] for a, b in zip(vi["panels"], en["panels"], strict=True)
        )
        assert not re.search(r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]", _text(en))


def _same_queries(vi: dict[str, Any], en: dict[str, Any]) -> bool:
    def queries(d: dict[str, Any]) -> list[str]:
        return [t.get("rawSql") or t.get("expr") for p in d["panels"] for t in p["targets"]]

    return queries(vi) == queries(en)


def _text(doc: dict[str, Any]) -> str:
    """Words an operator reads (titles, descriptions, names), not queries."""
    out = [doc["title"], doc["description"]]
    for p in doc["panels"]:
        out += [p["title"], p.get("description", "")]
        out += [o["properties"][0]["value"] for o in p["fieldConfig"]["overrides"]
                if o["properties"][0]["id"] == "displayName"]  # fmt: skip
    return " ".join(str(x) for x in out)


def test_walls_refresh_themselves_with_large_text() -> None:
    for variant, doc in ALL:
        assert doc["refresh"] in {"30s", "1m"}
        scale = 2 if variant.endswith("4k") else 1
        for p in doc["panels"]:
            if p["type"] == "stat" and p["gridPos"]["w"] <= 6:
                assert p["options"]["text"]["valueSize"] >= 48 * scale, (doc["uid"], p["title"])
            assert p["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["value"] is None


def test_playlists_rotate_their_own_variant() -> None:
    uids = {d["uid"]: name for name, d in ALL}
    for pl in playlists():
        variant = pl["uid"].removeprefix("ioc-wall-")
        assert [uids[i["value"]] for i in pl["items"]] == [variant] * len(VARIANTS[variant])
        assert pl["items"][0]["value"].startswith("ioc-overview")


def test_push_creates_each_folder_before_its_dashboards() -> None:
    steps = plan()
    folders_seen: set[str] = set()
    for step in steps:
        if step.kind == "folder":
            folders_seen.add(step.key)
        elif step.kind == "dashboard":
            assert step.body["folderUid"] in folders_seen
            assert step.body["overwrite"] is True and step.body["dashboard"]["id"] is None
    kinds = [s.kind for s in steps]
    assert kinds.count("dashboard") == len(ALL) and kinds.count("playlist") == len(VARIANTS)
    assert kinds.index("playlist") > max(i for i, k in enumerate(kinds) if k == "dashboard")
    only_vi = plan(["vi"], ["1080p"])
    assert {s.body["folderUid"] for s in only_vi if s.kind == "dashboard"} == {"ioc-vi"}


def test_push_updates_a_playlist_of_the_same_name_instead_of_adding_one() -> None:
    wall = playlists()[0]
    existing = [{"uid": "x1", "name": wall["name"] + " (cũ)"}, {"uid": "abc", "name": wall["name"]}]
    assert playlist_call(existing, wall) == ("PUT", "/playlists/abc")
    assert playlist_call(existing[:1], wall) == ("POST", "/playlists")


def test_the_four_variants_hold_the_same_dashboards() -> None:
    stems = {name: [d["uid"].split("-")[1] for d in docs] for name, docs in VARIANTS.items()}
    for a, b in itertools.pairwise(stems.values()):
        assert a == b


def _custom_options(query: str) -> list[tuple[str, str]]:
    """Grafana's reading of a custom variable: split on unescaped commas, then ``text : value``."""
    out = []
    for part in re.findall(r"(?:\\,|[^,])+", query):
        text, _, value = part.strip().replace("\\,", ",").rpartition(" : ")
        out.append((text, value))
    return out


def test_custom_variables_read_back_as_their_choices() -> None:
    """A comma inside a label ("Sở, ban, ngành") must not split it into three choices."""
    for _, doc in ALL:
        for var in doc["templating"]["list"]:
            if var["type"] == "custom":
                expected = [(o["text"], o["value"]) for o in var["options"]]
                assert _custom_options(var["query"]) == expected, (doc["uid"], var["name"])


def test_links_stay_in_the_same_language_and_screen() -> None:
    for variant, doc in ALL:
        own = {d["uid"] for d in VARIANTS[variant]}
        for text in _strings(doc["panels"]) + _strings(doc["links"]):
            for uid in re.findall(r"/d/([a-z0-9-]+)", text):
                assert uid in own, f"{doc['uid']} links to {uid}, outside {variant}"
