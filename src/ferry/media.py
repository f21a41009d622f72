"""Media types and manifest parsing: what a manifest references. Pure, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from ferry.errors import NotFoundError, ProtocolError, UsageError
from ferry.refs import is_digest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES | SCHEMA1_TYPES
#: Sent on every manifest request: without the OCI types distribution answers 404 for OCI content,
#: and without the list type a manifest list fetched by tag silently becomes one of its children.
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1])

#: Distribution refuses larger manifests (400 MANIFEST_INVALID); ferry refuses to read them too.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: bytes, digest: str, what: str) -> None:
    """Raise when ``data`` does not hash to ``digest`` (sha256 or sha512)."""
    algo, _, expected = digest.partition(":")
    if algo not in ("sha256", "sha512"):
        raise ProtocolError(f"{what}: unsupported digest algorithm {algo!r}")
    actual = hashlib.new(algo, data).hexdigest()
    if actual != expected:
        from ferry.errors import DigestMismatchError

        raise DigestMismatchError(f"{what}: content does not match digest {digest} (got {algo}:{actual})")


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] | None = None

    @property
    def platform_string(self) -> str:
        p = self.platform or {}
        s = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
        return s + (f"/{p['variant']}" if p.get("variant") else "")


@dataclass(slots=True)
class Manifest:
    """A parsed manifest: its exact bytes, media type, and what it references."""

    raw: bytes
    media_type: str
    digest: str
    children: list[Descriptor] = field(default_factory=list)  # manifests (index entries)
    blobs: list[Descriptor] = field(default_factory=list)  # config first, then layers
    subject: Descriptor | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def config(self) -> Descriptor | None:
        if self.media_type in SCHEMA1_TYPES or self.is_index or not self.blobs:
            return None
        return self.blobs[0]

    @property
    def layers(self) -> list[Descriptor]:
        """Layers, base first. Schema1 lists ``fsLayers`` newest first: they are reversed here."""
        return self.blobs[::-1] if self.media_type in SCHEMA1_TYPES else self.blobs[1:]


def _descriptor(d: Any, where: str) -> Descriptor:
    if not isinstance(d, dict):
        raise ProtocolError(f"{where}: descriptor is not an object")
    digest, size, mt = d.get("digest"), d.get("size"), d.get("mediaType", "")
    if not isinstance(digest, str) or not is_digest(digest):
        raise ProtocolError(f"{where}: descriptor has an invalid digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ProtocolError(f"{where}: descriptor {digest} has an invalid size {size!r}")
    if not isinstance(mt, str):
        raise ProtocolError(f"{where}: descriptor {digest} has an invalid mediaType")
    platform = d.get("platform") if isinstance(d.get("platform"), dict) else None
    annotations = d.get("annotations") if isinstance(d.get("annotations"), dict) else None
    return Descriptor(mt, digest, size, platform, annotations)


def detect_media_type(body: dict[str, Any], declared: str | None) -> str:
    """The media type of a manifest: its own field, else the server's Content-Type, else its shape."""
    mt = body.get("mediaType")
    if isinstance(mt, str) and mt in MANIFEST_TYPES:
        return mt
    if declared:
        declared = declared.split(";")[0].strip()
        if declared in MANIFEST_TYPES:
            return declared
    if body.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED if "signatures" in body else DOCKER_SCHEMA1
    if "manifests" in body:
        return OCI_INDEX
    if "layers" in body or "config" in body:
        return OCI_MANIFEST
    if isinstance(mt, str) and mt:
        return mt
    raise ProtocolError("manifest has no recognisable media type")


