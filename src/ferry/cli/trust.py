"""Where skopeo's signature policy (``--policy``, ``--insecure-policy``) applies: copy, sync and migrate
ask :meth:`TrustPolicy.check` for every source image before anything is copied (``reject`` and what ferry
cannot check stop the command there), and :meth:`TrustPolicy.admit` for each image as it is copied
(``signedBy``: its signatures are read and verified against the manifest the copy then pushes; one
image refused fails that image only)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ferry.refs import ImageRef

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ferry.engine import Admission
    from ferry.media import Manifest
    from ferry.plan.model import Job
    from ferry.policy import Policy
    from ferry.signed_by import Keyrings
    from ferry.transports.base import Source


class TrustPolicy:
    """The global policy options; the policy file is read once, at the first image checked."""

    def __init__(self, path: str | None = None, insecure: bool = False, registries_d: str | None = None) -> None:
        self.path = path
        self.insecure = insecure
        self.registries_d = registries_d  # --registries.d: where the lookaside of signatures is configured
        self._loaded: Policy | None = None
        self._keyrings: Keyrings | None = None
        self._open: bool | None = None  # whether every image is accepted (found without the models)

    def _accepts_anything(self) -> bool:
        """``--insecure-policy``, no policy file, or a file that accepts anything (the usual default):
        nothing to check, and the policy's models are never built."""
        if self._open is None:
            from ferry.policy_source import accepts_anything, policy_path

            path = policy_path(Path(self.path) if self.path else None)
            self._open = self.insecure or path is None or accepts_anything(path)
        return self._open

    def _policy(self) -> Policy:
        from ferry import policy  # pydantic: imported only by the commands that copy

        if self._loaded is None:
            self._loaded = policy.load(Path(self.path) if self.path else None, self.insecure)
        return self._loaded

    def check(self, source: ImageRef) -> None:
        """Raise (``AuthError``, exit 3) when the policy refuses ``source`` whatever its signatures
        (:func:`ferry.policy.load` says which policy applies when ``--policy`` is not given)."""
        if self._accepts_anything():
            return
        from ferry import policy

        policy.check(self._policy(), source)

    def check_all(self, jobs: Iterable[Job]) -> None:
        """:meth:`check` for every job's source; a policy that accepts anything asks for no job's ref
        (a million jobs would make a million refs for nothing)."""
        if not self._accepts_anything():
            for job in jobs:
                self.check(job.source)

    async def admit(self, source: ImageRef, src: Source, reference: str) -> Manifest | None:
        """Raise (exit 3) when the policy refuses ``source``; its manifest when signatures were checked
        against it (the copy must push that one), else None."""
        if self._accepts_anything():
            return None
        from ferry.signed_by import Keyrings, admit

        if self._keyrings is None:
            self._keyrings = Keyrings()
        return await admit(self._policy(), source, src, reference, registries_d=self.registries_d,
                           keyrings=self._keyrings)

    def admission(self) -> Admission | None:
        """The per-image check for the engine of sync and migrate; None when no scope asks for signatures."""
        if self._accepts_anything():
            return None
        from ferry import policy

        return self.admit if policy.has_signed_by(self._policy()) else None
