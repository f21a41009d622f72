"""Content trust on pull: in a project with ``enable_content_trust_cosign`` set, pulling the manifest
of an artifact that has no cosign signature is refused with ``412 PROJECTPOLICYVIOLATION`` "The image
is not signed in Cosign." (src/server/middleware/contenttrust/cosign.go, on ``GET`` manifests only).
Harbor lets cosign's own clients and scanners through; this fixture lets signatures themselves through
(what a copier fetches after their subjects)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.harbor.common import HarborError

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def refuse_pull(srv: HarborServer, name: str, reference: str) -> HarborError | None:
    project = srv.find_project(name.split("/", 1)[0], is_name=True)
    if project is None or project.metadata.get("enable_content_trust_cosign") != "true":
        return None
    view = srv.storage.repo_view(name)
    if view is None:
        return None
    digest = reference if reference.startswith("sha256:") else (view.tags.get(reference) or ("",))[0]
    if digest not in view.artifacts or digest in view.accessories:
        return None
    if any(a.subject == digest and a.type == "signature.cosign" for a in view.accessories.values()):
        return None
    return HarborError(412, "The image is not signed in Cosign.", "PROJECTPOLICYVIOLATION")