def parse_manifest(raw: bytes, declared_type: str | None = None, digest: str | None = None) -> Manifest:
    """Parse manifest bytes; ``digest`` (when given) is verified against the bytes."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ProtocolError(f"manifest of {len(raw)} bytes exceeds the 4 MiB limit")
    actual = manifest_digest(raw)  # signed schema1: the digest of its payload, as registries compute it
    if digest is not None and digest.startswith("sha256:") and digest != actual:
        from ferry.errors import DigestMismatchError

        raise DigestMismatchError(f"manifest does not match its digest {digest} (got {actual})")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"manifest is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise ProtocolError("manifest is not a JSON object")
    media_type = detect_media_type(body, declared_type)
    m = Manifest(raw=raw, media_type=media_type, digest=digest or actual, body=body)
    where = f"manifest {m.digest}"
    if media_type in SCHEMA1_TYPES:
        layers = body.get("fsLayers") or []
        if not isinstance(layers, list):
            raise ProtocolError(f"{where}: fsLayers is not a list")
        seen: set[str] = set()
        for layer in layers:
            if not isinstance(layer, dict) or not is_digest(str(layer.get("blobSum", ""))):
                raise ProtocolError(f"{where}: invalid fsLayers entry")
            if layer["blobSum"] not in seen:
                seen.add(layer["blobSum"])
                # schema1 carries no sizes; -1 means "unknown"
                m.blobs.append(Descriptor("application/vnd.docker.container.image.rootfs.diff+x-gtar",
                                          layer["blobSum"], -1))
        return m
    if "manifests" in body:
        entries = body["manifests"]
        if not isinstance(entries, list):
            raise ProtocolError(f"{where}: manifests is not a list")
        m.children = [_descriptor(d, where) for d in entries]
    if "config" in body:
        m.blobs.append(_descriptor(body["config"], where))
    layers = body.get("layers")
    if layers is not None:
        if not isinstance(layers, list):
            raise ProtocolError(f"{where}: layers is not a list")
        m.blobs.extend(_descriptor(d, where) for d in layers)
    blobs = body.get("blobs")  # OCI artifact manifest (draft) keeps its payload in "blobs"
    if isinstance(blobs, list):
        m.blobs.extend(_descriptor(d, where) for d in blobs)
    if "subject" in body:
        m.subject = _descriptor(body["subject"], where)
    return m


def schema1_config(manifest: Manifest) -> dict[str, Any]:
    """The image configuration a schema1 manifest carries: the newest ``history`` entry's
    ``v1Compatibility`` (architecture, os, created, config, ...). Empty when it has none."""
    history = manifest.body.get("history")
    if manifest.media_type not in SCHEMA1_TYPES or not isinstance(history, list) or not history:
        return {}
    entry = history[0]
    try:
        config = json.loads(entry["v1Compatibility"]) if isinstance(entry, dict) else None
    except (KeyError, TypeError, ValueError):
        config = None
    return config if isinstance(config, dict) else {}


def referrers_tag(digest: str) -> str:
    """The fallback tag under which referrers (and cosign signatures) of ``digest`` live."""
    algo, _, hexpart = digest.partition(":")
    return f"{algo}-{hexpart}"


class PlatformSelection(Protocol):
    """Which children of an index to keep (``plan.model.PlatformFilter``); an empty field selects all."""

    @property
    def os(self) -> tuple[str, ...]: ...
    @property
    def arch(self) -> tuple[str, ...]: ...
    @property
    def variant(self) -> str | None: ...


def platform_matches(
    desc: Descriptor, os: Collection[str] = (), arch: Collection[str] = (), variant: str | None = None
) -> bool:
    """True when the descriptor's platform has one of ``os`` and one of ``arch`` (any when empty) and
    the ``variant`` (any when None)."""
    p = desc.platform or {}
    if os and p.get("os") not in os:
        return False
    if arch and p.get("architecture") not in arch:
        return False
    return not (variant and p.get("variant") != variant)


def filter_platforms(index: Manifest, platforms: PlatformSelection) -> Manifest:
    """An index keeping only the children whose platform is selected: a new manifest, a new digest."""
    keep = [
        entry
        for entry, desc in zip(index.body.get("manifests", []), index.children, strict=True)
        if platform_matches(desc, platforms.os, platforms.arch, platforms.variant)
    ]
    if not keep:
        raise NotFoundError(f"index {index.digest} has no child for the selected platforms")
    if len(keep) == len(index.children):
        return index
    body = dict(index.body, manifests=keep)
    raw = json.dumps(body, indent=3).encode()
    return parse_manifest(raw, index.media_type)


def parse_platform(spec: str) -> tuple[str, str, str | None]:
    """``os/arch[/variant]``; a usage error otherwise (checked before anything is read)."""
    parts = spec.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"invalid platform {spec!r}", hint="expected os/arch or os/arch/variant, e.g. linux/arm64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def select_platform(index: Manifest, spec: str) -> Descriptor:
    """The child of ``index`` for ``os/arch[/variant]`` (skopeo's --override-os/--override-arch)."""
    os_, arch, variant = parse_platform(spec)
    for child in index.children:
        if platform_matches(child, (os_,), (arch,), variant):
            return child
    available = ", ".join(c.platform_string for c in index.children) or "none"
    raise NotFoundError(f"index {index.digest} has no {spec} image (available: {available})")


def manifest_digest(raw: bytes) -> str:
    """The digest a registry gives these manifest bytes; for signed schema1, of the JWS payload."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return sha256_digest(raw)
    if isinstance(body, dict) and body.get("schemaVersion") == 1 and isinstance(body.get("signatures"), list):
        return sha256_digest(_schema1_payload(raw, body))
    return sha256_digest(raw)


def _schema1_payload(raw: bytes, body: dict[str, Any]) -> bytes:
    """Strip the JWS signatures from signed schema1 bytes (libtrust's formatLength/formatTail)."""
    import base64

    try:
        protected = body["signatures"][0]["protected"]
        header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
        length = int(header["formatLength"])
        tail = base64.urlsafe_b64decode(header["formatTail"] + "=" * (-len(header["formatTail"]) % 4))
    except (KeyError, IndexError, ValueError, TypeError):
        raise ProtocolError("signed schema1 manifest has an unreadable signature header") from None
    return raw[:length] + tail
