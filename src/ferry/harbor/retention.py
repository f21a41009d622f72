"""A project's tag retention policy: algorithm, rules (template, parameters, tag and repository
selectors), schedule. Harbor names a project's policy by id in its ``retention_id`` metadata; the
scope's project id is mapped away and set to the destination project's on write."""

from __future__ import annotations

from typing import Any

from ferry.harbor.client import HarborAPI, project_path
from ferry.harbor.resource import BaseKind, Context, Item, Place, selector

POLICY = "policy"


def rule(r: dict[str, Any]) -> dict[str, Any]:
    scopes = r.get("scope_selectors") if isinstance(r.get("scope_selectors"), dict) else {}
    return {
        "priority": int(r.get("priority") or 0), "disabled": bool(r.get("disabled")),
        "action": str(r.get("action") or "retain"), "template": str(r.get("template") or ""),
        "params": dict(r.get("params") or {}),
        "tag_selectors": [selector(s) for s in r.get("tag_selectors") or []],
        "scope_selectors": {k: [selector(s) for s in v or []] for k, v in sorted(scopes.items())},
    }


async def retention_id(api: HarborAPI, project: str) -> str | None:
    data = await api.get(project_path(project), allow=(404,))
    meta = (data.get("metadata") or {}) if isinstance(data, dict) else {}
    return str(meta["retention_id"]) if meta.get("retention_id") else None


class Retention(BaseKind):
    name = "retention"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        rid = await retention_id(api, place.project or "")
        if rid is None:
            return {}
        policy = await api.get(f"/retentions/{rid}", allow=(404,))
        if not isinstance(policy, dict):
            return {}
        trigger = policy.get("trigger") if isinstance(policy.get("trigger"), dict) else {}
        body = {"algorithm": str(policy.get("algorithm") or "or"),
                "rules": [rule(r) for r in policy.get("rules") or [] if isinstance(r, dict)],
                "trigger": {"kind": str(trigger.get("kind") or "Schedule"),
                            "settings": dict(trigger.get("settings") or {})}}
        return {POLICY: Item(body, rid)}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        request = {**body, "scope": {"level": "project", "ref": place.project_id}}
        if existing is None:
            await ctx.dst.send("POST", "/retentions", request, ok=(201,),
                               what=f"Harbor retention policy creation ({place.project})")
        else:
            await ctx.dst.send("PUT", f"/retentions/{existing.ref}", {**request, "id": int(existing.ref)},
                               ok=(200,), what=f"Harbor retention policy update ({place.project})")
        return ""
