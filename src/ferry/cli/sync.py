"""``ferry sync``: image-syncer's files (``--auth/--images`` or ``--config``) or skopeo sync's
arguments (``--src docker|yaml --dest docker SOURCE DESTINATION``), run on the bulk engine."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from ferry.cli import params as p
from ferry.cli.app import app, run_async, state
from ferry.cli.argv import parse_bool
from ferry.cli.lookaside import warn_uncopied_signatures
from ferry.cli.options import greet, rate_limits, side
from ferry.errors import RunFailedError, UsageError
from ferry.plan import skopeo_sync
from ferry.plan.model import PlatformFilter, Rule
from ferry.sync_rules import image_syncer_rules, skopeo_rules

if TYPE_CHECKING:
    from ferry.access import AccessMap
    from ferry.engine import EngineOptions
    from ferry.plan.shard import Shard
    from ferry.syncing import SyncPlan


def _split(values: list[str]) -> tuple[str, ...]:
    """image-syncer's list flags take repeats and commas alike."""
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


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
    records: str | None = typer.Option(None, "--records", metavar="FILE",
                                       help="Accepted for image-syncer < 1.1 scripts; not needed (the journal)."),
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
    proc: int | None = typer.Option(None, "--proc", min=1,
                                    help="Images in flight (default: 8, more when the registries are far)."),
    retries: p.Retries = 2,
    force: p.Force = False,
    journal: p.Journal = None,
    report: p.Report = None,
    dry_run: p.DryRun = False,
    quiet: p.Quiet = False,
    shard: p.Shard = None,
    max_bandwidth: p.MaxBandwidth = None,
    max_requests: p.MaxRequests = None,
) -> None:
    """Copy many images from rules: image-syncer's files or skopeo sync's arguments, as they are."""
    state.refuse_override("sync", "use --os/--arch to keep some platforms of each index")
    skopeo_mode = src is not None or dest is not None or source is not None
    if skopeo_mode:
        if not (src and dest and source and destination):
            raise UsageError("skopeo-style sync needs --src, --dest, SOURCE and DESTINATION")
        if config or images or auth:
            raise UsageError("use either image-syncer files (--config/--auth/--images) or --src/--dest, not both")
        naming = skopeo_sync.DestNaming.SCOPED if scoped else dest_naming
        src_side = side(src_creds, src_tls_verify, src_cert_dir, authfile, "src-")
        dst_side = side(dest_creds, dest_tls_verify, dest_cert_dir, authfile, "dest-")
        rules, amap = skopeo_rules(src, dest, source, destination, naming, src_side, dst_side, append_suffix)
    else:
        parse_bool(src_tls_verify, "--src-tls-verify")
        rules, amap = image_syncer_rules(config, auth, images, registry, namespace)
    greet(amap, max_requests, (ref for rule in rules for ref in (rule.source, rule.destination)))
    if max_requests is None:
        _list_early(rules, amap)
    from ferry.engine import EngineOptions  # aiohttp, while the registries are greeted
    from ferry.plan.shard import parse_shard

    share = parse_shard(shard)
    limits = rate_limits(max_bandwidth, max_requests)
    if records is not None and not quiet:
        print("ferry: note: --records is no longer needed (image-syncer dropped it in 1.1.0): ferry's journal "
              "remembers what each destination holds", file=sys.stderr)
    platforms = PlatformFilter(os=_split(os_), arch=_split(arch))
    options = EngineOptions(proc=proc, retries=retries, force=force, platforms=platforms,
                            admit=state.policy.admission(), limits=limits)
    run_async(_run(rules, amap, options, journal_path=journal, report=report, dry_run=dry_run, quiet=quiet,
                   log=log, shard=share))


#: Tag lists asked for during start-up, each on a thread of its own: more threads slow the imports they
#: overlap (the plan lists the rest, up to 32 at once: ``ferry.plan.expand``).
EARLY_LISTINGS = 8


def _list_early(rules: list[Rule], amap: AccessMap) -> None:
    """The first repositories the plan will list, asked for while the engine is imported, from the
    registries whose greeting finds that they ask for no credential (:func:`ferry.warmup.list_tags`)."""
    from ferry import warmup

    repos = {rule.source.repo_ref(): None for rule in rules if not (rule.select.tags or rule.select.digests)}
    for repo in list(repos)[:EARLY_LISTINGS]:
        warmup.list_tags(repo.registry, amap.for_ref(repo), repo.repository)


async def _run(rules: list[Rule], amap: AccessMap, options: EngineOptions, *, journal_path: str | None,
               report: str | None, dry_run: bool, quiet: bool, log: str | None, shard: Shard | None = None) -> None:
    from ferry.cli.progress import LogEvents, make_events, stderr_console
    from ferry.journal import Journal, default_path
    from ferry.plan.shard import journal_name, select_sync_plan
    from ferry.report import print_failures, run_payload, summary_table, write_report
    from ferry.syncing import Sync

    console = None if quiet else stderr_console()
    sync = Sync(rules, amap, options)
    try:
        plan = select_sync_plan(await sync.plan(), shard)
        state.policy.check_all(plan.jobs)
        for repository in {job.source.repo_ref(): None for job in plan.jobs}:
            warn_uncopied_signatures(state.registries_d, repository)
        if dry_run:
            _print_dry_run(plan, await sync.pending(plan))
            return
        journal = Journal(journal_path or default_path(journal_name(shard)))
        journal.start_run("sync" + (f" --shard {shard}" if shard else ""))
        log_stream = open(log, "a") if log else None  # noqa: SIM115 (closed below)
        try:
            events = (LogEvents(len(plan.jobs), log_stream) if log_stream is not None
                      else make_events(len(plan.jobs), quiet=quiet, console=console))
            with events:
                result = await sync.copy(plan, journal, events)
            journal.finish_run()
        finally:
            journal.close()
            if log_stream is not None:
                log_stream.close()
    finally:
        await sync.close()
    if report:
        write_report(report, run_payload(result, **({"shard": shard.to_json()} if shard else {})))
    if console is not None:
        console.print(summary_table(result, title="ferry sync"))
        print_failures(console, result)
    if result.failed:
        raise RunFailedError(f"{len(result.failed)} of {len(result.records)} image(s) failed"
                             + (f" (report: {report})" if report else ""))


def _print_dry_run(plan: SyncPlan, pending: set[str]) -> None:
    for job in plan.jobs:
        status = "to copy " if str(job.destination) in pending else "in place"
        print(f"{status}  {job.source} -> {job.destination}")
    for rec in plan.refused:
        print(f"failed    {rec.source} -> {rec.destination}: {rec.error}")
    print(f"{len(plan.jobs)} images: {len(plan.jobs) - len(pending)} in place, {len(pending)} to copy",
          file=sys.stderr)
    if plan.refused:
        raise RunFailedError(f"{len(plan.refused)} rule(s) could not list their source repository")
