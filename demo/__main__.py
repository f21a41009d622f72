"""Start two Harbor test servers (Harbor's API in front of real registries), seed the source with demo
projects — private and public, nested repositories, a multi-platform index, an OCI artifact, a cosign
signature, an untagged artifact, and (the source being a Harbor 2.7) Helm charts in ChartMuseum — and its
configuration (members, robots, a retention policy, an immutable tag rule, labels, a webhook), then migrate
it with ``ferry migrate``, verify, and stop everything.

Run from the repository root: ``python -m demo`` (``make demo`` does the set-up first).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ferry.media import referrers_tag
from tests.support import images
from tests.support.charts import chart_archive, provenance
from tests.support.harbor import HarborServer
from tests.support.harbor_config_seed import CI_SECRET, seed_configuration
from tests.support.skopeo import push_layout

SOURCE_PROJECTS = {
    "team-a": {"public": False, "storage_limit": 10 * 1024**3},
    "team-b": {"public": True},
    "ml": {"public": False, "storage_limit": 50 * 1024**3},
}


def seed(harbor: HarborServer, work: Path) -> None:
    """Images written by skopeo (never by ferry), so the source is independent of the tool under test."""
    creds = harbor.admin_creds

    def push(layout: images.Layout, ref: str, dest: str) -> None:
        push_layout(layout.path, ref, f"docker://{harbor.ref(dest)}", creds=creds)

    lay = images.Layout(work / "layout")
    digests = {}
    for i, tag in enumerate(("1.0", "1.1", "latest")):
        digests[tag] = images.docker_schema2_image(lay, f"api-{tag}", seed=100 + min(i, 1), layers=3)
        push(lay, f"api-{tag}", f"team-a/api:{tag}")
    signature_tag = referrers_tag(digests["1.0"]) + ".sig"  # cosign's tag-style signature
    images.referrer(lay, digests["1.0"], ref="api-sig")
    push(lay, "api-sig", f"team-a/api:{signature_tag}")
    for tag in ("2.0", "2.1"):
        images.oci_image(lay, f"fe-{tag}", seed=200 + int(tag[-1]), layers=2)
        push(lay, f"fe-{tag}", f"team-a/web/frontend:{tag}")
    images.oci_index(lay, "tools-multi", seed=300)
    push(lay, "tools-multi", "team-b/tools:multi")
    images.docker_manifest_list(lay, "tools-list", seed=310)
    push(lay, "tools-list", "team-b/tools:list")
    for n in range(3):
        images.docker_schema2_image(lay, f"cli-{n}", seed=400 + n, layers=2)
        push(lay, f"cli-{n}", f"team-b/cli:v{n}")
    images.oci_artifact(lay, "model", seed=500, artifact_type="application/vnd.example.model.v1")
    push(lay, "model", "ml/model:v1")
    old = images.oci_image(lay, "model-old", seed=501, layers=1)
    push(lay, "model-old", f"ml/model@{old}")  # untagged: only its digest names it
    assert harbor.chartmuseum is not None  # charts: they arrive as OCI charts at the 2.8+ destination
    for version in ("1.0.0", "1.1.0"):
        harbor.chartmuseum.add("team-a", chart_archive("api", version, appVersion=version))
    signed = chart_archive("tools", "0.2.0+build.7")
    harbor.chartmuseum.add("team-b", signed, provenance("tools", "0.2.0+build.7", signed))


def run(*args: str, env: dict[str, str]) -> int:
    print("\n$ " + " ".join(args), flush=True)
    return subprocess.run(args, env=env, check=False).returncode


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ferry-demo-") as tmp:
        work = Path(tmp)
        src = HarborServer(work / "src", projects=SOURCE_PROJECTS, harbor_version="v2.7.4")
        dst = HarborServer(work / "dst")
        with src, dst:
            print(f"source Harbor 2.7  {src.url}  (projects: library, {', '.join(SOURCE_PROJECTS)}; charts)")
            print(f"destination Harbor {dst.url}  (empty but for library)")
            print("seeding the source with skopeo …", flush=True)
            seed(src, work)
            seed_configuration(src, labelled="api:1.0")
            known = work / "robot-secrets.yaml"  # what the CI pipelines already use
            known.write_text(f"robot$team-a+ci: {CI_SECRET}\n")
            config = ["--create-users", "--robot-secrets", str(known), "--robot-secrets-out",
                      str(work / "new-robot-secrets.json"), "--user-passwords-out", str(work / "user-passwords.json")]
            env = {**os.environ, "FERRY_SRC_PASSWORD": src.admin_creds[1], "FERRY_DEST_PASSWORD": dst.admin_creds[1],
                   "XDG_STATE_HOME": str(work / "state")}
            ferry = [sys.executable, "-m", "ferry"]
            report = Path.cwd() / "demo-report.json"
            code = run(*ferry, "migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin",
                       "--include-untagged", *config, "--report", str(report), env=env)
            if code != 0:
                return code
            print("\nA second run finds everything in place:")
            code = run(*ferry, "migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin",
                       "--include-untagged", *config, "--quiet", env=env)
            code = code or run(*ferry, "verify", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin",
                               "--include-untagged", env=env)
            print(f"\nreport: {report}")
            return code


if __name__ == "__main__":
    sys.exit(main())
