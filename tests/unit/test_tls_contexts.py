"""aiohttp is imported without loading the system's CAs into the contexts ferry never uses (ferry.aio),
and nothing else loses them: ferry's own context, any context built after the import, and one built in
another thread during it all hold the system's CAs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grimp

from tests.support.pki import CA

_PROBE = """
import json, ssl, threading
import ferry.aio
from ferry.aio import _default_cas_skipped
from ferry.tls import system_context

def cas(ctx):
    return ctx.cert_store_stats()["x509_ca"]

during = {}
with _default_cas_skipped():
    during["this thread"] = cas(ssl.create_default_context())
    other = threading.Thread(target=lambda: during.update({"another thread": cas(ssl.create_default_context())}))
    other.start()
    other.join()
print(json.dumps({
    "aiohttp's verifying default": cas(ferry.aio.aiohttp.connector._SSL_CONTEXT_VERIFIED),
    "aiohttp's other default": cas(ferry.aio.aiohttp.connector._SSL_CONTEXT_UNVERIFIED),
    "after the import": cas(ssl.create_default_context()),
    "ferry's system context": cas(system_context()),
    **during,
}))
"""


def test_only_aiohttps_own_defaults_go_without_the_systems_cas(tmp_path: Path) -> None:
    ca = CA.create(tmp_path / "ca")
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "SSL_CERT_FILE": str(ca.cert_path), "SSL_CERT_DIR": str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "aiohttp's verifying default": 0,
        "aiohttp's other default": 0,
        "after the import": 1,
        "ferry's system context": 1,
        "this thread": 0,
        "another thread": 1,
    }


def test_every_module_takes_aiohttp_from_ferry_aio() -> None:
    """A module importing aiohttp itself, if imported first, would bring back the CA loading."""
    graph = grimp.build_graph("ferry", include_external_packages=True, cache_dir=None)
    assert graph.find_modules_that_directly_import("aiohttp") == {"ferry.aio"}
