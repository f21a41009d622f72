"""Immutable tag rules of a project. Rules have no name: a rule is known by what it protects (its
repository and tag selectors), and its other settings (disabled, priority) are compared. Applied
after the images, since an immutable tag refuses the very push that would migrate it."""

from __future__ import annotations

from typing import Any

from ferry.harbor.client import HarborAPI
from ferry.harbor.resource import BaseKind, Context, Item, Place, selector


def rule_name(tags: list[dict[str, str]], scopes: dict[str, list[dict[str, str]]]) -> str:
    def part(sel: list[dict[str, str]]) -> str:
        return " ".join(f"{s['decoration']} {s['pattern']}" for s in sel)

    repos = part(scopes.get("repository", []))
    return f"repositories {repos or '*'}; tags {part(tags) or '*'}"


class Immutability(BaseKind):
    name = "immutability"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        out = {}
        async for r in api.list(place.api_path("immutabletagrules")):
            tags = [selector(s) for s in r.get("tag_selectors") or []]
            raw_scopes = r.get("scope_selectors") if isinstance(r.get("scope_selectors"), dict) else {}
            scopes = {k: [selector(s) for s in v or []] for k, v in sorted(raw_scopes.items())}
            body = {"disabled": bool(r.get("disabled")), "action": str(r.get("action") or "immutable"),
                    "template": str(r.get("template") or "immutable_template"),
                    "tag_selectors": tags, "scope_selectors": scopes}
            out[rule_name(tags, scopes)] = Item(body, r.get("id"))
        return out

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        path = place.api_path("immutabletagrules")
        request = {**body, "project_id": place.project_id}
        if existing is None:
            await ctx.dst.send("POST", path, request, ok=(201,), what=f"Harbor immutable rule creation ({name})")
        else:
            await ctx.dst.send("PUT", f"{path}/{existing.ref}", {**request, "id": existing.ref}, ok=(200,),
                               what=f"Harbor immutable rule update ({name})")
        return ""
