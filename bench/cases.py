"""The benchmark cases: ferry against skopeo and against the physical limit, on local registries.

Every case starts its own ``docker-registry`` processes on 127.0.0.1 with fresh data
directories, seeds its source with skopeo (:mod:`bench.workloads`), then runs the competitors
alternately (A B C A B C …) ``reps`` times. A cold run gets a fresh, empty destination; a
nothing-to-do run gets a destination that already holds everything (a copy of the source's
storage, itself written by skopeo). Each run is measured from outside:

- wall time of the child process(es), started and reaped here (``os.wait4``);
- peak RSS: ``ru_maxrss`` of each child from ``wait4`` (max over the children of a loop);
- requests: lines added to the source's and destination's access logs during the run;
- bytes: what the source served (sizes in its access log) and what the destination read from
  its sockets and files (``rchar`` of its ``/proc/PID/io``, an upper bound of upload bytes).

Cold runs are checked afterwards: every tag must be in the destination with the source's digest,
or the run counts as failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import bench  # noqa: F401  (puts the repository root on sys.path)
from bench import workloads
from bench.workloads import Image, Workload
from tests.support import registry as registry_support
from tests.support.images import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from tests.support.registry import Registry

__all__ = ["Bench", "CaseResult", "Sample", "Target", "case_big", "case_big5", "case_bulk", "case_scale", "case_small"]

MiB = 1 << 20
ACCEPT = ", ".join(
    [
        OCI_INDEX,
        OCI_MANIFEST,
        DOCKER_LIST,
        DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    ]
)
_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}

# The least a cold copier of a one-layer image must ask (per image: source GET manifest, config,
# layer; destination POST+PUT per blob, PUT manifest) and a nothing-to-do one (source HEAD
# manifest, destination HEAD manifest); plus one tags/list per repository (10 tags each here).
FLOOR_REQUESTS_COLD = 8.1
FLOOR_REQUESTS_NOOP = 2.1

# Children are started by this small launcher, not by the harness: a child's ru_maxrss counts the
# memory of the process it was forked from (Linux carries the old mm's high-water mark across
# exec), so forking from the ~40 MB harness would floor every reading at ~40 MB; this launcher
# floors it at its own ~10 MB. It runs the commands one after the other and reports the wall
# time, the largest ru_maxrss (KiB), the CPU seconds (user + system) and the exit codes.
_SPAWN = r"""
import json, os, sys, time
cmds = json.load(open(sys.argv[1]))
peak, cpu, codes = 0, 0.0, []
start = time.perf_counter()
for cmd in cmds:
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
    _, status, usage = os.wait4(pid, 0)
    codes.append(os.waitstatus_to_exitcode(status))
    peak = max(peak, usage.ru_maxrss)
    cpu += usage.ru_utime + usage.ru_stime
wall = time.perf_counter() - start
with open(sys.argv[2], "w") as f:
    json.dump({"wall": wall, "peak_kib": peak, "cpu": cpu, "codes": codes}, f)
"""

# The limit for case 1, run as its own process: the destination ingests each layer from a local
# file, POST then one PUT ?digest= whose body is sent with sendfile(2) (what `curl -T` does); several
# layers (case 1b) go side by side, one thread and connection each (sendfile releases the GIL).
_UPLOAD = r"""
import http.client, os, sys, threading, urllib.parse
host, repo, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
failures = []
def upload(digest, path):
    conn = http.client.HTTPConnection(host)
    conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    r = conn.getresponse(); r.read()
    if r.status != 202: return failures.append(f"POST {r.status}")
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    url = f"{loc.path}?{loc.query}&digest={urllib.parse.quote(digest)}"
    size = os.path.getsize(path)
    conn.putrequest("PUT", url, skip_accept_encoding=True)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    with open(path, "rb") as f:
        conn.sock.sendfile(f)
    r = conn.getresponse(); r.read()
    if r.status != 201: failures.append(f"PUT {r.status}")
