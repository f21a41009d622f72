"""``ferry k8s-job``: the manifest validates against Kubernetes' own schema (kubernetes-validate
bundles it, offline), runs each index as a shard with its own journal, and never holds a password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.cli import FerryCLI

SECRET = "s3cr3t-Value-9f2"  # a sentinel that must appear nowhere in the output
K8S_VERSION = "1.33.0"  # backoffLimitPerIndex is GA from 1.33


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli", env={"FERRY_SRC_PASSWORD": SECRET, "FERRY_DEST_PASSWORD": SECRET})


def manifest(cli: FerryCLI, *args: str) -> dict[str, Any]:
    result = cli.run("k8s-job", *args)
    assert result.returncode == 0, result
    assert SECRET not in result.out and SECRET not in result.stderr
    return yaml.safe_load(result.out)


def test_manifest_validates_and_runs_each_index_as_a_shard(cli: FerryCLI) -> None:
    job = manifest(cli, "migrate", "https://harbor-a.example", "https://harbor-b.example", "--src-creds", "admin",
                   "--dest-creds", "robot$ferry", "--proc", "16", "--shards", "4",
                   "--image", "registry.example/ferry:1",
                   "--secret", "ferry-creds", "--pvc", "ferry-data")
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(job))
    broken["spec"]["template"]["spec"]["containers"][0]["envFrom"] = "ferry-creds"  # the validator does check
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)
    assert spec["backoffLimitPerIndex"] == 3
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"][:3] == ["migrate", "https://harbor-a.example", "https://harbor-b.example"]
    assert container["args"][-6:] == ["--shard", "auto/4", "--journal", "/data/journal-$(JOB_COMPLETION_INDEX).db",
                                      "--report", "/data/report-$(JOB_COMPLETION_INDEX).json"]
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    assert env["FERRY_SRC_PASSWORD"] == {"secretKeyRef": {"name": "ferry-creds", "key": "src-password",
                                                          "optional": True}}
    assert env["FERRY_DEST_PASSWORD"]["secretKeyRef"]["key"] == "dest-password"
    assert "value" not in str(container["env"]).replace("valueFrom", "")
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "ferry-data"}}]


def test_without_a_pvc_the_journal_lives_in_the_pod(cli: FerryCLI) -> None:
    job = manifest(cli, "sync", "--src", "docker", "--dest", "docker", "127.0.0.1:5000/app", "127.0.0.1:5001",
                   "--shards", "2", "--parallelism", "1", "--image", "ferry:dev", "--name", "sync-app")
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    assert job["metadata"]["name"] == "sync-app" and job["spec"]["parallelism"] == 1
    assert job["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert all("secretKeyRef" not in str(e) for e in job["spec"]["template"]["spec"]["containers"][0]["env"])


@pytest.mark.parametrize(("extra", "message"), [
    (["--src-creds", f"admin:{SECRET}"], "--src-creds holds a password"),
    ([f"--dest-creds=admin:{SECRET}"], "--dest-creds holds a password"),
    (["--journal", "/tmp/j.db"], "k8s-job sets --journal itself"),
    (["--shard", "0/2"], "k8s-job sets --shard itself"),
    (["--no-such-option"], "No such option: --no-such-option"),
])
def test_what_would_leak_or_clash_is_refused(cli: FerryCLI, extra: list[str], message: str) -> None:
    result = cli.run("k8s-job", "migrate", "https://a.example", "https://b.example", *extra,
                     "--shards", "2", "--image", "ferry:1")
    assert result.returncode == 2 and message in result.error, result
    assert SECRET not in result.out + result.stderr and not result.out


def test_a_url_with_credentials_is_refused(cli: FerryCLI) -> None:
    result = cli.run("k8s-job", "migrate", f"https://admin:{SECRET}@a.example", "https://b.example",
                     "--shards", "2", "--image", "ferry:1")
    assert result.returncode == 2 and "URL with credentials" in result.error
    assert SECRET not in result.out + result.stderr
