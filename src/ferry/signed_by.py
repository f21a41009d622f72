"""policy.json's ``signedBy`` (keyType ``GPGKeys``) on one source image, as containers/image evaluates it
(``signature/policy_eval_signedby.go``, ``policy_reference_match.go``).

The requirement holds when at least one of the image's simple signatures verifies with a key of the
requirement (imported into a keyring of its own, so no other key counts), claims the digest of the
manifest ferry read (and then copies, byte for byte), and names an identity ``signedIdentity`` accepts.
Signatures come from the registries.d lookaside for ``docker://`` (:mod:`ferry.lookaside`), from the
``signature-N`` files of a ``dir:``; ``oci:`` and ``docker-archive:`` keep none, as in containers/image.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import functools
import threading
from pathlib import Path

from ferry.errors import AuthError, ConfigError, UsageError
from ferry.lookaside import RegistriesD, fetch_signatures, read_signature_files, signature_url
from ferry.media import Manifest, manifest_digest
from ferry.policy import (
    ExactReference,
    ExactRepository,
    MatchExact,
    MatchRepository,
    Policy,
    RemapIdentity,
    SignedBy,
    SignedIdentity,
    check,
    describe,
    scope_of,
)
from ferry.refs import DEFAULT_TAG, ImageRef, PathRef, RegistryRef, parse_docker_ref
from ferry.signing import Keyring, UnknownKeyError, VerificationError
from ferry.transports.base import Source


def _parse(text: str) -> RegistryRef | None:
    """containers/image's ``ParseNormalizedNamed``; None where it fails (then nothing matches)."""
    try:
        return parse_docker_ref(text, default_tag=False)
    except UsageError:
        return None


def _name(ref: RegistryRef) -> str:
    return f"{ref.registry}/{ref.repository}"


def _name_only(ref: RegistryRef) -> bool:
    return not (ref.tag or ref.digest)


def _repo_digest_or_exact(intended: RegistryRef, signed: RegistryRef) -> bool:
    if _name_only(signed):
        return False
    if intended.tag:  # with a tag (and maybe a digest): the signature must name exactly that
        return str(signed) == str(intended)
    if intended.digest:  # the digest is checked against the manifest: the repository is what is left
        return _name(signed) == _name(intended)
    return False


def _remap(identity: RemapIdentity, intended: RegistryRef) -> RegistryRef | None:
    """``intended`` with ``prefix`` replaced by ``signedPrefix`` when its name starts with it (at a ``/``)."""
    name, prefix = _name(intended), identity.prefix
    if not (name == prefix or name.startswith(prefix + "/")):
        return intended
    rewritten = str(intended).replace(prefix, identity.signedPrefix, 1)
    remapped = _parse(rewritten)
    return remapped if remapped is not None and str(remapped) == rewritten else None  # ParseNamed: canonical only


def identity_accepted(identity: SignedIdentity, intended: RegistryRef | None, signed_reference: str) -> bool:
    """Whether a signature claiming ``signed_reference`` is accepted for an image known as ``intended``
    (None: an image without a docker reference, a ``dir:``)."""
    signed = _parse(signed_reference)
    if signed is None:
        return False
    if isinstance(identity, ExactReference | ExactRepository):
        wanted = _parse(identity.dockerReference if isinstance(identity, ExactReference)
                        else identity.dockerRepository)
        if wanted is None:
            return False
        if isinstance(identity, ExactRepository):
            return _name(signed) == _name(wanted)
        return not _name_only(wanted) and not _name_only(signed) and str(signed) == str(wanted)
    if intended is None:
        return False
    if isinstance(identity, MatchExact):
        return not _name_only(intended) and not _name_only(signed) and str(signed) == str(intended)
    if isinstance(identity, MatchRepository):
        return _name(signed) == _name(intended)
    if isinstance(identity, RemapIdentity):
        remapped = _remap(identity, intended)
        return remapped is not None and _repo_digest_or_exact(remapped, signed)
    return _repo_digest_or_exact(intended, signed)


def intended_identity(ref: ImageRef) -> RegistryRef | None:
    """The docker reference an image is known by: a ``docker://`` reference with its tag (``latest`` when
    none is given) or digest; other transports have none."""
    if not isinstance(ref, RegistryRef):
        return None
    return ref if ref.tag or ref.digest else ref.with_tag(DEFAULT_TAG)