threads = [threading.Thread(target=upload, args=(pairs[i], pairs[i + 1])) for i in range(0, len(pairs), 2)]
for t in threads: t.start()
for t in threads: t.join()
if failures: sys.exit(", ".join(failures))
"""


@dataclass
class Sample:
    """One measured run of one competitor."""

    competitor: str
    rep: int
    wall: float
    peak_rss_kib: int = 0
    processes: int = 0
    src_requests: int = 0
    dst_requests: int = 0
    src_bytes: int = 0  # bytes the source served (its access log)
    dst_bytes: int = 0  # bytes the destination read from sockets and files (/proc/PID/io rchar)
    cpu: float = 0.0  # CPU seconds (user + system) of the competitor's processes
    registry_cpu: float = 0.0  # CPU seconds the source and destination registries spent meanwhile
    load1: float = 0.0  # 1-minute load average when the run started (other work on the machine)
    ok: bool = True
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    """A goal from the benchmark issue and whether this run met it."""

    text: str
    value: float | None
    limit: float
    met: bool | None  # None: not measurable in this run


@dataclass
class CaseResult:
    """All samples of one case, in run order, with what the table needs to summarise them."""

    key: str
    title: str
    images: int
    workload_bytes: int
    samples: list[Sample]
    competitors: list[str]
    ferry: str = "ferry"
    params: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def ok_samples(self, competitor: str) -> list[Sample]:
        """Successful samples of ``competitor``."""
        return [s for s in self.samples if s.competitor == competitor and s.ok]

    def median(self, competitor: str) -> float | None:
        """Median wall time of the successful runs of ``competitor``."""
        walls = [s.wall for s in self.ok_samples(competitor)]
        return statistics.median(walls) if walls else None

    def to_json(self) -> dict[str, Any]:
        """Everything, raw samples included."""
        return asdict(self)


@dataclass
class Meter:
    """Access-log and ``/proc/PID/io`` readings of a source and destination before a run."""

    src: Registry
    dst: Registry
    src_mark: int = 0
    dst_mark: int = 0
    dst_rchar: int = 0
    registry_cpu: float = 0.0
    load1: float = 0.0

    def start(self) -> Meter:
        _settle(self.src, self.dst)
        self.load1 = os.getloadavg()[0]
        self.src_mark = self.src.access_log_path.stat().st_size
        self.dst_mark = self.dst.access_log_path.stat().st_size
        self.dst_rchar = _rchar(self.dst)
        self.registry_cpu = self._registry_cpu()
        return self

    def _registry_cpu(self) -> float:
        return _cpu(self.src) + (_cpu(self.dst) if self.dst is not self.src else 0.0)

    def fill(self, sample: Sample) -> Sample:
        _settle(self.src, self.dst)
        src_reqs = _log_since(self.src, self.src_mark)
        sample.src_requests = len(src_reqs)
        sample.src_bytes = sum(size for method, size in src_reqs if method == "GET")
        if self.dst is not self.src:
            sample.dst_requests = len(_log_since(self.dst, self.dst_mark))
        sample.dst_bytes = max(0, _rchar(self.dst) - self.dst_rchar)
        sample.load1 = self.load1
        sample.registry_cpu = self._registry_cpu() - self.registry_cpu
        return sample


# "GET /v2/x/manifests/1 HTTP/1.1" 200 1234 "" "ferry" — method and response size of each access-log line
_ACCESS = re.compile(r'"([A-Z]+) \S+ [^"]*" \d{3} (\d+|-)')


def _log_since(reg: Registry, offset: int) -> list[tuple[str, int]]:
    """(method, response bytes) of the access-log lines written after byte ``offset``."""
    with open(reg.access_log_path, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    out = []
    for line in text.splitlines():
        if registry_support.READINESS_UA in line:
            continue
        if m := _ACCESS.search(line):
            out.append((m[1], 0 if m[2] == "-" else int(m[2])))
    return out


def _rchar(reg: Registry) -> int:
    try:
        for line in Path(f"/proc/{reg.process.pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu(reg: Registry) -> float:
    """CPU seconds (user + system) the registry process has used so far."""
    try:
        fields = Path(f"/proc/{reg.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _settle(*regs: Registry, quiet: float = 0.05, timeout: float = 2.0) -> None:
    """Wait until the access logs stop growing (a line is written just after its response)."""
    deadline = time.monotonic() + timeout
    sizes = [r.access_log_path.stat().st_size for r in regs]
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = [r.access_log_path.stat().st_size for r in regs]
        if now == sizes:
            return
        sizes = now


class Bench:
    """Shared state of one benchmark run: work directory, reps, tools, logs."""

    def __init__(
        self, workdir: Path, reps: int, *, cache: Path | None = None, log: Callable[[str], None] = print
    ) -> None:
        self.workdir = workdir
        self.cache = cache
        self.tool_versions = [_first_line(["skopeo", "--version"]), _first_line(["docker-registry", "--version"])]
        self.reps = reps
        self.log = log
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.policy = workdir / "policy.json"
        self.policy.write_text(json.dumps(_POLICY))
        self.ferry = str(Path(sys.executable).with_name("ferry"))
        self._registries: list[Registry] = []
        self._proxies: dict[str, list[subprocess.Popen[str]]] = {}  # registry host → its latency proxies
        self._proxy_logs: dict[str, list[Path]] = {}  # registry host → its proxies' request logs
        self.shared: dict[str, Any] = {}  # results one case hands to a later one
        self._n = 0

    # -- registries ---------------------------------------------------------------------------
    def registry(
        self, name: str, *, storage_from: Registry | None = None, storage_path: Path | None = None
    ) -> Registry:
        """Start a registry with a fresh data directory (a copy of ``storage_from``'s storage, or of
        ``storage_path``, when given)."""
        self._n += 1
        wd = self.workdir / "registries" / f"{self._n:03d}-{name}"
        copy_from = storage_from.root if storage_from is not None else storage_path
        if copy_from is not None:
            (wd / "storage").mkdir(parents=True)
            workloads.copy_storage(copy_from, wd / "storage")
        reg = registry_support.start_registry(wd)
        self._registries.append(reg)
        return reg

    def workload(self, kind: str, **params: Any) -> Workload:
        """Generate (or take from the cache) a workload, logging how long it took."""
        start = time.monotonic()
        wl = workloads.build(kind, self.workdir, self.cache, **params)
        cached = " (layout from the cache)" if wl.params.get("layout_from_cache") else ""
        self.log(
            f"[{wl.name}] {len(wl.images)} images, {wl.blob_bytes / 1e6:.0f} MB of blobs, "
            f"ready in {time.monotonic() - start:.1f} s{cached}"
        )
        return wl

    def source(self, name: str, wl: Workload) -> Registry:
        """A registry holding ``wl``, written by skopeo.

        With a cache directory, the storage skopeo wrote is kept there (keyed by every image's
        digest and the skopeo and registry versions) and later copied into the fresh data
        directory instead of seeding again; the copy is checked image by image before use.
        """
        start = time.monotonic()
        cached = None
        if self.cache is not None:
            ident = [self.tool_versions, sorted((i.repo, i.tag, i.digest) for i in wl.images)]
            key = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]
            cached = self.cache / f"{wl.name}-{len(wl.images)}-{key}"
            if (cached / "storage").is_dir():
                reg = self.registry(name, storage_path=cached / "storage")
                problem = check_images(reg, wl.images)
                if not problem:
                    seconds = time.monotonic() - start
                    wl.params["seeding"] = {"seconds": seconds, "from_cache": str(cached)}
                    self.log(f"[{name}] {len(wl.images)} skopeo-seeded images restored from cache in {seconds:.1f} s")
                    return reg
                self.log(f"[{name}] cache {cached} unusable ({problem}); seeding again")
                self.drop(reg)
                shutil.rmtree(cached, ignore_errors=True)
        reg = self.registry(name)
        seconds = workloads.seed(wl, reg.host, self.workdir)
        wl.params["seeding"] = {"seconds": seconds, "from_cache": None}
        self.log(f"[{name}] seeded {len(wl.images)} images with skopeo in {seconds:.1f} s")
        if cached is not None:
            tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "storage").mkdir(parents=True)
            workloads.copy_storage(reg.root, tmp / "storage")
            shutil.rmtree(cached, ignore_errors=True)
            tmp.rename(cached)
        return reg

    def delayed(self, reg: Registry, rtt_ms: int) -> Registry:
        """``reg`` as competitors see it through ``bench.latency`` (every request held ``rtt_ms``);
        ``reg`` itself when ``rtt_ms`` is 0. Access logs and CPU are still read from ``reg``."""
        if not rtt_ms:
            return reg
        log = self.logs / f"proxy-{reg.host.replace(':', '_')}-{len(self._proxies.get(reg.host, []))}.log"
        proxy = subprocess.Popen(
            [sys.executable, "-m", "bench.latency", "--upstream", reg.host, "--rtt-ms", str(rtt_ms),
             "--log", str(log)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=Path(__file__).parent.parent,
        )
        line = proxy.stdout.readline() if proxy.stdout else ""
        if not line.startswith("listening "):
            proxy.kill()
            raise RuntimeError(f"latency proxy for {reg.host} did not start: {line!r}")
        self._proxies.setdefault(reg.host, []).append(proxy)
        self._proxy_logs.setdefault(reg.host, []).append(log)
        host = line.split()[1]
        return dataclasses.replace(reg, host=host, url=f"http://{host}")

    def _stop_proxies(self, host: str) -> None:
        for proxy in self._proxies.pop(host, []):
            proxy.terminate()
            proxy.wait(timeout=10)
        self._proxy_logs.pop(host, None)

    def drop(self, reg: Registry) -> None:
        """Stop a registry (and its latency proxies) and delete its data."""
        self._stop_proxies(reg.host)
        reg.stop()
        if reg in self._registries:
            self._registries.remove(reg)
        shutil.rmtree(reg.workdir, ignore_errors=True)

    def close(self) -> None:
        """Stop every registry (and latency proxy) still running."""
        for host in list(self._proxies):
            self._stop_proxies(host)
        for reg in list(self._registries):
            reg.stop()
        self._registries.clear()

    # -- commands -----------------------------------------------------------------------------
    def skopeo(self, *args: str) -> list[str]:
        """A skopeo command line with the permissive policy (as ``tests.support.skopeo`` runs it)."""
        return ["skopeo", "--policy", str(self.policy), *args]

    def skopeo_copy(self, src: Registry, dst: Registry, img: Image) -> list[str]:
        """``skopeo copy`` of one image, registry to registry, plain HTTP."""
        return self.skopeo(
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{src.host}/{img.repo}:{img.tag}",
            f"docker://{dst.host}/{img.repo}:{img.tag}",
        )

    def skopeo_sync_repos(self, src: Registry, dst: Registry, repos: Sequence[str]) -> list[list[str]]:
        """One ``skopeo sync`` per repository, into ``DST/<namespace>`` (so the namespace is kept)."""
        return [
            self.skopeo(
                "sync",
                "--src",
                "docker",
                "--dest",
                "docker",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                f"{src.host}/{repo}",
                f"{dst.host}/{repo.rpartition('/')[0]}".rstrip("/"),
            )
            for repo in repos
        ]

    def ferry_sync_yaml(self, src: Registry, dst: Registry, tags: dict[str, list[str]], tag: str) -> list[str]:
        """``ferry sync --src yaml`` over ``tags`` (repo → tags; an empty list means all), fresh journal."""
        d = Path(tempfile.mkdtemp(prefix=f"ferry-{tag}-", dir=self.workdir))
        spec = {src.host: {"tls-verify": False, "images": {repo: list(t) for repo, t in tags.items()}}}
        (d / "sync.yaml").write_text(json.dumps(spec, indent=1))  # JSON is YAML
        return [
            self.ferry,
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--journal",
            str(d / "journal"),
            "--quiet",
            str(d / "sync.yaml"),
            dst.host,
        ]

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        case: str,
        competitor: str,
        rep: int,
        cmds: Sequence[list[str]],
        src: Registry,
        dst: Registry,
        *,
        check: Callable[[], str] | None = None,
    ) -> Sample:
        """Run ``cmds`` one after the other, measured as one sample; ``check`` returns an error or ``""``."""
        stem = f"{case}-{competitor.replace(' ', '_').replace('/', '_').replace(':', '')}-{rep}"
        logpath = self.logs / f"{stem}.log"
        spec, report = self.logs / f"{stem}.cmds.json", self.logs / f"{stem}.result.json"
        spec.write_text(json.dumps(list(cmds)))
        meter = Meter(src, dst).start()
        proxy_marks = {p: p.stat().st_size if p.exists() else 0
                       for reg in {src.host, dst.host} for p in self._proxy_logs.get(reg, [])}
        report.unlink(missing_ok=True)
        with open(logpath, "wb") as out:
            launcher = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _SPAWN, str(spec), str(report)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        failed = ""
        if launcher.returncode != 0 or not report.exists():
            result = {"wall": float("nan"), "peak_kib": 0, "cpu": 0.0, "codes": []}
            failed = f"launcher exit {launcher.returncode}"
        else:
            result = json.loads(report.read_text())
        wall, peak, codes = result["wall"], result["peak_kib"], result["codes"]
        bad = [i for i, rc in enumerate(codes) if rc != 0]
        if bad:
            first = " ".join(cmds[bad[0]][:8])
            failed = f"{len(bad)} of {len(codes)} commands failed, first exit {codes[bad[0]]}: {first} …"
        sample = meter.fill(Sample(competitor, rep, wall, peak, len(cmds), cpu=result["cpu"]))
        if proxy_marks:
            sample.extra |= round_trips(_proxied_since(proxy_marks))
        if failed:
            tail = logpath.read_text(errors="replace")[-600:].strip()
            sample.ok, sample.error = False, f"{failed} | {tail}"
        elif check is not None:
            checked = time.perf_counter()
            if problem := check():
                sample.ok, sample.error = False, problem
            sample.extra["check_seconds"] = time.perf_counter() - checked
        self.log(_line(case, sample))
        return sample

    def run_inline(
        self, case: str, competitor: str, rep: int, fn: Callable[[], dict[str, Any]], src: Registry, dst: Registry
    ) -> Sample:
        """Measure ``fn()`` in this process (no RSS); its dict goes to ``extra``."""
        meter = Meter(src, dst).start()
        start = time.perf_counter()
        try:
            extra = fn()
            error = ""
        except Exception as e:  # a limit probe must not stop the benchmark
            extra, error = {}, f"{type(e).__name__}: {e}"
        wall = time.perf_counter() - start
        sample = meter.fill(Sample(competitor, rep, wall, 0, 0, ok=not error, error=error, extra=extra))
        self.log(_line(case, sample))
        return sample


# -- round trips through the latency proxies ------------------------------------------------------------
_REPO_OF = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags)/")


def _proxied_since(marks: dict[Path, int]) -> list[tuple[float, float, str]]:
    """(start, end, path) of the requests the latency proxies answered after their logs' ``marks``."""
    out = []
    for path, offset in marks.items():
        with open(path, "rb") as f:
            f.seek(offset)
            for line in f.read().decode(errors="replace").splitlines():
                start, end, _method, where = line.split(" ", 3)
                out.append((float(start), float(end), where))
    return out


