"""``ferry k8s-job``: print a Kubernetes Indexed Job running a migration or sync as shards (ferry/k8s.py)."""

from __future__ import annotations

import typer
import yaml

from ferry.cli.app import app
from ferry.k8s import JobSpec, check_args, job_manifest


@app.command("k8s-job", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def k8s_job(
    ctx: typer.Context,
    command: str = typer.Argument(..., metavar="migrate|sync", help="The command each shard runs."),
    shards: int = typer.Option(..., "--shards", min=1, help="Number of shards (completions)."),
    image: str = typer.Option(..., "--image", help="ferry's container image (see the Containerfile)."),
    secret: str | None = typer.Option(None, "--secret", metavar="NAME",
                                      help="Secret with keys src-password and dest-password."),
    pvc: str | None = typer.Option(None, "--pvc", metavar="NAME",
                                   help="PersistentVolumeClaim for the journals and reports (a retry resumes)."),
    name: str = typer.Option("ferry", "--name", help="The Job's name."),
    retries_per_shard: int = typer.Option(3, "--retries-per-shard", min=0, help="backoffLimitPerIndex."),
    parallelism: int | None = typer.Option(None, "--parallelism", min=1, help="Shards at once (default: all)."),
) -> None:
    """Print a batch/v1 Job (completionMode Indexed) that runs `ferry COMMAND ARGS… --shard auto/N`."""
    args = tuple(a for a in ctx.args if a != "--")
    check_args(command, args)
    # the shard's arguments are parsed here, so a mistake shows now and not in N failing pods
    group = typer.main.get_command(app)
    target = group.commands[command]  # type: ignore[attr-defined]
    target.make_context(command, list(args), parent=ctx.parent)
    spec = JobSpec(command, args, shards, image, name, secret, pvc, retries_per_shard, parallelism)
    print(yaml.safe_dump(job_manifest(spec), sort_keys=False), end="")
