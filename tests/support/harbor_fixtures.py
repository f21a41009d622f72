"""pytest fixtures for the Harbor test server (:mod:`tests.support.harbor`).

Use them with ``pytest_plugins = ["tests.support.harbor_fixtures"]`` in a test module (or import
the fixtures directly). Each server runs its own ``docker-registry`` on a loopback port; tests
are skipped where ``docker-registry`` is not installed.

- ``harbor``: a fresh server (admin/Harbor12345, public ``library`` project).
- ``harbor_pair``: two independent servers, ``.source`` and ``.dest``, for migrations.
- ``harbor_factory``: ``harbor_factory(**HarborServer kwargs)`` → started server, stopped at teardown.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.harbor import HarborServer

__all__ = ["HarborPair", "harbor", "harbor_factory", "harbor_pair", "require_registry"]



def require_registry() -> None:
    """Skip the calling test when the ``docker-registry`` binary is missing."""
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry (CNCF distribution) is not installed")


@dataclass
class HarborPair:
    """A migration's two ends."""

    source: HarborServer
    dest: HarborServer


@pytest.fixture
def harbor_factory(tmp_path: Path) -> Iterator[Callable[..., HarborServer]]:
    """Start Harbor test servers with any :class:`HarborServer` keyword arguments."""
    require_registry()
    servers: list[HarborServer] = []

    def make(**kwargs: Any) -> HarborServer:
        server = HarborServer(tmp_path / f"harbor-{len(servers)}", **kwargs)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def harbor(harbor_factory: Callable[..., HarborServer]) -> HarborServer:
    """One started Harbor test server with default settings."""
    return harbor_factory()


@pytest.fixture
def harbor_pair(harbor_factory: Callable[..., HarborServer]) -> HarborPair:
    """Two started Harbor test servers: ``source`` and ``dest``."""
    return HarborPair(source=harbor_factory(), dest=harbor_factory())
