"""``ferry migrate`` and ``ferry verify``: options in, a migration run, tables and a report out."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from itertools import chain, groupby
from operator import attrgetter
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from ferry.chart_migration import CHARTS_AS
from ferry.cli import params as p
from ferry.cli.app import app, run_async, state
from ferry.cli.options import rate_limits, side
from ferry.cli.progress import make_events, stderr_console
from ferry.configuration import AFTER, BEFORE, ConfigOptions, parse_skip
from ferry.cutover import Cutover, refuse_combinations, switches
from ferry.engine import EngineOptions
from ferry.errors import PreflightError, RunFailedError, UsageError
from ferry.journal import JobStatus, Journal, default_path
from ferry.migration import Migration, MigrationOptions, MigrationOutcome, SideOptions
from ferry.plan.inventory import MigrationPlan, Selection, parse_maps
from ferry.plan.model import Job
from ferry.plan.shard import journal_name, parse_shard
from ferry.preflight import Finding
from ferry.ratelimit import RateLimits
from ferry.refs import RegistryRef
from ferry.report import config_table, print_config_details, print_failures, summary_table, write_report
from ferry.watch import watch

# -- configuration options (issue 10) ---------------------------------------------------------
NoConfig = Annotated[bool, typer.Option("--no-config", help="Copy images only, no configuration.")]
ConfigOnly = Annotated[bool, typer.Option("--config-only", help="Migrate configuration, no images.")]
SkipConfig = Annotated[list[str], typer.Option("--skip-config", metavar="KIND,…",
                                               help="Leave kinds of configuration out (metadata, allowlist, members, "
                                               "robots, retention, immutability, labels, webhooks, descriptions).")]
SystemConfig = Annotated[bool, typer.Option("--system", help="Also the system CVE allowlist, user groups and users "
                                            "(administrators); registry endpoints and replication listed as manual.")]
CreateUsers = Annotated[bool, typer.Option("--create-users", help="Create members' users missing at a "
                                           "database-auth destination, with random passwords.")]
UserPasswordsOut = Annotated[str, typer.Option("--user-passwords-out", metavar="FILE",
                                               help="Where created users' passwords go (mode 0600, never "
                                               "overwritten).")]
RobotSecrets = Annotated[str | None, typer.Option("--robot-secrets", metavar="FILE",
                                                  help="JSON or YAML: robot$project+name → its secret, set at the "
                                                  "destination.")]
RobotSecretsOut = Annotated[str, typer.Option("--robot-secrets-out", metavar="FILE",
                                              help="Where robots without a known secret get their new one written "
                                              "(mode 0600, never overwritten).")]


def _config_options(no_config: bool, config_only: bool, skip: list[str], system: bool, create_users: bool,
                    user_passwords_out: str, robot_secrets: str | None, robot_secrets_out: str) -> ConfigOptions:
    if no_config and config_only:
        raise UsageError("--no-config and --config-only exclude each other")
    return ConfigOptions(enabled=not no_config, skip=parse_skip(skip), system=system, create_users=create_users,
                         robot_secrets=robot_secrets, robot_secrets_out=robot_secrets_out,
                         user_passwords_out=user_passwords_out)
# -- end of configuration options -------------------------------------------------------------


def _options(src_url: str, dst_url: str, src_creds: str | None, dest_creds: str | None, src_tls_verify: str,
             dest_tls_verify: str, src_cert_dir: str | None, dest_cert_dir: str | None, authfile: str | None,
             project: list[str], exclude_project: list[str], repo: list[str], tag: list[str],
             exclude_tag: list[str], include_untagged: bool, map_: list[str], proc: int | None, retries: int,
             force: bool = False, dry_run: bool = False, verify_only: bool = False,
             config: ConfigOptions | None = None, images: bool = True, charts: bool = True,
             charts_as: str | None = None, shard: str | None = None,
             limits: RateLimits = RateLimits()) -> MigrationOptions:
    state.refuse_override("migrate" if not verify_only else "verify",
                          "a migration keeps every platform and digest: drop the --override-* options")
    return MigrationOptions(
        source=SideOptions(src_url, side(src_creds, src_tls_verify, src_cert_dir, authfile, "src-")),
        destination=SideOptions(dst_url, side(dest_creds, dest_tls_verify, dest_cert_dir, authfile, "dest-")),
        selection=Selection(tuple(project), tuple(exclude_project), tuple(repo), tuple(tag), tuple(exclude_tag),
                            include_untagged, parse_maps(map_)),
        engine=EngineOptions(proc=proc, retries=retries, force=force, limits=limits,
                             admit=None if verify_only else state.policy.admission()),
        dry_run=dry_run,
        verify_only=verify_only,
        config=config or ConfigOptions(enabled=False),
        images=images,
        charts=charts,
        charts_as=_charts_as(charts_as),
        shard=parse_shard(shard),
    )


# -- charts (issue 11) ----------------------------------------------------------------------------
NoCharts = Annotated[bool, typer.Option("--no-charts", help="Leave Helm charts (ChartMuseum) out.")]
ChartsAs = Annotated[str | None, typer.Option(
    "--charts-as", metavar="chartmuseum|oci",
    help="How charts arrive at a destination that still has ChartMuseum (default chartmuseum); "
    "a destination without one always gets OCI charts.")]


def _charts_as(value: str | None) -> str | None:
    if value is not None and value not in CHARTS_AS:
        raise UsageError(f"invalid --charts-as {value!r}", hint="expected chartmuseum or oci")
    return value


def _print_charts(console: Console, outcome: MigrationOutcome, *, plan: bool) -> None:
    charts = outcome.charts
    if charts is None:
        return
    where = {"oci": "OCI charts", "chartmuseum": "ChartMuseum"}.get(charts.mode, charts.dst_host)
    table = Table(title=f"Helm charts → {where}"
                  + (" (dry run)" if plan else ""), header_style="bold")
    cols = ("project", "charts", "versions") + (() if plan else ("copied", "skipped", "failed", "verified"))
    for col in cols:
        table.add_column(col, justify="left" if col == "project" else "right")
    for project, row in charts.project_rows().items():
        counts = [row["charts"], row["versions"]] + ([] if plan else [row["copied"], row["skipped"], row["failed"]])
        verified = [] if plan else [f"{row['versions'] - row['not_verified']}/{row['versions']}"]
        table.add_row(project, *map(str, counts), *verified)
    console.print(table)
    if plan:
        for job in charts.jobs:
            console.print(f"  chart {job.chart.label} → {job.destination(charts.dst_host, charts.mode)}",
                          highlight=False, soft_wrap=True)
        console.print(f"{charts.in_place} of {len(charts.jobs)} chart versions already in place")
        return
    for rec in charts.failed:
        console.print(f"[red]failed[/red] chart {rec.source}: {rec.error}", highlight=False, soft_wrap=True)
    for job, why in charts.mismatches:
        console.print(f"[red]not verified[/red] chart {job.chart.label}: {why}", highlight=False, soft_wrap=True)
# -- end charts


def _project_table(outcome: MigrationOutcome, title: str) -> Table:
    table = Table(title=title, header_style="bold")
    for col in ("project", "→", "action", "repos", "images", "copied", "skipped", "failed", "bytes", "verified"):
        table.add_column(col, justify="right" if col not in ("project", "→", "action") else "left")
    records = outcome.run.records if outcome.run else []
    by_job = {}
    for job, rec in zip(outcome.plan.jobs, records, strict=False):
        by_job.setdefault(job.origin, []).append(rec)
    bad = {}
    for m in outcome.mismatches:
        bad[m.project] = bad.get(m.project, 0) + 1
    expected = {}
    for e in outcome.plan.expected:
        expected[e.project] = expected.get(e.project, 0) + 1
    for po in outcome.projects:
        recs = by_job.get(po.name, [])
        n_expected = expected.get(po.name, 0)
        verified = f"{n_expected - bad.get(po.name, 0)}/{n_expected}"
        table.add_row(
            po.name, po.destination, po.action + (" (differs)" if po.differences else ""),
            str(len(outcome.plan.repositories.get(po.name, []))), str(n_expected),
            str(sum(r.status is JobStatus.COPIED for r in recs)), str(sum(r.status is JobStatus.SKIPPED for r in recs)),
            str(sum(r.status is JobStatus.FAILED for r in recs)), decimal(sum(r.bytes for r in recs)), verified,
        )
    return table


def _print_mismatches(console: Console, outcome: MigrationOutcome, limit: int = 50) -> None:
    for m in outcome.mismatches[:limit]:
        console.print(f"[red]not verified[/red] {m.destination}: {m.reason}", highlight=False, soft_wrap=True)
    if len(outcome.mismatches) > limit:
        console.print(f"… and {len(outcome.mismatches) - limit} more (see --report)")


def _registry_side(job: Job) -> tuple[str, str]:
    """The repository and tag (or digest) of the source, or for an import (whose source is a layout
    entry) of the destination; no ref is made."""
    ref, name = job.source_parts()
    if not isinstance(ref, RegistryRef):
        ref, name = job.destination_parts()
    return cast(RegistryRef, ref).repository, name


def _runs(jobs: list[Job]) -> dict[str, list[slice]]:
    """Where each origin's jobs lie in ``jobs``: one run a project in a plan made project by project
    (an import's may mix them), and no list of a project's jobs held beside the plan's."""
    out: dict[str, list[slice]] = defaultdict(list)
    start = 0
    for origin, run in groupby(jobs, key=attrgetter("origin")):
        end = start + sum(1 for _ in run)
        out[origin].append(slice(start, end))
        start = end
    return out


def _repository_lines(jobs: Iterable[Job], shown: int) -> dict[str, tuple[list[str], int]]:
    """Repository → its first ``shown`` tags (or digests) and how many it has."""
    lines: dict[str, tuple[list[str], int]] = {}
    for j in jobs:
        repo, name = _registry_side(j)
        names, n = lines.get(repo, ([], 0))
        if n < shown:
            names.append(name)
        lines[repo] = names, n + 1
    return lines


def _bytes_by_project(plan: MigrationPlan) -> dict[str, int]:
    """Each project's listed artifact sizes, each planned digest once. A plan is made project by
    project, so one project's digests are held at a time; a project met again later (an import's
    plan may mix them) is counted again over all its entries."""
    out: dict[str, int] = {}
    for project, run in groupby(plan.expected, key=attrgetter("origin")):
        entries = (e for e in plan.expected if e.origin == project) if project in out else run
        out[project] = plan.listed_bytes(project, (e.packed_digest for e in entries))
    return out


def _print_plan(console: Console, outcome: MigrationOutcome, shown: int = 20) -> None:
    """One table row per project, then one plain line per repository (its first ``shown`` tags).
    Counted a project at a time: a million tags print 100,000 lines, never a million-row table, and
    the digests and sizes of one project are held at once, never the inventory's."""
    plan = outcome.plan
    images = _runs(plan.images)
    accessories = Counter(j.origin for j in plan.accessories)
    sizes = _bytes_by_project(plan) if plan.source_is_harbor else {}
    table = Table(title=f"plan: {outcome.source.host} → {outcome.destination.host} (dry run, nothing written)",
                  header_style="bold")
    for col in ("project", "→", "action", "repos", "tags+digests", "accessories", "bytes (artifacts)"):
        table.add_column(col)
    for po in outcome.projects:
        table.add_row(po.name, po.destination, po.action, str(len(plan.repositories.get(po.name, []))),
                      str(sum(r.stop - r.start for r in images.get(po.name, ()))),
                      str(accessories[po.name]),
                      decimal(sizes.get(po.name, 0)) if plan.source_is_harbor else "?")
    console.print(table)
    out = console.file
    for po in outcome.projects:
        for d in po.differences:
            console.print(f"project {po.destination}: {d}")
        lines = _repository_lines(chain.from_iterable(plan.images[r] for r in images.get(po.name, ())), shown)
        for repo in plan.repositories.get(po.name, []):
            names, n = lines.get(repo, ([], 0))
            out.write(f"  {repo}: {', '.join(names)}{' …' if n > shown else ''}\n")
    total = len(plan.expected)
    console.print(f"{outcome.in_place} of {total} already in place at the destination; "
                  f"{total - (outcome.in_place or 0)} to copy")


# --- live migration (issue 12) ---
def _print_prune(console: Console, outcome: MigrationOutcome, *, dry_run: bool, limit: int = 50) -> None:
    if outcome.to_prune is None:
        return
    for d in outcome.to_prune[:limit]:
        why = outcome.prune_errors.get(str(d))
        verb = "would delete" if dry_run else ("[red]not deleted[/red]" if why else "deleted")
        console.print(f"{verb} {d}" + (f": {why}" if why else ""), highlight=False, soft_wrap=True)
    if len(outcome.to_prune) > limit:
        console.print(f"… and {len(outcome.to_prune) - limit} more (see --report)")
    n = len(outcome.to_prune)
    console.print(f"prune: {n} to delete at the destination" if dry_run
                  else f"pruned {outcome.pruned} of {n} tags and artifacts the source no longer has")
# --- end live migration ---


def _print_findings(console: Console, findings: list[Finding]) -> None:
    for f in findings:
        console.print(f"[red]pre-flight[/red] {f.check}: {f.message}", highlight=False, soft_wrap=True)
        console.print(f"  fix: {f.fix}", highlight=False, markup=False, soft_wrap=True)


async def _preflight(console: Console, migration: Migration, outcome: MigrationOutcome, *, quiet: bool) -> None:
    """Pre-flight checks (issue 12): shown in a dry run; otherwise a finding stops the run unless
    --ignore-preflight."""
    findings = await migration.preflight(outcome)
    if outcome.preflight is None:
        return
    if migration.options.dry_run:
        _print_findings(Console(), findings)
        Console().print(f"pre-flight: {len(findings)} finding(s)" + (" would stop the run (--ignore-preflight "
                        "runs it anyway)" if findings else ": nothing the destination would refuse"))
        return
    if findings and (not quiet or not migration.options.ignore_preflight):
        _print_findings(console, findings)
    if findings and not migration.options.ignore_preflight:
        raise PreflightError(f"pre-flight: the destination would refuse the run ({len(findings)} finding(s) "
                             "above); nothing copied", hint="fix them, or run anyway with --ignore-preflight")


def _round_line(outcome: MigrationOutcome) -> str:
    """One line per --watch round."""
    run = outcome.run
    parts = [f"{run.count('copied') if run else 0} copied", f"{len(run.failed) if run else 0} failed",
             f"{len(outcome.unchanged or [])} unchanged", f"{len(outcome.mismatches)} not verified"]
    if outcome.to_prune is not None:
        parts.append(f"{outcome.pruned} pruned")
    return ", ".join(parts)


async def _watch(options: MigrationOptions, seconds: float, *, journal_path: str | None, report: str | None) -> None:
    async def one_round(_n: int) -> str:
        try:
            outcome = await _run(options, journal_path=journal_path, report=report, quiet=True)
        except RunFailedError as e:
            return str(e)
        return _round_line(outcome)

    await watch(one_round, seconds)


async def _cutover(options: MigrationOptions, keep_read_only: bool, *, journal_path: str | None,
                   report: str | None, quiet: bool) -> None:
    console = stderr_console()
    cut = Cutover(options, keep_read_only=keep_read_only,
                  say=lambda line: console.print(line, highlight=False, markup=False, soft_wrap=True))
    try:
        outcome = await cut.run(lambda: _run(options, journal_path=journal_path, report=report, quiet=quiet),
                                dry_run=options.dry_run)
    finally:
        await cut.close()
    if options.dry_run:
        return
    moves = switches(outcome)
    out = Console()
    out.print(f"cutover complete: source Harbor {outcome.source.host} is read-only; "
              f"{len(outcome.plan.expected)} tags and digests verified at {outcome.destination.host}. "
              "Switch clients over (image references, pull secrets, registry mirrors):", highlight=False,
              soft_wrap=True)
    for m in moves:
        out.print(f"  {m.source}/… → {m.destination}/…", highlight=False, soft_wrap=True)
    if report:
        write_report(report, {**outcome.to_json(), "cutover": {
            "source_read_only": True, "was_read_only": cut.was_read_only, "switch": [m.to_json() for m in moves]}})


def _print_configuration(console: Console, outcome: MigrationOutcome, title: str) -> None:
    if outcome.configuration is not None:
        if outcome.configuration:
            console.print(config_table(outcome.configuration, title))
        print_config_details(console, outcome.configuration)


async def _run(options: MigrationOptions, *, journal_path: str | None, report: str | None, quiet: bool,
               kind: type[Migration] = Migration) -> MigrationOutcome:
    """One run of ``kind`` (a Migration, or ``ferry.airgap``'s Export or Import)."""
    console = stderr_console()
    journal = None if options.dry_run or options.verify_only else \
        Journal(journal_path or default_path(journal_name(options.shard)))
    total_events = make_events(0, quiet=quiet, console=console)
    migration = kind(options, journal=journal, events=total_events)
    try:
        outcome = await migration.prepare()
        if not options.verify_only:
            state.policy.check_all(chain(outcome.plan.images, outcome.plan.accessories))
            await _preflight(console, migration, outcome, quiet=quiet)  # issue 12
        if options.dry_run:
            await migration.dry_run(outcome)
            _print_plan(Console(), outcome)
            _print_configuration(Console(), outcome, "configuration plan (dry run, nothing written)")
            _print_charts(Console(), outcome, plan=True)
            _print_prune(Console(), outcome, dry_run=True)  # issue 12
            if report:
                write_report(report, outcome.to_json())
            return outcome
        if options.verify_only:
            await migration.verify(outcome)
        else:
            if journal is not None:
                journal.start_run(f"migrate {outcome.source.host} {outcome.destination.host}"
                                  + (f" --shard {options.shard}" if options.shard else ""))
            await migration.create_projects(outcome)
            await migration.configure(outcome, BEFORE)
            if options.images:
                events = make_events(len(outcome.plan.jobs), quiet=quiet, console=console)
                migration.events = events
                with events:
                    await migration.copy(outcome)
                await migration.verify(outcome)
                await migration.prune(outcome)  # issue 12: --prune, after the copy
            await migration.configure(outcome, AFTER)
            if journal is not None:
                journal.finish_run()
        if report:
            write_report(report, outcome.to_json())
        if not quiet:
            title = "verification" if options.verify_only else f"{outcome.source.host} → {outcome.destination.host}"
            console.print(_project_table(outcome, title))
            if outcome.run:
                console.print(summary_table(outcome.run))
                print_failures(console, outcome.run)
            _print_mismatches(console, outcome)
            _print_prune(console, outcome, dry_run=False)  # issue 12
            _print_charts(console, outcome, plan=False)
            if options.images:
                checked = len(outcome.plan.expected)
                console.print(f"verified {checked - len(outcome.mismatches)} of {checked} tags and digests"
                              + ("" if not outcome.mismatches else f"; [red]{len(outcome.mismatches)} differ[/red]"))
            _print_configuration(console, outcome, "configuration")
        if not outcome.ok:
            failed = len(outcome.run.failed) if outcome.run else 0
            refused = sum(e.failed for e in outcome.configuration or [])
            charts = (f", {len(outcome.charts.failed)} chart version(s) failed, {len(outcome.charts.mismatches)} "
                      "not verified") if outcome.charts else ""
            raise RunFailedError(f"{failed} image(s) failed, {len(outcome.mismatches)} not verified{charts}"
                                 + (f", {len(outcome.prune_errors)} not pruned" if outcome.prune_errors else "")
                                 + (f", {refused} configuration object(s) not migrated" if refused else "")
                                 + (f" (report: {report})" if report else ""))
        return outcome
    finally:
        await migration.close()
        if journal is not None:
            journal.close()


@app.command()
def migrate(
    src_url: str = typer.Argument(..., metavar="SRC_URL", help="https://host[:port] or http://host[:port]"),
    dst_url: str = typer.Argument(..., metavar="DST_URL", help="https://host[:port] or http://host[:port]"),
    src_creds: p.SrcCreds = None,
    dest_creds: p.DestCreds = None,
    src_tls_verify: p.SrcTlsVerify = "true",
    dest_tls_verify: p.DestTlsVerify = "true",
    src_cert_dir: p.SrcCertDir = None,
    dest_cert_dir: p.DestCertDir = None,
    authfile: p.AuthFile = None,
    project: p.Projects = [],  # noqa: B006 (typer copies list defaults)
    exclude_project: p.ExcludeProjects = [],  # noqa: B006
    repo: p.Repos = [],  # noqa: B006
    tag: p.Tags = [],  # noqa: B006
    exclude_tag: p.ExcludeTags = [],  # noqa: B006
    include_untagged: p.IncludeUntagged = False,
    map_: p.Maps = [],  # noqa: B006
    proc: int | None = typer.Option(None, "--proc", min=1,
                                    help="Images in flight (default: 8, more when the registries are far)."),
    retries: p.Retries = 2,
    force: p.Force = False,
    journal: p.Journal = None,
    report: p.Report = None,
    dry_run: p.DryRun = False,
    quiet: p.Quiet = False,
    no_config: NoConfig = False,
    config_only: ConfigOnly = False,
    skip_config: SkipConfig = [],  # noqa: B006
    system: SystemConfig = False,
    create_users: CreateUsers = False,
    user_passwords_out: UserPasswordsOut = "user-passwords.json",
    robot_secrets: RobotSecrets = None,
    robot_secrets_out: RobotSecretsOut = "robot-secrets.json",
    no_charts: NoCharts = False,
    charts_as: ChartsAs = None,
    shard: p.Shard = None,
    prune: bool = typer.Option(False, "--prune", help="Delete at the destination the selected tags and artifacts "
                               "the source no longer has (Harbor on both sides)."),
    watch_seconds: float | None = typer.Option(None, "--watch", metavar="SECONDS", min=0.1,
                                               help="Repeat the incremental migration every SECONDS until "
                                               "SIGINT/SIGTERM (exit 0); one line per round."),
    cutover: bool = typer.Option(False, "--cutover", help="The final pass: put the source Harbor in read-only "
                                 "mode (administrators), copy what changed and verify; on failure or a signal the "
                                 "source's mode is restored."),
    keep_read_only: bool = typer.Option(False, "--keep-read-only", help="With --cutover: leave the source "
                                        "read-only even when the final pass fails."),
    ignore_preflight: bool = typer.Option(False, "--ignore-preflight", help="Run even when the pre-flight checks "
                                          "find what the destination would refuse (quota, immutable tags, "
                                          "read-only, push rights)."),
    max_bandwidth: p.MaxBandwidth = None,
    max_requests: p.MaxRequests = None,
) -> None:
    """Migrate every project, repository, tag, signature and Helm chart, and the projects' configuration
    (members, robots, policies, labels, webhooks …), from one Harbor (or registry) to another."""
    config = _config_options(no_config, config_only, skip_config, system, create_users, user_passwords_out,
                             robot_secrets, robot_secrets_out)
    options = _options(src_url, dst_url, src_creds, dest_creds, src_tls_verify, dest_tls_verify, src_cert_dir,
                       dest_cert_dir, authfile, project, exclude_project, repo, tag, exclude_tag, include_untagged,
                       map_, proc, retries, force=force, dry_run=dry_run, config=config, images=not config_only,
                       charts=not no_charts, charts_as=charts_as, shard=shard,
                       limits=rate_limits(max_bandwidth, max_requests))
    options = replace(options, prune=prune, ignore_preflight=ignore_preflight)
    if keep_read_only and not cutover:
        raise UsageError("--keep-read-only goes with --cutover")
    if cutover:
        refuse_combinations(options, watch=watch_seconds is not None)
        run_async(_cutover(options, keep_read_only, journal_path=journal, report=report, quiet=quiet))
        return
    if watch_seconds is not None and not dry_run:
        run_async(_watch(options, watch_seconds, journal_path=journal, report=report))
        return
    run_async(_run(options, journal_path=journal, report=report, quiet=quiet))


@app.command("verify")
def verify_cmd(
    src_url: str = typer.Argument(..., metavar="SRC_URL|DIR", help="https://host[:port] or http://host[:port]; "
                                  "alone: an export directory (ferry export) to check offline"),
    dst_url: str | None = typer.Argument(None, metavar="DST_URL", help="https://host[:port] or http://host[:port]"),
    src_creds: p.SrcCreds = None,
    dest_creds: p.DestCreds = None,
    src_tls_verify: p.SrcTlsVerify = "true",
    dest_tls_verify: p.DestTlsVerify = "true",
    src_cert_dir: p.SrcCertDir = None,
    dest_cert_dir: p.DestCertDir = None,
    authfile: p.AuthFile = None,
    project: p.Projects = [],  # noqa: B006
    exclude_project: p.ExcludeProjects = [],  # noqa: B006
    repo: p.Repos = [],  # noqa: B006
    tag: p.Tags = [],  # noqa: B006
    exclude_tag: p.ExcludeTags = [],  # noqa: B006
    include_untagged: p.IncludeUntagged = False,
    map_: p.Maps = [],  # noqa: B006
    report: p.Report = None,
    quiet: p.Quiet = False,
    no_charts: NoCharts = False,
    charts_as: ChartsAs = None,
    shard: p.Shard = None,
    max_bandwidth: p.MaxBandwidth = None,
    max_requests: p.MaxRequests = None,
) -> None:
    """Check that every selected source tag, digest and chart version is at the destination, unchanged;
    with one directory, rehash an export offline and check that every reference in it resolves."""
    if dst_url is None:
        from ferry.cli.offline import verify_export

        verify_export(src_url, report=report, quiet=quiet)
        return
    options = _options(src_url, dst_url, src_creds, dest_creds, src_tls_verify, dest_tls_verify, src_cert_dir,
                       dest_cert_dir, authfile, project, exclude_project, repo, tag, exclude_tag, include_untagged,
                       map_, 1, 0, verify_only=True, charts=not no_charts, charts_as=charts_as, shard=shard,
                       limits=rate_limits(max_bandwidth, max_requests))
    run_async(_run(options, journal_path=None, report=report, quiet=quiet))
