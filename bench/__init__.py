"""ferry benchmarks: ferry side by side with skopeo and with the physical limit (``python -m bench.run``).

The harness reuses the test helpers in ``tests/support`` (registries, OCI layout generators,
skopeo runners); this module makes them importable however ``bench`` is started.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``tests.support`` lives beside ``bench``
    sys.path.insert(0, str(ROOT))
