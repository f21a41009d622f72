"""Repository descriptions (only repositories whose source has one). Written after the images:
a repository exists at a Harbor only once something was pushed to it."""

from __future__ import annotations

from typing import Any

from ferry.errors import NotFoundError
from ferry.harbor.client import HarborAPI, project_path, repository_path
from ferry.harbor.resource import BaseKind, CannotApply, Context, Item, Place


class Descriptions(BaseKind):
    name = "descriptions"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        project = place.project or ""
        return {str(r["name"]).split("/", 1)[1]: Item({"description": str(r["description"])})
                async for r in api.list(f"{project_path(project)}/repositories")
                if r.get("description") and "/" in str(r.get("name"))}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        try:
            await ctx.dst.send("PUT", repository_path(f"{place.project}/{name}"), body, ok=(200,),
                               what=f"Harbor repository description ({place.project}/{name})")
        except NotFoundError:
            raise CannotApply(missing_repository(f"{place.project}/{name}")) from None
        return ""


def missing_repository(repository: str) -> str:
    return f"repository {repository} is not at the destination: copy its images first (not --config-only)"
