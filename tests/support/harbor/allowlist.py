"""The system CVE allowlist: ``GET/PUT /system/CVEAllowlist`` (read by any authenticated user,
set by sysadmins; project allowlists live in the project, see :mod:`metadata`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from tests.support.harbor.common import forbidden, unauthorized
from tests.support.harbor.metadata import allowlist_items, json_body
from tests.support.harbor.projects import allowlist_json
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def get_allowlist(srv: HarborServer, call: Call) -> web.Response:
    if not call.caller.authenticated:
        raise unauthorized()
    a = srv.system_allowlist
    with srv.lock:
        return web.json_response(allowlist_json(1, 0, list(a["items"]), a["expires_at"], a["updated"], a["updated"]))


def put_allowlist(srv: HarborServer, call: Call) -> web.Response:
    if not call.caller.sysadmin:
        raise forbidden() if call.caller.authenticated else unauthorized()
    items, expires = allowlist_items(json_body(call.body, "allowlist"), "allowlist")
    with srv.lock:
        srv.system_allowlist.update({"items": items, "expires_at": expires, "updated": time.time()})
    return web.Response(status=200)


ROUTES = [Route("system/CVEAllowlist", {"GET": get_allowlist, "PUT": put_allowlist})]