def critical_path(intervals: Sequence[tuple[float, float]]) -> int:
    """The longest chain of requests each sent after the previous one was answered: the round trips a
    run waited for one after the other (greedy by earliest end, which is optimal for intervals)."""
    chain, last_end = 0, float("-inf")
    for start, end in sorted(intervals, key=lambda i: i[1]):
        if start >= last_end:
            chain, last_end = chain + 1, end
    return chain


def round_trips(requests: Sequence[tuple[float, float, str]]) -> dict[str, Any]:
    """Round trips on the critical path of a run (both sides' proxies together) and per repository (the
    requests naming it: what one image, or one repository's images side by side, waited for in turn)."""
    by_repo: dict[str, list[tuple[float, float]]] = {}
    for start, end, path in requests:
        if m := _REPO_OF.match(path):
            by_repo.setdefault(m[1], []).append((start, end))
    per_repo = [critical_path(v) for v in by_repo.values()]
    return {
        "proxied_requests": len(requests),
        "round_trips": critical_path([(s, e) for s, e, _ in requests]),
        "round_trips_per_repo": statistics.median(per_repo) if per_repo else None,
    }


def _wan_notes(res: CaseResult) -> None:
    """Requests per image and round trips on the critical path, per competitor (median of its runs)."""
    for comp in res.competitors:
        ok = [s for s in res.ok_samples(comp) if "round_trips" in s.extra]
        if not ok:
            continue
        reqs = statistics.median([s.extra["proxied_requests"] for s in ok]) / max(1, res.images)
        run = statistics.median([s.extra["round_trips"] for s in ok])
        repo = [s.extra["round_trips_per_repo"] for s in ok if s.extra["round_trips_per_repo"] is not None]
        per_repo = f", median {statistics.median(repo):.0f} per repository" if repo else ""
        res.notes.append(f"{comp}: {reqs:.1f} requests per image, {run:.0f} round trips on the run's critical "
                         f"path{per_repo}")


