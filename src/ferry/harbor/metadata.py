"""Project settings (every metadata key Harbor has) and CVE allowlists, project and system.

Harbor keeps metadata values as strings (``"true"``); they are compared as Harbor holds them. The
project's ``retention_id`` is an id, not a setting: the retention kind moves the policy it names.
The storage quota is moved with the project itself (:mod:`ferry.harbor.projects`).
"""

from __future__ import annotations

from typing import Any

from ferry.harbor.client import HarborAPI, project_path
from ferry.harbor.resource import BaseKind, Context, Item, Place

NOT_SETTINGS = frozenset({"retention_id"})


async def _project(api: HarborAPI, place: Place) -> dict[str, Any]:
    data = await api.get(project_path(place.project or ""), allow=(404,))
    return data if isinstance(data, dict) else {}


class Metadata(BaseKind):
    name = "metadata"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        meta = (await _project(api, place)).get("metadata") or {}
        body = {str(k): str(v) for k, v in meta.items() if k not in NOT_SETTINGS}
        return {"settings": Item(body)} if body else {}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        await ctx.dst.send("PUT", project_path(place.project or ""), {"metadata": body}, ok=(200,),
                           what=f"Harbor project settings ({place.project})")
        return ""


def allowlist_body(data: Any) -> dict[str, Any]:
    data = data if isinstance(data, dict) else {}
    items = sorted({str(i.get("cve_id")) for i in data.get("items") or [] if isinstance(i, dict) and i.get("cve_id")})
    return {"items": items, "expires_at": data.get("expires_at")}


def allowlist_request(body: dict[str, Any]) -> dict[str, Any]:
    return {"items": [{"cve_id": c} for c in body["items"]], "expires_at": body["expires_at"]}


class Allowlist(BaseKind):
    """The project CVE allowlist, or with the system place the system's."""

    name = "allowlist"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        if place.project is None:
            body = allowlist_body(await api.get("/system/CVEAllowlist"))
        else:
            body = allowlist_body((await _project(api, place)).get("cve_allowlist"))
        return {"cve_allowlist": Item(body)} if body["items"] or body["expires_at"] else {}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        if place.project is None:
            await ctx.dst.send("PUT", "/system/CVEAllowlist", allowlist_request(body), ok=(200,),
                               what="Harbor system CVE allowlist")
        else:
            await ctx.dst.send("PUT", project_path(place.project), {"cve_allowlist": allowlist_request(body)},
                               ok=(200,), what=f"Harbor project CVE allowlist ({place.project})")
        return ""
