"""Faults between ferry and real registries: ``ferry sync`` of a small multi-project slice (11 images,
shared layers, Docker and OCI media types, an index) through :class:`FaultProxy` in front of the
source, the destination, or both.

Transient faults (resets, truncated bodies, 5xx, 429 + Retry-After, stalls past the read timeout,
dropped requests) must be absorbed by the HTTP layer — the runs use ``--retries 0``, so no second
engine round hides a failure — and end with every destination digest equal to its source and
``http_retries`` counted. Corrupted content (a flipped byte in a blob or a manifest) must stop that
image with a digest error and nothing pushed for it, while the other images complete.
After every test the destination holds no manifest whose blobs or children are missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import images as im
from tests.support import workloads
from tests.support.faultproxy import Drop, Fault, FaultProxy, Flip, Lose, Reset, Respond, Rule, Stall, Truncate
from tests.support.invariants import ACCEPT, assert_whole, stored_manifests
from tests.support.pki import TokenSigner
from tests.support.registry import Registry, TokenAuth, start_registry
from tests.support.reliability import FAST, SLICE_REPOS, report, run_ferry, slice_images, sync_yaml
from tests.support.skopeo import inspect_raw, push_layout
from tests.support.tokenserver import TokenServer
from tests.support.workloads import Seeded, assert_mirrored

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def project_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with workloads.project_source(tmp_path_factory) as seeded:
        yield seeded


@dataclass
class Rig:
    """The source behind ``src`` (a proxy), the destination registry ``dst`` behind ``dst_px``."""

    seeded: Seeded
    dst: Registry
    src: FaultProxy
    dst_px: FaultProxy
    tmp: Path

    def sync(self, *extra: str, retries: int = 0) -> tuple[Any, dict[str, Any]]:
        rules = sync_yaml(self.tmp / "sync.yaml", self.src.host, SLICE_REPOS)
        rep = self.tmp / "report.json"
        run = run_ferry("sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", "--retries",
                        str(retries), "--journal", str(self.tmp / "journal.db"), "--report", str(rep), *extra,
                        str(rules), f"{self.dst_px.host}/mirror", home=self.tmp / "home", env=FAST, timeout=240)
        assert "Traceback" not in run.stderr, run.stderr
        return run, (report(rep) if rep.exists() else {})


@pytest.fixture
def rig(project_source: Seeded, registry: Registry, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    proxies: list[FaultProxy] = []

    def make(*, store_and_forward: bool = False) -> Rig:
        src = FaultProxy(project_source.registry.url).start()
        proxies.append(src)
        dst_px = FaultProxy(registry.url, store_and_forward=store_and_forward).start()
        proxies.append(dst_px)
        return Rig(project_source, registry, src, dst_px, tmp_path)

    yield make
    for p in proxies:
        p.stop()
    assert_whole(registry)


def _layer(w: Any, repo: str, tag: str) -> str:
    """The image's own layer (not the project's shared base)."""
    return w.manifest(w.image(repo, tag).digest)["layers"][1]["digest"]


# (id, side, rule factory, store-and-forward at the destination)
TRANSIENT: list[tuple[str, str, Callable[[], list[Rule]], bool]] = [
    ("reset-mid-download", "src", lambda: [Rule(Reset(after=700), "GET", r"/blobs/sha256:", times=4)], False),
    ("truncated-blob", "src", lambda: [Rule(Truncate(after=300), "GET", r"/blobs/sha256:", times=4)], False),
    ("truncated-manifest", "src", lambda: [Rule(Truncate(after=100), "GET", r"/manifests/", times=3)], False),
    ("reset-mid-upload-pass-through", "dst",
     lambda: [Rule(Reset(after=700, side="request"), "PUT", r"/blobs/uploads/", times=3)], False),
    ("reset-mid-upload-store-and-forward", "dst",
     lambda: [Rule(Reset(after=700, side="request"), "PUT", r"/blobs/uploads/", times=3)], True),
    ("500-on-manifest-push", "dst", lambda: [Rule(Respond(500), "PUT", r"/manifests/", times=3)], False),
    ("502-on-manifest-get", "src", lambda: [Rule(Respond(502), "GET", r"/manifests/", times=3)], False),
    ("503-on-upload-start", "dst", lambda: [Rule(Respond(503), "POST", r"/blobs/uploads/", times=3)], False),
    ("503-on-tag-listing", "src", lambda: [Rule(Respond(503), "GET", r"/tags/list", times=2)], False),
    ("stall-before-answer", "src", lambda: [Rule(Stall(60), "GET", r"/blobs/sha256:", times=2)], False),
    ("stall-mid-download", "src", lambda: [Rule(Stall(60, after=600), "GET", r"/blobs/sha256:", times=2)], False),
    ("stall-manifest-push", "dst", lambda: [Rule(Stall(60), "PUT", r"/manifests/", times=1)], False),
    ("answer-lost-after-blob-upload", "dst", lambda: [Rule(Lose(), "PUT", r"/blobs/uploads/", times=2)], False),
    ("answer-lost-after-manifest-push", "dst", lambda: [Rule(Lose(), "PUT", r"/manifests/", times=2)], False),
    ("answer-lost-after-upload-start", "dst", lambda: [Rule(Lose(), "POST", r"/blobs/uploads/", times=2)], False),
    ("drop-every-4th-source", "src", lambda: [Rule(Drop(), every=4)], False),
    ("drop-every-5th-destination", "dst", lambda: [Rule(Drop(), every=5)], False),
]


@pytest.mark.parametrize(("name", "side", "rules", "store_and_forward"), TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_transient_fault_is_retried_and_every_image_arrives_intact(
    rig: Callable[..., Rig], name: str, side: str, rules: Callable[[], list[Rule]], store_and_forward: bool
) -> None:
    r = rig(store_and_forward=store_and_forward)
    proxy = r.src if side == "src" else r.dst_px
    added = proxy.add(*rules())
    run, rep = r.sync()
    assert run.returncode == 0, run.stderr
    w = r.seeded.workload
    images = slice_images(w)
    assert all(rule.applied >= 1 for rule in added), [(rule.fault, rule.seen) for rule in added]
    assert rep["summary"]["failed"] == 0
    assert rep["summary"]["copied"] == len(images)
    if name in ("drop-every-4th-source", "answer-lost-after-manifest-push"):
        # aiohttp itself resends an idempotent request (GET, HEAD, a PUT of bytes) once when the connection
        # dies before the answer (ferry's count misses those): every such request came back and was answered.
        # Not the start-up greeting (``GET /v2/``, ferry.warmup): it only informs, and a lost one leaves the
        # client to learn the scheme and challenge from its own first requests, with nothing to resend.
        for dropped in [q for q in proxy.requests() if q.fault in ("drop", "lose") and q.path != "/v2/"]:
            assert any(q.method == dropped.method and q.path == dropped.path and q.started > dropped.started
                       and 0 < q.status < 400 for q in proxy.requests()), dropped
    else:
        assert rep["summary"]["http_retries"] >= 1
    assert_mirrored(w, images, r.dst, "mirror/")


def test_retry_after_is_honoured(rig: Callable[..., Rig]) -> None:
    """429 with ``Retry-After: 2``: the same request comes back no sooner than two seconds later."""
    r = rig()
    w = r.seeded.workload
    target = r"/proj1/app/manifests/(v2|" + w.image("proj1/app", "v2").digest + ")$"
    (rule,) = r.src.add(Rule(Respond(429, {"Retry-After": "2"}, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}'),
                             "GET", target, times=1))
    run, rep = r.sync()
    assert run.returncode == 0, run.stderr
    assert rule.applied == 1
    first, second = r.src.requests("GET", target)[:2]
    assert first.status == 429 and second.status == 200
    assert second.started - first.started >= 2.0
    assert rep["summary"]["http_retries"] >= 1
    assert_mirrored(w, slice_images(w), r.dst, "mirror/")


def _assert_absent(dst: Registry, repo: str, tag: str, digest: str) -> None:
    for ref in (tag, digest):
        status = dst.request("HEAD", f"/v2/mirror/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}).status
        assert status == 404, f"mirror/{repo}:{ref} was pushed"
    assert digest not in stored_manifests(dst, f"mirror/{repo}")


@pytest.mark.parametrize("what", ["blob", "manifest", "index-child"])
def test_corrupted_content_stops_that_image_only(rig: Callable[..., Rig], what: str) -> None:
    """A byte flipped in every transfer of one blob or manifest: that image fails with a digest error, is
    not pushed at all, and the other images of the run complete."""
    r = rig()
    w = r.seeded.workload
    if what == "blob":
        bad = w.image("proj0/web", "v2")
        rule = Rule(Flip(at=-5), "GET", rf"/blobs/{_layer(w, 'proj0/web', 'v2')}$")
    elif what == "manifest":  # read by tag: caught by the Docker-Content-Digest the registry sends
        bad = w.image("proj1/app", "v1")
        rule = Rule(Flip(at=40), "GET", rf"/proj1/app/manifests/(v1|{bad.digest})$")
    else:
        bad = w.image("proj0/multi", "v1")
        child = w.manifest(bad.digest)["manifests"][1]["digest"]
        rule = Rule(Flip(at=60), "GET", rf"/manifests/{child}$")
    r.src.add(rule)
    run, rep = r.sync()
    assert run.returncode == 1, run.stderr
    assert rule.applied >= 1
    jobs = {j["destination"]: j for j in rep["jobs"]}
    failed = jobs.pop(f"{r.dst_px.host}/mirror/{bad.ref}")
    assert failed["status"] == "failed"
    assert "does not match" in failed["error"] and "digest" in failed["error"], failed["error"]
    assert {j["status"] for j in jobs.values()} == {"copied"}
    assert "1 of 11 image(s) failed" in run.stderr
    _assert_absent(r.dst, bad.repo, bad.tag, bad.digest)
    assert_mirrored(w, [i for i in slice_images(w) if i != bad and i.repo != bad.repo], r.dst, "mirror/")
    if what == "index-child":
        assert child not in stored_manifests(r.dst, f"mirror/{bad.repo}")


def test_corruption_once_is_recovered_by_the_next_round(rig: Callable[..., Rig]) -> None:
    """A blob corrupted in transit once: the image fails its first round and is copied in the second."""
    r = rig()
    w = r.seeded.workload
    (rule,) = r.src.add(Rule(Flip(at=-5), "GET", rf"/blobs/{_layer(w, 'proj0/web', 'v2')}$", times=1))
    run, rep = r.sync(retries=1)
    assert run.returncode == 0, run.stderr
    assert rule.applied == 1
    job = next(j for j in rep["jobs"] if j["destination"].endswith("mirror/proj0/web:v2"))
    assert job["status"] == "copied" and job["retries"] == 1
    assert_mirrored(w, slice_images(w), r.dst, "mirror/")


def test_proxy_counts_what_it_did(rig: Callable[..., Rig]) -> None:
    """The proxy itself: uploads go through it (Location rewritten), and it counts each fault."""
    r = rig(store_and_forward=True)
    r.dst_px.add(Rule(Respond(503), "PUT", r"/manifests/", nth=(1, 3)))
    run, _ = r.sync()
    assert run.returncode == 0, run.stderr
    assert r.dst_px.counts() == {"respond": 2}
    direct = [q for q in r.dst.requests() if q.user_agent.startswith("ferry")]
    through = r.dst_px.requests()
    assert len(direct) == len(through) - 2 > 0  # every request of ferry went through the proxy (but the two 503s)
    assert r.dst_px.requests("PUT", r"/blobs/uploads/"), "uploads follow the rewritten Location"
    assert json.loads(r.dst.request("GET", "/v2/_catalog").body)["repositories"]


@pytest.mark.parametrize("fault", [Respond(503), Drop(), Truncate(after=40), Stall(60)],
                         ids=["503", "drop", "truncated", "stall"])
def test_token_service_hiccup_is_retried(tmp_path: Path, registry: Registry, fault: Fault) -> None:
    """The token service (Harbor's core, say) fails once: the token request is retried like any other."""
    signer = TokenSigner.create(tmp_path / "signer")
    users, perms = {"alice": "secret"}, {"alice": {"*": ["pull", "push"]}}
    with TokenServer(signer, service="svc", issuer="iss", users=users, permissions=perms) as tokens, \
            FaultProxy(f"http://127.0.0.1:{tokens.port}") as token_px, \
            start_registry(tmp_path / "src", auth=TokenAuth(f"{token_px.url}/token", "svc", "iss", signer)) as src:
        lay = im.Layout(tmp_path / "layout")
        for n in range(3):
            im.oci_image(lay, f"i{n}", seed=40 + n)
            push_layout(lay.path, f"i{n}", src.ref(f"team/app:v{n}"), creds=("alice", "secret"))
        # aiohttp resends an idempotent request once by itself when the connection drops: drop twice
        (rule,) = token_px.add(Rule(fault, "GET", r"^/token", nth=(1, 2) if isinstance(fault, Drop) else 1))
        rep = tmp_path / "report.json"
        run = run_ferry("sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false",
                        "--dest-tls-verify=false", "--src-creds", "alice", "--retries", "0", "--report", str(rep),
                        "--journal", str(tmp_path / "j.db"), src.ref("team/app"), f"{registry.host}/copy",
                        home=tmp_path / "home", env={**FAST, "FERRY_SRC_PASSWORD": "secret"})
        assert run.returncode == 0, run.stderr
        assert rule.applied == (2 if isinstance(fault, Drop) else 1)
        assert report(rep)["summary"]["http_retries"] >= 1
        for n in range(3):
            assert inspect_raw(registry.ref(f"copy/team/app:v{n}")) == lay.manifest_bytes(f"i{n}")
        assert_whole(registry)


@pytest.mark.parametrize("fault", [Reset(after=1500), Truncate(after=1500), Stall(60, after=1500)],
                         ids=["reset", "truncated", "stalled"])
@pytest.mark.parametrize("transport", ["oci", "dir", "docker-archive"])
def test_download_cut_midway_to_a_local_destination_is_resumed(project_source: Seeded, tmp_path: Path,
                                                                fault: Fault, transport: str) -> None:
    """Registry to local storage: the blob read is cut midway and resumed from where it stopped."""
    w = project_source.workload
    img = w.image("proj0/web", "v1")
    layer = _layer(w, "proj0/web", "v1")
    with FaultProxy(project_source.registry.url) as src:
        (rule,) = src.add(Rule(fault, "GET", rf"/blobs/{layer}$", nth=1))
        target = tmp_path / f"out.{transport}"
        ref = f"{transport}:{target}" + (":web:v1" if transport != "dir" else "")
        run = run_ferry("copy", "--src-tls-verify=false", f"docker://{src.ref(img.ref)}", ref,
                        home=tmp_path / "home", env=FAST)
        assert run.returncode == 0, run.stderr
        assert rule.applied == 1
        reads = src.requests("GET", rf"/blobs/{layer}$")
        assert len(reads) == 2 and reads[0].headers.get("Range") is None
        assert 0 < int(reads[1].headers["Range"].removeprefix("bytes=").removesuffix("-")) <= 1500  # where it stopped
    assert img.digest in run.stderr  # the copy verified every blob's digest while it streamed
    stored = {"oci": target / "blobs" / "sha256" / layer.split(":")[1], "dir": target / layer.split(":")[1]}
    if transport in stored:
        assert hashlib.sha256(stored[transport].read_bytes()).hexdigest() == layer.split(":")[1]
