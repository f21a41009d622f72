"""``ferry sync``: image-syncer's files (``--auth/--images`` or ``--config``) or skopeo sync's
arguments (``--src docker|yaml --dest docker SOURCE DESTINATION``), run on the bulk engine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from ferry.cli import params as p
from ferry.cli.main import app, run_async
from ferry.cli.options import Side, parse_bool
from ferry.cli.progress import make_events, stderr_console
from ferry.concurrency import bounded_map
from ferry.connect import Connections
from ferry.engine import Engine, EngineOptions
from ferry.errors import FerryError, RunFailedError, UsageError
from ferry.journal import JobRecord, JobStatus, Journal, default_path
from ferry.media import filter_platforms
from ferry.plan import imagesyncer, skopeo_sync
from ferry.plan.expand import check_plan, expand
from ferry.plan.inventory import Expected
from ferry.plan.model import AccessMap, Job, PlatformFilter, Rule
from ferry.plan.shard import Shard, journal_name, parse_shard, select_jobs
from ferry.refs import RegistryRef, parse_repository
from ferry.report import print_failures, run_payload, summary_table, write_report
from ferry.verify import verify


def _split(values: list[str]) -> tuple[str, ...]:
    """image-syncer's list flags take repeats and commas alike."""
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def _image_syncer_plan(config: str | None, auth: str | None, images: str | None, registry: str | None,
                       namespace: str | None) -> tuple[list[Rule], AccessMap]:
    registry = registry or os.environ.get("DEFAULT_REGISTRY") or None
    namespace = namespace or os.environ.get("DEFAULT_NAMESPACE") or None
    if config:
        return imagesyncer.load_config(config, default_registry=registry, default_namespace=namespace)
    images = images or "images.json"
    if not Path(images).exists():
        raise UsageError(f"{images}: no such file", hint="give --images FILE (and --auth FILE), or --config FILE")
    rules = imagesyncer.load_images(images, default_registry=registry, default_namespace=namespace)
    auth = auth or ("auth.json" if Path("auth.json").exists() else None)
    return rules, (imagesyncer.load_auth(auth) if auth else AccessMap())


def _skopeo_plan(src: str, dest: str, source: str, destination: str, naming: skopeo_sync.DestNaming,
                 src_side: Side, dst_side: Side, append_suffix: str) -> tuple[list[Rule], AccessMap]:
    if dest != "docker":
        raise UsageError(f"--dest {dest!r} is not supported", hint="ferry sync writes to registries: --dest docker")
    dest_ref = parse_repository(destination) if "/" in destination else RegistryRef(destination, "")
    if src == "yaml":
        base_access = src_side.access(RegistryRef("", "")) if src_side.creds is None else None
        rules, amap = skopeo_sync.rules_from_skopeo_yaml(source, destination, naming=naming,
                                                        append_suffix=append_suffix, base=base_access)
    elif src == "docker":
        rules = skopeo_sync.rules_from_docker_source(source, destination, naming=naming,
                                                     append_suffix=append_suffix)
        amap = AccessMap()
        src_ref = rules[0].source if rules else None
        if src_ref is not None:
            amap.entries[f"{src_ref.registry}/{src_ref.repository}"] = src_side.access(src_ref)
    else:
        raise UsageError(f"--src {src!r} is not supported", hint="use --src docker or --src yaml")
    key = f"{dest_ref.registry}/{dest_ref.repository}".rstrip("/")
    amap.entries[key] = dst_side.access(dest_ref)
    return rules, amap


@app.command()
def sync(
    source: str | None = typer.Argument(None, metavar="[SOURCE]"),
    destination: str | None = typer.Argument(None, metavar="[DESTINATION]"),
    # image-syncer
    config: str | None = typer.Option(None, "--config", help="image-syncer config file holding auth and images."),
    auth: str | None = typer.Option(None, "--auth", help="image-syncer auth file (JSON/YAML)."),
    images: str | None = typer.Option(None, "--images", help="image-syncer images file (JSON/YAML)."),
    registry: str | None = typer.Option(None, "--registry", help="Default destination registry ($DEFAULT_REGISTRY)."),
    namespace: str | None = typer.Option(None, "--namespace",
                                         help="Default destination namespace ($DEFAULT_NAMESPACE)."),
    os_: list[str] = typer.Option([], "--os", help="Keep only these OSes of multi-platform images (rewrites)."),
    arch: list[str] = typer.Option([], "--arch", help="Keep only these architectures (rewrites the index)."),
    log: str | None = typer.Option(None, "--log", help="Write progress lines to this file."),
    # skopeo sync
    src: str | None = typer.Option(None, "--src", "-s", help="Source kind: docker or yaml."),
    dest: str | None = typer.Option(None, "--dest", "-d", help="Destination kind: docker."),
    scoped: bool = typer.Option(False, "--scoped", help="Put images under DEST/<source host>/<path>."),
    dest_naming: skopeo_sync.DestNaming = typer.Option(skopeo_sync.DestNaming.PATH, "--dest-naming",
                                    help="path (default: keep the repository path), scoped, or basename "
                                         "(skopeo's flattening)."),
    all_: bool = typer.Option(True, "--all", "-a", help="Accepted for skopeo compatibility: every platform."),
    append_suffix: str = typer.Option("", "--append-suffix", help="Add this suffix to destination tags."),
    src_creds: p.SrcCreds = None,
    dest_creds: p.DestCreds = None,
    src_tls_verify: p.SrcTlsVerify = "true",
    dest_tls_verify: p.DestTlsVerify = "true",
    src_cert_dir: p.SrcCertDir = None,
    dest_cert_dir: p.DestCertDir = None,
    authfile: p.AuthFile = None,
    # engine and output
    proc: int = typer.Option(5, "--proc", min=1, help="Images in flight."),
    retries: p.Retries = 2,
    force: p.Force = False,
    journal: p.Journal = None,
    report: p.Report = None,
    dry_run: p.DryRun = False,
    quiet: p.Quiet = False,
    shard: p.Shard = None,
) -> None:
    """Copy many images from rules: image-syncer's files or skopeo sync's arguments, as they are."""
    share = parse_shard(shard)
    skopeo_mode = src is not None or dest is not None or source is not None
    if skopeo_mode:
        if not (src and dest and source and destination):
            raise UsageError("skopeo-style sync needs --src, --dest, SOURCE and DESTINATION")
        if config or images or auth:
            raise UsageError("use either image-syncer files (--config/--auth/--images) or --src/--dest, not both")
        naming = skopeo_sync.DestNaming.SCOPED if scoped else dest_naming
        src_side = Side(src_creds, src_tls_verify, src_cert_dir, authfile, "src-", "FERRY_SRC_PASSWORD")
        dst_side = Side(dest_creds, dest_tls_verify, dest_cert_dir, authfile, "dest-", "FERRY_DEST_PASSWORD")
        rules, amap = _skopeo_plan(src, dest, source, destination, naming, src_side, dst_side, append_suffix)
    else:
        parse_bool(src_tls_verify, "--src-tls-verify")
        rules, amap = _image_syncer_plan(config, auth, images, registry, namespace)
    platforms = PlatformFilter(os=_split(os_), arch=_split(arch))
    options = EngineOptions(proc=proc, retries=retries, force=force, platforms=platforms)
    run_async(_run(rules, amap, options, journal_path=journal, report=report, dry_run=dry_run, quiet=quiet,
                   log=log, shard=share))


