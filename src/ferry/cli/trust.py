"""Where skopeo's signature policy (``--policy``, ``--insecure-policy``) applies: copy, sync and migrate
ask :meth:`TrustPolicy.check` for every source image before anything is copied."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ferry.refs import ImageRef

if TYPE_CHECKING:
    from ferry.policy import Policy


class TrustPolicy:
    """The global policy options; the policy file is read once, at the first image checked."""

    def __init__(self, path: str | None = None, insecure: bool = False) -> None:
        self.path = path
        self.insecure = insecure
        self._loaded: Policy | None = None

    def check(self, source: ImageRef) -> None:
        """Raise (``AuthError``, exit 3) when the policy refuses ``source`` (:func:`ferry.policy.load`
        says which policy applies when ``--policy`` is not given)."""
        from ferry import policy  # pydantic: imported only by the commands that copy

        if self._loaded is None:
            self._loaded = policy.load(Path(self.path) if self.path else None, self.insecure)
        policy.check(self._loaded, source)
