"""Robot accounts, project- and system-level: name, description, permissions, duration, disabled.

Harbor never reveals a robot's secret. A robot created at the destination gets the secret the
``--robot-secrets`` file knows for its source name (set with ``PATCH /robots/{id}`` as Harbor's
"refresh secret" does), or keeps the new one Harbor generated, written to the
``--robot-secrets-out`` file. An existing robot's secret is never touched: it cannot be compared.
"""

from __future__ import annotations

from typing import Any

from ferry.harbor.client import HarborAPI
from ferry.harbor.projects import get_project
from ferry.harbor.resource import BaseKind, Context, Item, Place
from ferry.harbor.secrets import SecretSink

ALL_PROJECTS = ("*", "/*")


def short_name(full: str) -> str:
    """``robot$team-a+ci`` → ``ci``; ``robot$sync`` → ``sync`` (the name a creation takes)."""
    tail = full.split("$", 1)[-1]
    return tail.split("+", 1)[1] if "+" in tail else tail


def prefix(full: str) -> str:
    return full.split("$", 1)[0] + "$" if "$" in full else "robot$"


def permissions(perms: Any) -> list[dict[str, Any]]:
    out = []
    for p in perms or []:
        if not isinstance(p, dict):
            continue
        access = sorted({(str(a.get("resource")), str(a.get("action")), str(a.get("effect") or "allow"))
                         for a in p.get("access") or [] if isinstance(a, dict)})
        out.append({"kind": str(p.get("kind") or "project"), "namespace": str(p.get("namespace") or ""),
                    "access": [{"resource": r, "action": a, "effect": e} for r, a, e in access]})
    return sorted(out, key=lambda p: (p["kind"], p["namespace"]))


class Robots(BaseKind):
    name = "robots"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        query = f"Level=project,ProjectID={place.project_id}" if place.project else "Level=system"
        out = {}
        async for r in api.list("/robots", {"q": query}):
            full = str(r.get("name") or "")
            body = {"description": str(r.get("description") or ""), "duration": int(r.get("duration") or 0),
                    "disable": bool(r.get("disable")), "permissions": permissions(r.get("permissions"))}
            out[short_name(full)] = Item(body, r)
        return out

    def translate(self, body: dict[str, Any], ctx: Context) -> dict[str, Any]:
        perms = [{**p, "namespace": p["namespace"] if p["namespace"] in ALL_PROJECTS else ctx.project(p["namespace"])}
                 for p in body["permissions"]]
        return {**body, "permissions": sorted(perms, key=lambda p: (p["kind"], p["namespace"]))}

    async def blocker(self, ctx: Context, place: Place, name: str, body: dict[str, Any]) -> str | None:
        """A system robot's projects must exist at the destination (this run creates the ones it migrates)."""
        if place.project:
            return None
        created = set(ctx.projects.values())
        for ns in (p["namespace"] for p in body["permissions"]):
            if ns not in ALL_PROJECTS and ns not in created and await get_project(ctx.dst, ns) is None:
                return f"it covers project {ns}, which this run does not migrate and the destination lacks: " \
                       "migrate that project too, or create it first"
        return None

    def secret_file(self, ctx: Context, source: Item) -> SecretSink | None:
        """The file a creation writes to: the new-secrets file unless the secret is known."""
        return None if str(source.ref.get("name")) in ctx.robot_secrets else ctx.new_robot_secrets

    async def portable(self, api: HarborAPI, source: Item) -> Any:
        return {"name": source.ref.get("name")}  # never the secret (Harbor does not list it anyway)

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        level = "project" if place.project else "system"
        if existing is not None:
            await ctx.dst.send("PUT", f"/robots/{existing.ref['id']}",
                               {"id": existing.ref["id"], "name": existing.ref["name"], "level": level, **body},
                               ok=(200,), what=f"Harbor robot update ({existing.ref['name']})")
            return ""
        created = await ctx.dst.send_for_answer("POST", "/robots", {"name": name, "level": level, **body},
                                                ok=(201,), what=f"Harbor robot creation ({name})")
        created = created if isinstance(created, dict) else {}
        full = str(created.get("name") or prefix(source.ref["name"]) + (f"{place.project}+{name}" if place.project
                                                                      else name))
        known = ctx.robot_secrets.get(str(source.ref.get("name")))
        if known is not None:
            await ctx.dst.send("PATCH", f"/robots/{created.get('id')}", {"secret": known}, ok=(200,),
                               what=f"Harbor robot secret ({full})")
            return "secret from the robot secrets file"
        if ctx.new_robot_secrets is not None and created.get("secret"):
            ctx.new_robot_secrets.add(full, str(created["secret"]))
            return f"new secret written to {ctx.new_robot_secrets.path}"
        return "new secret: Harbor did not return it"
