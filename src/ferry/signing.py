"""containers' simple signing ("atomic container signature"), through the system's ``gpg``.

A signature is an OpenPGP message (binary, not detached) whose content is the JSON claim
``{"critical": {"type", "image": {"docker-manifest-digest"}, "identity": {"docker-reference"}},
"optional": {"creator", "timestamp"}}`` — containers/image's ``signature/simple.go``, which skopeo's
``standalone-sign``/``standalone-verify`` use, so signatures travel both ways between the two tools.
``gpg`` uses the user's keyring (``GNUPGHOME`` or ``~/.gnupg``) as gpgme does for skopeo; only a
``--public-key-file`` gets a temporary keyring of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from ferry import __version__
from ferry.errors import AuthError, FerryError, UsageError
from ferry.media import manifest_digest
from ferry.refs import parse_docker_ref

SIGNATURE_TYPE = "atomic container signature"


class VerificationError(FerryError):
    """A signature that does not verify: bad OpenPGP data, a key not accepted, another manifest or
    reference. Exit code 1, as for any verification that found a difference."""

    exit_code = 1


class UnknownKeyError(VerificationError):
    """A good-looking signature by a key the keyring does not hold."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"signature by key {key} cannot be verified: its public key is not in the keyring")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Image(_Strict):
    docker_manifest_digest: StrictStr = Field(alias="docker-manifest-digest")


class _Identity(_Strict):
    docker_reference: StrictStr = Field(alias="docker-reference")


class _Critical(_Strict):
    type: StrictStr
    image: _Image
    identity: _Identity


class _Optional(BaseModel):
    """Unknown optional fields are ignored, as containers/image ignores them."""

    creator: StrictStr | None = None
    timestamp: StrictInt | None = None


class _Claim(_Strict):
    critical: _Critical
    optional: _Optional


@dataclass(frozen=True, slots=True)
class Verified:
    """What a verified signature says, and the key fingerprint that vouched for it."""

    fingerprint: str
    manifest_digest: str
    docker_reference: str


def normalized_reference(text: str) -> str:
    """A docker reference as containers/image's ``ParseNormalizedNamed`` prints it (no tag added)."""
    try:
        return str(parse_docker_ref(text, default_tag=False))
    except UsageError as e:
        raise UsageError(f"invalid docker reference {text!r}: {e.message}") from None