def _first_line(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().partition("\n")[0]


def _line(case: str, s: Sample) -> str:
    status = "ok" if s.ok else f"FAILED {s.error[:300]}"
    return (
        f"  {case:<11} {s.competitor:<25} rep {s.rep}: {s.wall:7.2f} s  rss {s.peak_rss_kib / 1024:5.1f} MiB  "
        f"cpu {s.cpu:5.1f}+{s.registry_cpu:4.1f} s  req {s.src_requests}+{s.dst_requests}  "
        f"load {s.load1:4.1f}  {status}"
    )


# -- checks ---------------------------------------------------------------------------------------
def check_images(dst: Registry, imgs: Sequence[Image], *, concurrency: int = 16) -> str:
    """``""`` when every image is in ``dst`` under its tag with the expected digest, else what is wrong."""
    return asyncio.run(_check_images(dst, imgs, concurrency))


async def _check_images(dst: Registry, imgs: Sequence[Image], concurrency: int) -> str:
    import aiohttp

    bad: list[str] = []
    todo = list(imgs)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency), headers={"Accept": ACCEPT}
    ) as session:

        async def worker() -> None:
            while todo:
                img = todo.pop()
                async with session.head(f"{dst.url}/v2/{img.repo}/manifests/{img.tag}") as r:
                    got = r.headers.get("Docker-Content-Digest")
                    if r.status != 200 or got != img.digest:
                        bad.append(f"{img.repo}:{img.tag} {r.status} {got}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return f"verification: {len(bad)} of {len(imgs)} images wrong, e.g. {bad[:3]}" if bad else ""


def check_blob(dst: Registry, repo: str, digest: str) -> str:
    """``""`` when ``dst`` has blob ``digest`` in ``repo``."""
    r = dst.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    return "" if r.status == 200 else f"verification: blob {digest} in {repo}: {r.status}"


# -- the registry's own request rate ------------------------------------------------------------
async def _bare(src: Registry, dst: Registry, imgs: Sequence[Image], concurrency: int, cold: bool) -> dict[str, Any]:
    """Ask the least a copier must, with no other work (nothing verified, journaled or parsed beyond the
    manifest): the source's tag list per repository, then per image, cold: GET manifest, per blob GET +
    POST + PUT, PUT manifest; nothing to do: HEAD the manifest on both sides."""
    from urllib.parse import urljoin

    import aiohttp

    todo = list(reversed(imgs))
    requests = 0
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, headers={"Accept": ACCEPT}) as session:

        async def send(method: str, url: str, want: int = 200, **kw: Any) -> tuple[bytes, Any]:
            nonlocal requests
            requests += 1
            async with session.request(method, url, **kw) as r:
                if r.status != want:
                    raise RuntimeError(f"{method} {url}: HTTP {r.status}")
                return await r.read(), r.headers

        async def copy(img: Image) -> None:
            raw, headers = await send("GET", f"{src.url}/v2/{img.repo}/manifests/{img.tag}")
            manifest = json.loads(raw)
            for desc in [manifest["config"], *manifest["layers"]]:
                blob, _ = await send("GET", f"{src.url}/v2/{img.repo}/blobs/{desc['digest']}")
                _, h = await send("POST", f"{dst.url}/v2/{img.repo}/blobs/uploads/", want=202)
                location = urljoin(dst.url, h["Location"])
                await send("PUT", f"{location}{'&' if '?' in location else '?'}digest={desc['digest']}", want=201,
                           data=blob, headers={"Content-Type": "application/octet-stream"})
            await send("PUT", f"{dst.url}/v2/{img.repo}/manifests/{img.tag}", want=201, data=raw,
                       headers={"Content-Type": headers["Content-Type"]})

        async def check(img: Image) -> None:
            path = f"/v2/{img.repo}/manifests/{img.tag}"
            await asyncio.gather(send("HEAD", src.url + path), send("HEAD", dst.url + path))

        async def worker() -> None:
            while todo:
                await (copy if cold else check)(todo.pop())

        start = time.perf_counter()
        repos = sorted({i.repo for i in imgs})
        await asyncio.gather(*(send("GET", f"{src.url}/v2/{repo}/tags/list") for repo in repos))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"requests": requests, "concurrency": concurrency, "seconds": elapsed}


