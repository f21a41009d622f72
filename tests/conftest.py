"""Shared fixtures: real CNCF distribution registries (and a token server) on 127.0.0.1.

Every fixture starts its own processes under ``tmp_path`` and stops them at teardown.

- ``registry`` / ``registry_pair``: plain HTTP, no auth.
- ``basic_registry``: htpasswd, ``alice``/``secret`` (``tests.support.registry.ALICE``).
- ``token_registry`` + ``token_server``: bearer tokens; ``alice`` may pull/push/delete
  everything, ``bob`` (``BOB``) may only pull (:data:`TOKEN_PERMISSIONS`).
- ``tls_registry``: HTTPS with the ``ca`` fixture's CA; ``.ca`` and ``.cert_dir`` on the registry.
- ``mtls_registry``: HTTPS requiring a client certificate (``.client_cert``; ``.cert_dir`` holds it).
- ``layout``: an empty OCI layout (:class:`tests.support.images.Layout`).
- ``refused_host``: ``127.0.0.1:PORT`` that refuses connections for the whole test.

Under pytest-xdist ``make test`` hands out whole modules (``--dist loadfile``), so a module's seeded server
is built once, not once per worker; :func:`pytest_collection_modifyitems` orders them.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # make ``tests.support`` importable however pytest is started
    sys.path.insert(0, str(_ROOT))

from tests.support.images import Layout  # noqa: E402
from tests.support.pki import CA, TokenSigner  # noqa: E402
from tests.support.registry import ALICE, BOB, Htpasswd, Registry, TokenAuth, start_registry  # noqa: E402
from tests.support.tokenserver import TokenServer  # noqa: E402

BASIC_USERS = dict([ALICE])
TOKEN_USERS = dict([ALICE, BOB])
TOKEN_PERMISSIONS = {
    "alice": {"*": ["pull", "push", "delete"], "registry:catalog": ["*"]},
    "bob": {"*": ["pull"]},
}
TOKEN_SERVICE = "ferry-test-registry"
TOKEN_ISSUER = "ferry-test-issuer"


_SHARED_SCOPES = frozenset({"module", "package", "session"})
_TESTS = Path(__file__).resolve().parent


def _shares_a_fixture(item: pytest.Item) -> bool:
    """Does the test use a module- or session-scoped fixture of this suite (not pytest's or a plugin's)?"""
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        code = getattr(defs[-1].func, "__code__", None) if defs else None
        if code is not None and defs[-1].scope in _SHARED_SCOPES and Path(code.co_filename).is_relative_to(_TESTS):
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the modules that build a shared server come first: they take longest, and one
    handed out last would run on alone while the other workers idle. Order within a module is kept."""
    if not hasattr(config, "workerinput"):
        return
    shared = {item.nodeid.split("::", 1)[0] for item in items if _shares_a_fixture(item)}
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in shared)


@pytest.fixture
def refused_host() -> Iterator[str]:
    """``127.0.0.1:PORT`` where nothing listens: the port is bound, never listened on, so connections are
    refused and no other process (another test worker's registry) can take it meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    """A fresh test certificate authority."""
    return CA.create(tmp_path / "ca")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """An empty OCI image layout to fill with :mod:`tests.support.images` generators."""
    return Layout(tmp_path / "layout")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """Plain HTTP registry, no auth, delete enabled."""
    with start_registry(tmp_path / "registry") as reg:
        yield reg


@pytest.fixture
def registry_pair(tmp_path: Path) -> Iterator[tuple[Registry, Registry]]:
    """Two independent plain HTTP registries: (source, destination)."""
    with start_registry(tmp_path / "registry-src") as src, start_registry(tmp_path / "registry-dst") as dst:
        yield src, dst


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator[Registry]:
    """htpasswd-protected registry; credentials in :data:`BASIC_USERS`."""
    with start_registry(tmp_path / "registry-basic", auth=Htpasswd(users=dict(BASIC_USERS))) as reg:
        yield reg


@pytest.fixture
def token_signer(tmp_path: Path) -> TokenSigner:
    """Key and certificate that the token registry trusts."""
    return TokenSigner.create(tmp_path / "token-signer")


@pytest.fixture
def token_server(token_signer: TokenSigner) -> Iterator[TokenServer]:
    """Token server: alice pull/push/delete on all, bob pull-only; anonymous nothing."""
    with TokenServer(
        token_signer,
        service=TOKEN_SERVICE,
        issuer=TOKEN_ISSUER,
        users=dict(TOKEN_USERS),
        permissions={k: dict(v) for k, v in TOKEN_PERMISSIONS.items()},
    ) as server:
        yield server


@pytest.fixture
def token_registry(tmp_path: Path, token_server: TokenServer, token_signer: TokenSigner) -> Iterator[Registry]:
    """Registry with bearer-token auth backed by ``token_server``."""
    auth = TokenAuth(realm=token_server.realm, service=TOKEN_SERVICE, issuer=TOKEN_ISSUER, signer=token_signer)
    with start_registry(tmp_path / "registry-token", auth=auth) as reg:
        yield reg


@pytest.fixture
def tls_registry(tmp_path: Path, ca: CA) -> Iterator[Registry]:
    """HTTPS registry with a server cert from ``ca`` (``.ca``, ``.cert_dir``, ``.ssl_context()``)."""
    with start_registry(tmp_path / "registry-tls", tls=ca) as reg:
        yield reg


@pytest.fixture
def mtls_registry(tmp_path: Path, ca: CA) -> Iterator[Registry]:
    """HTTPS registry that requires a client certificate signed by ``ca`` (``.client_cert``)."""
    with start_registry(tmp_path / "registry-mtls", tls=ca, mtls=True) as reg:
        yield reg
