"""``--registries.d DIR``: containers-registries.d(5) files, read for the one thing ferry does with
them — saying when a source keeps simple signatures in a lookaside, which ferry does not copy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ferry.errors import ConfigError
from ferry.refs import ImageRef, RegistryRef


def _url(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    url = entry.get("lookaside") or entry.get("sigstore")  # "sigstore" is the older name of the key
    return url if isinstance(url, str) else None


def lookaside_for(registries_d: str, ref: RegistryRef) -> str | None:
    """The lookaside URL the directory gives ``ref``: the longest matching ``docker`` scope (host,
    host/namespace, host/repository or the reference with its tag), else ``default-docker``."""
    import yaml  # only with --registries.d: PyYAML is not needed to start every command

    path = f"{ref.registry}/{ref.repository}"
    best: tuple[int, str] | None = None
    default: str | None = None
    for file in sorted(Path(registries_d).glob("*.yaml")):
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{file}: cannot read it as registries.d YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: expected a mapping with 'docker' and/or 'default-docker'")
        default = _url(data.get("default-docker")) or default
        for scope, entry in (data.get("docker") or {}).items():
            url = _url(entry)
            matches = str(scope) in (path, str(ref)) or path.startswith(f"{scope}/")
            if url and matches and (best is None or len(str(scope)) > best[0]):
                best = (len(str(scope)), url)
    return best[1] if best else default


def warn_uncopied_signatures(registries_d: str | None, source: ImageRef) -> None:
    if registries_d is None or not isinstance(source, RegistryRef):
        return
    url = lookaside_for(registries_d, source)
    if url:
        print(f"ferry: warning: {registries_d} puts signatures of {source.registry}/{source.repository} in a "
              f"lookaside ({url}); ferry copies the signatures kept in the registry (cosign tags, OCI referrers), "
              "not lookaside ones", file=sys.stderr)
