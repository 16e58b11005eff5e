"""The wall dashboards as code: five dashboards, each rendered in Vietnamese and English for
Full HD and 4K walls, and the playlists that rotate them.

``ioc grafana build`` writes :func:`render_files` under ``grafana/`` (a test keeps the
committed files equal to it); ``ioc grafana push`` uploads the same documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ioc.dashboards.dossiers import dossiers
from ioc.dashboards.model import LANGS, SCREENS, Dashboard, Lang, Screen
from ioc.dashboards.overview import overview
from ioc.dashboards.pipeline import pipeline
from ioc.dashboards.security import security
from ioc.dashboards.services import services

#: In playlist order: the summary first, the pipeline's own health last.
DASHBOARDS: tuple[Callable[[], Dashboard], ...] = (overview, dossiers, services, security, pipeline)

#: Grafana folders (uid, title) per language and screen.
FOLDER_TITLES: dict[tuple[Lang, str], str] = {
    ("vi", "1080p"): "IOC",
    ("vi", "4k"): "IOC (màn hình 4K)",
    ("en", "1080p"): "IOC (English)",
    ("en", "4k"): "IOC (English, 4K)",
}

PLAYLIST_INTERVAL = "1m"


def variant(lang: Lang, screen: Screen) -> str:
    """The directory and folder uid of one language and screen: ``vi``, ``en-4k``, …"""
    return lang + screen.suffix


def folder_uid(lang: Lang, screen: Screen) -> str:
    return "ioc-" + variant(lang, screen)


def render_all() -> dict[str, list[dict[str, Any]]]:
    """Every dashboard, by variant (``vi``, ``vi-4k``, ``en``, ``en-4k``)."""
    built = [make() for make in DASHBOARDS]
    return {
        variant(lang, screen): [d.render(lang, screen) for d in built]
        for lang in LANGS
        for screen in SCREENS
    }


def playlists() -> list[dict[str, Any]]:
    """One playlist per variant, rotating its dashboards once a minute."""
    out = []
    for name, docs in render_all().items():
        lang = name.partition("-")[0]
        title = "Tường IOC" if lang == "vi" else "IOC wall"
        out.append(
            {
                "uid": f"ioc-wall-{name}",
                "name": f"{title} ({name})",
                "interval": PLAYLIST_INTERVAL,
                "items": [{"type": "dashboard_by_uid", "value": d["uid"]} for d in docs],
            }
        )
    return out


def render_files() -> dict[str, str]:
    """Relative path under ``grafana/`` → file text, for every dashboard and playlist."""
    files = {}
    for name, docs in render_all().items():
        for doc in docs:
            files[f"dashboards/{name}/{doc['uid']}.json"] = dump(doc)
    for playlist in playlists():
        files[f"playlists/{playlist['uid']}.json"] = dump(playlist)
    return files


def dump(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
