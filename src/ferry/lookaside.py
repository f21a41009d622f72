"""Simple signatures kept beside a registry, in the lookaside storage that containers-registries.d(5)
configures (containers/image ``docker/registries_d.go`` and ``docker_image_src.go``).

The directory is ``--registries.d DIR``, else ``~/.config/containers/registries.d`` when it exists, else
``/etc/containers/registries.d``; its ``*.yaml`` files are merged, and a scope (or ``default-docker``)
given by two files is an error, as in containers/image. A reference's lookaside is the ``lookaside``
(older name ``sigstore``) of the first ``docker`` scope among its identity and its namespaces (see
:func:`ferry.policy.policy_identity`), else ``default-docker``'s, else the built-in directory. Signatures
are ``<base>/<repository path>@<algorithm>=<hex>/signature-N`` from N = 1 until one is missing (no file,
HTTP 404).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ferry.errors import ConfigError, NetworkError, ProtocolError
from ferry.policy import docker_namespaces
from ferry.refs import DEFAULT_TAG, RegistryRef

SYSTEM_DIR = Path("/etc/containers/registries.d")
USER_DIR = Path(".config/containers/registries.d")  # under $HOME
#: Where containers/image looks when nothing is configured (root, other users).
BUILTIN_ROOT = "file:///var/lib/containers/sigstore"
BUILTIN_USER = ".local/share/containers/sigstore"  # under $HOME
MAX_SIGNATURE_BYTES = 4 * 1024 * 1024  # containers/image's iolimits.MaxSignatureBodySize
MAX_SIGNATURES = 128  # a lookaside answering 200 to every name must not keep ferry reading forever


def default_dir() -> Path:
    user = Path.home() / USER_DIR
    return user if user.is_dir() else SYSTEM_DIR


def _url(entry: Any) -> str | None:
    """The reading URL of a namespace entry (``lookaside-staging`` is for writing only)."""
    if not isinstance(entry, dict):
        return None
    url = entry.get("lookaside") or entry.get("sigstore")  # "sigstore" is the older name of the key
    return url if isinstance(url, str) and url else None


@dataclass(slots=True)
class RegistriesD:
    """The merged configuration of one registries.d directory."""

    directory: str
    docker: dict[str, Any] = field(default_factory=dict)
    default_docker: Any = None

    @classmethod
    def load(cls, directory: str | Path | None) -> RegistriesD:
        import yaml  # only when signatures are looked for: PyYAML is not needed to start every command

        path = Path(directory) if directory is not None else default_dir()
        config = cls(str(path))
        seen: dict[str, Path] = {}
        default_from: Path | None = None
        files = sorted(path.glob("*.yaml")) if path.is_dir() else []
        for file in files:
            try:
                data = yaml.safe_load(file.read_text()) or {}
            except (OSError, yaml.YAMLError) as e:
                raise ConfigError(f"{file}: cannot read it as registries.d YAML ({e})") from None
            if not isinstance(data, dict) or not isinstance(data.get("docker") or {}, dict):
                raise ConfigError(f"{file}: expected a mapping with 'docker' and/or 'default-docker'")
            if data.get("default-docker") is not None:
                if default_from is not None:
                    raise ConfigError(f'{file}: "default-docker" is also defined in {default_from}')
                config.default_docker, default_from = data["default-docker"], file
            for scope, entry in (data.get("docker") or {}).items():
                if str(scope) in seen:
                    raise ConfigError(f'{file}: docker namespace "{scope}" is also defined in {seen[str(scope)]}')
                seen[str(scope)] = file
                config.docker[str(scope)] = entry
        return config

    def configured(self, ref: RegistryRef) -> str | None:
        """The lookaside URL the files give ``ref``, or None when they say nothing about it."""
        name = f"{ref.registry}/{ref.repository}"
        identity = f"{name}@{ref.digest}" if ref.digest else f"{name}:{ref.tag or DEFAULT_TAG}"
        for scope in (identity, *docker_namespaces(name)):
            if url := _url(self.docker.get(scope)):
                return url
        return _url(self.default_docker)

    def base(self, ref: RegistryRef) -> str:
        """The lookaside top level for ``ref``: configured, else containers/image's built-in directory."""
        if url := self.configured(ref):
            return url
        return BUILTIN_ROOT if os.geteuid() == 0 else f"file://{Path.home() / BUILTIN_USER}"


def signature_url(base: str, ref: RegistryRef, digest: str, index: int) -> str:
    """``<base>/<repository>@sha256=<hex>/signature-<index>`` (index from 1)."""
    algorithm, _, hex_ = digest.partition(":")
    return f"{base.rstrip('/')}/{ref.repository}@{algorithm}={hex_}/signature-{index}"


async def fetch_signatures(base: str, ref: RegistryRef, digest: str) -> list[bytes]:
    """Every signature the lookaside holds for ``digest`` of ``ref``'s repository, in order."""
    scheme = urlsplit(base).scheme
    if scheme not in ("file", "http", "https"):
        raise ConfigError(f"lookaside {base}: unsupported URL scheme {scheme!r}", hint="use file://, http:// or https://")
    out: list[bytes] = []
    session = None
    try:
        for index in range(1, MAX_SIGNATURES + 1):
            url = signature_url(base, ref, digest, index)
            if scheme == "file":
                body = _read_file(url)
            else:
                if session is None:
                    from ferry.aio import aiohttp
                    from ferry.tls import system_context

                    # A lookaside over HTTPS is verified against the system's CAs.
                    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=system_context()),
                                                    timeout=aiohttp.ClientTimeout(total=60))
                body = await _get(session, url)
            if body is None:
                return out
            out.append(body)
    finally:
        if session is not None:
            await session.close()
    raise ProtocolError(f"lookaside {base} holds more than {MAX_SIGNATURES} signatures for {ref.repository}@{digest}")


def read_signature_files(directory: str) -> list[bytes]:
    """``signature-1``, ``signature-2`` … of a ``dir:`` image, until one is missing."""
    out = []
    for index in range(1, MAX_SIGNATURES + 1):
        body = _read_path(Path(directory) / f"signature-{index}")
        if body is None:
            return out
        out.append(body)
    raise ProtocolError(f"{directory} holds more than {MAX_SIGNATURES} signatures")


def _read_file(url: str) -> bytes | None:
    return _read_path(Path(unquote(urlsplit(url).path)))


def _read_path(path: Path) -> bytes | None:
    try:
        with path.open("rb") as f:
            body = f.read(MAX_SIGNATURE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the signature: {e.strerror}") from None
    if len(body) > MAX_SIGNATURE_BYTES:
        raise ProtocolError(f"{path}: a signature larger than {MAX_SIGNATURE_BYTES} bytes")
    return body


async def _get(session: Any, url: str) -> bytes | None:
    from ferry.aio import aiohttp
    from ferry.bodies import read_limited

    try:
        async with session.get(url) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                raise ProtocolError(f"reading signature {url}: HTTP {response.status}")
            return await read_limited(response, MAX_SIGNATURE_BYTES, f"signature {url}")
    except (aiohttp.ClientError, TimeoutError) as e:
        raise NetworkError(f"reading signature {url}: {e or type(e).__name__}") from None
