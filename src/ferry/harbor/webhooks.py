"""Webhook policies: targets (type, address, skip-cert-verify, payload format), event types, enabled.

A target's auth header is a secret: it is sent on to the destination when the source reveals it,
left out of every comparison and report, and where the source does not reveal it (the field is
absent or masked) the report says which policy needs it re-entered by hand.
"""

from __future__ import annotations

from typing import Any

from ferry.harbor.client import HarborAPI
from ferry.harbor.resource import BaseKind, Context, Item, Place

AUTH = "auth_header"


def target(t: dict[str, Any]) -> dict[str, Any]:
    return {"type": str(t.get("type") or "http"), "address": str(t.get("address") or ""),
            "skip_cert_verify": bool(t.get("skip_cert_verify")), "payload_format": str(t.get("payload_format") or "")}


def hidden_header(t: dict[str, Any]) -> bool:
    """True when the source had no way of telling us the header: absent, or a mask like ``*****``."""
    value = t.get(AUTH)
    return value is None or (isinstance(value, str) and value != "" and set(value) == {"*"})


class Webhooks(BaseKind):
    name = "webhooks"

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        out = {}
        async for p in api.list(place.api_path("webhook/policies")):
            targets = [t for t in p.get("targets") or [] if isinstance(t, dict)]
            body = {"description": str(p.get("description") or ""), "enabled": bool(p.get("enabled")),
                    "event_types": sorted(str(e) for e in p.get("event_types") or []),
                    "targets": [target(t) for t in targets]}
            out[str(p.get("name"))] = Item(body, {"id": p.get("id"), "targets": targets})
        return out

    async def portable(self, api: HarborAPI, source: Item) -> Any:
        """The targets without their auth headers: an export on disk carries no credentials (the
        import reports which policies need theirs re-entered)."""
        return {"targets": [{k: v for k, v in t.items() if k != AUTH} for t in source.ref["targets"]]}

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        kept = {t.get("address"): t.get(AUTH) for t in existing.ref["targets"]} if existing else {}
        targets, reenter = [], []
        for t, raw in zip(body["targets"], source.ref["targets"], strict=True):
            header = kept.get(t["address"]) if hidden_header(raw) else raw.get(AUTH)
            if hidden_header(raw) and not header:
                reenter.append(t["address"])
            targets.append({**t, **({AUTH: header} if header else {})})
        request = {"name": name, **body, "targets": targets}
        path = place.api_path("webhook/policies")
        if existing is None:
            await ctx.dst.send("POST", path, request, ok=(201,), what=f"Harbor webhook creation ({name})")
        else:
            await ctx.dst.send("PUT", f"{path}/{existing.ref['id']}", {**request, "id": existing.ref["id"]},
                               ok=(200,), what=f"Harbor webhook update ({name})")
        return f"re-enter the auth header of {', '.join(reenter)}" if reenter else ""
