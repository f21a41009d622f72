"""``ferry verify DIR``: an export checked offline (every blob rehashed, every reference resolved).

Its own module, below both ``cli/migrate.py`` (whose ``verify`` command takes a directory) and
``cli/airgap.py`` (which builds on migrate's options), so neither imports the other back."""

from __future__ import annotations

import os

from rich.filesize import decimal

from ferry.airgap.offline import check_export
from ferry.cli.progress import stderr_console
from ferry.errors import RunFailedError, UsageError
from ferry.report import write_report


def verify_export(directory: str, *, report: str | None, quiet: bool) -> None:
    """``ferry verify DIR``."""
    if not os.path.isdir(directory):
        raise UsageError(f"{directory}: no such export directory",
                         hint="ferry verify DIR checks an export; ferry verify SRC_URL DST_URL a migration")
    check = check_export(directory)
    if report:
        write_report(report, check.to_json())
    console = stderr_console()
    for problem in check.problems[:50]:
        console.print(f"[red]damaged[/red] {problem}", highlight=False, soft_wrap=True)
    if len(check.problems) > 50:
        console.print(f"… and {len(check.problems) - 50} more (see --report)")
    if not quiet:
        images, charts = len(check.description.images), len(check.description.charts)
        console.print(f"checked {check.blobs} blobs ({decimal(check.bytes)}), {images} images and {charts} chart "
                      f"versions: {images - len(check.bad_images)} and {charts - len(check.bad_charts)} whole",
                      highlight=False)
    if not check.ok:
        charts_bad = f", {len(check.bad_charts)} chart version(s) not whole" if check.bad_charts else ""
        raise RunFailedError(f"{len(check.problems)} problem(s) in export {directory}: "
                             f"{len(check.bad_images)} image(s) not whole{charts_bad}"
                             + (f" (report: {report})" if report else ""))

