"""The API's routing table: each resource module lists its routes, the server matches them.

Like go-swagger's router, the path is unescaped once before matching, so a repository name
escaped once (``a%2Fb``) becomes two segments and matches nothing (404), while Harbor's double
escape (``a%252Fb``) arrives as one segment ``a%2Fb``, which the handler unescapes once more.
A path that matches a route but not its method is 405 with the allowed methods, as on Harbor.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from tests.support.harbor.common import API, HarborError
from tests.support.harbor.model import Caller

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


@dataclass(frozen=True)
class Call:
    """One API request as a handler sees it: ``params`` holds the ``{name}`` segments of its route."""

    request: web.Request
    caller: Caller
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_name(self) -> bool:
        """``X-Is-Resource-Name: true``: a project given by name even when it looks like an ID."""
        return self.request.headers.get("X-Is-Resource-Name", "").lower() == "true"


Handler = Callable[["HarborServer", Call], web.StreamResponse]


@dataclass(frozen=True)
class Route:
    """``pattern`` is a path under ``/api/v2.0`` with ``{name}`` segments, e.g. ``projects/{project}``."""

    pattern: str
    methods: Mapping[str, Handler]

    def match(self, segs: list[str]) -> dict[str, str] | None:
        parts = self.pattern.split("/")
        if len(parts) != len(segs):
            return None
        params = {}
        for part, seg in zip(parts, segs, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = seg
            elif part != seg:
                return None
        return params


class Router:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)

    def dispatch(self, srv: HarborServer, request: web.Request, path: str, caller: Caller,
                 body: bytes) -> web.StreamResponse:
        segs = urllib.parse.unquote(path[len(API) + 1 :]).rstrip("/").split("/")
        for route in self.routes:
            params = route.match(segs)
            if params is None:
                continue
            handler = route.methods.get(request.method)
            if handler is None:
                allowed = ",".join(route.methods)
                raise HarborError(405, f"method {request.method} is not allowed, but [{allowed}] are")
            return handler(srv, Call(request, caller, body, params))
        raise HarborError(404, f"path {path} was not found")
