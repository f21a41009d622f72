"""Command-line options shared by several commands, declared once (``Annotated`` aliases for typer)."""

from __future__ import annotations

from typing import Annotated

import typer

TLS_HELP = "Require HTTPS and verify certificates (default true); false also allows plain HTTP."
CERT_HELP = "Directory with ca.crt, and client.cert/client.key for mutual TLS."
CREDS_HELP = "USER or USER:PASS (a password here is visible to others; prefer an auth file or {env})."

# one registry (inspect, list-tags, delete)
Creds = Annotated[str | None, typer.Option("--creds", metavar="USER[:PASS]", help=CREDS_HELP.format(env="a prompt"))]
TlsVerify = Annotated[str, typer.Option("--tls-verify", help=TLS_HELP)]
CertDir = Annotated[str | None, typer.Option("--cert-dir", help=CERT_HELP)]
AuthFile = Annotated[str | None, typer.Option("--authfile", help="Auth file (containers auth.json / docker config).")]

# two sides (copy, sync, migrate, verify)
SrcCreds = Annotated[str | None, typer.Option("--src-creds", metavar="USER[:PASS]",
                                              help=CREDS_HELP.format(env="FERRY_SRC_PASSWORD"))]
DestCreds = Annotated[str | None, typer.Option("--dest-creds", metavar="USER[:PASS]",
                                               help=CREDS_HELP.format(env="FERRY_DEST_PASSWORD"))]
SrcTlsVerify = Annotated[str, typer.Option("--src-tls-verify", help=TLS_HELP)]
DestTlsVerify = Annotated[str, typer.Option("--dest-tls-verify", help=TLS_HELP)]
SrcCertDir = Annotated[str | None, typer.Option("--src-cert-dir", help=CERT_HELP)]
DestCertDir = Annotated[str | None, typer.Option("--dest-cert-dir", help=CERT_HELP)]

# migrate and verify: what to take
Projects = Annotated[list[str], typer.Option("--project", metavar="GLOB", help="Only these projects (repeatable).")]
ExcludeProjects = Annotated[list[str], typer.Option("--exclude-project", metavar="GLOB", help="Skip these projects.")]
Repos = Annotated[list[str], typer.Option("--repo", metavar="GLOB",
                                          help="Only these repositories (path inside the project, or full name).")]
Tags = Annotated[list[str], typer.Option("--tag", metavar="GLOB", help="Only these tags.")]
ExcludeTags = Annotated[list[str], typer.Option("--exclude-tag", metavar="GLOB", help="Skip these tags.")]
IncludeUntagged = Annotated[bool, typer.Option("--include-untagged", help="Also copy untagged artifacts by digest.")]
Maps = Annotated[list[str], typer.Option("--map", metavar="SRC_PROJECT=DST_PROJECT", help="Rename a project.")]

# bulk runs
Retries = Annotated[int, typer.Option("--retries", min=0, help="Extra rounds for failed images.")]
Force = Annotated[bool, typer.Option("--force", help="Copy even when the destination has the same digest.")]
Journal = Annotated[str | None, typer.Option("--journal", help="Journal file (resume state); default in the "
                                                               "user's state directory.")]
Report = Annotated[str | None, typer.Option("--report", help="Write a JSON report to this file.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show the plan and what is in place; write nothing.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Shard = Annotated[str | None, typer.Option("--shard", metavar="INDEX/COUNT",
                                           help="Take only this share of the repositories (0/4 … 3/4); auto/COUNT "
                                                "reads $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).")]

# gentle on production (issue 12)
MaxBandwidth = Annotated[str | None, typer.Option(
    "--max-bandwidth", metavar="RATE",
    help="Bytes a second over all blob transfers of the run, e.g. 200M, 1.5G, 64MiB (k, M, G: powers of 1000; "
         "Ki, Mi, Gi: of 1024); what is read from the source, which a streamed copy writes as fast.")]
MaxRequests = Annotated[str | None, typer.Option(
    "--max-requests", metavar="RATE",
    help="Requests a second to each registry (source and destination each get this many; token requests and "
         "retries count).")]
