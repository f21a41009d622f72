"""``ferry k8s-job``: a ``batch/v1`` Job that runs one migration or sync as N shards.

``completionMode: Indexed`` gives each pod ``$JOB_COMPLETION_INDEX``; the container runs
``ferry <command> … --shard auto/N``. ``backoffLimitPerIndex`` retries a failed shard on its own;
with a PersistentVolumeClaim its journal (one file per index) survives the retry and the shard
resumes, without one it re-checks the destination and copies only what is missing. Passwords come
from a Secret into FERRY_SRC_PASSWORD / FERRY_DEST_PASSWORD; the manifest never holds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.errors import UsageError
from ferry.plan.shard import INDEX_ENV

COMMANDS = ("migrate", "sync")
DATA_DIR = "/data"
SECRET_KEYS = {"FERRY_SRC_PASSWORD": "src-password", "FERRY_DEST_PASSWORD": "dest-password"}
CREDS_FLAGS = ("--src-creds", "--dest-creds", "--creds")
SET_BY_JOB = ("--shard", "--journal", "--report")
UID = 10001  # the Containerfile's user


@dataclass(frozen=True, slots=True)
class JobSpec:
    command: str
    args: tuple[str, ...]
    shards: int
    image: str
    name: str = "ferry"
    secret: str | None = None
    pvc: str | None = None
    retries_per_shard: int = 3
    parallelism: int | None = None  # default: every shard at once


def check_args(command: str, args: tuple[str, ...]) -> None:
    """Refuse what would put a password in the manifest, and the options the Job sets itself."""
    if command not in COMMANDS:
        raise UsageError(f"k8s-job runs {' or '.join(COMMANDS)}, not {command!r}")
    for i, arg in enumerate(args):
        flag, eq, inline = arg.partition("=")
        if flag in SET_BY_JOB:
            raise UsageError(f"k8s-job sets {flag} itself (one per shard)", hint=f"remove {flag} from the arguments")
        if flag in CREDS_FLAGS:
            value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
            if ":" in value:
                raise UsageError(f"{flag} holds a password, which would be written into the manifest",
                                 hint="give the user name only and the passwords in a Secret (--secret NAME)")
        if "://" in arg and "@" in arg.partition("://")[2].partition("/")[0]:
            raise UsageError("a URL with credentials would be written into the manifest",
                             hint="give --src-creds/--dest-creds USER and the passwords in a Secret (--secret NAME)")


def job_manifest(spec: JobSpec) -> dict[str, Any]:
    check_args(spec.command, spec.args)
    index = f"$({INDEX_ENV})"  # expanded by the kubelet from the container's environment
    args = [spec.command, *spec.args, "--shard", f"auto/{spec.shards}",
            "--journal", f"{DATA_DIR}/journal-{index}.db", "--report", f"{DATA_DIR}/report-{index}.json"]
    env: list[dict[str, Any]] = [{
        # the Job controller sets it too; declared here so that $(JOB_COMPLETION_INDEX) in args expands
        "name": INDEX_ENV,
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
    }]
    if spec.secret:
        env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": spec.secret, "key": key, "optional": True}}}
                for var, key in SECRET_KEYS.items()]
    volume: dict[str, Any] = {"name": "data"}
    if spec.pvc:
        volume["persistentVolumeClaim"] = {"claimName": spec.pvc}
    else:
        volume["emptyDir"] = {}
    container = {
        "name": "ferry",
        "image": spec.image,
        "args": args,
        "env": env,
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "labels": {"app.kubernetes.io/name": "ferry"}},
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.shards,
            "parallelism": spec.parallelism or spec.shards,
            "backoffLimitPerIndex": spec.retries_per_shard,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "ferry"}},
                "spec": {
                    "restartPolicy": "Never",  # required by backoffLimitPerIndex
                    "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID},
                    "containers": [container],
                    "volumes": [volume],
                },
            },
        },
    }
