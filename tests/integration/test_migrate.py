"""``ferry migrate`` and ``ferry verify``, Harbor to Harbor, end to end (issue 4).

The source is one Harbor test server per module (:func:`tests.support.harbor_seed.seed_migration_source`):
a private project with nested repositories, a cosign signature and an untagged artifact; a public
one with a multi-platform index, a Docker manifest list and a repository of 113 tags on 111
artifacts; a private one with 105 repositories; 100 empty projects so that the project list takes
two pages, and a last project that sorts onto the second page. Images were written by skopeo (the
big listings by manifest PUTs and blob mounts), never by ferry. Each test migrates into its own
empty destination Harbor, runs the real ``ferry`` command in a subprocess, and checks the
destination without ferry: manifests read back from its registry (sha256 of the bytes),
``skopeo inspect --raw``, its Harbor API and its request log.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.filesize import decimal

from tests.support import images
from tests.support.cli import FerryCLI, FerryResult
from tests.support.harbor import API, HarborServer, RequestRecord
from tests.support.harbor_marks import HARBOR_TESTS, Factory
from tests.support.harbor_seed import (
    GAMMA_REPOS,
    GIB,
    USERS,
    SeedClient,
    Seeded,
    cosign_tag,
    pages,
    seed_migration_source,
)
from tests.support.registry import start_registry
from tests.support.skopeo import inspect_raw, push_layout

pytest_plugins = ["tests.support.harbor_fixtures"]

pytestmark = HARBOR_TESTS

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The seeded source Harbor, shared by every test of the module (they only read it)."""
    work = tmp_path_factory.mktemp("harbor-source")
    with HarborServer(work / "server") as server:
        yield seed_migration_source(server, work)


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


def passwords(src: HarborServer, dst: HarborServer, src_user: str = "admin", dst_user: str = "admin") -> dict[str, str]:
    return {"FERRY_SRC_PASSWORD": src.creds(src_user)[1], "FERRY_DEST_PASSWORD": dst.creds(dst_user)[1]}


def migrate_args(src: HarborServer, dst: HarborServer, tmp: Path, *extra: str, src_user: str = "admin",
                 dst_user: str = "admin", command: str = "migrate") -> list[str]:
    args = [command, src.url, dst.url, "--src-creds", src_user, "--dest-creds", dst_user, *extra]
    if command == "migrate":  # images only: configuration has its own tests (test_migrate_config.py)
        args.append("--no-config")
    if command == "migrate" and "--dry-run" not in extra:
        args += ["--journal", str(tmp / "journal.db")]
    return args


def run(cli: FerryCLI, src: HarborServer, dst: HarborServer, tmp: Path, *extra: str, src_user: str = "admin",
        dst_user: str = "admin", command: str = "migrate") -> FerryResult:
    args = migrate_args(src, dst, tmp, *extra, src_user=src_user, dst_user=dst_user, command=command)
    return cli.run(*args, env=passwords(src, dst, src_user, dst_user), timeout=300)


def writes(server: HarborServer) -> list[RequestRecord]:
    """Every request that could have changed anything on the server (API and registry alike)."""
    return [r for r in list(server.request_log) if r.method in WRITES]


