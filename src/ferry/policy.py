"""containers' ``policy.json``: may this source image be copied? (containers/image ``signature/policy_*.go``)

A policy maps transports and scopes to requirement lists; the most specific scope for the image wins
(exact reference, then repository, then each parent namespace, then the host, then ``*.domain``
wildcards, then the transport's ``""`` scope, then ``default``) and every requirement in it must hold.
:func:`check` decides ``insecureAcceptAnything`` and ``reject`` from the reference alone; a ``signedBy``
with ``GPGKeys`` needs the image's signatures and is decided by :mod:`ferry.signed_by` once its
manifest is read; a requirement ferry cannot check (``sigstoreSigned``, ``signedBaseLayer``, X.509 key
types) refuses the image rather than being ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ferry.errors import AuthError, UsageError
from ferry.plan.files import Format, read_document
from ferry.policy_source import policy_path
from ferry.refs import DEFAULT_TAG, ImageRef, RegistryRef, parse_docker_ref


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceptAnything(_Strict):
    type: Literal["insecureAcceptAnything"]


class Reject(_Strict):
    type: Literal["reject"]


def _docker_reference(text: str) -> RegistryRef:
    """A signedIdentity's reference, normalised as containers/image's ``ParseNormalizedNamed`` does."""
    try:
        return parse_docker_ref(text, default_tag=False)
    except UsageError as e:
        raise ValueError(f"invalid docker reference {text!r}: {e.message}") from None


class MatchRepoDigestOrExact(_Strict):
    """The default: the signature names the image's tag exactly, or its repository when pulled by digest."""

    type: Literal["matchRepoDigestOrExact"]


class MatchExact(_Strict):
    type: Literal["matchExact"]


class MatchRepository(_Strict):
    type: Literal["matchRepository"]


class ExactReference(_Strict):
    type: Literal["exactReference"]
    dockerReference: str

    @field_validator("dockerReference")
    @classmethod
    def _tagged(cls, value: str) -> str:
        ref = _docker_reference(value)
        if not (ref.tag or ref.digest):
            raise ValueError(f"dockerReference {value} contains neither a tag nor a digest")
        return value


class ExactRepository(_Strict):
    type: Literal["exactRepository"]
    dockerRepository: str

    @field_validator("dockerRepository")
    @classmethod
    def _parses(cls, value: str) -> str:
        _docker_reference(value)
        return value


#: A host[:port], or a repository name with or without its host (containers/image's
#: ``validateIdentityRemappingPrefix``: the domain or the name grammar of docker references).
_PREFIX = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?)"
                     r"(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")


