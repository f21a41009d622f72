"""Harbor's token service (``GET /service/token``) and the tokens it issues for the registry.

Requested actions the caller may not perform are dropped from the token, never refused; they
surface later as a 401 from the registry, as on Harbor (src/core/service/token).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from cryptography import x509

from tests.support.harbor.common import ISSUER, SERVICE
from tests.support.harbor.model import Caller

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def grant(srv: HarborServer, caller: Caller, scopes: Iterable[str]) -> list[dict[str, Any]]:
    """Harbor's access filters: requested actions that the caller may not do are dropped
    (never an error). Push needs an existing project and a developer-or-higher role."""
    access: list[dict[str, Any]] = []
    for scope in scopes:
        type_, sep, rest = scope.partition(":")
        name, sep2, actions_s = rest.rpartition(":")
        if not (sep and sep2 and type_ and name):
            continue
        wanted = [a for a in actions_s.split(",") if a]
        granted: list[str] = []
        if type_ == "repository":
            project = srv.find_project(name.split("/", 1)[0], is_name=True) if "/" in name else None
            if project is not None:
                allowed = set()
                if caller.can_pull(project):
                    allowed.add("pull")
                if caller.can_push(project):
                    allowed.add("push")
                if caller.can_delete(project):
                    allowed.update(("delete", "*"))
                granted = [a for a in wanted if a in allowed]
        elif type_ == "registry" and name == "catalog" and caller.sysadmin:
            granted = wanted
        access.append({"type": type_, "name": name, "actions": granted})
    return access



def mint(srv: HarborServer, caller: Caller, access: list[dict[str, Any]]) -> str:
    assert srv.signer is not None
    return srv.signer.issue(
        caller.username, SERVICE, access, expires_in=srv.token_expires_in, issuer=ISSUER, header="x5c"
    )



def token_endpoint(srv: HarborServer, request: web.Request) -> web.Response:
    if request.method != "GET":
        return web.Response(status=405, text="Method Not Allowed")
    service = request.query.get("service", "")
    if service != SERVICE:
        return web.Response(status=400, text=f"Unable to handle service: {service}")
    caller = srv.caller(request)
    scopes = [s for sector in request.query.getall("scope", []) for s in sector.split(" ") if s]
    if not caller.authenticated and not scopes:  # Harbor: "for docker login"
        return web.Response(status=401, text="Unauthorized")
    token = mint(srv, caller, grant(srv, caller, scopes))
    body = {
        "token": token,
        "expires_in": srv.token_expires_in,
        "issued_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return web.json_response(body)


def bearer_access(srv: HarborServer, request: web.Request) -> list[dict[str, Any]]:
    """The ``access`` claim of a valid bearer token this server issued ([] otherwise)."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() != "bearer " or srv.signer is None:
        return []
    key = x509.load_pem_x509_certificate(srv.signer.cert_path.read_bytes()).public_key()
    try:
        claims = jwt.decode(auth[7:].strip(), key, algorithms=["ES256"], audience=SERVICE, issuer=ISSUER)  # type: ignore[arg-type]
    except jwt.PyJWTError:
        return []
    return [a for a in claims.get("access") or [] if isinstance(a, dict)]

