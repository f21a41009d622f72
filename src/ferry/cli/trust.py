"""Where skopeo's signature policy (``--policy``, ``--insecure-policy``) applies: copy, sync and migrate
ask :meth:`TrustPolicy.check` for every source image before anything is copied."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.refs import ImageRef


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """The policy file given with ``--policy`` (none: every image is accepted) and ``--insecure-policy``."""

    path: str | None = None
    insecure: bool = False

    def check(self, source: ImageRef, destination: ImageRef) -> None:
        """Raise (``AuthError``, exit 3) when the policy refuses copying ``source`` to ``destination``.

        Without ``--policy`` ferry reads no policy and accepts every image: skopeo would read
        /etc/containers/policy.json and refuse to run without one (docs/decisions.md)."""
        if self.path is None:
            return
        from ferry import policy  # the policy.json evaluator, imported only when a policy is given

        policy.check(self.path, self.insecure, source, destination)
