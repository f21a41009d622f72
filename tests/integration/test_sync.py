"""``ferry sync`` end to end: a 39-image multi-project workload (shared base layers, an OCI index, a
Docker manifest list) seeded by skopeo, copied by the real command in a subprocess (pipes, not a
terminal), checked with ``skopeo inspect --raw`` and the destination registry's access log."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import images as im
from tests.support import workloads
from tests.support.registry import Registry
from tests.support.skopeo import inspect_raw, list_tags, push_layout
from tests.support.workloads import (
    Seeded,
    assert_mirrored,
    blob_put_digests,
    ferry,
    manifest_puts,
    mounts,
    writes,
)

#: skopeo-style sync between the plain-HTTP test registries
SYNC_DOCKER = ("sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false", "--dest-tls-verify=false")
SYNC_YAML = ("sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def project_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with workloads.project_source(tmp_path_factory) as seeded:
        yield seeded


REPORT_KEYS = {"source", "destination", "digest", "source_digest", "status", "bytes", "seconds", "retries", "error"}
ANSI = re.compile(r"\x1b\[")
NOT_FOUND = re.compile(r"(not found|no such manifest|MANIFEST_UNKNOWN)")
ACCEPT = ", ".join((im.OCI_INDEX, im.OCI_MANIFEST, im.DOCKER_LIST, im.DOCKER_MANIFEST))


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def skopeo_yaml(path: Path, host: str, repos: list[str]) -> Path:
    """A ``skopeo sync --src yaml`` file taking every tag of ``repos`` at ``host`` (plain HTTP)."""
    path.write_text(yaml.safe_dump({host: {"tls-verify": False, "images": {r: [] for r in repos}}}))
    return path


def syncer_auth(path: Path, *hosts: str) -> Path:
    path.write_text(json.dumps({h: {"insecure": True} for h in hosts}))
    return path


def report_jobs(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["jobs"]


def by_destination(jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {j["destination"]: j for j in jobs}


def test_skopeo_yaml_mirrors_every_tag_byte_for_byte_and_a_rerun_copies_nothing(
    project_source: Seeded,
    registry: Registry,
    tmp_path: Path,
) -> None:
    w, dst = project_source.workload, registry
    sync_file = skopeo_yaml(tmp_path / "sync.yaml", project_source.host, w.repos)
    report = tmp_path / "report.json"
    args = (
        *SYNC_YAML,
                "--journal",
        str(tmp_path / "journal.db"),
        "--report",
        str(report),
        str(sync_file),
        f"{dst.host}/mirror",
    )

    cold = ferry(*args, home=tmp_path / "home")
    assert cold.returncode == 0, cold.stderr
    assert_mirrored(w, w.images, dst, "mirror/")
    # the skopeo flattening bug ferry avoids: same repository name in two projects stays two repositories
    app0, app1 = inspect_raw(dst.ref("mirror/proj0/app:v1")), inspect_raw(dst.ref("mirror/proj1/app:v1"))
    assert app0 != app1
    assert sha(app0) == w.image("proj0/app", "v1").digest
    assert sha(app1) == w.image("proj1/app", "v1").digest
    jobs = report_jobs(report)
    assert len(jobs) == len(w.images) == 39
    assert {j["status"] for j in jobs} == {"copied"}

    mark = dst.mark()
    warm = ferry(*args, home=tmp_path / "home")
    assert warm.returncode == 0, warm.stderr
    jobs = report_jobs(report)
    assert len(jobs) == len(w.images)
    assert [j for j in jobs if j["status"] != "skipped"] == []
    assert all(j["bytes"] == 0 for j in jobs)
    assert dst.blob_upload_puts(mark) == []
    assert manifest_puts(dst, mark) == []
    assert writes(dst, mark) == []


def test_image_syncer_files_move_each_blob_once_and_mount_shared_layers(
    project_source: Seeded,
    registry: Registry,
    tmp_path: Path,
) -> None:
    """``--auth auth.json --images images.json``, cold: one upload per distinct blob in the whole
    destination registry; every other repository needing a blob gets it by a cross-repo mount."""
    w, src, dst = project_source.workload, project_source, registry
    auth = syncer_auth(tmp_path / "auth.json", src.host, dst.host)
    rules = tmp_path / "images.json"
    rules.write_text(json.dumps({src.ref(repo): dst.ref(repo) for repo in w.repos}))
    report = tmp_path / "report.json"

    run = ferry(
        "sync",
        "--auth",
        str(auth),
        "--images",
        str(rules),
        "--journal",
        str(tmp_path / "j.db"),
        "--report",
        str(report),
        home=tmp_path / "home",
    )
    assert run.returncode == 0, run.stderr
    assert_mirrored(w, w.images, dst)

    distinct = w.distinct_blobs()
    uploaded = blob_put_digests(dst)
    assert sorted(uploaded) == sorted(distinct), "each blob uploaded exactly once"
    mounted = {(r.path.removeprefix("/v2/").removesuffix("/blobs/uploads/"), r.params["mount"][0]) for r in mounts(dst)}
    needed = w.repo_blobs()
    assert len(mounted) == sum(len(b) for b in needed.values()) - len(distinct)
    for repo, digest in mounted:
        assert digest in needed[repo]
    shared = w.shared_blobs()
    assert len(shared) == 3  # one base layer per project
    for digest in shared:
        users = sum(digest in blobs for blobs in needed.values())
        assert sum(d == digest for _, d in mounted) == users - 1, "the shared layer is mounted, not re-sent"
    # the bytes the report accounts for are the distinct blobs, once
    assert sum(j["bytes"] for j in report_jobs(report)) == sum(distinct.values())


def test_config_file_form(project_source: Seeded, registry: Registry, tmp_path: Path) -> None:
    """The older single ``--config`` file (auth + images), with a tag regex and a renamed tag."""
    w, src, dst = project_source.workload, project_source, registry
    config = {
        "auth": {src.host: {"insecure": True}, dst.host: {"insecure": True}},
        "images": {
            src.ref("proj1/app"): dst.ref("cfg/proj1/app"),
            src.ref("proj1/web:/^v[12]$/"): dst.ref("cfg/proj1/web"),
            src.ref("proj2/multi:v1"): dst.ref("cfg/proj2/multi:stable"),
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run = ferry("sync", "--config", str(path), "--journal", str(tmp_path / "j.db"), home=tmp_path / "home")
    assert run.returncode == 0, run.stderr
    app = [i for i in w.images if i.repo == "proj1/app"]
    web = [w.image("proj1/web", "v1"), w.image("proj1/web", "v2")]
    assert_mirrored(w, app + web, dst, "cfg/")
    multi = w.image("proj2/multi", "v1")
    assert inspect_raw(dst.ref("cfg/proj2/multi:stable")) == w.layout.read_blob(multi.digest)
    assert list_tags(dst.ref("cfg/proj2/multi")) == ["stable"]


def test_docker_source_repository_copies_all_its_tags(
    project_source: Seeded,
    registry: Registry,
    tmp_path: Path,
) -> None:
    w, dst = project_source.workload, registry
    run = ferry(
        *SYNC_DOCKER,
                "--journal",
        str(tmp_path / "j.db"),
        project_source.ref("proj0/app"),
        f"{dst.host}/copy",
        home=tmp_path / "home",
    )
    assert run.returncode == 0, run.stderr
    assert_mirrored(w, [i for i in w.images if i.repo == "proj0/app"], dst, "copy/")
    assert list_tags(dst.ref("copy/proj0/app")) == ["latest", "v1", "v2", "v3"]


@pytest.mark.parametrize(
    ("repo", "flags", "keep"),
    [
        ("proj0/multi", ["--os", "linux", "--arch", "arm64"], {("linux", "arm64")}),
        ("proj0/multi", ["--arch", "amd64,arm"], {("linux", "amd64"), ("linux", "arm")}),
        ("proj2/multi", ["--arch", "amd64", "--arch", "arm64"], {("linux", "amd64"), ("linux", "arm64")}),
    ],
    ids=["oci-index-one", "oci-index-two", "docker-list-all-kept"],
)
def test_platform_filter_rewrites_the_index(
    project_source: Seeded,
    registry: Registry,
    tmp_path: Path,
    repo: str,
    flags: list[str],
    keep: set[tuple[str, str]],
) -> None:
    w, dst = project_source.workload, registry
    img = w.image(repo, "v1")
    source_index = w.manifest(img.digest)
    report = tmp_path / "report.json"
    run = ferry(
        *SYNC_DOCKER,
                *flags,
        "--journal",
        str(tmp_path / "j.db"),
        "--report",
        str(report),
        project_source.ref(img.ref),
        f"{dst.host}/plat",
        home=tmp_path / "home",
    )
    assert run.returncode == 0, run.stderr

    raw = inspect_raw(dst.ref(f"plat/{img.ref}"))
    index = json.loads(raw)
    assert index["mediaType"] == img.media_type
    kept = {(c["platform"]["os"], c["platform"]["architecture"]) for c in index["manifests"]}
    assert kept == keep
    expected_children = [
        c for c in source_index["manifests"] if (c["platform"]["os"], c["platform"]["architecture"]) in keep
    ]
    assert index["manifests"] == expected_children  # descriptors kept as they were, in order
    for child in source_index["manifests"]:
        status = dst.request("HEAD", f"/v2/plat/{repo}/manifests/{child['digest']}", headers={"Accept": ACCEPT}).status
        assert status == (200 if child in expected_children else 404), child["platform"]
    for child in expected_children:
        assert inspect_raw(dst.ref(f"plat/{repo}@{child['digest']}")) == w.layout.read_blob(child["digest"])

    (job,) = report_jobs(report)
    assert job["status"] == "copied"
    assert job["source_digest"] == img.digest
    assert job["digest"] == sha(raw)
    rewritten = len(expected_children) < len(source_index["manifests"])
    assert (job["digest"] != img.digest) == rewritten  # the report says the index changed, by its digest
    if not rewritten:
        assert raw == w.layout.read_blob(img.digest)

    # the same filter again: the dry run says it is in place, and the run copies nothing
    mark = dst.mark()
    common = ["sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false", "--dest-tls-verify=false"]
    again = [*flags, "--journal", str(tmp_path / "j.db"), project_source.ref(img.ref), f"{dst.host}/plat"]
    dry = ferry(*common, "--dry-run", *again, home=tmp_path / "home")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == f"in place  {project_source.ref(img.ref)} -> {dst.ref(f'plat/{img.ref}')}\n"
    rerun = ferry(*common, "--report", str(report), *again, home=tmp_path / "home")
    assert rerun.returncode == 0, rerun.stderr
    assert [j["status"] for j in report_jobs(report)] == ["skipped"]
    assert writes(dst, mark) == []


def _collision_by_images_file(src: Seeded, dst: Registry, tmp_path: Path) -> list[str]:
    rules = tmp_path / "images.json"
    rules.write_text(
        json.dumps(
            {
                src.ref("proj0/web"): dst.ref("ok/proj0/web"),
                src.ref("proj0/app:v1"): dst.ref("mirror/app:v1"),
                src.ref("proj1/app:v1"): dst.ref("mirror/app:v1"),
            }
        )
    )
    return ["--auth", str(syncer_auth(tmp_path / "auth.json", src.host, dst.host)), "--images", str(rules)]


def _collision_by_basename(src: Seeded, dst: Registry, tmp_path: Path) -> list[str]:
    sync_file = skopeo_yaml(tmp_path / "sync.yaml", src.host, ["proj0/web", "proj0/app", "proj1/app"])
    return [
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        "--dest-naming",
        "basename",
        str(sync_file),
        f"{dst.host}/mirror",
    ]


@pytest.mark.parametrize("make_args", [_collision_by_images_file, _collision_by_basename], ids=["images", "basename"])
def test_two_sources_for_one_destination_are_refused_before_copying(
    project_source: Seeded,
    registry: Registry,
    tmp_path: Path,
    make_args: Any,
) -> None:
    run = ferry(
        "sync",
        *make_args(project_source, registry, tmp_path),
        "--journal",
        str(tmp_path / "j.db"),
        home=tmp_path / "home",
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    (line,) = lines
    assert line.startswith("ferry: ")
    assert f"{registry.host}/mirror/app:v1" in line
    assert project_source.ref("proj0/app:v1") in line
    assert project_source.ref("proj1/app:v1") in line
    assert run.stdout == ""
    assert writes(registry) == []


def test_a_missing_tag_fails_alone_and_is_reported(
    project_source: Seeded,
    registry: Registry,
    tmp_path: Path,
) -> None:
    w, src, dst = project_source.workload, project_source, registry
    rules = tmp_path / "images.json"
    rules.write_text(
        json.dumps(
            {
                src.ref("proj0/web"): dst.ref("proj0/web"),
                src.ref("proj0/app:v1,nope"): dst.ref("proj0/app"),
                src.ref("proj2/multi"): dst.ref("proj2/multi"),
            }
        )
    )
    report = tmp_path / "report.json"
    run = ferry(
        "sync",
        "--auth",
        str(syncer_auth(tmp_path / "auth.json", src.host, dst.host)),
        "--images",
        str(rules),
        "--retries",
        "1",
        "--journal",
        str(tmp_path / "j.db"),
        "--report",
        str(report),
        home=tmp_path / "home",
    )
    assert run.returncode == 1, run.stderr
    good = [i for i in w.images if i.repo in ("proj0/web", "proj2/multi")] + [w.image("proj0/app", "v1")]
    assert_mirrored(w, good, dst)

    jobs = by_destination(report_jobs(report))
    assert len(jobs) == len(good) + 1
    bad = jobs.pop(dst.ref("proj0/app:nope"))
    assert bad["status"] == "failed"
    assert bad["source"] == src.ref("proj0/app:nope")
    assert "proj0/app:nope" in bad["error"] and NOT_FOUND.search(bad["error"]), bad["error"]
    assert bad["retries"] == 1  # tried again once (--retries 1)
    assert bad["digest"] is None
    assert {j["status"] for j in jobs.values()} == {"copied"}
    assert all(j["error"] is None and j["retries"] == 0 for j in jobs.values())
    summary = json.loads(report.read_text())["summary"]
    assert (summary["copied"], summary["failed"], summary["jobs"]) == (len(good), 1, len(good) + 1)
    # people see it too: in the summary and in the last line
    assert re.search(
        rf"failed {re.escape(src.ref('proj0/app:nope'))} → {re.escape(dst.ref('proj0/app:nope'))}: "
        rf".*{NOT_FOUND.pattern}",
        run.stderr,
    ), run.stderr
    assert run.stderr.strip().splitlines()[-1] == f"ferry: 1 of {len(good) + 1} image(s) failed (report: {report})"
    # the log lines count images, not attempts: the retried one is not counted twice
    n = len(good) + 1
    counted = [(int(m[1]), int(m[2]), m[3]) for m in re.finditer(r"^\S+ \[(\d+)/(\d+)\] (\S+)", run.stderr, re.M)]
    assert {total for _, total, _ in counted} == {n}
    assert sorted({i for i, _, _ in counted}) == list(range(1, n + 1)), run.stderr
    assert sum(1 for line in run.stderr.splitlines() if "FAILED" in line and "proj0/app:nope ->" in line) == 2


def test_dry_run_prints_the_plan_and_moves_nothing(
    project_source: Seeded,
    registry: Registry,
    tmp_path: Path,
) -> None:
    src, dst = project_source, registry
    auth = syncer_auth(tmp_path / "auth.json", src.host, dst.host)
    first = tmp_path / "first.json"
    first.write_text(json.dumps({src.ref("proj0/app:v1"): dst.ref("proj0/app:v1")}))
    run = ferry(
        "sync", "--auth", str(auth), "--images", str(first), "--journal", str(tmp_path / "j.db"), home=tmp_path / "home"
    )
    assert run.returncode == 0, run.stderr

    rules = tmp_path / "images.json"
    rules.write_text(
        json.dumps({src.ref("proj0/app"): dst.ref("proj0/app"), src.ref("proj0/multi:v1"): dst.ref("proj0/multi:v1")})
    )
    mark = dst.mark()
    dry = ferry(
        "sync",
        "--auth",
        str(auth),
        "--images",
        str(rules),
        "--dry-run",
        "--journal",
        str(tmp_path / "j.db"),
        home=tmp_path / "home",
    )
    assert dry.returncode == 0, dry.stderr
    lines = sorted(dry.stdout.splitlines())
    expected = sorted(
        [f"in place  {src.ref('proj0/app:v1')} -> {dst.ref('proj0/app:v1')}"]
        + [f"to copy   {src.ref(f'proj0/app:{t}')} -> {dst.ref(f'proj0/app:{t}')}" for t in ("latest", "v2", "v3")]
        + [f"to copy   {src.ref('proj0/multi:v1')} -> {dst.ref('proj0/multi:v1')}"]
    )
    assert lines == expected
    assert "5 images: 1 in place, 4 to copy" in dry.stderr
    assert writes(dst, mark) == []
    assert list_tags(dst.ref("proj0/app")) == ["v1"]


def test_report_has_one_record_per_job(project_source: Seeded, registry: Registry, tmp_path: Path) -> None:
    w, src, dst = project_source.workload, project_source, registry
    rules = tmp_path / "images.json"
    rules.write_text(
        json.dumps(
            {
                src.ref("proj0/api:v2,v3"): dst.ref("proj0/api"),
                src.ref("proj1/web:v1"): dst.ref("proj1/web:v1"),
                src.ref("proj0/multi:v1"): dst.ref("proj0/multi:v1"),
            }
        )
    )
    report = tmp_path / "out" / "report.json"
    run = ferry(
        "sync",
        "--auth",
        str(syncer_auth(tmp_path / "auth.json", src.host, dst.host)),
        "--images",
        str(rules),
        "--journal",
        str(tmp_path / "j.db"),
        "--report",
        str(report),
        home=tmp_path / "home",
    )
    assert run.returncode == 0, run.stderr
    jobs = report_jobs(report)
    images = [w.image("proj0/api", "v2"), w.image("proj0/api", "v3"), w.image("proj1/web", "v1")]
    images.append(w.image("proj0/multi", "v1"))
    assert sorted(j["destination"] for j in jobs) == sorted(dst.ref(i.ref) for i in images)
    for job in jobs:
        assert set(job) == REPORT_KEYS
        img = next(i for i in images if dst.ref(i.ref) == job["destination"])
        assert job["source"] == src.ref(img.ref)
        assert job["status"] == "copied"
        assert job["digest"] == job["source_digest"] == img.digest
        if img.repo != "proj0/api":  # nothing shared with another image
            assert job["bytes"] == sum(w.blobs_of(img.digest).values())
        assert isinstance(job["seconds"], float) and job["seconds"] >= 0
        assert job["retries"] == 0 and job["error"] is None
    # proj0/api:v2 and v3 share the project's base layer: sent once, counted once
    api = [j["bytes"] for j in jobs if "/proj0/api:" in j["destination"]]
    assert sum(api) == sum(w.distinct_blobs([w.image("proj0/api", "v2"), w.image("proj0/api", "v3")]).values())


def test_plain_log_lines_off_a_terminal_and_quiet_prints_nothing(
    project_source: Seeded,
    registry: Registry,
    tmp_path: Path,
) -> None:
    w, src, dst = project_source.workload, project_source, registry
    images = [i for i in w.images if i.project == "proj2"]
    common = ("--src", "docker", "--dest", "docker", "--src-tls-verify=false", "--dest-tls-verify=false")
    shown = ferry(
        "sync",
        *common,
        "--journal",
        str(tmp_path / "j.db"),
        src.ref("proj2/web"),
        f"{dst.host}/log",
        home=tmp_path / "home",
    )
    assert shown.returncode == 0, shown.stderr
    assert not ANSI.search(shown.stderr + shown.stdout), "no terminal escapes in a pipe"
    n = len([i for i in images if i.repo == "proj2/web"])
    line = re.compile(rf"^\d\d:\d\d:\d\d \[(\d+)/{n}\] copied (\S+) -> (\S+) (sha256:[0-9a-f]{{64}}) .+ [\d.]+s$")
    found = [m for m in map(line.match, shown.stderr.splitlines()) if m]
    assert sorted(int(m[1]) for m in found) == list(range(1, n + 1)), shown.stderr
    for m in found:
        tag = m[2].rsplit(":", 1)[1]
        assert m[3] == dst.ref(f"log/proj2/web:{tag}")
        assert m[4] == w.image("proj2/web", tag).digest

    quiet = ferry(
        "sync",
        *common,
        "--quiet",
        "--journal",
        str(tmp_path / "j.db"),
        src.ref("proj2/multi"),
        f"{dst.host}/quiet",
        home=tmp_path / "home",
    )
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert_mirrored(w, [w.image("proj2/multi", "v1")], dst, "quiet/")


@pytest.mark.parametrize("secret_rule", ["secret/app:v1", "secret/app"], ids=["tag", "all-tags"])
def test_unreadable_repository_fails_alone(
    token_registry: Registry, token_server: Any, registry: Registry, tmp_path: Path, secret_rule: str
) -> None:
    """The source credentials (bob) may read ``team/*`` but not ``secret/*``: the secret rule is a failed
    job with an authorisation error, the readable ones are copied. Whether the rule names a tag or asks
    for every tag (which needs a listing that is refused) makes no difference."""
    src, dst = token_registry, registry
    lay = im.Layout(tmp_path / "layout")
    digests = {name: im.oci_image(lay, name, seed=n) for n, name in enumerate(("a", "b", "c"))}
    for name, repo in (("a", "team/one:v1"), ("b", "team/two:v1"), ("c", "secret/app:v1")):
        push_layout(lay.path, name, src.ref(repo), creds=("alice", "secret"))
    token_server.permissions["bob"] = {"team/*": ["pull"]}
    auth = tmp_path / "auth.json"
    auth.write_text(
        json.dumps(
            {src.host: {"username": "bob", "password": "bobpass", "insecure": True}, dst.host: {"insecure": True}}
        )
    )
    rules = tmp_path / "images.json"
    rules.write_text(
        json.dumps(
            {
                src.ref("team/one:v1"): dst.ref("team/one:v1"),
                src.ref(secret_rule): dst.ref(secret_rule),
                src.ref("team/two:v1"): dst.ref("team/two:v1"),
            }
        )
    )
    report = tmp_path / "report.json"
    run = ferry(
        "sync",
        "--auth",
        str(auth),
        "--images",
        str(rules),
        "--retries",
        "0",
        "--journal",
        str(tmp_path / "j.db"),
        "--report",
        str(report),
        home=tmp_path / "home",
    )
    assert run.returncode == 1, run.stderr
    jobs = by_destination(report_jobs(report))
    bad = jobs.pop(dst.ref(secret_rule))
    assert bad["status"] == "failed" and bad["error"]
    assert bad["source"] == src.ref(secret_rule)
    assert "secret/app" in bad["error"]
    assert {j["status"] for j in jobs.values()} == {"copied"}
    assert inspect_raw(dst.ref("team/one:v1")) == lay.manifest_bytes("a")
    assert inspect_raw(dst.ref("team/two:v1")) == lay.manifest_bytes("b")
    assert dst.request("GET", "/v2/secret/app/tags/list").status == 404
    assert "secret/app" in run.stderr and f"ferry: 1 of 3 image(s) failed (report: {report})" in run.stderr
    assert sha(lay.manifest_bytes("a")) == digests["a"]