def sha(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


class RegistryReader:
    """Reads a Harbor test server's registry directly (not through ferry, not logged by the server)."""

    def __init__(self, server: HarborServer) -> None:
        self.client = SeedClient(server)

    def digest(self, repo: str, reference: str) -> str | None:
        status, _, body = self.client.get_manifest(repo, reference)
        return sha(body) if status == 200 else None

    def tags(self, repo: str) -> set[str]:
        status, _, body = self.client.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
        return set(json.loads(body).get("tags") or []) if status == 200 else set()

    def catalog(self) -> set[str]:
        status, _, body = self.client.request("GET", "/v2/_catalog?n=1000", scope="registry:catalog:*")
        assert status == 200, body
        return set(json.loads(body)["repositories"] or [])

    def delete(self, repo: str, digest: str) -> None:
        status, _, body = self.client.request("DELETE", f"/v2/{repo}/manifests/{digest}",
                                              scope=f"repository:{repo}:delete")
        assert status == 202, body


def harbor_get(server: HarborServer, path: str) -> Any:
    """GET the server's Harbor API as admin."""
    auth = base64.b64encode(":".join(server.admin_creds).encode()).decode()
    req = urllib.request.Request(server.url + API + path, headers={"Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def projects_of(server: HarborServer) -> dict[str, dict[str, Any]]:
    """Every project on the server: name → {"public", "storage_limit"} (read through the Python API)."""
    names: list[str] = []
    for page in range(1, 100):
        batch = harbor_get(server, f"/projects?page={page}&page_size=100")
        names += [p["name"] for p in batch]
        if len(batch) < 100:
            break
    out = {}
    for name in names:
        p = server.project(name)
        out[name] = {"public": p.public, "storage_limit": p.storage_limit}
    return out


def expected_tags(seeded: Seeded, repo: str, tags: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> set[str]:
    """Tags of ``repo`` a selection keeps: matching tags, plus the cosign signature tags of the
    artifacts they name (signatures travel with their subjects)."""
    accessories = seeded.accessories.get(repo, {})
    chosen = {
        t: d for t, d in seeded.tags.get(repo, {}).items()
        if d not in accessories
        and (not tags or any(fnmatch.fnmatchcase(t, g) for g in tags))
        and not any(fnmatch.fnmatchcase(t, g) for g in exclude)
    }
    subjects = set(chosen.values())
    chosen |= {t: d for t, d in seeded.tags.get(repo, {}).items() if accessories.get(d) in subjects}
    return set(chosen)


def assert_repositories_mirrored(seeded: Seeded, dst: RegistryReader, repos: dict[str, str],
                                 tags: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> None:
    """Each source repository (key) at its destination name (value): exactly the selected tags,
    each with the source digest."""
    for src_repo, dst_repo in repos.items():
        want = expected_tags(seeded, src_repo, tags, exclude)
        assert dst.tags(dst_repo) == want, dst_repo
        for tag in want:
            assert dst.digest(dst_repo, tag) == seeded.tags[src_repo][tag], f"{dst_repo}:{tag}"


def report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------
# a whole Harbor
# --------------------------------------------------------------------------------------------


def test_whole_harbor_migrates_then_reruns_idle_and_verify_catches_changes(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, dst = source.server, harbor_factory()
    dst_reg, src_reg = RegistryReader(dst), RegistryReader(src)
    first_report = tmp_path / "first.json"

    first = run(cli, src, dst, tmp_path, "--include-untagged", "--report", str(first_report), "--quiet")
    assert first.returncode == 0, first

    # every repository, every tag (signature tags included) and every untagged digest, digest for digest
    assert dst_reg.catalog() == src_reg.catalog() == set(source.repositories())
    assert len(source.repositories("gamma")) == len(GAMMA_REPOS) > 100
    assert len(source.tags["beta/many-tags"]) > 100 and source.listed_artifacts("beta/many-tags") > 100
    for repo in source.repositories():
        assert dst_reg.tags(repo) == src_reg.tags(repo) == set(source.tags.get(repo, {})), repo
    refs = source.refs()
    assert len(refs) == 228
    for repo, reference, digest in refs:
        assert dst_reg.digest(repo, reference) == digest, f"{repo} {reference}"
    for repo, kids in source.children.items():  # index children by digest
        for kid in kids:
            assert dst_reg.digest(repo, kid) == kid

    # byte for byte, as skopeo reads it through the destination's Harbor front end
    signature = next(iter(source.accessories["alpha/app"]))
    untagged = next(iter(source.untagged["alpha/app"]))
    for ref, digest in [
        ("alpha/app:1.0", source.tags["alpha/app"]["1.0"]),
        (f"alpha/app:{cosign_tag(source.tags['alpha/app']['1.0'])}", signature),
        (f"alpha/app@{untagged}", untagged),
        ("alpha/team/sub/tool:v1", source.tags["alpha/team/sub/tool"]["v1"]),
        ("beta/multi:1", source.tags["beta/multi"]["1"]),
        ("beta/list:1", source.tags["beta/list"]["1"]),
        ("beta/many-tags:t109", source.tags["beta/many-tags"]["t109"]),
        (f"{GAMMA_REPOS[-1]}:1", source.tags[GAMMA_REPOS[-1]]["1"]),
        ("zeta/app:1", source.tags["zeta/app"]["1"]),
    ]:
        raw = inspect_raw(dst.ref(ref), creds=dst.admin_creds)
        assert raw == source.manifests[digest][0], ref

    # the signature sits next to its subject: the destination Harbor lists it as its cosign accessory
    subject = source.tags["alpha/app"]["1.0"]
    art = harbor_get(dst, f"/projects/alpha/repositories/app/artifacts/{subject}?with_accessory=true")
    assert [(a["digest"], a["type"]) for a in art["accessories"]] == [(signature, "signature.cosign")]

    # projects created with the source's visibility and quota
    created = projects_of(dst)
    assert set(created) == set(source.server_projects())
    for name, spec in source.projects.items():
        assert created[name] == spec, name
    assert created["alpha"] == {"public": False, "storage_limit": 10 * GIB}

    # the report: projects, jobs, verification
    rep = report(first_report)
    by_name = {p["name"]: p for p in rep["projects"]}
    assert by_name["library"]["action"] == "exists"
    for name, spec in source.projects.items():
        assert by_name[name]["action"] == "created", name
        assert (by_name[name]["public"], by_name[name]["storage_limit"]) == (spec["public"], spec["storage_limit"])
    assert len(rep["jobs"]) == len(refs)
    assert {j["status"] for j in rep["jobs"]} == {"copied"}
    assert {(j["destination"], j["digest"]) for j in rep["jobs"]} == {
        (f"{dst.host}/{r}{'@' if ref.startswith('sha256:') else ':'}{ref}", d) for r, ref, d in refs
    }
    assert rep["verification"] == {"checked": len(refs), "mismatches": []}

    # a second run moves nothing: no write of any kind reaches the destination
    dst.reset_counts()
    second_report = tmp_path / "second.json"
    second = run(cli, src, dst, tmp_path, "--include-untagged", "--report", str(second_report), "--quiet")
    assert second.returncode == 0, second
    assert writes(dst) == []
    # Harbor to Harbor the two listings show every ref in place: no job at all (issue 12)
    assert report(second_report)["jobs"] == []
    assert report(second_report)["incremental"]["unchanged"] == len(refs)
    assert {p["action"] for p in report(second_report)["projects"]} == {"exists"}

    ok = run(cli, src, dst, tmp_path, "--include-untagged", command="verify")
    assert ok.returncode == 0, ok
    assert f"verified {len(refs)} of {len(refs)}" in ok.stderr

    # a tag deleted at the destination and a tag pointing at another image: both caught, exit 1
    gone = source.tags["beta/many-tags"]["t042"]
    assert [t for t, d in source.tags["beta/many-tags"].items() if d == gone] == ["t042"]
    dst_reg.delete("beta/many-tags", gone)
    assert "t042" not in dst_reg.tags("beta/many-tags")
    lay = images.Layout(tmp_path / "other")
    other = images.oci_image(lay, "other", seed=999)
    push_layout(lay.path, "other", f"docker://{dst.ref('alpha/app:latest')}", creds=dst.admin_creds)
    assert dst_reg.digest("alpha/app", "latest") == other != source.tags["alpha/app"]["latest"]

    verify_report = tmp_path / "verify.json"
    bad = run(cli, src, dst, tmp_path, "--include-untagged", "--report", str(verify_report), command="verify")
    assert bad.returncode == 1, bad
    assert f"{dst.host}/beta/many-tags:t042: missing at the destination" in bad.stderr
    assert (f"{dst.host}/alpha/app:latest: has {other}, expected {source.tags['alpha/app']['latest']}"
            in bad.stderr)
    assert f"verified {len(refs) - 2} of {len(refs)}" in bad.stderr
    assert bad.error.startswith("ferry: ") and "2 not verified" in bad.error
    mismatches = report(verify_report)["verification"]["mismatches"]
    assert sorted((m["destination"], m["actual"]) for m in mismatches) == [
        (f"{dst.host}/alpha/app:latest", other),
        (f"{dst.host}/beta/many-tags:t042", None),
    ]


# --------------------------------------------------------------------------------------------
# credentials and permissions
# --------------------------------------------------------------------------------------------


def test_a_wrong_password_on_either_side_is_refused_before_anything_is_written(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, dst = source.server, harbor_factory()
    args = migrate_args(src, dst, tmp_path, "--include-untagged")
    good = passwords(src, dst)
    wrong_src, wrong_dst = "not-" + good["FERRY_SRC_PASSWORD"], "not-" + good["FERRY_DEST_PASSWORD"]
    dst.reset_counts()
    bad_src = cli.run(*args, env={**good, "FERRY_SRC_PASSWORD": wrong_src})
    bad_dst = cli.run(*args, env={**good, "FERRY_DEST_PASSWORD": wrong_dst})

    for result, side, host, password in ((bad_src, "source", src.host, wrong_src),
                                         (bad_dst, "destination", dst.host, wrong_dst)):
        assert result.returncode == 3, result
        assert result.lines == [result.error], result  # one line, nothing else
        assert result.error.startswith(f"ferry: {side} Harbor {host} refused the credentials of user 'admin'"), result
        assert password not in result.stderr + result.out
    assert writes(dst) == []
    assert set(projects_of(dst)) == {"library"}
    assert RegistryReader(dst).catalog() == set()


def test_a_user_who_may_not_create_projects_is_stopped_before_any_copy(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src = source.server
    dst = harbor_factory(users={"bob": ("Bob-12345", False)}, project_creation_restriction="adminonly")
    dst.reset_counts()
    result = run(cli, src, dst, tmp_path, "--project", "alpha", "--project", "zeta", dst_user="bob")
    assert result.returncode == 3, result
    assert result.lines == [result.error], result
    assert result.error.startswith(f"ferry: destination Harbor {dst.host}: user 'bob' may not create projects"), result
    assert "alpha" in result.error and "zeta" in result.error
    assert writes(dst) == []
    assert set(projects_of(dst)) == {"library"}


def test_private_projects_follow_what_the_source_user_may_see(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    """carol (a guest of the private ``alpha``) gets it in the plan; dave (member of nothing) and an
    anonymous caller do not see it and are told so, rather than left to believe the plan is the
    whole Harbor; a wrong password is refused rather than downgraded to anonymous."""
    src, dst = source.server, harbor_factory()
    env = {"FERRY_DEST_PASSWORD": dst.admin_creds[1]}
    common = ["--dry-run", "--no-config", "--project", "alpha", "--project", "gamma", "--project", "zeta"]

    def as_(user: str | None, password: str = "") -> FerryResult:
        creds = ["--src-creds", user] if user else []
        return cli.run("migrate", src.url, dst.url, *creds, "--dest-creds", "admin", *common,
                       env={**env, "FERRY_SRC_PASSWORD": password} if user else env)

    carol, dave, anonymous = as_("carol", USERS["carol"]), as_("dave", USERS["dave"]), as_(None)
    wrong = as_("carol", "wrong")
    assert carol.returncode == 0, carol
    assert set(plan_rows(carol)) == {"alpha", "zeta"}  # gamma is private and carol is no member
    assert plan_rows(carol)["alpha"] == ("alpha", "would create")
    assert "alpha/team/sub/tool: v1" in carol.out

    for result, who in ((dave, "user 'dave'"), (anonymous, "an anonymous caller")):
        assert result.returncode == 0, result
        assert set(plan_rows(result)) == {"zeta"}
        warning = f"WARNING .*source Harbor {src.host}: {who} is not a Harbor administrator: private projects"
        assert re.search(warning, result.stderr), result

    assert wrong.returncode == 3, wrong
    assert "refused the credentials of user 'carol'" in wrong.error
    assert writes(dst) == []


def plan_cells(result: FerryResult) -> dict[str, list[str]]:
    """The dry-run plan table: source project → its cells (→, action, repos, tags+digests, accessories, bytes)."""
    rows = {}
    for line in result.out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) >= 3 and cells[0] and cells[0] != "project" and not line.startswith(("┏", "┡", "└")):
            rows[cells[0]] = cells[1:]
    return rows


def plan_rows(result: FerryResult) -> dict[str, tuple[str, str]]:
    """The dry-run plan table: source project → (destination project, action)."""
    return {project: (cells[0], cells[1]) for project, cells in plan_cells(result).items()}


def artifact_bytes(server: HarborServer, project: str) -> int:
    """The sizes of a project's distinct artifacts, summed, as its Harbor API lists them."""
    def listed(path: str) -> Iterator[dict[str, Any]]:
        page = 1
        while rows := harbor_get(server, f"{path}?page={page}&page_size=100"):
            yield from rows
            page += 1

    sizes: dict[str, int] = {}
    for repo in listed(f"/projects/{project}/repositories"):
        inner = urllib.parse.quote(urllib.parse.quote(repo["name"].partition("/")[2], safe=""), safe="")
        for art in listed(f"/projects/{project}/repositories/{inner}/artifacts"):
            sizes[art["digest"]] = art["size"]
    return sum(sizes.values())


# --------------------------------------------------------------------------------------------
# selection
# --------------------------------------------------------------------------------------------


def test_filters_select_exactly_what_they_say(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    """Five selections, each into its own destination (run side by side): the destination holds
    exactly the selected repositories and tags, and exactly the projects they need."""
    alpha = source.repositories("alpha")
    cases: dict[str, dict[str, Any]] = {
        "project": {"args": ["--project", "alpha"], "repos": {r: r for r in alpha}, "projects": {"alpha"}},
        "exclude-project": {
            "args": ["--exclude-project", "p-*", "--exclude-project", "gamma", "--exclude-project", "alpha"],
            "repos": {r: r for r in source.repositories("beta") + source.repositories("zeta")},
            "projects": {"beta", "zeta"},
        },
        "repo": {
            "args": ["--project", "alpha", "--repo", "team/*"],
            "repos": {"alpha/team/app": "alpha/team/app", "alpha/team/sub/tool": "alpha/team/sub/tool"},
            "projects": {"alpha"},
        },
        "tag": {
            "args": ["--project", "beta", "--repo", "many-tags", "--tag", "t00*", "--tag", "stable",
                     "--exclude-tag", "t005"],
            "repos": {"beta/many-tags": "beta/many-tags"},
            "projects": {"beta"},
            "tags": ("t00*", "stable"),
            "exclude": ("t005",),
        },
        "map": {
            "args": ["--project", "alpha", "--project", "zeta", "--map", "alpha=alpha-copy"],
            "repos": {**{r: "alpha-copy/" + r.split("/", 1)[1] for r in alpha}, "zeta/app": "zeta/app"},
            "projects": {"alpha-copy", "zeta"},
        },
    }
    dests = {name: harbor_factory() for name in cases}
    src = source.server
    results = cli.run_many(
        [migrate_args(src, dests[name], tmp_path / name, *case["args"], "--quiet") for name, case in cases.items()],
        env=passwords(src, dests["project"]),  # every destination has the same admin password
        timeout=300,
    )
    for (name, case), result in zip(cases.items(), results, strict=True):
        dst = dests[name]
        assert result.returncode == 0, f"{name}: {result}"
        reg = RegistryReader(dst)
        assert reg.catalog() == set(case["repos"].values()), name
        assert_repositories_mirrored(source, reg, case["repos"], case.get("tags", ()), case.get("exclude", ()))
        assert set(projects_of(dst)) == {"library"} | case["projects"], name

    # the exact tag set of the tag filter, spelled out
    assert RegistryReader(dests["tag"]).tags("beta/many-tags") == {f"t00{i}" for i in range(10) if i != 5} | {"stable"}
    # untagged artifacts only with --include-untagged
    untagged = next(iter(source.untagged["alpha/app"]))
    assert RegistryReader(dests["project"]).digest("alpha/app", untagged) is None
    # the renamed project: created with the source project's visibility and quota; no "alpha"
    mapped = projects_of(dests["map"])
    assert mapped["alpha-copy"] == source.projects["alpha"]
    assert "alpha" not in mapped
    signature_tag = cosign_tag(source.tags["alpha/app"]["1.0"])
    assert signature_tag in RegistryReader(dests["map"]).tags("alpha-copy/app")


def test_dry_run_prints_the_plan_and_writes_nothing(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, dst = source.server, harbor_factory()
    total = len(source.refs())

    dst.reset_counts()
    dry = run(cli, src, dst, tmp_path, "--dry-run", "--include-untagged")
    assert dry.returncode == 0, dry
    assert writes(dst) == []
    assert set(projects_of(dst)) == {"library"}
    assert RegistryReader(dst).catalog() == set()
    rows = plan_rows(dry)
    assert set(rows) == set(source.server_projects())
    # the bytes column: each project's artifacts, each distinct digest once (every one is selected here)
    bytes_column = {project: cells[5] for project, cells in plan_cells(dry).items()}
    assert bytes_column == {project: decimal(artifact_bytes(src, project)) for project in rows}
    assert bytes_column["alpha"] != "0 bytes"
    assert rows["alpha"] == ("alpha", "would create")
    assert rows["library"] == ("library", "exists")
    assert "alpha/team/sub/tool: v1" in dry.out
    assert f"0 of {total} already in place at the destination; {total} to copy" in dry.out

    # once part of it is there, the plan says so
    part = run(cli, src, dst, tmp_path, "--project", "zeta", "--quiet")
    assert part.returncode == 0, part
    dst.reset_counts()
    again = run(cli, src, dst, tmp_path, "--dry-run", "--include-untagged")
    assert again.returncode == 0, again
    assert writes(dst) == []
    assert plan_rows(again)["zeta"] == ("zeta", "exists")
    assert f"1 of {total} already in place at the destination; {total - 1} to copy" in again.out


# --------------------------------------------------------------------------------------------
# a plain registry source
# --------------------------------------------------------------------------------------------


def test_a_plain_registry_source_is_inventoried_through_the_catalog(
    harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()
    lay = images.Layout(tmp_path / "layout")
    digests = {
        "proj/app:1": images.docker_schema2_image(lay, "app-1", seed=1),
        "proj/app:2": images.oci_image(lay, "app-2", seed=2),
        "proj/team/app:dev": images.oci_image(lay, "team-app", seed=3),
        "tools/multi:1": images.oci_index(lay, "multi", seed=4),
    }
    signature = images.referrer(lay, digests["proj/app:1"], "app-1-sig", seed=5)
    digests[f"proj/app:{cosign_tag(digests['proj/app:1'])}"] = signature
    refs = dict(zip(digests, ["app-1", "app-2", "team-app", "multi", "app-1-sig"], strict=True))
    top_level = images.oci_image(lay, "alpine", seed=6)  # no project part: Harbor has no such repository
    env = {"FERRY_DEST_PASSWORD": dst.admin_creds[1]}
    with start_registry(tmp_path / "plain") as plain:
        for dest, ref in refs.items():
            push_layout(lay.path, ref, f"docker://{plain.ref(dest)}")
        push_layout(lay.path, "alpine", f"docker://{plain.ref('alpine:3')}")
        plan_file = tmp_path / "plan.json"
        dry = cli.run("migrate", plain.url, dst.url, "--dest-creds", "admin", "--dry-run", "--report", str(plan_file),
                      env=env)
        assert dry.returncode == 0, dry
        assert not writes(dst)
        planned = json.loads(plan_file.read_text())["dry_run"]
        assert planned["in_place"] == 0
        assert {e["destination"] for e in planned["to_copy"]} >= {f"{dst.host}/library/alpine:3",
                                                                    f"{dst.host}/proj/app:1"}
        result = cli.run("migrate", plain.url, dst.url, "--dest-creds", "admin", "--quiet",
                         "--journal", str(tmp_path / "journal.db"), env=env)
        assert result.returncode == 0, result
        requests = plain.requests()
    reg = RegistryReader(dst)
    assert reg.catalog() == {"proj/app", "proj/team/app", "tools/multi", "library/alpine"}
    assert reg.digest("library/alpine", "3") == top_level
    for ref, digest in digests.items():
        repo, _, tag = ref.rpartition(":")
        assert reg.digest(repo, tag) == digest, ref
    assert reg.tags("proj/app") == {"1", "2", cosign_tag(digests["proj/app:1"])}
    created = projects_of(dst)
    assert created["proj"] == created["tools"] == {"public": False, "storage_limit": -1}
    assert any(r.path == "/v2/_catalog" for r in requests)
    assert {r.path for r in requests if r.path.endswith("/tags/list")} == {
        "/v2/proj/app/tags/list", "/v2/proj/team/app/tags/list", "/v2/tools/multi/tags/list", "/v2/alpine/tags/list"}


# --------------------------------------------------------------------------------------------
# inventory cost
# --------------------------------------------------------------------------------------------


def api_kind(record: RequestRecord) -> str:
    """Which Harbor API list (or call) a source request was."""
    path = record.path
    if not path.startswith(API + "/"):
        return f"not the API: {record.method} {path}"
    rest = path[len(API) + 1:]
    if re.fullmatch(r"projects", rest):
        return "projects"
    if re.fullmatch(r"projects/[^/]+/repositories", rest):
        return "repositories"
    if re.fullmatch(r"projects/[^/]+/repositories/[^/]+/artifacts", rest):
        return "artifacts"
    return f"{record.method} {rest}"


def test_inventory_reads_each_page_once(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    """For a whole-Harbor migration's inventory (a dry run: nothing else is read from the source,
    every digest comes from the artifact lists) the source receives exactly

        1                                  GET /users/current (credential check)
      + ceil(P / 100)                      project list pages (P = 105 projects)
      + Σ_projects max(1, ceil(R_p / 100)) repository list pages (gamma: 105 → 2)
      + Σ_repos max(1, ceil(A_r / 100))    artifact list pages (beta/many-tags: 111 → 2)
      + ceil(P / 100)                      quota list pages (GET /quotas?reference=project)
      + for each repository holding accessories (K = 1 here), the registry's tag list, to find the
        tags Harbor's API hides (``sha256-….sig``): 1 token + 1 tags/list + 1 HEAD per ``sha256-``
        tag (1 here), plus 1 for the registry's first 401 challenge

    and nothing else (a systeminfo call would be allowed; none is needed when the credentials are
    good). Each list is read once per page: no page skipped, none read twice.
    """
    src, dst = source.server, harbor_factory()
    need = source.inventory_pages()
    projects, repos = len(source.server_projects()), len(source.repositories())
    assert need == {"projects": pages(projects), "repositories": projects + 1, "artifacts": repos + 1}
    with_accessories = [r for r in source.repositories() if source.accessories.get(r)]
    assert with_accessories == ["alpha/app"]
    sig_tags = [t for t in source.tags["alpha/app"] if t.startswith("sha256-")]
    assert len(sig_tags) == 1

    src.reset_counts()
    result = run(cli, src, dst, tmp_path, "--dry-run", "--include-untagged")
    assert result.returncode == 0, result
    seen: dict[str, int] = {}
    for record in list(src.request_log):
        seen[api_kind(record)] = seen.get(api_kind(record), 0) + 1
    quotas = seen.pop("GET quotas", 0)
    systeminfo = seen.pop("GET systeminfo", 0)
    assert seen == {
        "GET users/current": 1,
        **need,
        "not the API: GET /service/token": 1,
        "not the API: GET /v2/alpha/app/tags/list": 2,  # the first one meets the 401 challenge
        f"not the API: HEAD /v2/alpha/app/manifests/{sig_tags[0]}": 1,
    }
    assert quotas == pages(projects) and systeminfo <= 1
    registry_side = 1 + 1 + len(sig_tags) + 1
    limit = 1 + need["projects"] + need["repositories"] + need["artifacts"] + pages(projects) + registry_side + 1
    assert len(src.request_log) <= limit
    print(f"inventory: {len(src.request_log)} requests to the source (limit {limit}); pages {need}, "
          f"quotas {quotas}, registry {registry_side}")
