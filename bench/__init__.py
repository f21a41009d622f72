"""ferry benchmarks: ferry side by side with skopeo and with the physical limit (``python -m bench.run``).

The harness reuses the test helpers in ``tests/support`` (registries, OCI layout generators,
skopeo runners); this module makes them importable however ``bench`` is started.
"""

from __future__ import annotations

import compileall
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``tests.support`` lives beside ``bench``
    sys.path.insert(0, str(ROOT))


def compile_ferry() -> None:
    """Byte-compile ferry's sources, as a pip install leaves them. An editable install run with
    PYTHONDONTWRITEBYTECODE (set on this machine) compiles every module from source at each start,
    about 0.1 s that no installed ferry pays; the benchmarks measure the installed kind."""
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
