"""Registry endpoints and replication policies: listed as manual steps, never copied. They hold
credentials Harbor's API never returns, and a half-configured copy would fail at its first run."""

from __future__ import annotations

from typing import Any

from ferry.errors import NotFoundError
from ferry.harbor.client import HarborAPI
from ferry.harbor.resource import BaseKind, CannotApply, Context, Item, Place


class Manual(BaseKind):
    """A system listing whose objects the report names as steps to redo by hand."""

    manual = True

    def __init__(self, name: str, path: str, why: str) -> None:
        self.name = name
        self.path = path
        self.why = why

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        """The objects by name; none where the Harbor does not have the feature (404)."""
        try:
            return {str(x.get("name")): Item({}) async for x in api.list(self.path)}
        except NotFoundError:
            return {}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        raise CannotApply(self.why)


REGISTRIES = Manual("registries", "/registries", "re-create it by hand: the API never returns its credentials")
REPLICATION = Manual("replication", "/replication/policies",
                     "re-create it by hand once its registry endpoint exists")