async def _run(rules: list[Rule], amap: AccessMap, options: EngineOptions, *, journal_path: str | None,
               report: str | None, dry_run: bool, quiet: bool, log: str | None, shard: Shard | None = None) -> None:
    console = stderr_console()
    conns = Connections(amap, connections=max(16, options.blob_concurrency * 2))
    try:
        unlisted: dict[RegistryRef, FerryError] = {}  # a repository that cannot be listed fails its rules alone
        jobs = check_plan(await expand(rules, lambda ref: conns.repository(ref).client.list_tags(ref.repository),
                                       failures=unlisted))
        jobs = select_jobs(jobs, shard)
        refused = _unlisted_records([r for r in rules if shard is None or shard.owns(r.source.repository)], unlisted)
        if dry_run:
            await _dry_run(conns, jobs, refused, options.platforms)
            return
        journal = Journal(journal_path or default_path(journal_name(shard)))
        journal.start_run("sync" + (f" --shard {shard}" if shard else ""))
        log_stream = open(log, "a") if log else None  # noqa: SIM115 (closed below)
        try:
            if log_stream is not None:
                from ferry.cli.progress import LogEvents

                events = LogEvents(len(jobs), log_stream)
            else:
                events = make_events(len(jobs), quiet=quiet, console=console)
            with events:
                result = await Engine(conns, options, journal=journal, events=events).run(jobs)
            for rec in refused:
                journal.record_job(f"{rec.source} -> {rec.destination}", rec)
            result.records.extend(refused)
            # the summary counts the whole command, tag listing included (the engine counts only its run)
            result.requests, result.http_retries = conns.stats.requests, conns.stats.retries
            journal.finish_run()
        finally:
            journal.close()
            if log_stream is not None:
                log_stream.close()
        if report:
            write_report(report, run_payload(result, **({"shard": shard.to_json()} if shard else {})))
        if not quiet:
            console.print(summary_table(result, title="ferry sync"))
            print_failures(console, result)
        if result.failed:
            raise RunFailedError(f"{len(result.failed)} of {len(result.records)} image(s) failed"
                                 + (f" (report: {report})" if report else ""))
    finally:
        await conns.close()


def _unlisted_records(rules: list[Rule], unlisted: dict[RegistryRef, FerryError]) -> list[JobRecord]:
    """A failed record for each rule that needed its source repository listed and could not have it."""
    return [
        JobRecord(str(rule.source), str(rule.destination), JobStatus.FAILED,
                  error=str(unlisted[rule.source.repo_ref()]))
        for rule in rules
        if not (rule.select.tags or rule.select.digests) and rule.source.repo_ref() in unlisted
    ]


async def _target_digest(conns: Connections, job: Job, platforms: PlatformFilter) -> str | None:
    """The digest a run would leave at the destination: with a platform filter, that of the rewritten
    index (None when the source cannot tell: verification then reports the problem)."""
    if not platforms.active:
        return None
    try:
        manifest = await conns.repository(job.source).get_manifest(job.source.reference)
        return filter_platforms(manifest, platforms).digest if manifest.is_index else manifest.digest
    except FerryError:
        return None


async def _dry_run(conns: Connections, jobs: list[Job], refused: list[JobRecord], platforms: PlatformFilter) -> None:
    digests = await bounded_map(lambda j: _target_digest(conns, j, platforms), jobs, 8)
    expected = [Expected(j.source, j.destination, d, j.origin) for j, d in zip(jobs, digests, strict=True)]
    pending = {m.destination for m in await verify(conns, expected)}
    for job in jobs:
        state = "to copy " if str(job.destination) in pending else "in place"
        print(f"{state}  {job.source} -> {job.destination}")
    for rec in refused:
        print(f"failed    {rec.source} -> {rec.destination}: {rec.error}")
    print(f"{len(jobs)} images: {len(jobs) - len(pending)} in place, {len(pending)} to copy", file=sys.stderr)
    if refused:
        raise RunFailedError(f"{len(refused)} rule(s) could not list their source repository")