#: Requests the bare copier keeps in flight (as many as ferry's default 8 images, one request per side).
BARE_CONCURRENCY = 16


def bare_copier(
    src: Registry, dst: Registry, imgs: Sequence[Image], *, cold: bool, concurrency: int = BARE_CONCURRENCY
) -> dict[str, Any]:
    """The registries' own limit for copying ``imgs`` (``cold``) or finding them all there: a tight aiohttp
    loop asking only the floor's requests of both registries (:func:`_bare`)."""
    return asyncio.run(_bare(src, dst, imgs, concurrency, cold))


# -- case 1: one big layer ---------------------------------------------------------------------------
def _at(key: str, title: str, rtt_ms: int) -> tuple[str, str]:
    """A case's key and title, marked with the round trip its registries are behind (0: none)."""
    return (f"wan{rtt_ms}-{key}", f"{title}, {rtt_ms} ms round trip") if rtt_ms else (key, title)


def case_big(
    b: Bench, *, size: int = 400 * workloads.MB, layers: int = 1, rtt_ms: int = 0, key: str = "big"
) -> list[CaseResult]:
    """One image of ``layers`` layers of ``size`` bytes each, registry to registry; the limit is the
    destination ingesting the layers from local files (side by side when there are several).
    ``rtt_ms``: both registries behind a latency proxy."""
    wl = b.workload("big", size=size, **({"layers": layers} if layers > 1 else {}))
    img = wl.images[0]
    digests = [d["digest"] for d in json.loads(wl.layout.read_blob(img.digest))["layers"]]
    src = b.source(f"{key}-src", wl)
    far_src = b.delayed(src, rtt_ms)
    what = (f"1. big layer ({size / 1e6:.0f} MB)" if layers == 1
            else f"1b. big image ({layers} × {size / 1e6:.0f} MB layers)")
    key, title = _at(key, f"{what}, cold", rtt_ms)
    comps = ["ferry copy", "skopeo copy", "limit: upload from file" + (f"s, {layers} at once" if layers > 1 else "")]
    samples: list[Sample] = []

    def blobs_in(d: Registry) -> str:
        return next((p for p in (check_blob(d, img.repo, x) for x in digests) if p), "")

    for rep in range(b.reps):
        for comp in comps:
            dst = b.registry(f"{key}-dst-{rep}")
            far_dst = b.delayed(dst, rtt_ms)
            if comp == "ferry copy":
                cmd = [
                    b.ferry,
                    "copy",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    f"docker://{far_src.host}/{img.repo}:{img.tag}",
                    f"docker://{far_dst.host}/{img.repo}:{img.tag}",
                ]
                samples.append(b.run(key, comp, rep, [cmd], src, dst, check=lambda d=dst: check_images(d, [img])))
            elif comp == "skopeo copy":
                cmd = b.skopeo_copy(far_src, far_dst, img)
                samples.append(b.run(key, comp, rep, [cmd], src, dst, check=lambda d=dst: check_images(d, [img])))
            else:
                pairs = [x for dg in digests for x in (dg, str(wl.layout.blob_path(dg)))]
                cmd = [sys.executable, "-I", "-c", _UPLOAD, far_dst.host, img.repo, *pairs]
                samples.append(b.run(key, comp, rep, [cmd], src, dst, check=lambda d=dst: blobs_in(d)))
            b.drop(dst)
    b.drop(src)
    res = CaseResult(key, title, 1, wl.blob_bytes, samples, comps, "ferry copy", wl.params)
    f, s, lim = (res.median(c) for c in comps)
    rss = max((x.peak_rss_kib for x in res.ok_samples("ferry copy")), default=0) / 1024
    res.targets = [
        _target("ferry ≤ 1.15 × limit", f / lim if f and lim else None, 1.15),
        _target("ferry ≤ 0.9 × skopeo copy", f / s if f and s else None, 0.9),
        _target("ferry peak RSS ≤ 100 MB (MiB shown)", rss if rss else None, 100 * 1e6 / MiB),
    ]
    if rtt_ms:  # issue 14's time targets for big images are the loopback ones: here they are reported
        res.targets = res.targets[2:]
        ratios = {"limit": f / lim if f and lim else None, "skopeo copy": f / s if f and s else None}
        res.notes += [f"ferry ÷ {name}: {x:.2f} (reported: the big-image targets are the loopback ones)"
                      for name, x in ratios.items() if x]
    _wan_notes(res)
    return [res]