class RemapIdentity(_Strict):
    """For mirrors: an image under ``prefix`` is expected to be signed under ``signedPrefix`` instead."""

    type: Literal["remapIdentity"]
    prefix: str
    signedPrefix: str

    @field_validator("prefix", "signedPrefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(f"prefix {value!r} is not valid")
        return value


SignedIdentity = Annotated[MatchRepoDigestOrExact | MatchExact | MatchRepository | ExactReference | ExactRepository
                           | RemapIdentity, Field(discriminator="type")]


class SignedBy(_Strict):
    """Parsed to the letter so that a typo is an error; ``GPGKeys`` is the one key type containers/image
    implements (the others are refused where they apply, as it refuses them)."""

    type: Literal["signedBy"]
    keyType: Literal["GPGKeys", "signedByGPGKeys", "X509Certificates", "signedByX509CAs"]
    keyPath: str | None = None
    keyPaths: list[str] | None = None
    keyData: str | None = None
    signedIdentity: SignedIdentity = MatchRepoDigestOrExact(type="matchRepoDigestOrExact")

    @model_validator(mode="after")
    def _one_key_source(self) -> SignedBy:
        if sum(x is not None for x in (self.keyPath, self.keyPaths, self.keyData)) != 1:
            raise ValueError("exactly one of keyPath, keyPaths and keyData must be specified")
        if self.keyData is not None:
            try:
                base64.b64decode(self.keyData, validate=True)
            except binascii.Error:
                raise ValueError("keyData must be base64 (the key file's bytes, as JSON writes them)") from None
        return self

    def keys_named(self) -> str:
        """The keys as the policy names them, for messages."""
        if self.keyData is not None:
            return "the policy's keyData"
        return ", ".join(self.keyPaths if self.keyPaths is not None else [str(self.keyPath)])


class SignedBaseLayer(_Strict):
    type: Literal["signedBaseLayer"]
    baseLayerIdentity: dict[str, Any]


class SigstoreSigned(BaseModel):
    """Its many fields are not checked: ferry refuses the requirement wherever it applies."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal["sigstoreSigned"]


Requirement = Annotated[AcceptAnything | Reject | SignedBy | SignedBaseLayer | SigstoreSigned,
                        Field(discriminator="type")]
Requirements = Annotated[list[Requirement], Field(min_length=1)]


class PolicyFile(_Strict):
    default: Requirements
    transports: dict[str, dict[str, Requirements]] = {}

    @field_validator("transports")
    @classmethod
    def _valid_scopes(cls, transports: dict[str, dict[str, Requirements]]) -> dict[str, dict[str, Requirements]]:
        for transport, scopes in transports.items():
            for scope in scopes:
                if scope and (problem := _scope_problem(transport, scope)):
                    raise ValueError(f"transport {transport!r}, scope {scope!r}: {problem}")
        return transports


def _scope_problem(transport: str, scope: str) -> str | None:
    """What containers/image's ``ValidatePolicyConfigurationScope`` refuses (docker takes any scope)."""
    if transport == "docker-archive":
        return 'docker-archive supports no scope but the default ""'
    if transport in ("dir", "oci"):
        if not scope.startswith("/"):
            return "must be an absolute path"
        if scope == "/":
            return 'use the default scope "" instead of "/"'
        if os.path.normpath(scope) != scope:
            return f"non-canonical path, write {os.path.normpath(scope)}"
    return None


@dataclass(frozen=True, slots=True)
class Policy:
    rules: PolicyFile
    origin: str  # the file it came from, or why there is none

    def requirements(self, transport: str, identity: str, namespaces: list[str]) -> tuple[str, Requirements]:
        """The requirements that apply and where they are written (``transports.docker["host/ns"]``)."""
        scopes = self.rules.transports.get(transport)
        if scopes is not None:
            for scope in (identity, *namespaces, ""):
                if scope in scopes:
                    return f"transports.{transport}[{json.dumps(scope)}]", scopes[scope]
        return "default", self.rules.default


ACCEPT_ANYTHING = PolicyFile(default=[AcceptAnything(type="insecureAcceptAnything")])


def load(path: Path | None, insecure: bool = False) -> Policy:
    """The policy a copy obeys, as skopeo picks it: ``--insecure-policy`` accepts anything; else
    ``--policy FILE``; else ``$HOME/.config/containers/policy.json``, then ``/etc/containers/policy.json``.
    Without any of them skopeo refuses to run; ferry accepts anything, as it always has."""
    if insecure:
        return Policy(ACCEPT_ANYTHING, "--insecure-policy")
    path = policy_path(path)
    if path is None:
        return Policy(ACCEPT_ANYTHING, "no policy.json")
    return Policy(parse(path), str(path))


def parse(path: Path) -> PolicyFile:
    doc = read_document(path, fmt=Format.JSON, expected="a containers policy (default, transports)")
    try:
        return PolicyFile.model_validate(doc.data)
    except ValidationError as e:
        first = e.errors()[0]
        where = [x for x in first["loc"] if not _is_tag(x)]
        raise doc.error(f"invalid policy: {first['msg']}", where) from None


_TAGS = {"insecureAcceptAnything", "reject", "signedBy", "signedBaseLayer", "sigstoreSigned",
         "matchRepoDigestOrExact", "matchExact", "matchRepository", "exactReference", "exactRepository",
         "remapIdentity"}


def _is_tag(loc: object) -> bool:
    """pydantic names the union member in an error's location; the user wrote no such key."""
    return isinstance(loc, str) and loc in _TAGS


def policy_identity(ref: ImageRef) -> tuple[str, str, list[str]]:
    """Transport, identity and parent namespaces of a reference, as containers/image's transports give
    them (``PolicyConfigurationIdentity``/``PolicyConfigurationNamespaces``)."""
    if isinstance(ref, RegistryRef):
        name = f"{ref.registry}/{ref.repository}"
        identity = f"{name}@{ref.digest}" if ref.digest else f"{name}:{ref.tag or DEFAULT_TAG}"
        return "docker", identity, docker_namespaces(name)
    if ref.transport == "docker-archive":
        return ref.transport, "", []
    resolved = os.path.realpath(ref.path)
    return ref.transport, resolved, _parent_dirs(resolved)


def docker_namespaces(name: str) -> list[str]:
    """``host:port/a/b`` → ``host:port/a/b``, ``host:port/a``, ``host:port``, then ``*.domain`` for each
    parent domain of the host (port dropped)."""
    out = [name]
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        out.append(name)
    host = name.split(":", 1)[0]
    while "." in host:
        host = host.split(".", 1)[1]
        out.append(f"*.{host}")
    return out


def _parent_dirs(path: str) -> list[str]:
    out = []
    while (parent := os.path.dirname(path)) not in ("/", path):
        out.append(parent)
        path = parent
    return out


def describe(ref: ImageRef) -> str:
    return f"docker://{ref}" if isinstance(ref, RegistryRef) else str(ref)


def scope_of(policy: Policy, ref: ImageRef) -> tuple[str, Requirements]:
    """The requirements for ``ref`` and where the policy writes them."""
    transport, identity, namespaces = policy_identity(ref)
    return policy.requirements(transport, identity, namespaces)


def check(policy: Policy, ref: ImageRef) -> list[SignedBy]:
    """Refuse (exit 3) a source image the policy does not allow, naming the rule and the file; return the
    ``signedBy`` requirements its signatures must meet (:func:`ferry.signed_by.admit` checks them)."""
    where, requirements = scope_of(policy, ref)
    signed: list[SignedBy] = []
    for requirement in requirements:
        if isinstance(requirement, AcceptAnything):
            continue
        if isinstance(requirement, Reject):
            raise AuthError(f"policy rejects {describe(ref)}: {where} in {policy.origin} is reject")
        if isinstance(requirement, SignedBy) and requirement.keyType == "GPGKeys":
            signed.append(requirement)
            continue
        what = requirement.type if not isinstance(requirement, SignedBy) else f"signedBy keyType {requirement.keyType}"
        raise AuthError(
            f"policy rejects {describe(ref)}: policy requirement {what} for {where} in {policy.origin} "
            "is not supported by ferry",
            hint="verify the image with skopeo, or give this scope insecureAcceptAnything, or --insecure-policy")
    return signed


def has_signed_by(policy: Policy) -> bool:
    """Whether any scope of the policy asks for simple signatures (then copies read them)."""
    scopes = [policy.rules.default, *(reqs for t in policy.rules.transports.values() for reqs in t.values())]
    return any(isinstance(r, SignedBy) for reqs in scopes for r in reqs)