class Keyrings:
    """One temporary keyring per ``signedBy`` requirement, made at its first signature and kept until the
    command ends (a sync of many images imports the keys once)."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[SignedBy, Keyring]] = {}
        self._lock = threading.Lock()

    def get(self, requirement: SignedBy, origin: str) -> Keyring:
        with self._lock:
            if id(requirement) not in self._made:
                if not self._made:
                    atexit.register(self.close)
                keyring = Keyring(_key_blobs(requirement, origin))
                self._made[id(requirement)] = (requirement, keyring)
            return self._made[id(requirement)][1]

    def close(self) -> None:
        with self._lock:
            for _, keyring in self._made.values():
                keyring.close()
            self._made.clear()


def _key_blobs(requirement: SignedBy, origin: str) -> list[bytes]:
    if requirement.keyData is not None:
        return [base64.b64decode(requirement.keyData)]
    blobs = []
    for path in requirement.keyPaths if requirement.keyPaths is not None else [str(requirement.keyPath)]:
        try:
            blobs.append(Path(path).read_bytes())
        except OSError as e:
            raise ConfigError(f"{origin}: signedBy key {path}: cannot read it: {e.strerror}") from None
    return blobs


def refusal(requirement: SignedBy, keyring: Keyring, signatures: list[bytes], manifest: bytes,
            intended: RegistryRef | None) -> str | None:
    """None when one signature is accepted, else why none is (each signature's reason)."""
    if not keyring.fingerprints:
        return f"no public key could be imported from {requirement.keys_named()}"
    digest = manifest_digest(manifest)
    reasons = []
    for n, signature in enumerate(signatures, 1):
        try:
            verified = keyring.open(signature)
        except UnknownKeyError as e:
            reasons.append(f"signature {n} is by key {e.key}, not one of {requirement.keys_named()}")
            continue
        except VerificationError as e:
            reasons.append(f"signature {n}: {e.message}")
            continue
        if verified.manifest_digest != digest:
            reasons.append(f"signature {n} is for digest {verified.manifest_digest}, not the manifest's {digest}")
        elif not identity_accepted(requirement.signedIdentity, intended, verified.docker_reference):
            why = "" if intended is not None else " (the image has no docker reference: use exactReference)"
            reasons.append(f"signature {n} is for identity {verified.docker_reference}, which "
                           f"{requirement.signedIdentity.type} does not accept{why}")
        else:
            return None
    return "; ".join(reasons)


#: registries.d read once per command (a sync asks for every image).
_registries_d = functools.cache(RegistriesD.load)


async def _signatures(ref: ImageRef, digest: str, registries_d: str | None) -> tuple[list[bytes], str]:
    """The image's simple signatures, and where they were looked for (for the "none found" message)."""
    if isinstance(ref, RegistryRef):
        base = _registries_d(registries_d).base(ref)
        return await fetch_signatures(base, ref, digest), signature_url(base, ref, digest, 1).rsplit("/", 1)[0]
    if isinstance(ref, PathRef) and ref.transport == "dir":
        return read_signature_files(ref.path), f"no signature-1 in {ref.path}"
    return [], f"the {ref.transport}: transport keeps no simple signatures"


async def admit(policy: Policy, ref: ImageRef, src: Source, reference: str, *, registries_d: str | None,
                keyrings: Keyrings) -> Manifest | None:
    """Refuse (exit 3) a source the policy does not allow. When its scope asks for signatures, read the
    manifest, check them against it and return it: the copy must push these very bytes."""
    required = check(policy, ref)
    if not required:
        return None
    root = await src.get_manifest(reference)
    digest = ref.digest if isinstance(ref, RegistryRef) and ref.digest else manifest_digest(root.raw)
    signatures, looked = await _signatures(ref, digest, registries_d)
    where, _ = scope_of(policy, ref)
    for requirement in required:
        if not signatures:
            reason: str | None = f"no signature found ({looked})"
        else:
            keyring = await asyncio.to_thread(keyrings.get, requirement, policy.origin)
            reason = await asyncio.to_thread(refusal, requirement, keyring, signatures, root.raw,
                                             intended_identity(ref))
        if reason is not None:
            raise AuthError(f"policy rejects {describe(ref)}: {where} in {policy.origin} requires a signature by "
                            f"{requirement.keys_named()}: {reason}")
    return root
