"""Project members: users and groups with their roles, matched by name.

A user member missing at a database-auth destination cannot be added; it is reported with the fix,
or created first with ``--create-users``. Groups are added with their type and LDAP DN as the
source holds them (read from the source's ``/usergroups``).
"""

from __future__ import annotations

from typing import Any

from ferry.harbor.client import HarborAPI
from ferry.harbor.resource import BaseKind, CannotApply, Context, Item, Place
from ferry.harbor.secrets import SecretSink
from ferry.harbor.users import DB_AUTH, create_user, destination_users, group_body, read_user, source_user

ROLES = {1: "projectAdmin", 2: "developer", 3: "guest", 4: "maintainer", 5: "limitedGuest"}
ROLE_IDS = {v: k for k, v in ROLES.items()}


def member_key(m: dict[str, Any]) -> str:
    return f"{'group' if m.get('entity_type') == 'g' else 'user'}:{m.get('entity_name')}"


class Members(BaseKind):
    name = "members"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        out = {}
        async for m in api.list(place.api_path("members")):
            role = ROLES.get(int(m.get("role_id") or 0), str(m.get("role_name") or m.get("role_id")))
            out[member_key(m)] = Item({"role": role}, m)
        return out

    async def blocker(self, ctx: Context, place: Place, name: str, body: dict[str, Any]) -> str | None:
        kind, _, who = name.partition(":")
        if kind != "user" or ctx.dst_auth_mode != DB_AUTH:
            return None
        users = await destination_users(ctx)
        if users is None or who in users or ctx.create_users:
            return None
        return f"user {who!r} does not exist at the destination (database auth): create it there, or rerun " \
               "with --create-users"

    def secret_file(self, ctx: Context, source: Item) -> SecretSink | None:
        """The passwords file, when the member's user is created first (known after :meth:`blocker`)."""
        who = str(source.ref.get("entity_name"))
        missing = source.ref.get("entity_type") == "u" and ctx.dst_users is not None and who not in ctx.dst_users
        return ctx.user_passwords if ctx.create_users and missing else None

    async def portable(self, api: HarborAPI, source: Item) -> Any:
        """The member's entity, with the source's group (type, DN) or user (e-mail, name) it is created from."""
        ref = {k: source.ref.get(k) for k in ("entity_type", "entity_name", "entity_id")}
        if ref["entity_type"] == "g":
            group = await api.get(f"/usergroups/{ref['entity_id']}")
            return {**ref, "group": group_body(group if isinstance(group, dict) else {})}
        return {**ref, "user": await read_user(api, str(ref["entity_name"]))}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        path = place.api_path("members")
        role_id = ROLE_IDS.get(body["role"])
        if role_id is None:
            raise CannotApply(f"role {body['role']!r} is unknown to ferry")
        if existing is not None:
            await ctx.dst.send("PUT", f"{path}/{existing.ref['id']}", {"role_id": role_id}, ok=(200,),
                               what=f"Harbor member update ({name})")
            return ""
        kind, _, who = name.partition(":")
        note = ""
        if kind == "user":
            async with ctx.user_creation:
                users = await destination_users(ctx) if ctx.create_users and ctx.dst_auth_mode == DB_AUTH else None
                if users is not None and who not in users:
                    known = source.ref.get("user")
                    await create_user(ctx, who, known if known is not None else await source_user(ctx, who))
                    note = f"user {who} created, password written to the passwords file"
            member: dict[str, Any] = {"member_user": {"username": who}}
        else:
            group = source.ref.get("group")
            if group is None:
                answer = await ctx.src.get(f"/usergroups/{source.ref.get('entity_id')}") if ctx.src else {}
                group = group_body(answer if isinstance(answer, dict) else {})
            member = {"member_group": {"group_name": who, **group}}
        await ctx.dst.send("POST", path, {"role_id": role_id, **member}, ok=(201,),
                           what=f"Harbor member creation ({name})")
        return note
