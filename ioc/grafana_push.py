"""``ioc grafana push``: folders, dashboards and playlists into a running Grafana.

Idempotent: folders are created only when missing, dashboards are upserted by uid with
``overwrite`` (a wall edited by hand is put back to the committed version), playlists are
matched by name and updated in place — Grafana ignores a playlist uid on create in many
versions, and playlists cannot be provisioned from files at all.

The plan is pure (:func:`plan`) and tested; :func:`apply` only walks it with grafana-client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ioc.dashboards import FOLDER_TITLES, folder_uid, playlists, render_all
from ioc.dashboards.model import SCREENS, Lang


@dataclass(frozen=True)
class Step:
    """One call: ``folder`` (create if missing), ``dashboard`` (upsert), ``playlist``."""

    kind: str
    key: str
    body: dict[str, Any]


def plan(
    langs: Sequence[Lang] = ("vi", "en"),
    screens: Iterable[str] = ("1080p", "4k"),
    *,
    message: str = "ioc grafana push",
) -> list[Step]:
    """Folders first, then their dashboards, then the playlists that name them."""
    wanted = {(lang, s.name) for lang in langs for s in SCREENS if s.name in set(screens)}
    rendered = render_all()
    steps: list[Step] = []
    for screen in SCREENS:
        for lang in langs:
            if (lang, screen.name) not in wanted:
                continue
            uid = folder_uid(lang, screen)
            steps.append(
                Step("folder", uid, {"uid": uid, "title": FOLDER_TITLES[(lang, screen.name)]})
            )
            for doc in rendered[uid.removeprefix("ioc-")]:
                body = {
                    "dashboard": {**doc, "id": None},
                    "folderUid": uid,
                    "overwrite": True,
                    "message": message,
                }
                steps.append(Step("dashboard", doc["uid"], body))
    for playlist in playlists():
        if playlist["uid"].removeprefix("ioc-wall-") in {
            f"{lang}{'' if s == '1080p' else '-' + s}" for lang, s in wanted
        }:
            steps.append(Step("playlist", playlist["name"], playlist))
    return steps


def playlist_call(
    existing: Sequence[Mapping[str, Any]], playlist: Mapping[str, Any]
) -> tuple[str, str]:
    """(method, path) to upsert ``playlist`` given Grafana's playlists with a similar name."""
    for p in existing:
        if p.get("name") == playlist["name"]:
            return "PUT", f"/playlists/{p['uid']}"
    return "POST", "/playlists"


def apply(api: Any, steps: Sequence[Step]) -> list[str]:
    """Run the plan against ``api`` (a ``grafana_client.GrafanaApi``); one line per step."""
    from grafana_client.client import GrafanaClientError

    done = []
    for step in steps:
        if step.kind == "folder":
            try:
                api.folder.get_folder(step.key)
                done.append(f"folder {step.key}: exists")
            except GrafanaClientError as exc:
                if exc.status_code != 404:
                    raise
                api.folder.create_folder(step.body["title"], uid=step.key)
                done.append(f"folder {step.key}: created")
        elif step.kind == "dashboard":
            answer = api.dashboard.update_dashboard(step.body)
            done.append(f"dashboard {step.key}: version {answer.get('version', '?')}")
        else:
            existing = api.client.GET("/playlists", params={"query": step.body["name"]}) or []
            method, path = playlist_call(existing, step.body)
            answer = getattr(api.client, method)(path, json=step.body) or {}
            uid = answer.get("uid") or path.rpartition("/")[2]
            verb = "updated" if method == "PUT" else "created"
            done.append(f"playlist {step.key}: {verb}, play at /playlists/play/{uid}")
    return done
