"""``/ping``, ``/systeminfo`` and ``/users/current``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import ts, unauthorized
from tests.support.harbor.model import Caller
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def systeminfo(srv: HarborServer, caller: Caller) -> dict[str, Any]:
    info: dict[str, Any] = {
        "auth_mode": srv.auth_mode,
        "banner_message": "",
        "primary_auth_mode": False,
        "self_registration": False,
    }
    if caller.authenticated:  # Harbor hides the rest from anonymous callers
        info.update(
            {
                "current_time": ts(time.time()),
                "external_url": srv.url,
                "harbor_version": srv.harbor_version,
                "has_ca_root": False,
                "notification_enable": True,
                "project_creation_restriction": srv.project_creation_restriction,
                "read_only": srv.read_only,
                "registry_storage_provider_name": "filesystem",
                "registry_url": srv.host,
            }
        )
        if srv.chartmuseum is not None:  # charts (issue 11): Harbor 2.7's GeneralInfo field
            info["with_chartmuseum"] = True
    return dict(sorted(info.items()))


def current_user(call: Call) -> web.Response:
    if call.caller.user is None:
        raise unauthorized()
    return web.json_response(call.caller.user.to_json())


ROUTES = [
    Route("ping", {"GET": lambda srv, call: web.Response(text="Pong", content_type="text/plain")}),
    Route("systeminfo", {"GET": lambda srv, call: web.json_response(systeminfo(srv, call.caller))}),
    Route("users/current", {"GET": lambda srv, call: current_user(call)}),
]