def claim(manifest: bytes, docker_reference: str) -> bytes:
    """The JSON a signature signs: compact, keys sorted, as Go's ``json.Marshal`` of maps writes it."""
    body = {
        "critical": {
            "type": SIGNATURE_TYPE,
            "image": {"docker-manifest-digest": manifest_digest(manifest)},
            "identity": {"docker-reference": docker_reference},
        },
        "optional": {"creator": f"ferry {__version__}", "timestamp": int(time.time())},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(manifest: bytes, docker_reference: str, fingerprint: str, passphrase: str | None = None) -> bytes:
    """Sign ``manifest`` as ``docker_reference`` with the secret key ``fingerprint`` of the user's keyring."""
    normalized_reference(docker_reference)  # an unparsable reference would make a signature nobody verifies
    if passphrase is not None and "\n" in passphrase:
        raise UsageError("invalid passphrase: must not contain a line break")
    args = ["--local-user", fingerprint, "--sign"]
    result = _gpg(args, claim(manifest, docker_reference), passphrase=passphrase)
    status = _status(result.stderr)
    if result.returncode != 0 or not result.stdout:
        if "INV_SGNR" in status or "NO_SGNR" in status:
            raise UsageError(f"no usable secret key {fingerprint} in the GPG keyring",
                             hint="give the fingerprint of a key listed by gpg --list-secret-keys")
        if "BAD_PASSPHRASE" in status or _failure_code(status) == "11":
            raise AuthError(f"GPG refused the passphrase for key {fingerprint}", hint="check --passphrase-file")
        raise FerryError(f"gpg could not sign: {_last_message(result.stderr)}")
    return result.stdout


def verify(signature: bytes, manifest: bytes, docker_reference: str, fingerprints: list[str],
           *, public_keys: bytes | None = None) -> Verified:
    """Check that ``signature`` is by one of ``fingerprints`` and claims ``manifest`` as ``docker_reference``
    (containers/image's ``VerifyImageManifestSignatureUsingKeyIdentityList``). ``public_keys`` (an
    exported keyring) replaces the user's keyring; then ``["any"]`` accepts each key it holds."""
    expected_ref = normalized_reference(docker_reference)
    if public_keys is None:
        if fingerprints == ["any"]:
            raise UsageError("Cannot use any fingerprint without a public key file")
        verified = open_signature(signature, fingerprints)
    else:
        with Keyring([public_keys]) as keyring:
            verified = keyring.open(signature, None if fingerprints == ["any"] else fingerprints)
    check_digest(verified, manifest)
    signed_ref = verified.docker_reference
    try:
        normalized_signed = normalized_reference(signed_ref)
    except UsageError:
        raise VerificationError(f"invalid docker reference {signed_ref!r} in the signature") from None
    if normalized_signed != expected_ref:
        raise VerificationError(f"signature is for docker reference {signed_ref!r}, not {docker_reference!r}")
    return verified


def open_signature(signature: bytes, fingerprints: list[str], *, home: str | None = None) -> Verified:
    """The claim of a signature that gpg verifies (in the keyring ``home``, else the user's) and that is
    by one of ``fingerprints``. Its digest and reference are the caller's to check."""
    result = _gpg(["--output", "-", "--verify"], signature, home=home)
    signer, primary = _valid_signer(_status(result.stderr))
    accepted = {f.upper() for f in fingerprints}
    if signer in accepted:
        matched = signer
    elif primary in accepted:
        matched = primary
    else:
        raise VerificationError(f"signature by key {signer} is not accepted",
                                hint=f"expected {', '.join(fingerprints) or 'no key'}")
    body = _parse_claim(result.stdout)
    return Verified(matched, body.critical.image.docker_manifest_digest, body.critical.identity.docker_reference)


def check_digest(verified: Verified, manifest: bytes) -> None:
    """The signed digest must be that of ``manifest`` (the bytes read, not a digest someone announced)."""
    if verified.manifest_digest != manifest_digest(manifest):
        raise VerificationError(f"signature for docker digest {verified.manifest_digest} does not match the "
                                f"manifest (its digest is {manifest_digest(manifest)})")


def _parse_claim(content: bytes) -> _Claim:
    try:
        data = json.loads(content, object_pairs_hook=_unique_keys)
        body = _Claim.model_validate(data)
    except (ValueError, ValidationError) as e:
        detail = e.errors()[0] if isinstance(e, ValidationError) else None
        where = ".".join(str(x) for x in detail["loc"]) + ": " + detail["msg"] if detail else str(e)
        raise VerificationError(f"the signed content is not a simple-signing claim ({where})") from None
    if body.critical.type != SIGNATURE_TYPE:
        raise VerificationError(f"unrecognized signature type {body.critical.type!r}")
    return body


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """containers/image refuses a claim with a key twice: which one would count is ambiguous."""
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("a key appears twice")
    return data


def _valid_signer(status: dict[str, list[list[str]]]) -> tuple[str, str]:
    """The signing key's and its primary key's fingerprints from gpg's status lines, when there is exactly
    one good signature (what gpgme's verification result means to containers/image)."""
    if "NEWSIG" not in status:
        raise VerificationError("not an OpenPGP signed message")
    if len(status["NEWSIG"]) != 1:
        raise VerificationError(f"unexpected GPG signature count {len(status['NEWSIG'])}")
    if "ERRSIG" in status:
        key = status["ERRSIG"][0][0] if status["ERRSIG"][0] else "?"
        if "NO_PUBKEY" in status:
            raise UnknownKeyError(key)
        raise VerificationError(f"signature by key {key} cannot be verified: gpg cannot check it")
    for word, why in (("BADSIG", "the signed content was altered"), ("EXPKEYSIG", "the signing key has expired"),
                      ("REVKEYSIG", "the signing key was revoked"), ("EXPSIG", "the signature has expired")):
        if word in status:
            raise VerificationError(f"invalid GPG signature: {why}")
    valid = status.get("VALIDSIG")
    if "GOODSIG" not in status or not valid or not valid[0]:
        raise VerificationError("invalid GPG signature")
    fields = valid[0]
    signer = fields[0].upper()
    primary = fields[9].upper() if len(fields) > 9 else signer
    return signer, primary


def _status(stderr: bytes) -> dict[str, list[list[str]]]:
    """gpg's ``--status-fd`` lines (``[GNUPG:] KEYWORD args…``) by keyword."""
    out: dict[str, list[list[str]]] = {}
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith("[GNUPG:] "):
            keyword, *args = line[len("[GNUPG:] "):].split()
            out.setdefault(keyword, []).append(args)
    return out


def _failure_code(status: dict[str, list[list[str]]]) -> str | None:
    """gpg's error code in ``FAILURE sign <code>`` (the low 16 bits name the error; 11 = bad passphrase)."""
    for args in status.get("FAILURE", []) + status.get("ERROR", []):
        if len(args) >= 2 and args[-1].isdigit():
            return str(int(args[-1]) & 0xFFFF)
    return None


def _last_message(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln and not ln.startswith("[GNUPG:]")]
    return lines[-1].removeprefix("gpg: ") if lines else "no message"


def _gpg(args: list[str], data: bytes, *, home: str | None = None, passphrase: str | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    """Run gpg on ``data``; status lines on stderr. A passphrase goes through a pipe, never argv."""
    binary = shutil.which("gpg")
    if binary is None:
        raise UsageError("gpg not found on PATH", hint="install GnuPG (Debian: apt-get install gpg)")
    cmd = [binary, "--batch", "--no-tty", "--status-fd", "2"]
    if home is not None:
        cmd += ["--homedir", home]
    pass_fds: tuple[int, ...] = ()
    read_end = None
    if passphrase:
        read_end, write_end = os.pipe()
        os.write(write_end, passphrase.encode() + b"\n")  # far below a pipe's buffer: never blocks
        os.close(write_end)
        cmd += ["--pinentry-mode", "loopback", "--passphrase-fd", str(read_end)]
        pass_fds = (read_end,)
    try:
        return subprocess.run(cmd + args, input=data, capture_output=True, pass_fds=pass_fds, check=False)
    finally:
        if read_end is not None:
            os.close(read_end)


class Keyring:
    """A temporary GPG home holding only the given public keys, and those keys' fingerprints: what
    containers/image's ephemeral mechanism is for a ``--public-key-file`` or a policy's ``signedBy``."""

    def __init__(self, public_keys: list[bytes]) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ferry-gpg-")
        self.home = self._dir.name
        self._lock = threading.Lock()  # one gpg at a time in this home (callers run it in worker threads)
        fingerprints: set[str] = set()
        try:
            for blob in public_keys:
                result = _gpg(["--import"], blob, home=self.home)
                imported = [args[1].upper() for args in _status(result.stderr).get("IMPORT_OK", []) if len(args) > 1]
                if result.returncode != 0 and not imported:
                    raise UsageError(f"the public key file holds no usable key: {_last_message(result.stderr)}")
                fingerprints.update(imported)
        except BaseException:
            self.close()
            raise
        self.fingerprints = sorted(fingerprints)

    def open(self, signature: bytes, fingerprints: list[str] | None = None) -> Verified:
        """:func:`open_signature` in this keyring; by default every key it holds is accepted."""
        with self._lock:
            return open_signature(signature, self.fingerprints if fingerprints is None else fingerprints,
                                  home=self.home)

    def close(self) -> None:
        if gpgconf := shutil.which("gpgconf"):  # an agent started for this keyring would outlive it
            subprocess.run([gpgconf, "--homedir", self.home, "--kill", "all"], capture_output=True, check=False)
        self._dir.cleanup()

    def __enter__(self) -> Keyring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_passphrase_file(path: Path | None) -> str | None:
    """The first line of a passphrase file, as skopeo's ``--passphrase-file`` reads it."""
    if path is None:
        return None
    try:
        with path.open("rb") as f:
            line = f.readline()
    except OSError as e:
        raise UsageError(f"{path}: cannot read the passphrase file: {e.strerror}") from None
    return line.decode().removesuffix("\n")
