"""Users and user groups (system-level, with ``--system``), and creating the users members need.

Only a database-auth Harbor creates users through the API; an LDAP or OIDC Harbor onboards them
from its directory by name, so there users are reported rather than created. A created user gets
a random password, written to the ``--user-passwords-out`` file and nowhere else.
"""

from __future__ import annotations

from typing import Any

from ferry.errors import AuthError
from ferry.harbor.client import HarborAPI
from ferry.harbor.resource import BaseKind, CannotApply, Context, Item, Place
from ferry.harbor.secrets import SecretSink, new_secret

DB_AUTH = "db_auth"
USER_FIELDS = ("email", "realname", "comment")


def user_body(u: dict[str, Any]) -> dict[str, Any]:
    return {f: str(u.get(f) or "") for f in USER_FIELDS}


async def _users(api: HarborAPI, params: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    return {str(u["username"]): u async for u in api.list("/users", params) if u.get("username")}


async def destination_users(ctx: Context) -> set[str] | None:
    """The destination's user names (read once), or None when the caller may not list users."""
    if ctx.dst_users is None:
        try:
            ctx.dst_users = set(await _users(ctx.dst))
        except AuthError:
            return None
    return ctx.dst_users


def creation_blocker(ctx: Context, username: str) -> str | None:
    if ctx.dst_auth_mode != DB_AUTH:
        return f"the destination authenticates with {ctx.dst_auth_mode}: it onboards {username!r} from its " \
               "directory, ferry does not create users there"
    return None


async def create_user(ctx: Context, username: str, body: dict[str, Any]) -> None:
    """Create a database user with a random password (kept only in the passwords file)."""
    blocked = creation_blocker(ctx, username)
    if blocked:
        raise CannotApply(blocked)
    password = new_secret()
    await ctx.dst.send("POST", "/users", {"username": username, "password": password, **body}, ok=(201,),
                       what=f"Harbor user creation ({username})")
    if ctx.user_passwords is not None:
        ctx.user_passwords.add(username, password)
    if ctx.dst_users is not None:
        ctx.dst_users.add(username)


async def read_user(api: HarborAPI, username: str) -> dict[str, Any]:
    """A user's e-mail, real name and comment (empty when the caller may not read them)."""
    try:
        found = await _users(api, {"q": f"username={username}"})
    except AuthError:
        return user_body({})
    return user_body(found.get(username, {}))


async def source_user(ctx: Context, username: str) -> dict[str, Any]:
    return await read_user(ctx.src, username) if ctx.src is not None else user_body({})


class Users(BaseKind):
    name = "users"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        return {name: Item(user_body(u), u.get("user_id")) for name, u in (await _users(api)).items()
                if name != "admin"}

    async def blocker(self, ctx: Context, place: Place, name: str, body: dict[str, Any]) -> str | None:
        return creation_blocker(ctx, name)

    def secret_file(self, ctx: Context, source: Item) -> SecretSink | None:
        return ctx.user_passwords

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        if existing is None:
            await create_user(ctx, name, body)
            return "password written to the passwords file"
        await ctx.dst.send("PUT", f"/users/{existing.ref}", body, ok=(200,), what=f"Harbor user update ({name})")
        return ""


def group_body(g: dict[str, Any]) -> dict[str, Any]:
    return {"group_type": int(g.get("group_type") or 0), "ldap_group_dn": str(g.get("ldap_group_dn") or "")}


class Groups(BaseKind):
    name = "groups"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        return {str(g["group_name"]): Item(group_body(g), g.get("id")) async for g in api.list("/usergroups")
                if g.get("group_name")}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        if existing is None:
            await ctx.dst.send("POST", "/usergroups", {"group_name": name, **body}, ok=(201,),
                               what=f"Harbor user group creation ({name})")
        else:
            await ctx.dst.send("PUT", f"/usergroups/{existing.ref}", {"group_name": name, **body}, ok=(200,),
                               what=f"Harbor user group update ({name})")
        return ""
