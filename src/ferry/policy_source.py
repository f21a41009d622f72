"""Which ``policy.json`` a copy obeys, and whether it accepts every image, read without the policy's
models (:mod:`ferry.policy` builds them with pydantic: about 70 ms of a copy's start-up, which the
distributions' default policy, accept anything, never needs)."""

from __future__ import annotations

import json
from pathlib import Path

SYSTEM_POLICY = Path("/etc/containers/policy.json")
USER_POLICY = Path(".config/containers/policy.json")  # under $HOME
_ACCEPT = [{"type": "insecureAcceptAnything"}]


def policy_path(path: Path | None) -> Path | None:
    """``--policy FILE``; else ``$HOME/.config/containers/policy.json``, then ``/etc/containers/policy.json``;
    None when there is none (skopeo then refuses to run; ferry accepts anything, as it always has)."""
    if path is not None:
        return path
    return next((p for p in (Path.home() / USER_POLICY, SYSTEM_POLICY) if p.exists()), None)


def accepts_anything(path: Path) -> bool:
    """Whether ``path`` holds a policy whose every requirement list is ``insecureAcceptAnything`` alone,
    in scopes containers/image accepts for any transport (``""``; any scope of ``docker``). Anything
    else, or a file that does not parse, is for :func:`ferry.policy.load` to read and judge."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict) or not set(doc) <= {"default", "transports"} or doc.get("default") != _ACCEPT:
        return False
    transports = doc.get("transports", {})
    if not isinstance(transports, dict):
        return False
    for transport, scopes in transports.items():
        if not isinstance(scopes, dict):
            return False
        for scope, requirements in scopes.items():
            if requirements != _ACCEPT or (scope and transport != "docker"):
                return False
    return True