def case_big5(b: Bench, *, size: int = 200 * workloads.MB, layers: int = 5) -> list[CaseResult]:
    """Case 1b: one image of ``layers`` big layers (issue 14: 5 × 200 MB); the limit uploads them side by side."""
    return case_big(b, size=size, layers=layers, key="big5")


def _target(text: str, value: float | None, limit: float) -> Target:
    return Target(text, value, limit, None if value is None else value <= limit)


# -- cases 2 and 3: Harbor-like bulk, cold and nothing to do ------------------------------------------------
def case_bulk(
    b: Bench, *, projects: int = 6, repos: int = 6, tags: int = 4, copy_loop_noop: bool = False, rtt_ms: int = 0
) -> list[CaseResult]:
    """``projects × repos × tags`` images with a shared base layer per project; cold, then nothing to do.
    ``rtt_ms``: both registries behind a latency proxy."""
    wl = b.workload("harbor", projects=projects, repos=repos, tags=tags)
    src = b.source("bulk-src", wl)
    far_src = b.delayed(src, rtt_ms)
    cold_key, cold_title = _at("bulk-cold", "2. Harbor-like bulk, cold", rtt_ms)
    noop_key, noop_title = _at("bulk-noop", "3. Harbor-like bulk, nothing to do", rtt_ms)
    all_tags: dict[str, list[str]] = {repo: [] for repo in wl.repos}

    cold = ["ferry sync", "skopeo sync (per repo)", "skopeo copy (per image)"]
    samples: list[Sample] = []
    for rep in range(b.reps):
        for comp in cold:
            dst = b.registry(f"bulk-dst-{rep}")
            far_dst = b.delayed(dst, rtt_ms)
            if comp == "ferry sync":
                cmds = [b.ferry_sync_yaml(far_src, far_dst, all_tags, "bulk")]
            elif comp.startswith("skopeo sync"):
                cmds = b.skopeo_sync_repos(far_src, far_dst, wl.repos)
            else:
                cmds = [b.skopeo_copy(far_src, far_dst, img) for img in wl.images]
            samples.append(
                b.run(cold_key, comp, rep, cmds, src, dst, check=lambda d=dst: check_images(d, wl.images))
            )
            b.drop(dst)
    res_cold = CaseResult(cold_key, cold_title, len(wl.images), wl.blob_bytes, samples, cold, "ferry sync", wl.params)
    f, s = res_cold.median("ferry sync"), res_cold.median("skopeo sync (per repo)")
    res_cold.targets = [_target("ferry ≤ 1/3 × skopeo sync", f / s if f and s else None, 1 / 3)]
    if rtt_ms == WAN_TARGET_RTT_MS:
        res_cold.targets.append(_target("ferry ≤ 0.05 × skopeo sync", f / s if f and s else None, 0.05))
    _wan_notes(res_cold)
    if not rtt_ms:
        b.shared["bulk-cold"] = ((projects, repos, tags), res_cold)

    # Nothing to do: its own source and a destination that already holds everything (storage copies).
    noop_src = b.registry("bulk-noop-src", storage_from=src)
    b.drop(src)
    dst = b.registry("bulk-noop-dst", storage_from=noop_src)
    far_src, far_dst = b.delayed(noop_src, rtt_ms), b.delayed(dst, rtt_ms)
    noop = ["ferry sync", "skopeo sync (per repo)"] + (["skopeo copy (per image)"] if copy_loop_noop else [])
    samples = []
    for rep in range(b.reps):
        for comp in noop:
            if comp == "ferry sync":
                cmds = [b.ferry_sync_yaml(far_src, far_dst, all_tags, "bulk-noop")]
            elif comp.startswith("skopeo sync"):
                cmds = b.skopeo_sync_repos(far_src, far_dst, wl.repos)
            else:
                cmds = [b.skopeo_copy(far_src, far_dst, img) for img in wl.images]
            samples.append(b.run(noop_key, comp, rep, cmds, noop_src, dst))
    b.drop(dst)
    b.drop(noop_src)
    res_noop = CaseResult(noop_key, noop_title, len(wl.images), 0, samples, noop, "ferry sync", wl.params)
    f, s = res_noop.median("ferry sync"), res_noop.median("skopeo sync (per repo)")
    res_noop.targets = [_target("ferry ≤ 0.35 × skopeo sync (2nd run)", f / s if f and s else None, 0.35)]
    if rtt_ms == WAN_TARGET_RTT_MS:
        res_noop.targets.append(_target("ferry ≤ 0.05 × skopeo sync (2nd run)", f / s if f and s else None, 0.05))
    _wan_notes(res_noop)
    return [res_cold, res_noop]


