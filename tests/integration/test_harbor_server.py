"""The Harbor test server (tests/support/harbor/) checked against Harbor's own OpenAPI spec.

Every JSON response kind the fixture produces is validated against the Swagger 2.0 definitions in
``shared/harbor/swagger.yaml`` (``$ref``s resolved), with go-swagger's serialisation rules applied
as Harbor's Go server applies them:

- arrays are never omitted: an empty one is ``null`` (go-swagger generates no ``omitempty`` for
  slices; Harbor returns ``"labels": null``), unless the spec says ``x-omitempty: true``;
- ``x-nullable: true`` allows ``null``;
- ``additionalProperties: {type: object}`` is Go's ``interface{}``: any JSON value;
- properties marked ``x-omitempty: false`` must be present;
- objects may carry no property the spec does not define (stricter than the spec, which allows
  extras, so that the fixture cannot invent fields Harbor does not have).

Behaviour checked besides: pagination over more than 100 items (``X-Total-Count``, ``Link``),
422 above ``page_size=100``, double-encoded repository names, wrong password → anonymous,
private projects hidden, project creation 201/409/403/401, token service dropping denied
actions, skopeo pushes through ``/v2/`` showing up as artifacts with all their tags, index
children (``q=base=*``) and cosign/OCI-referrer accessories.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

from tests.support import images, skopeo
from tests.support.harbor import ADMIN_PASSWORD, HarborPushError, HarborServer, V2Client
from tests.support.harbor.common import COSIGN_LAYER, OCI_CONFIG, OCI_MANIFEST, ZERO_TIME
from tests.support.harbor_http import Creds, all_pages, api, call, token_access

if TYPE_CHECKING:
    from tests.support.harbor_spec import Spec

pytest_plugins = ["tests.support.harbor_fixtures", "tests.support.harbor_spec"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
]

NOTATION = "application/vnd.cncf.notary.signature"


def push_layout_v2(client: V2Client, layout: images.Layout, ref: str, repo: str, reference: str) -> str:
    """Push one manifest of an OCI layout (and its blobs) with plain HTTP through ``/v2/``."""
    desc = layout.descriptor(ref)
    manifest = layout.manifest(ref)
    for blob in [manifest.get("config"), *manifest.get("layers", [])]:
        if blob:
            client.push_blob(repo, layout.read_blob(blob["digest"]))
    return client.push_manifest(repo, reference, layout.manifest_bytes(ref), desc["mediaType"])


def cosign_signature(layout: images.Layout, subject: str, seed: int = 0) -> str:
    """A cosign tag-style signature (simplesigning layer) tagged ``sha256-<hex>.sig``."""
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subject}}, "seed": seed}).encode()
    layer = layout.add_blob(payload, COSIGN_LAYER, annotations={"dev.cosignproject.cosign/signature": "MEUCIQ=="})
    config = layout.add_json_blob(
        {"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": []}}, OCI_CONFIG
    )
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
    return layout.add_manifest(manifest, OCI_MANIFEST, subject.replace(":", "-") + ".sig")["digest"]


ADMIN = ("admin", ADMIN_PASSWORD)
DEV = ("dev", "dev-pw")
GUEST = ("gus", "gus-pw")
EVE = ("eve", "eve-pw")


# --------------------------------------------------------------------------------------------
# a seeded server shared by the read-only tests
# --------------------------------------------------------------------------------------------


class Seeded:
    server: HarborServer
    image: str  # private1/team/app:v1 and :v2
    index: str  # private1/team/app:multi
    children: list[str]
    untagged: str
    sig: str  # cosign signature of image, tag sha256-<hex>.sig
    notation: str  # OCI referrer of the index
    many: list[str]  # public1/many: 105 artifacts
    dlist: str  # public1/tools:dlist, a Docker manifest list
    schema2: str  # public1/tools:d2, a Docker schema2 image


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    root = tmp_path_factory.mktemp("harbor-seeded")
    server = HarborServer(
        root / "server",
        users={"dev": ("dev-pw", False), "gus": ("gus-pw", False), "eve": ("eve-pw", False)},
        projects={
            "private1": {"storage_limit": 1 << 30, "members": {"dev": "developer", "gus": "guest"}},
            "public1": {"public": True},
        },
    ).start()
    s = Seeded()
    s.server = server
    try:
        layout = images.Layout(root / "layout")
        s.image = images.oci_image(layout, "v1", seed=1)
        layout.tag(layout.descriptor("v1"), "v2")
        s.index = images.oci_index(layout, "multi", seed=2, platforms=images.DEFAULT_PLATFORMS[:2])
        s.children = [m["digest"] for m in layout.manifest("multi")["manifests"]]
        s.sig = cosign_signature(layout, s.image)
        s.notation = images.referrer(layout, s.index, "notation", seed=3, artifact_type=NOTATION)
        for ref in ("v1", "v2", "multi", s.image.replace(":", "-") + ".sig"):
            skopeo.push_layout(layout.path, ref, server.ref(f"private1/team/app:{ref}"), creds=DEV)
        s.dlist = images.docker_manifest_list(layout, "dlist", seed=4)
        s.schema2 = images.docker_schema2_image(layout, "d2", seed=6)
        for ref in ("dlist", "d2"):
            skopeo.push_layout(layout.path, ref, server.ref(f"public1/tools:{ref}"), creds=ADMIN)
        client = server.client(DEV)
        push_layout_v2(client, layout, "notation", "private1/team/app", s.notation)
        s.untagged, _ = client.push_image("private1/team/app", None, seed=99)
        admin = server.client(ADMIN)
        admin.push_image("public1/many", "t000", seed=1000, annotations={"i": "0"})  # blobs once

        def push(i: int) -> str:
            return admin.push_image("public1/many", f"t{i:03d}", seed=1000, annotations={"i": str(i)})[0]

        with ThreadPoolExecutor(6) as pool:
            s.many = list(pool.map(push, range(105)))
        yield s
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# recognising Harbor, users
# --------------------------------------------------------------------------------------------


def test_ping_and_systeminfo(seeded: Seeded, spec: Spec) -> None:
    status, headers, body = api(seeded.server, "/ping")
    assert (status, body) == (200, b"Pong")
    assert headers["Content-Type"].startswith("text/plain")

    status, _, anon = api(seeded.server, "/systeminfo")
    assert status == 200
    spec.check("GeneralInfo", anon)
    assert anon["auth_mode"] == "db_auth" and "harbor_version" not in anon

    status, _, full = api(seeded.server, "/systeminfo", ADMIN)
    assert status == 200
    spec.check("GeneralInfo", full)
    assert full["harbor_version"].startswith("v2.")
    assert full["registry_url"] == seeded.server.host
    assert full["project_creation_restriction"] == "adminonly"


def test_users_current(seeded: Seeded, spec: Spec) -> None:
    status, _, body = api(seeded.server, "/users/current", DEV)
    assert status == 200
    spec.check("UserResp", body)
    assert body["username"] == "dev" and body["sysadmin_flag"] is False

    status, _, body = api(seeded.server, "/users/current", ADMIN)
    assert status == 200 and body["sysadmin_flag"] is True

    for creds in (None, ("dev", "wrong"), ("nobody", "x")):
        status, _, body = api(seeded.server, "/users/current", creds)
        assert status == 401
        spec.check("Errors", body)
        assert body["errors"][0]["code"] == "UNAUTHORIZED"


def test_wrong_password_is_anonymous_not_refused(seeded: Seeded) -> None:
    """Harbor does not refuse wrong Basic credentials: the caller sees what anonymous sees."""
    status, _, projects = api(seeded.server, "/projects", ("dev", "wrong"))
    assert status == 200
    assert {p["name"] for p in projects} == {"library", "public1"}
    assert api(seeded.server, "/projects/private1", ("dev", "wrong"))[0] == 401
    assert api(seeded.server, "/projects/private1", DEV)[0] == 200


def test_unknown_paths_and_methods(seeded: Seeded, spec: Spec) -> None:
    status, _, body = api(seeded.server, "/nothing/here", ADMIN)
    assert status == 404
    spec.check("Errors", body)
    status, _, body = api(seeded.server, "/projects/private1", ADMIN, method="PATCH")
    assert status == 405
    spec.check("Errors", body)


# --------------------------------------------------------------------------------------------
# projects
# --------------------------------------------------------------------------------------------


def test_project_list_and_item_validate(seeded: Seeded, spec: Spec) -> None:
    status, headers, body = api(seeded.server, "/projects", ADMIN)
    assert status == 200
    spec.check_list("Project", body)
    assert headers["X-Total-Count"] == "3"
    assert "Link" not in headers
    by_name = {p["name"]: p for p in body}
    assert by_name["private1"]["metadata"] == {"public": "false"}
    assert by_name["public1"]["metadata"] == {"public": "true"}
    assert by_name["private1"]["repo_count"] == 1

    status, _, item = api(seeded.server, "/projects/private1", DEV)
    assert status == 200
    spec.check("Project", item)
    assert item["current_user_role_id"] == 2 and item["current_user_role_ids"] == [2]
    project_id = item["project_id"]
    assert api(seeded.server, f"/projects/{project_id}", DEV)[2]["name"] == "private1"

    # name filters: the name parameter and q are fuzzy (name=~) or exact
    assert [p["name"] for p in api(seeded.server, "/projects?name=ublic", ADMIN)[2]] == ["public1"]
    assert [p["name"] for p in api(seeded.server, "/projects?q=name%3D~priv", ADMIN)[2]] == ["private1"]
    assert api(seeded.server, "/projects?q=name%3Dpriv", ADMIN)[2] == []


def test_private_project_hidden(seeded: Seeded, spec: Spec) -> None:
    def names(creds: Creds) -> set[str]:
        status, _, body = api(seeded.server, "/projects", creds)
        assert status == 200
        return {p["name"] for p in body}

    assert names(None) == {"library", "public1"}
    assert names(EVE) == {"library", "public1"}
    assert names(GUEST) == {"library", "public1", "private1"}
    assert names(ADMIN) == {"library", "public1", "private1"}
    assert api(seeded.server, "/projects?public=false", None)[1]["X-Total-Count"] == "0"

    # the private project and everything under it: 401 anonymous, 403 authenticated non-member
    for path in (
        "/projects/private1",
        "/projects/private1/repositories",
        "/projects/private1/repositories/team%252Fapp",
        "/projects/private1/repositories/team%252Fapp/artifacts",
        "/projects/private1/repositories/team%252Fapp/artifacts/v1",
    ):
        status, _, body = api(seeded.server, path)
        assert status == 401, path
        spec.check("Errors", body)
        status, _, body = api(seeded.server, path, EVE)
        assert status == 403, path
        spec.check("Errors", body)
        assert api(seeded.server, path, GUEST)[0] == 200, path

    # a missing project looks like a private one, except to sysadmins
    assert api(seeded.server, "/projects/nope", None)[0] == 401
    assert api(seeded.server, "/projects/nope", EVE)[0] == 403
    status, _, body = api(seeded.server, "/projects/nope", ADMIN)
    assert status == 404
    spec.check("Errors", body)

    # HEAD /projects?project_name=: Harbor's existence check
    assert api(seeded.server, "/projects?project_name=private1", ADMIN, method="HEAD")[0] == 200
    assert api(seeded.server, "/projects?project_name=nope", ADMIN, method="HEAD")[0] == 404
    assert api(seeded.server, "/projects?project_name=private1", None, method="HEAD")[0] == 401


def test_project_creation(harbor: HarborServer, spec: Spec) -> None:
    harbor.add_user("bob", "bob-pw")
    body = {"project_name": "made", "metadata": {"public": "false"}, "storage_limit": 5 << 30}

    status, _, err = api(harbor, "/projects", None, method="POST", body=body)
    assert status == 401
    spec.check("Errors", err)
    assert api(harbor, "/projects", ("admin", "wrong"), method="POST", body=body)[0] == 401
    status, _, err = api(harbor, "/projects", ("bob", "bob-pw"), method="POST", body=body)
    assert status == 403
    spec.check("Errors", err)

    status, headers, _ = api(harbor, "/projects", ADMIN, method="POST", body=body)
    assert status == 201
    assert headers["Location"].startswith("/api/v2.0/projects/")
    status, _, project = call(harbor, headers["Location"], ADMIN)
    assert status == 200
    spec.check("Project", project)
    assert project["name"] == "made" and project["metadata"]["public"] == "false"
    assert project["owner_name"] == "admin"

    status, _, err = api(harbor, "/projects", ADMIN, method="POST", body=body)
    assert status == 409
    spec.check("Errors", err)
    assert err["errors"][0]["code"] == "CONFLICT"

    # public project, name in Location on request
    status, headers, _ = api(
        harbor,
        "/projects",
        ADMIN,
        method="POST",
        body={"project_name": "open", "metadata": {"public": "true"}},
        headers={"X-Resource-Name-In-Location": "true"},
    )
    assert status == 201 and headers["Location"] == "/api/v2.0/projects/open"
    assert {p["name"] for p in api(harbor, "/projects")[2]} == {"library", "open"}

    # metadata values are strings; names are lower case
    status, _, err = api(
        harbor, "/projects", ADMIN, method="POST", body={"project_name": "x1", "metadata": {"public": True}}
    )
    assert status == 422
    spec.check("Errors", err)
    assert api(harbor, "/projects", ADMIN, method="POST", body={"project_name": "Bad Name"})[0] == 400

    # quota: storage_limit kept and readable
    status, _, quotas = api(harbor, f"/quotas?reference=project&reference_id={project['project_id']}", ADMIN)
    assert status == 200
    spec.check_list("Quota", quotas)
    assert len(quotas) == 1 and quotas[0]["hard"] == {"storage": 5 << 30}
    assert quotas[0]["ref"]["name"] == "made"
    status, _, quota = api(harbor, f"/quotas/{quotas[0]['id']}", ADMIN)
    assert status == 200
    spec.check("Quota", quota)
    assert api(harbor, "/quotas", ("bob", "bob-pw"))[0] == 403
    assert api(harbor, "/quotas", None)[0] == 401
    open_id = api(harbor, "/projects/open", ADMIN)[2]["project_id"]
    assert api(harbor, f"/quotas?reference=project&reference_id={open_id}", ADMIN)[2][0]["hard"] == {"storage": -1}


def test_everyone_may_create_projects_when_configured(harbor_factory: Any) -> None:
    server = harbor_factory(users={"bob": ("bob-pw", False)}, project_creation_restriction="everyone")
    body = {"project_name": "bobs", "metadata": {"public": "false"}, "storage_limit": 1 << 20}
    assert api(server, "/projects", ("bob", "bob-pw"), method="POST", body=body)[0] == 201
    status, _, project = api(server, "/projects/bobs", ("bob", "bob-pw"))
    assert status == 200 and project["current_user_role_id"] == 1
    # a non-admin's storage_limit is replaced by the default (unlimited)
    quotas = api(server, f"/quotas?reference_id={project['project_id']}", ADMIN)[2]
    assert quotas[0]["hard"] == {"storage": -1}


def test_sid_cookie_makes_writes_fail_csrf(harbor: HarborServer, spec: Spec) -> None:
    status, headers, _ = api(harbor, "/projects", ADMIN)
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert cookie.startswith("sid=")
    body = {"project_name": "csrf", "metadata": {"public": "false"}}
    status, _, err = api(harbor, "/projects", ADMIN, method="POST", body=body, headers={"Cookie": cookie})
    assert status == 403
    spec.check("Errors", err)
    assert err["errors"][0]["message"] == "CSRF token invalid"
    # the same cookie breaks registry writes too; reads keep working
    status, _, _ = call(harbor, "/v2/library/x/blobs/uploads/", ADMIN, method="POST", headers={"Cookie": cookie})
    assert status == 403
    assert api(harbor, "/projects", ADMIN, headers={"Cookie": cookie})[0] == 200
    assert api(harbor, "/projects", ADMIN, method="POST", body=body)[0] == 201


# --------------------------------------------------------------------------------------------
# pagination
# --------------------------------------------------------------------------------------------


def test_pagination_over_100_projects(harbor: HarborServer, spec: Spec) -> None:
    for i in range(105):
        harbor.create_project(f"p{i:03d}", public=i % 2 == 0)
    status, headers, body = api(harbor, "/projects", ADMIN)
    assert status == 200 and len(body) == 10  # default page_size
    assert headers["X-Total-Count"] == "106"
    assert headers["Link"] == '</api/v2.0/projects?page=2&page_size=10>; rel="next"'

    status, _, err = api(harbor, "/projects?page_size=101", ADMIN)
    assert status == 422
    spec.check("Errors", err)
    assert err["errors"][0]["code"] == "UNPROCESSABLE_ENTITY"

    status, headers, page1 = api(harbor, "/projects?page_size=100", ADMIN)
    assert len(page1) == 100 and headers["X-Total-Count"] == "106"
    assert headers["Link"] == '</api/v2.0/projects?page=2&page_size=100>; rel="next"'
    status, headers, page2 = api(harbor, "/projects?page=2&page_size=100", ADMIN)
    assert len(page2) == 6
    assert headers["Link"] == '</api/v2.0/projects?page=1&page_size=100>; rel="prev"'
    spec.check_list("Project", page2)
    status, headers, _ = api(harbor, "/projects?page=2&page_size=50", ADMIN)
    assert headers["Link"] == (
        '</api/v2.0/projects?page=1&page_size=50>; rel="prev" , </api/v2.0/projects?page=3&page_size=50>; rel="next"'
    )
    names = [p["name"] for p in page1 + page2]
    assert len(set(names)) == 106

    # following Link keeps the other query parameters (sorted, unescaped, as Harbor renders them)
    status, headers, _ = api(harbor, "/projects?q=name%3D~p0&page_size=20", ADMIN)
    assert headers["X-Total-Count"] == "100"
    assert headers["Link"] == '</api/v2.0/projects?page=2&page_size=20&q=name=~p0>; rel="next"'
    assert len(all_pages(harbor, "/projects?page_size=7", ADMIN)) == 106
    assert len(all_pages(harbor, "/projects?page_size=100", None)) == 54  # public only: library + 53


def test_pagination_over_100_artifacts(seeded: Seeded, spec: Spec) -> None:
    server = seeded.server
    path = "/projects/public1/repositories/many/artifacts"
    status, headers, body = api(server, path + "?page_size=100&with_tag=true", None)
    assert status == 200
    spec.check_list("Artifact", body)
    assert headers["X-Total-Count"] == "105" and len(body) == 100
    assert headers["Link"] == (
        '</api/v2.0/projects/public1/repositories/many/artifacts?page=2&page_size=100&with_tag=true>; rel="next"'
    )
    assert api(server, path + "?page_size=101")[0] == 422
    arts = all_pages(server, path + "?page_size=100&with_tag=true", None)
    assert sorted(a["digest"] for a in arts) == sorted(seeded.many)
    # newest first, like Harbor's default sort
    push_times = [a["push_time"] for a in arts]
    assert push_times == sorted(push_times, reverse=True)
    assert len(all_pages(server, path + "?page_size=9", None)) == 105

    status, headers, repos = api(server, "/projects/public1/repositories", None)
    spec.check_list("Repository", repos)
    assert [(r["name"], r["artifact_count"]) for r in repos] == [("public1/many", 105), ("public1/tools", 2)]


# --------------------------------------------------------------------------------------------
# repositories and artifacts
# --------------------------------------------------------------------------------------------


def test_repository_name_is_double_encoded(seeded: Seeded, spec: Spec) -> None:
    server = seeded.server
    status, _, repo = api(server, "/projects/private1/repositories/team%252Fapp", DEV)
    assert status == 200
    spec.check("Repository", repo)
    assert repo["name"] == "private1/team/app"

    for once in (
        "/projects/private1/repositories/team%2Fapp",
        "/projects/private1/repositories/team%2Fapp/artifacts",
        "/projects/private1/repositories/team%2Fapp/artifacts/v1",
        "/projects/private1/repositories/team/app",
    ):
        status, _, body = api(server, once, DEV)
        assert status == 404, once
        spec.check("Errors", body)
    status, _, body = api(server, "/projects/private1/repositories/nothere", DEV)
    assert status == 404
    spec.check("Errors", body)

    status, _, repos = api(server, "/projects/private1/repositories", DEV)
    spec.check_list("Repository", repos)
    assert [r["name"] for r in repos] == ["private1/team/app"]
    status, _, everything = api(server, "/repositories?page_size=100", DEV)
    assert status == 200
    spec.check_list("Repository", everything)
    assert {r["name"] for r in everything} == {"private1/team/app", "public1/many", "public1/tools"}
    assert {r["name"] for r in api(server, "/repositories", EVE)[2]} == {"public1/many", "public1/tools"}


def test_skopeo_push_shows_up_as_artifacts(seeded: Seeded, spec: Spec) -> None:
    server = seeded.server
    base = "/projects/private1/repositories/team%252Fapp/artifacts"
    status, headers, arts = api(server, base + "?with_tag=true&page_size=100", GUEST)
    assert status == 200
    spec.check_list("Artifact", arts)
    by_digest = {a["digest"]: a for a in arts}
    # top level: the image, the index, the untagged image; not the index children, not accessories
    assert set(by_digest) == {seeded.image, seeded.index, seeded.untagged}
    assert headers["X-Total-Count"] == "3"

    image = by_digest[seeded.image]
    assert sorted(t["name"] for t in image["tags"]) == ["v1", "v2"]
    assert image["type"] == "IMAGE" and image["manifest_media_type"] == OCI_MANIFEST
    assert image["media_type"] == OCI_CONFIG
    assert image["repository_name"] == "private1/team/app"
    assert image["references"] is None and image["accessories"] is None and image["labels"] is None
    assert image["pull_time"] == ZERO_TIME
    assert image["extra_attrs"]["architecture"] == "amd64"
    assert by_digest[seeded.untagged]["tags"] is None

    index = by_digest[seeded.index]
    assert [t["name"] for t in index["tags"]] == ["multi"]
    assert index["manifest_media_type"] == images.OCI_INDEX
    assert [r["child_digest"] for r in index["references"]] == seeded.children
    assert [r["platform"]["architecture"] for r in index["references"]] == ["amd64", "arm64"]
    assert all(r["parent_id"] == index["id"] for r in index["references"])

    # q=base=* lists the index children too (Harbor's setBaseQuery)
    status, headers, every = api(server, base + "?q=base%3D*&page_size=100", GUEST)
    spec.check_list("Artifact", every)
    assert {a["digest"] for a in every} == {seeded.image, seeded.index, seeded.untagged, *seeded.children}
    assert headers["X-Total-Count"] == "5"
    assert api(server, base + "?q=base%3Dx", GUEST)[0] == 400

    # tag filters
    assert {a["digest"] for a in api(server, base + "?q=tags%3Dnil", GUEST)[2]} == {seeded.untagged}
    assert {a["digest"] for a in api(server, base + "?q=tags%3D*", GUEST)[2]} == {seeded.image, seeded.index}
    assert {a["digest"] for a in api(server, base + "?q=tags%3D~mul", GUEST)[2]} == {seeded.index}

    # with_tag=false: tags null
    assert all(a["tags"] is None for a in api(server, base + "?with_tag=false", GUEST)[2])

    # single artifact by tag and by digest
    for ref in ("v2", seeded.image):
        status, _, one = api(server, f"{base}/{ref}", GUEST)
        assert status == 200
        spec.check("Artifact", one)
        assert one["digest"] == seeded.image and len(one["tags"]) == 2
    status, _, child = api(server, f"{base}/{seeded.children[1]}", GUEST)
    spec.check("Artifact", child)
    assert child["tags"] is None and child["extra_attrs"]["architecture"] == "arm64"
    status, _, err = api(server, f"{base}/nope", GUEST)
    assert status == 404
    spec.check("Errors", err)

    status, _, tags = api(server, f"{base}/v1/tags", GUEST)
    assert status == 200
    spec.check_list("Tag", tags)
    assert sorted(t["name"] for t in tags) == ["v1", "v2"]

    # repository counts only what the list shows
    assert api(server, "/projects/private1/repositories/team%252Fapp", GUEST)[2]["artifact_count"] == 3


def test_docker_media_types(seeded: Seeded, spec: Spec) -> None:
    status, _, arts = api(seeded.server, "/projects/public1/repositories/tools/artifacts?with_tag=true", EVE)
    assert status == 200
    spec.check_list("Artifact", arts)
    by_digest = {a["digest"]: a for a in arts}
    assert set(by_digest) == {seeded.dlist, seeded.schema2}
    dlist = by_digest[seeded.dlist]
    assert dlist["manifest_media_type"] == images.DOCKER_LIST == dlist["media_type"]
    assert [r["platform"]["architecture"] for r in dlist["references"]] == ["amd64", "arm64"]
    assert [r["platform"].get("variant") for r in dlist["references"]] == [None, "v8"]
    schema2 = by_digest[seeded.schema2]
    assert schema2["manifest_media_type"] == images.DOCKER_MANIFEST
    assert schema2["media_type"] == images.DOCKER_CONFIG and schema2["type"] == "IMAGE"
    assert [t["name"] for t in schema2["tags"]] == ["d2"]
    # sizes: manifest + config + layers for an image; an index adds its children to its own
    manifest = json.loads(skopeo.inspect_raw(seeded.server.ref("public1/tools:d2"), creds=EVE))
    blobs = [manifest["config"], *manifest["layers"]]
    raw_size = len(skopeo.inspect_raw(seeded.server.ref("public1/tools:d2"), creds=EVE))
    assert schema2["size"] == raw_size + sum(b["size"] for b in blobs)
    children = [
        api(seeded.server, f"/projects/public1/repositories/tools/artifacts/{r['child_digest']}", EVE)[2]["size"]
        for r in dlist["references"]
    ]
    assert dlist["size"] > sum(children)


def test_accessories(seeded: Seeded, spec: Spec) -> None:
    server = seeded.server
    base = "/projects/private1/repositories/team%252Fapp/artifacts"
    status, _, arts = api(server, base + "?with_tag=true&with_accessory=true", DEV)
    spec.check_list("Artifact", arts)
    by_digest = {a["digest"]: a for a in arts}
    assert seeded.sig not in by_digest and seeded.notation not in by_digest

    (sig,) = by_digest[seeded.image]["accessories"]
    assert sig["type"] == "signature.cosign"
    assert sig["digest"] == seeded.sig
    assert sig["subject_artifact_digest"] == seeded.image
    assert sig["subject_artifact_repo"] == "private1/team/app"
    assert sig["subject_artifact_id"] == by_digest[seeded.image]["id"]

    (note,) = by_digest[seeded.index]["accessories"]
    assert note["type"] == "signature.notation" and note["digest"] == seeded.notation
    assert by_digest[seeded.untagged]["accessories"] is None

    # the accessory is an artifact of its own (by digest and by its .sig tag)
    sig_tag = seeded.image.replace(":", "-") + ".sig"
    for ref in (seeded.sig, sig_tag):
        status, _, art = api(server, f"{base}/{ref}", DEV)
        assert status == 200
        spec.check("Artifact", art)
        assert art["digest"] == seeded.sig and [t["name"] for t in art["tags"]] == [sig_tag]

    status, _, one = api(server, f"{base}/v1?with_accessory=true", DEV)
    spec.check("Artifact", one)
    assert [a["digest"] for a in one["accessories"]] == [seeded.sig]
    status, headers, accs = api(server, f"{base}/v1/accessories", DEV)
    assert status == 200 and headers["X-Total-Count"] == "1"
    spec.check_list("Accessory", accs)


# --------------------------------------------------------------------------------------------
# registry side: /v2/ and the token service
# --------------------------------------------------------------------------------------------


def test_v2_challenge_and_basic(seeded: Seeded) -> None:
    server = seeded.server
    status, headers, _ = call(server, "/v2/")
    assert status == 401
    assert headers["WWW-Authenticate"] == (
        f'Bearer realm="http://{server.host}/service/token",service="harbor-registry"'
    )
    assert call(server, "/v2/", ADMIN)[0] == 200
    assert call(server, "/v2/", ("admin", "wrong"))[0] == 401
    # Basic credentials work on /v2/ as on Harbor; the catalog is for admins
    status, _, body = call(server, "/v2/_catalog", ADMIN)
    assert status == 200 and "private1/team/app" in body["repositories"]
    status, _, body = call(
        server, f"/v2/private1/team/app/manifests/{seeded.image}", DEV, headers={"Accept": OCI_MANIFEST}
    )
    assert status == 200 and hashlib.sha256(body).hexdigest() == seeded.image.split(":")[1]
    assert call(server, f"/v2/private1/team/app/manifests/{seeded.image}", EVE, method="HEAD")[0] == 401


def test_token_service(seeded: Seeded) -> None:
    server = seeded.server
    scope = "repository:private1/team/app:pull,push"
    assert token_access(server, scope, DEV) == [
        {"type": "repository", "name": "private1/team/app", "actions": ["pull", "push"]}
    ]
    assert token_access(server, scope, GUEST)[0]["actions"] == ["pull"]
    assert token_access(server, scope, EVE)[0]["actions"] == []
    assert token_access(server, scope, None)[0]["actions"] == []
    assert token_access(server, scope, ("dev", "wrong"))[0]["actions"] == []  # anonymous, not refused
    assert token_access(server, "repository:public1/x:pull,push", None)[0]["actions"] == ["pull"]
    assert token_access(server, "repository:public1/x:pull,push,delete", ADMIN)[0]["actions"] == [
        "pull",
        "push",
        "delete",
    ]
    # no pushing into a project that does not exist, not even for admins
    assert token_access(server, "repository:ghost/x:pull,push", ADMIN)[0]["actions"] == []
    assert token_access(server, "registry:catalog:*", DEV)[0]["actions"] == []
    assert token_access(server, "registry:catalog:*", ADMIN)[0]["actions"] == ["*"]
    # docker login: anonymous without scope is refused, a user without scope gets a token
    assert call(server, "/service/token?service=harbor-registry")[0] == 401
    assert call(server, "/service/token?service=harbor-registry", DEV)[0] == 200
    assert call(server, "/service/token?service=harbor-registry", method="POST")[0] == 405
    assert call(server, "/service/token?service=other", DEV)[0] == 400


def test_push_needs_developer_role(seeded: Seeded, tmp_path: Path) -> None:
    server = seeded.server
    layout = images.Layout(tmp_path / "layout")
    images.oci_image(layout, "x", seed=5, layers=1)
    for creds in (GUEST, EVE, None, ("dev", "wrong")):
        proc = skopeo.push_layout(layout.path, "x", server.ref("private1/denied:x"), creds=creds, check=False)
        assert proc.returncode != 0, creds
    with pytest.raises(HarborPushError) as e:
        V2Client(server.url, GUEST).push_image("private1/denied", "y")
    assert e.value.status == 401
    assert api(server, "/projects/private1/repositories/denied", ADMIN)[0] == 404
    # no project, no push
    with pytest.raises(HarborPushError):
        server.client(ADMIN).push_image("ghost/app", "1")


def test_referrers_api(seeded: Seeded) -> None:
    """Harbor answers /v2/<name>/referrers/<digest> itself, from its accessories."""
    server = seeded.server
    path = f"/v2/private1/team/app/referrers/{seeded.image}"
    status, headers, body = call(server, path, DEV)
    assert status == 200 and headers["Content-Type"].startswith(images.OCI_INDEX)
    index = json.loads(body)
    assert index["mediaType"] == images.OCI_INDEX
    assert [(m["digest"], m["artifactType"]) for m in index["manifests"]] == [(seeded.sig, OCI_CONFIG)]

    client = V2Client(server.url, GUEST)
    status, headers, body = client.request(
        "GET", f"/v2/private1/team/app/referrers/{seeded.index}", scope="repository:private1/team/app:pull"
    )
    assert status == 200
    (note,) = json.loads(body)["manifests"]
    assert note["digest"] == seeded.notation and note["artifactType"] == NOTATION
    status, headers, body = client.request(
        "GET",
        f"/v2/private1/team/app/referrers/{seeded.index}?artifactType=application/x-none",
        scope="repository:private1/team/app:pull",
    )
    assert json.loads(body)["manifests"] == [] and headers["OCI-Filters-Applied"] == "artifactType"
    assert json.loads(call(server, f"/v2/private1/team/app/referrers/{seeded.untagged}", DEV)[2])["manifests"] == []

    for creds in (None, EVE):
        status, headers, _ = call(server, path, creds)
        assert status == 401
        assert 'scope="repository:private1/team/app:pull"' in headers["WWW-Authenticate"]
    assert call(server, "/v2/private1/team/app/referrers/latest", DEV)[0] == 400


def test_pull_count(seeded: Seeded) -> None:
    server = seeded.server
    before = api(server, "/projects/public1/repositories/many", None)[2]["pull_count"]
    status, _, _ = V2Client(server.url).get_manifest("public1/many", "t001")
    assert status == 200
    status, _, repo = api(server, "/projects/public1/repositories/many", None)
    assert repo["pull_count"] == before + 1
    art = api(server, "/projects/public1/repositories/many/artifacts/t001", None)[2]
    assert art["pull_time"] != ZERO_TIME and art["tags"][0]["pull_time"] != ZERO_TIME


def test_request_counts(seeded: Seeded) -> None:
    server = seeded.server
    server.reset_counts()
    all_pages(server, "/projects/public1/repositories/many/artifacts?page_size=50", None)
    assert server.request_counts["/api/v2.0/projects/public1/repositories/many/artifacts"] == 3
    assert server.count("/api/v2.0/") == 3
    assert server.count("/v2/") == 0


async def test_async_context_manager(tmp_path: Path) -> None:
    async with HarborServer(tmp_path / "h", library=False) as server:
        status, _, body = api(server, "/projects", ADMIN)
        assert (status, body) == (200, [])


def test_pair_fixture(harbor_pair: Any) -> None:
    assert harbor_pair.source.url != harbor_pair.dest.url
    assert api(harbor_pair.dest, "/users/current", ADMIN)[0] == 200


def test_large_blob_streams_through_v2(seeded: Seeded, tmp_path: Path) -> None:
    """A 24 MiB layer goes up (chunked PATCH) and comes back (GET) through the proxy intact."""
    server = seeded.server
    layout = images.Layout(tmp_path / "up")
    digest = images.oci_image(layout, "big", seed=7, layers=1, layer_size=24 << 20)
    skopeo.push_layout(layout.path, "big", server.ref("private1/big:1"), creds=DEV)
    assert skopeo.manifest_digest(server.ref("private1/big:1"), creds=GUEST) == digest
    out = tmp_path / "down"
    skopeo.skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "gus:gus-pw",
        f"docker://{server.ref('private1/big:1')}",
        f"oci:{out}:x",
    )
    layer = layout.manifest("big")["layers"][0]
    assert (out / "blobs" / "sha256" / layer["digest"].split(":")[1]).stat().st_size == layer["size"]
    art = api(server, "/projects/private1/repositories/big/artifacts/1", GUEST)[2]
    assert art["digest"] == digest and art["size"] > 24 << 20


def test_validator_is_strict(spec: Spec) -> None:
    """The schema checks above would catch a drifting fixture."""
    tag = {
        "artifact_id": 1,
        "id": 1,
        "immutable": False,
        "name": "v1",
        "pull_time": ZERO_TIME,
        "push_time": "2024-01-02T03:04:05.000Z",
        "repository_id": 1,
    }
    spec.check("Tag", tag)
    for bad in (
        {**tag, "invented": 1},  # a field Harbor does not have
        {**tag, "id": "1"},  # wrong type
        {**tag, "push_time": "yesterday"},  # not a date-time
    ):
        with pytest.raises(jsonschema.ValidationError):
            spec.check("Tag", bad)
    with pytest.raises(AssertionError):  # x-omitempty: false must be present
        spec.check("Tag", {k: v for k, v in tag.items() if k != "immutable"})
    spec.check("Artifact", {"digest": "sha256:x", "tags": None, "references": None})  # go-swagger nil slices
    with pytest.raises(jsonschema.ValidationError):
        spec.check("Artifact", {"digest": "sha256:x", "tags": [{**tag, "name": 5}]})
    with pytest.raises(jsonschema.ValidationError):
        spec.check("Project", {"repo_count": 0, "metadata": {"public": True}})  # metadata values are strings


def test_deleted_manifest_disappears(harbor: HarborServer) -> None:
    """The inventory is read from the registry storage: a delete through /v2/ shows at once."""
    admin = harbor.client(ADMIN)
    keep, _ = admin.push_image("library/app", "keep", seed=1)
    gone, _ = admin.push_image("library/app", "gone", seed=2)
    arts = api(harbor, "/projects/library/repositories/app/artifacts")[2]
    assert {a["digest"] for a in arts} == {keep, gone}
    status, _, _ = admin.request("DELETE", f"/v2/library/app/manifests/{gone}", scope="repository:library/app:delete")
    assert status == 202
    arts = api(harbor, "/projects/library/repositories/app/artifacts")[2]
    assert [a["digest"] for a in arts] == [keep]
    assert api(harbor, "/projects/library/repositories/app/artifacts/gone")[0] == 404
    # a developer may push but not delete (the action is dropped from the token)
    harbor.add_user("dev", "dev-pw")
    harbor.add_member("library", "dev", "developer")
    status, _, _ = V2Client(harbor.url, ("dev", "dev-pw")).request(
        "DELETE", f"/v2/library/app/manifests/{keep}", scope="repository:library/app:delete"
    )
    assert status == 401
    status, _, _ = admin.request("DELETE", f"/v2/library/app/manifests/{keep}", scope="repository:library/app:delete")
    assert status == 202
    assert api(harbor, "/projects/library/repositories")[2] == []
    assert api(harbor, "/projects/library")[2]["repo_count"] == 0
