"""Harbor's ChartMuseum (Harbor up to 2.7): detect it, list charts and versions, download a
version's ``.tgz`` and ``.prov``, upload a chart with its provenance file.

Paths are Harbor 2.7's legacy chart API (``/api/chartrepo/{project}/charts…``, outside
``/api/v2.0``) and the Helm repository it fronts (``/chartrepo/{project}/charts/<file>``).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ferry.errors import AuthError, NotFoundError, ProtocolError
from ferry.harbor.client import HarborAPI

CHART_API = "/api/chartrepo"
CHART_REPO = "/chartrepo"
_ARCHIVE_LIMIT = 256 * 1024 * 1024  # a chart archive is small; Helm itself refuses charts above 20 MiB


@dataclass(frozen=True, slots=True)
class ChartVersion:
    project: str
    name: str
    version: str
    digest: str  # "sha256:…" of the .tgz, as ChartMuseum's index gives it
    created: float  # when ChartMuseum stored it (Unix time); 0 unknown
    filename: str  # the .tgz's name in the chart repository

    @property
    def label(self) -> str:
        return f"{self.project}/{self.name}:{self.version}"


def parse_time(value: Any) -> float:
    """ChartMuseum's RFC 3339 times (nanoseconds and all) as Unix time; 0 when absent or unreadable."""
    if not isinstance(value, str):
        return 0.0
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


class ChartMuseumAPI:
    """The chart repository of one Harbor, through its HarborAPI's HTTP client (Basic auth)."""

    def __init__(self, api: HarborAPI) -> None:
        self.api = api
        self.http = api.http
        self.host = api.host

    async def _json(self, path: str, what: str, allow: tuple[int, ...] = ()) -> Any:
        return await self.api.get_json(path, allow=allow, what=what)

    async def available(self) -> bool:
        """Harbor 2.7 and earlier with ChartMuseum: systeminfo says so, or its health check answers."""
        info = await self.api.systeminfo()
        if "with_chartmuseum" in info:
            return info["with_chartmuseum"] is True
        version = re.match(r"v?(\d+)\.(\d+)", str(info.get("harbor_version", "")))
        if version:  # no need to ask: 2.8 removed ChartMuseum, and with it the systeminfo field
            return (int(version[1]), int(version[2])) < (2, 8)
        try:
            health = await self._json(f"{CHART_API}/health", "ChartMuseum health", allow=(404, 401, 403, 405))
        except (NotFoundError, AuthError, ProtocolError):
            return False
        return isinstance(health, dict) and health.get("healthy") is True

    async def chart_names(self, project: str) -> list[str]:
        data = await self._json(f"{CHART_API}/{quote(project, safe='')}/charts", f"charts of project {project}",
                                allow=(404,))
        if data == 404:
            return []
        if not isinstance(data, list):
            raise ProtocolError(f"{self.host}: the chart list of {project} is not a list")
        return [str(c["name"]) for c in data if isinstance(c, dict) and c.get("name")]

    async def versions(self, project: str, name: str) -> list[ChartVersion]:
        data = await self._json(f"{CHART_API}/{quote(project, safe='')}/charts/{quote(name, safe='')}",
                                f"versions of chart {project}/{name}", allow=(404,))
        if data == 404:
            return []
        if not isinstance(data, list):
            raise ProtocolError(f"{self.host}: the versions of chart {project}/{name} are not a list")
        return [self._version(project, name, v) for v in data if isinstance(v, dict)]

    def _version(self, project: str, name: str, v: dict[str, Any]) -> ChartVersion:
        version = str(v.get("version", ""))
        urls = v.get("urls") if isinstance(v.get("urls"), list) else []
        filename = str(urls[0]).rpartition("/")[2] if urls else f"{name}-{version}.tgz"
        digest = str(v.get("digest", ""))
        if not version or not digest:
            raise ProtocolError(f"{self.host}: chart {project}/{name} lists a version without version or digest")
        return ChartVersion(project, name, version, digest if ":" in digest else f"sha256:{digest}",
                            parse_time(v.get("created")), filename)

    async def download(self, cv: ChartVersion) -> bytes:
        path = f"{CHART_REPO}/{quote(cv.project, safe='')}/charts/{quote(cv.filename, safe='')}"
        _, raw = await self.http.fetch("GET", path, basic=True, what=f"chart {cv.label}", limit=_ARCHIVE_LIMIT)
        return raw

    async def download_prov(self, cv: ChartVersion) -> bytes | None:
        path = f"{CHART_REPO}/{quote(cv.project, safe='')}/charts/{quote(cv.filename + '.prov', safe='')}"
        resp, raw = await self.http.fetch("GET", path, basic=True, allow=(404,), what=f"provenance of {cv.label}",
                                          limit=_ARCHIVE_LIMIT)
        return None if resp.status == 404 else raw

    async def upload(self, project: str, filename: str, archive: bytes, prov: bytes | None) -> bool:
        """Upload a chart (and its provenance file) in one multipart request; False when the version
        is already there (409)."""
        boundary = secrets.token_hex(16)
        parts = [("chart", filename, archive)] + ([("prov", filename + ".prov", prov)] if prov is not None else [])
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{fname}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
            for field, fname, data in parts
        ) + f"--{boundary}--\r\n".encode()
        resp = await self.http.request(
            "POST", f"{CHART_API}/{quote(project, safe='')}/charts", basic=True, ok=(201, 200), allow=(409,),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}, body=body,
            what=f"chart upload {project}/{filename}",
        )
        resp.release()
        return resp.status != 409