# -- the WAN case: cases 1-3 with both registries behind a latency proxy ------------------------------------
WAN_RTTS_MS = (20, 80)
WAN_TARGET_RTT_MS = 80  # the target: cold and nothing to do ≤ 0.05 × skopeo sync at 80 ms


def case_wan(
    b: Bench,
    *,
    rtts: Sequence[int] = WAN_RTTS_MS,
    size: int = 400 * workloads.MB,
    projects: int = 6,
    repos: int = 6,
    tags: int = 4,
) -> list[CaseResult]:
    """Cases 1-3 with every request held one round trip (``bench.latency``), at each of ``rtts``:
    where a copier waits on the network rather than works, requests per image and what it keeps in
    flight decide its time. Nothing to do is measured against the skopeo copy loop too."""
    out: list[CaseResult] = []
    for rtt in rtts:
        out += case_big(b, size=size, rtt_ms=rtt)
        out += case_bulk(b, projects=projects, repos=repos, tags=tags, copy_loop_noop=True, rtt_ms=rtt)
    return out


# -- case 4: many small images ------------------------------------------------------------------------------
def case_small(b: Bench, *, repos: int = 100, tags: int = 10, with_skopeo: bool = False) -> list[CaseResult]:
    """``repos × tags`` tiny images, cold and nothing to do, against the registries' own request rate: the
    limit is :func:`bare_copier` asking the floor's requests of the same two registries."""
    wl = b.workload("small", repos=repos, tags=tags)
    src = b.source("small-src", wl)
    all_tags: dict[str, list[str]] = {repo: [] for repo in wl.repos}
    full = b.registry("small-noop-dst", storage_from=src)
    limit = "limit: bare copier (floor requests)"
    comps = ["ferry sync"] + (["skopeo sync (per repo)"] if with_skopeo else []) + [limit]
    cold: list[Sample] = []
    noop: list[Sample] = []
    for rep in range(b.reps):
        for comp in comps:
            dst = b.registry(f"small-dst-{rep}")
            if comp == limit:
                cold.append(b.run_inline("small-cold", comp, rep,
                                         lambda d=dst: bare_copier(src, d, wl.images, cold=True), src, dst))
                problem = check_images(dst, wl.images)
                if problem:
                    raise RuntimeError(f"the bare copier left {problem}")
            else:
                cmds = ([b.ferry_sync_yaml(src, dst, all_tags, "small")] if comp == "ferry sync"
                        else b.skopeo_sync_repos(src, dst, wl.repos))
                cold.append(b.run("small-cold", comp, rep, cmds, src, dst,
                                  check=lambda d=dst: check_images(d, wl.images)))
            b.drop(dst)
        for comp in comps:
            if comp == limit:
                noop.append(b.run_inline("small-noop", comp, rep,
                                         lambda: bare_copier(src, full, wl.images, cold=False), src, full))
                continue
            cmds = ([b.ferry_sync_yaml(src, full, all_tags, "small-noop")] if comp == "ferry sync"
                    else b.skopeo_sync_repos(src, full, wl.repos))
            noop.append(b.run("small-noop", comp, rep, cmds, src, full))
    b.drop(full)
    b.drop(src)
    out = []
    for key, title, samples, floor in (
        ("small-cold", "4. many small images, cold", cold, FLOOR_REQUESTS_COLD),
        ("small-noop", "4. many small images, nothing to do", noop, FLOOR_REQUESTS_NOOP),
    ):
        size = wl.blob_bytes if key == "small-cold" else 0
        res = CaseResult(key, title, len(wl.images), size, samples, comps, "ferry sync", wl.params)
        res.notes.append(f"limit: {floor} requests per image (the least a copier must ask), asked of the same two "
                         f"registries by a tight aiohttp loop (concurrency {BARE_CONCURRENCY}) that verifies "
                         "and records nothing")
        f, lim = res.median("ferry sync"), res.median(limit)
        bound = SMALL_LIMIT_TARGETS[key]
        res.targets.append(_target(f"ferry ≤ {bound} × the request-rate limit", f / lim if f and lim else None, bound))
        out.append(res)
    return out


