"""``--max-bandwidth`` and ``--max-requests`` measured from the outside: a real ``ferry sync`` between two
real registries, each behind a :class:`FaultProxy` that timestamps every request and body chunk.

The limits are promises about what the registries see, so that is what is checked: in any two-second
window, the bytes that crossed and the requests each side received stay within the limit, its 20 ms
burst, and 0.25 s worth for timestamps a loaded machine takes late; and the run took at least as long
as the limits require (a lower bound holds under any load; no upper bound on time is asserted).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferry.ratelimit import BURST_SECONDS
from tests.support import images as im
from tests.support import workloads
from tests.support.faultproxy import FaultProxy
from tests.support.registry import Registry, start_registry
from tests.support.reliability import run_ferry, sync_yaml
from tests.support.workloads import MB, Seeded, Workload, assert_mirrored

pytestmark = pytest.mark.integration

BANDWIDTH = 4 * MB  # --max-bandwidth 4M: 12 MB of blobs take at least 3 s
REQUESTS = 20  # --max-requests 20: each side of a sync of 16 tiny images gets 50 to 100 requests
#: The windows measured: long enough that a few timestamps off on a loaded machine do not count for
#: much, short enough that an unpaced run overfills one.
WINDOW = 2.0
#: How far this 2-core machine under load may shift the proxy's timestamp of a request or a chunk (a
#: stalled thread, a chunk counted when its read ends): a window may hold that much more time's worth.
LATE = 0.25
PROXY_CHUNK = 256 * 1024  # the proxy's reads: the first one's bytes crossed before its timestamp


@dataclass
class Crossed:
    """What crossed the proxies in front of the source and the destination during one run."""

    uploads: list[tuple[float, int]]  # (time, bytes) received by the destination
    requests: dict[str, list[tuple[float, int]]]  # side → (time, 1) per request


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """``proj0/big``: 3 images with a 4 MB layer each (12 MB of blobs); ``proj0/small``: 16 tiny images."""
    workdir = tmp_path_factory.mktemp("rate-source")
    big = workloads.projects(workdir, name="rate", projects=1, repos=("big",), tags=("v1", "v2", "v3"),
                             base_size=4096, own_size=4 * MB, docker_projects=())
    small = workloads.projects(workdir, name="rate", projects=1, repos=("small",),
                               tags=tuple(f"t{i}" for i in range(16)), docker_projects=())
    reg = start_registry(workdir / "registry")
    try:
        for w in (big, small):
            workloads.seed(w, reg.host, workdir)
        yield Seeded(reg, Workload("rate", big.layout, big.images + small.images))
    finally:
        reg.stop()


def allowed(rate: float) -> float:
    """The most a window may hold: the rate over the window (give or take LATE) and the bucket's burst."""
    return rate * (WINDOW + LATE) + max(1.0, rate * BURST_SECONDS)


def most_in_window(times: list[tuple[float, int]], window: float) -> int:
    """The most units (bytes, requests) that crossed within ``window`` seconds after any one of them."""
    best, end, inside = 0, 0, 0
    for start, n in times:  # a sliding window (start, start + window]
        while end < len(times) and times[end][0] <= start + window:
            inside += times[end][1]
            end += 1
        inside -= n
        best = max(best, inside)
    return best


def limited_sync(seeded: Seeded, dst: Registry, repo: str, tmp: Path, *limits: str) -> Crossed:
    """``ferry sync`` of every tag of ``repo`` into ``dst/mirror``, through a proxy on each side."""
    with FaultProxy(seeded.registry.url) as src_px, FaultProxy(dst.url) as dst_px:
        rules = sync_yaml(tmp / f"{repo.replace('/', '-')}.yaml", src_px.host, [repo])
        run = run_ferry("sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", "--journal",
                        str(tmp / f"{repo.replace('/', '-')}.db"), *limits, str(rules), f"{dst_px.host}/mirror",
                        home=tmp / "home", timeout=120)
        assert run.returncode == 0, run.stderr
        crossed = Crossed(dst_px.upload_flow(),
                          {side: [(r.started, 1) for r in px.records] for side, px in (("source", src_px),
                                                                                     ("destination", dst_px))})
    return crossed


def test_a_sync_stays_within_its_bandwidth_and_request_limits(source: Seeded, registry: Registry,
                                                              tmp_path: Path) -> None:
    """Two syncs side by side: 12 MB under --max-bandwidth 4M, 16 tiny images under --max-requests 20."""
    with ThreadPoolExecutor(2) as pool:
        big = pool.submit(limited_sync, source, registry, "proj0/big", tmp_path, "--max-bandwidth", "4M")
        small = pool.submit(limited_sync, source, registry, "proj0/small", tmp_path, "--max-requests",
                            str(REQUESTS))
        paced, counted = big.result(), small.result()
    assert_mirrored(source.workload, source.workload.images, registry, "mirror/", skopeo=False)

    uploads = paced.uploads
    total = sum(n for _, n in uploads)
    assert total >= 12 * MB
    # the cap is on what ferry reads from the source, which a streamed copy writes to the destination as fast
    most, spread = most_in_window(uploads, WINDOW), uploads[-1][0] - uploads[0][0]
    assert most <= allowed(BANDWIDTH), f"{most} bytes in {WINDOW} s"
    assert spread >= (total - BANDWIDTH * BURST_SECONDS - PROXY_CHUNK) / BANDWIDTH, f"{total} bytes in {spread:.2f} s"

    for side, times in counted.requests.items():
        assert len(times) > 2 * REQUESTS, f"too few requests to the {side} to measure its rate"
        most, spread = most_in_window(times, WINDOW), times[-1][0] - times[0][0]
        assert most <= allowed(REQUESTS), f"{most} requests to the {side} in {WINDOW} s"
        assert spread >= (len(times) - 2) / REQUESTS, f"{len(times)} to the {side} in {spread:.2f} s"  # 1st: burst


def test_a_copy_from_a_layout_paces_what_it_uploads(registry: Registry, tmp_path: Path) -> None:
    """Read from files, nothing is downloaded: the blob bodies sent to the destination are what is paced."""
    im.oci_image(tmp_path / "layout", "v1", layers=1, layer_size=6 * MB, seed=42)
    rate = 2 * MB
    with FaultProxy(registry.url) as dst_px:
        run = run_ferry("copy", "--dest-tls-verify=false", "--max-bandwidth", "2M", f"oci:{tmp_path / 'layout'}:v1",
                        f"docker://{dst_px.host}/mirror/layout:v1", home=tmp_path / "home", timeout=120)
        assert run.returncode == 0, run.stderr
        uploads = dst_px.upload_flow()
    total = sum(n for _, n in uploads)
    assert total >= 6 * MB
    most, spread = most_in_window(uploads, WINDOW), uploads[-1][0] - uploads[0][0]
    assert most <= allowed(rate), f"{most} bytes in {WINDOW} s"
    assert spread >= (total - rate * BURST_SECONDS - PROXY_CHUNK) / rate, f"{total} bytes in {spread:.2f} s"
    assert registry.request("GET", "/v2/mirror/layout/manifests/v1",
                            headers={"Accept": im.OCI_MANIFEST}).status == 200
