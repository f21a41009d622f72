"""``ferry export``, ``ferry import`` and ``ferry verify DIR``: a migration carried across on disks."""

from __future__ import annotations

import os
import shutil

import typer
from rich.filesize import decimal

from ferry.airgap.description import description_path
from ferry.airgap.exporter import Export
from ferry.airgap.importer import Import
from ferry.airgap.volumes import export_id, pack, parse_size, read_head, unpack, volume_paths
from ferry.cli import params as p
from ferry.cli.app import app, run_async
from ferry.cli.migrate import (
    ChartsAs,
    ConfigOnly,
    CreateUsers,
    NoCharts,
    NoConfig,
    RobotSecrets,
    RobotSecretsOut,
    SkipConfig,
    SystemConfig,
    UserPasswordsOut,
    _config_options,
    _options,
    _run,
)
from ferry.cli.options import rate_limits
from ferry.cli.progress import stderr_console
from ferry.errors import UsageError

STAGING = ".ferry-layout"  # with --volume-size: the layout, inside DIR, until the volumes are written
VolumeSize = typer.Option(None, "--volume-size", metavar="SIZE",
                          help="Write numbered tar volumes of at most SIZE (25G = 25·10^9 bytes, 4Gi = 4·2^30) "
                               "instead of a directory.")


@app.command("export")
def export_cmd(
    src_url: str = typer.Argument(..., metavar="SRC_URL", help="https://host[:port] or http://host[:port]"),
    directory: str = typer.Argument(..., metavar="DIR", help="Where the export goes (an OCI image layout)."),
    src_creds: p.SrcCreds = None,
    src_tls_verify: p.SrcTlsVerify = "true",
    src_cert_dir: p.SrcCertDir = None,
    authfile: p.AuthFile = None,
    project: p.Projects = [],  # noqa: B006 (typer copies list defaults)
    exclude_project: p.ExcludeProjects = [],  # noqa: B006
    repo: p.Repos = [],  # noqa: B006
    tag: p.Tags = [],  # noqa: B006
    exclude_tag: p.ExcludeTags = [],  # noqa: B006
    include_untagged: p.IncludeUntagged = False,
    volume_size: str | None = VolumeSize,
    proc: int = typer.Option(8, "--proc", min=1, help="Images in flight."),
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
    no_charts: NoCharts = False,
    shard: p.Shard = None,
    max_bandwidth: p.MaxBandwidth = None,
    max_requests: p.MaxRequests = None,
) -> None:
    """Export everything `ferry migrate` would move to DIR (one blob store for images and Helm charts, the
    projects' configuration in the description), for `ferry import`."""
    size = parse_size(volume_size) if volume_size else None
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UsageError(f"{directory} exists and is not a directory")
    config = _config_options(no_config, config_only, skip_config, system, False, "", None, "")
    layout = os.path.join(directory, STAGING) if size else directory
    options = _options(src_url, layout, src_creds, None, src_tls_verify, "true", src_cert_dir, None, authfile,
                       project, exclude_project, repo, tag, exclude_tag, include_untagged, [], proc, retries,
                       force=force, dry_run=dry_run, config=config, images=not config_only, charts=not no_charts,
                       shard=shard, limits=rate_limits(max_bandwidth, max_requests))
    run_async(_run(options, journal_path=journal, report=report, quiet=quiet, kind=Export))
    if size and not dry_run:
        volumes = pack(layout, directory, size)
        shutil.rmtree(layout)
        if not quiet:
            total = sum(os.path.getsize(v) for v in volumes)
            stderr_console().print(f"wrote {len(volumes)} volume(s) of at most {decimal(size)} "
                                   f"({decimal(total)}) to {directory}", highlight=False)


@app.command("import")
def import_cmd(
    arguments: list[str] = typer.Argument(..., metavar="DIR|VOLUME… DST_URL",
                                          help="An export directory or its volumes, then the destination."),
    dest_creds: p.DestCreds = None,
    dest_tls_verify: p.DestTlsVerify = "true",
    dest_cert_dir: p.DestCertDir = None,
    authfile: p.AuthFile = None,
    map_: p.Maps = [],  # noqa: B006
    work_dir: str | None = typer.Option(None, "--work-dir", help="Where volumes are unpacked (default: beside "
                                                                 "the first volume)."),
    proc: int = typer.Option(8, "--proc", min=1, help="Images in flight."),
    retries: p.Retries = 2,
    force: p.Force = False,
    journal: p.Journal = None,
    report: p.Report = None,
    dry_run: p.DryRun = False,
    quiet: p.Quiet = False,
    no_config: NoConfig = False,
    config_only: ConfigOnly = False,
    skip_config: SkipConfig = [],  # noqa: B006
    create_users: CreateUsers = False,
    user_passwords_out: UserPasswordsOut = "user-passwords.json",
    robot_secrets: RobotSecrets = None,
    robot_secrets_out: RobotSecretsOut = "robot-secrets.json",
    no_charts: NoCharts = False,
    charts_as: ChartsAs = None,
    shard: p.Shard = None,
    max_bandwidth: p.MaxBandwidth = None,
    max_requests: p.MaxRequests = None,
) -> None:
    """Import an export (`ferry export`) into a Harbor or registry: projects and their configuration,
    images, Helm charts, verification."""
    if len(arguments) < 2:
        raise UsageError("ferry import needs an export (directory or volumes) and a destination URL",
                         hint="ferry import DIR|VOLUME… DST_URL")
    *sources, dst_url = arguments
    config = _config_options(no_config, config_only, skip_config, False, create_users, user_passwords_out,
                             robot_secrets, robot_secrets_out)
    limits = rate_limits(max_bandwidth, max_requests, pace_uploads=True)  # bad input before unpacking volumes
    directory = _unpacked(sources, work_dir, quiet)
    options = _options(directory, dst_url, None, dest_creds, "true", dest_tls_verify, None, dest_cert_dir, authfile,
                       [], [], [], [], [], False, map_, proc, retries, force=force, dry_run=dry_run, config=config,
                       images=not config_only, charts=not no_charts, charts_as=charts_as, shard=shard,
                       limits=limits)
    run_async(_run(options, journal_path=journal, report=report, quiet=quiet, kind=Import))


def _unpacked(sources: list[str], work_dir: str | None, quiet: bool) -> str:
    """The export directory: as given, or put back together from volumes (damaged members named)."""
    if len(sources) == 1 and os.path.isfile(description_path(sources[0])):
        return sources[0]
    volumes = volume_paths(sources)
    if not volumes:
        raise UsageError(f"{', '.join(sources)}: neither an export directory nor export volumes")
    target = work_dir or os.path.join(os.path.dirname(os.path.abspath(volumes[0])),
                                      f"ferry-import-{read_head(volumes[0])['export'][:12]}")
    result = unpack(volumes, target)
    console = stderr_console()
    for problem in result.problems:
        console.print(f"[red]damaged[/red] {problem}", highlight=False, soft_wrap=True)
    if not quiet:
        console.print(f"unpacked {len(volumes)} volume(s) of export {export_id(target)[:12]} into {target}",
                      highlight=False)
    return target
