"""Labels, global and project (name, colour, description), and which artifacts carry them.

Artifacts are matched by digest after the copy (the digest is the same on both Harbors); label
attachments are only added, never removed, and a label is resolved at the destination by name,
the project's label first, then the global one.
"""

from __future__ import annotations

from typing import Any

from ferry.errors import NotFoundError
from ferry.harbor.artifacts import list_repositories
from ferry.harbor.client import HarborAPI, repository_path
from ferry.harbor.descriptions import missing_repository
from ferry.harbor.resource import BaseKind, CannotApply, Context, Item, Place


def label_params(place: Place) -> dict[str, str]:
    return {"scope": "p", "project_id": str(place.project_id)} if place.project else {"scope": "g"}


async def label_ids(api: HarborAPI, place: Place) -> dict[str, int]:
    """Label name → id of every label an artifact in ``place``'s project may carry (project first)."""
    ids = {str(x["name"]): int(x["id"]) async for x in api.list("/labels", {"scope": "g"})}
    ids.update({str(x["name"]): int(x["id"]) async for x in api.list("/labels", label_params(place))})
    return ids


class Labels(BaseKind):
    name = "labels"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        return {str(x["name"]): Item({"color": str(x.get("color") or ""),
                                      "description": str(x.get("description") or "")}, x.get("id"))
                async for x in api.list("/labels", label_params(place)) if x.get("name")}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        request = {"name": name, **body, "scope": "p" if place.project else "g",
                   **({"project_id": place.project_id} if place.project else {})}
        if existing is None:
            await ctx.dst.send("POST", "/labels", request, ok=(201,), what=f"Harbor label creation ({name})")
        else:
            await ctx.dst.send("PUT", f"/labels/{existing.ref}", request, ok=(200,),
                               what=f"Harbor label update ({name})")
        return ""


class ArtifactLabels(BaseKind):
    """``repository@digest`` → the names of its labels (repository without its project)."""

    name = "artifact-labels"

    def __init__(self) -> None:
        self._ids: dict[str, dict[str, int]] = {}  # destination project → label name → id

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        project = place.project or ""
        out = {}
        params = {"with_label": "true", "with_tag": "false", "with_scan_overview": "false"}
        for repo in await list_repositories(api, project):
            async for a in api.list(f"{repository_path(repo)}/artifacts", params):
                names = sorted({str(x["name"]) for x in a.get("labels") or [] if isinstance(x, dict) and x.get("name")})
                if names and a.get("digest"):
                    out[f"{repo.split('/', 1)[1]}@{a['digest']}"] = Item({"labels": names})
        return out

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        project = place.project or ""
        if project not in self._ids:
            self._ids[project] = await label_ids(ctx.dst, place)
        ids = self._ids[project]
        missing = [n for n in body["labels"] if n not in ids]
        if missing:
            raise CannotApply(f"label(s) {', '.join(missing)} do not exist at the destination")
        repo, _, digest = name.partition("@")
        have = set(existing.body["labels"]) if existing else set()
        path = f"{repository_path(f'{project}/{repo}')}/artifacts/{digest}/labels"
        for label in body["labels"]:
            if label not in have:
                try:
                    await ctx.dst.send("POST", path, {"id": ids[label]}, ok=(200,), allow=(409,),
                                       what=f"Harbor artifact label ({label} on {repo}@{digest[:19]})")
                except NotFoundError:
                    raise CannotApply(missing_repository(f"{project}/{repo}")) from None
        return ""
