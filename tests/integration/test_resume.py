"""A ``ferry sync`` killed with SIGKILL midway, then run again with the same inputs and journal: it
completes without sending again any blob the destination had fully received before the kill."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import workloads
from tests.support.registry import Registry
from tests.support.workloads import (
    MB,
    Seeded,
    assert_mirrored,
    blob_put_digests,
    ferry,
    ferry_cmd,
    ferry_env,
    manifest_puts,
    mounts,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with workloads.big_source(tmp_path_factory) as seeded:
        yield seeded


def test_killed_run_resumes_without_sending_finished_blobs_again(
    big_source: Seeded, registry: Registry, tmp_path: Path
) -> None:
    w, src, dst = big_source.workload, big_source, registry
    distinct = w.distinct_blobs()
    big = {d for d, size in distinct.items() if size > MB}
    assert len(big) == len(w.images) == 6
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({src.host: {"insecure": True}, dst.host: {"insecure": True}}))
    rules = tmp_path / "images.json"
    rules.write_text(json.dumps({src.ref(repo): dst.ref(repo) for repo in w.repos}))
    report = tmp_path / "report.json"
    args = (
        "sync",
        "--auth",
        str(auth),
        "--images",
        str(rules),
        "--proc",
        "2",
        "--journal",
        str(tmp_path / "journal.db"),
        "--report",
        str(report),
    )
    home = tmp_path / "home"

    with open(tmp_path / "killed.out", "wb") as out, open(tmp_path / "killed.err", "wb") as err:
        proc = subprocess.Popen(
            ferry_cmd(*args), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=ferry_env(home), cwd=home
        )
    try:
        deadline = time.monotonic() + 120
        while not big & set(blob_put_digests(dst)):  # kill once a big layer has landed
            assert proc.poll() is None, (
                "ferry finished before it could be killed: " + (tmp_path / "killed.err").read_text()
            )
            assert time.monotonic() < deadline, "no upload finished in time"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.3)  # requests the registry was finishing at the kill are logged by now

    before = blob_put_digests(dst)
    tagged_before = {r.path for r in manifest_puts(dst) if r.status == 201 and "sha256:" not in r.path}
    assert len(set(before)) == len(before)
    assert big & set(before), "a big layer was complete before the kill"
    assert set(before) < set(distinct), "the kill came midway, with blobs left to send"
    assert len(tagged_before) < len(w.images), "the kill came midway, with images left to finish"

    # what the journal knows the destination holds: (repository, digest) pairs
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.db")) as db:
        journaled = set(db.execute("SELECT repo, digest FROM blobs"))
    assert {d for _, d in journaled} <= set(before) | {r.params["mount"][0] for r in mounts(dst)}
    assert journaled, "the journal outlived the kill"  # (the last blob may have landed unrecorded)

    mark = dst.mark()
    resumed = ferry(*args, home=home)
    assert resumed.returncode == 0, resumed.stderr
    # the journal is trusted: a blob it knows is held is neither asked about nor sent again there
    asked = {
        (r.path.removeprefix("/v2/").partition("/blobs/")[0], r.path.rpartition("/")[2])
        for r in dst.requests(mark)
        if "/blobs/sha256:" in r.path
    }
    assert not asked & journaled

    after = blob_put_digests(dst, mark)
    again = set(before) & set(after)
    assert not again, f"{len(again)} blob(s) completed before the kill were uploaded again"
    assert len(set(after)) == len(after), "a blob uploaded twice by the resumed run"
    assert set(before) | set(after) == set(distinct)
    assert_mirrored(w, w.images, dst)

    jobs = {j["destination"]: j for j in json.loads(report.read_text())["jobs"]}
    assert len(jobs) == len(w.images)
    for img in w.images:
        job = jobs[dst.ref(img.ref)]
        assert job["digest"] == img.digest
        finished = f"/v2/{img.repo}/manifests/{img.tag}" in tagged_before
        assert job["status"] == ("skipped" if finished else "copied"), img.ref