#: Issue 14: many small images within 1.5 × the request-rate limit cold, and nothing to do within 1.3 ×
#: (the limit: :func:`bare_copier`'s time for the floor's requests, a HEAD per tag per side on a no-op).
SMALL_LIMIT_TARGETS = {"small-cold": 1.5, "small-noop": 1.3}


# -- case 5: scaling ----------------------------------------------------------------------------------------
def case_scale(
    b: Bench,
    *,
    projects: int = 6,
    repos: int = 6,
    tags: int = 4,
    factors: Sequence[int] = (1, 2, 4),
    reuse_bulk: bool = False,
) -> list[CaseResult]:
    """Case 2's ``ferry sync`` at 1×, 2×, 4× the tags: one source seeded at the largest size, the smaller
    workloads named by explicit tag lists; runs interleaved (1× 2× 4× 1× …).

    The 1× point is case 2 itself: with ``reuse_bulk``, when case 2 ran in this invocation with the
    same shape, its ``ferry sync`` samples are taken as the 1× samples instead of being measured
    again (quicker, but not alternated with the others: a load change between the two cases then
    shows up in the slope).
    """
    top = max(factors)
    wl = b.workload("harbor", projects=projects, repos=repos, tags=tags * top, name="scale")
    src = b.source("scale-src", wl)
    subsets: dict[str, Workload] = {}
    for k in factors:
        keep = {f"t{t}" for t in range(tags * k)}
        subsets[f"ferry sync {k}×"] = wl.subset(f"scale-{k}x", [i for i in wl.images if i.tag in keep])
    samples: list[Sample] = []
    notes: list[str] = []
    to_run = dict(subsets)
    bulk = b.shared.get("bulk-cold")
    if reuse_bulk and 1 in factors and bulk is not None and bulk[0] == (projects, repos, tags):
        one = f"ferry sync {1}×"
        for s in bulk[1].samples:
            if s.competitor == "ferry sync":
                extra = s.extra | {"images": len(subsets[one].images), "reused_from": "bulk-cold"}
                samples.append(dataclasses.replace(s, competitor=one, extra=extra))
        del to_run[one]
        notes.append("1× samples are case 2's ferry sync runs (same images, all tags listed as [])")
    for rep in range(b.reps):
        for comp, sub in to_run.items():
            dst = b.registry(f"scale-dst-{rep}")
            cmds = [b.ferry_sync_yaml(src, dst, sub.tags(), comp.replace(" ", "-"))]
            sample = b.run("scale", comp, rep, cmds, src, dst, check=lambda d=dst, s=sub: check_images(d, s.images))
            sample.extra = {"images": len(sub.images), "workload_bytes": sub.blob_bytes}
            samples.append(sample)
            b.drop(dst)
    b.drop(src)
    res = CaseResult(
        "scale",
        "5. scaling: case 2 at " + ", ".join(f"{k}×" for k in factors) + " tags (ferry sync, cold)",
        len(wl.images),
        wl.blob_bytes,
        samples,
        list(subsets),
        ferry="",
        params=wl.params | {"factors": list(factors)},
        notes=notes,
    )
    points = []
    for comp, sub in subsets.items():
        med = res.median(comp)
        rss = [s.peak_rss_kib for s in res.ok_samples(comp)]
        if med is not None and rss:
            cpu = statistics.median([s.cpu + s.registry_cpu for s in res.ok_samples(comp)])
            points.append((len(sub.images), sub.blob_bytes, med, statistics.median(rss), cpu))
    if len(points) >= 2:
        t_slope = _loglog_slope([p[0] for p in points], [p[2] for p in points])
        m_slope = _loglog_slope([p[0] for p in points], [p[3] for p in points])
        tb_slope = _loglog_slope([p[1] for p in points], [p[2] for p in points])
        c_slope = _loglog_slope([p[0] for p in points], [p[4] for p in points])
        fixed, per_image = _linear_fit([p[0] for p in points], [p[2] for p in points])
        res.extra = {
            "points": [
                {"images": p[0], "bytes": p[1], "median_wall": p[2], "median_rss_kib": p[3], "median_cpu": p[4]}
                for p in points
            ],
            "cpu_slope_vs_images": c_slope,
            "fixed_seconds": fixed,
            "seconds_per_image": per_image,
            "time_slope_vs_images": t_slope,
            "time_slope_vs_bytes": tb_slope,
            "rss_slope_vs_images": m_slope,
        }
        res.targets = [
            _target("wall time grows no faster than the work (log-log slope vs images)", t_slope, 1.0),
            _target("peak RSS grows no faster than the work (log-log slope vs images)", m_slope, 1.0),
        ]
        res.notes.append(
            f"slopes (log-log, least squares): wall time vs images {t_slope:.2f}, vs bytes {tb_slope:.2f}; "
            f"peak RSS vs images {m_slope:.2f}; CPU of ferry and registries vs images {c_slope:.2f} "
            f"(1.0 = proportional to the work); "
            f"linear fit: wall = {fixed:.2f} s + {per_image * 1000:.1f} ms × images"
        )
    return [res]


def _linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``y = a + b·x``; returns ``(a, b)``."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")
    return my - b * mx, b


def _loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    import math

    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    den = sum((x - mx) ** 2 for x in lx)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / den if den else float("nan")
