"""What a module of tests against the Harbor test server declares (kept apart from the fixtures,
which pytest loads as a plugin and must not see imported first)."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from tests.support.harbor import HarborServer

__all__ = ["HARBOR_TESTS", "Factory"]

#: ``pytestmark`` of a module of tests against the Harbor test server (which seeds with skopeo).
HARBOR_TESTS = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed"),
]

#: The type of the ``harbor_factory`` fixture.
Factory = Callable[..., HarborServer]
