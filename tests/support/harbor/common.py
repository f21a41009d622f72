"""What every part of the Harbor test server shares: names, versions, media types, Harbor's error
shape and its time format."""

from __future__ import annotations

import datetime as dt
import re
from typing import ClassVar

from aiohttp import web

ADMIN_PASSWORD = "Harbor12345"
SERVICE = "harbor-registry"
ISSUER = "harbor-token-issuer"
API = "/api/v2.0"
HARBOR_VERSION = "v2.13.1-ferry-test"

#: Harbor's project roles by the names used in its API, with their role IDs.
ROLES: dict[str, int] = {"projectAdmin": 1, "developer": 2, "guest": 3, "maintainer": 4, "limitedGuest": 5}
PUSH_ROLES = {1, 2, 4}  # projectAdmin, developer, maintainer
DELETE_ROLES = {1, 4}  # projectAdmin, maintainer

ZERO_TIME = "0001-01-01T00:00:00.000Z"  # Go's zero time.Time as strfmt.DateTime renders it
IMAGE_ICON = "sha256:0048162a053eef4d4ce3fe7518615bef084403614f8bca43b40ae2e762e11e06"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
INDEX_TYPES = {OCI_INDEX, DOCKER_LIST}
TYPE_BY_CONFIG = {
    OCI_CONFIG: "IMAGE",
    DOCKER_CONFIG: "IMAGE",
    "application/vnd.cncf.helm.config.v1+json": "CHART",
    "application/vnd.cnab.manifest.v1": "CNAB",
    "application/vnd.wasm.config.v1+json": "WASM",
}
#: Accessory types Harbor's subject middleware derives from a referrer's artifactType.
ACCESSORY_TYPE_BY_ARTIFACT_TYPE = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature.cosign",
    "application/vnd.cncf.notary.signature": "signature.notation",
    "application/vnd.goharbor.harbor.sbom.v1": "sbom.harbor",
}
COSIGN_TAG = re.compile(r"^sha256-([0-9a-f]{64})\.sig$")
PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
V2_NAME = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)(?:/(?P<rest>.*))?$")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def ts(t: float | None) -> str:
    """A Unix time as Harbor renders ``strfmt.DateTime`` (milliseconds, ``Z``); None → zero time."""
    if not t:
        return ZERO_TIME
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


class HarborError(Exception):
    """An API error, rendered as Harbor's ``{"errors":[{"code","message"}]}``."""

    CODES: ClassVar[dict[int, str]] = {
        400: "BAD_REQUEST",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        409: "CONFLICT",
        412: "PRECONDITION",
        422: "UNPROCESSABLE_ENTITY",
        500: "UNKNOWN",
    }

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or self.CODES.get(status, "UNKNOWN")
        self.message = message

    def response(self) -> web.Response:
        return web.json_response({"errors": [{"code": self.code, "message": self.message}]}, status=self.status)


READ_ONLY = HarborError(403, "The system is in read only mode. Any modification is prohibited.", "DENIED")


def unauthorized() -> HarborError:
    return HarborError(401, "UnAuthorized")


def forbidden() -> HarborError:
    return HarborError(403, "forbidden")


