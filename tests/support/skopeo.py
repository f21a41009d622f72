"""Thin runners around the ``skopeo`` CLI (1.9.x) for seeding and checking registries in tests.

References: a bare ``host:port/repo:tag`` is taken as ``docker://``; other transports
(``oci:DIR:REF``, ``dir:PATH``) pass through. Credentials go through a temporary
``--authfile`` (never on the command line). ``cert_dir`` is a containers ``certs.d``-style dir
(see :meth:`tests.support.pki.CA.write_cert_dir`); giving one implies TLS verification.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "SkopeoError",
    "digest_of",
    "inspect_raw",
    "list_tags",
    "manifest_digest",
    "push_layout",
    "push_schema1",
    "schema1_digest",
    "skopeo",
    "write_authfile",
]

Creds = tuple[str, str] | str | None

_POLICY = json.dumps({"default": [{"type": "insecureAcceptAnything"}]})


class SkopeoError(subprocess.CalledProcessError):
    """skopeo exited non-zero; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        err = self.stderr.decode(errors="replace") if isinstance(self.stderr, bytes) else self.stderr
        return f"{super().__str__()}\n{err}"


def skopeo(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """Run ``skopeo ARGS`` (with a permissive ``--policy``), capturing stdout/stderr as bytes."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="ferry-policy-") as policy:
        policy.write(_POLICY)
        policy.flush()
        cmd = ["skopeo", "--policy", policy.name, *args]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise SkopeoError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return proc


def write_authfile(path: Path, creds: dict[str, tuple[str, str]]) -> Path:
    """Write a containers auth.json: ``{host: (user, password)}``."""
    auths = {host: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for host, (u, p) in creds.items()}
    Path(path).write_text(json.dumps({"auths": auths}))
    return Path(path)


def _prefix(ref: str) -> str:
    return ref if ref.startswith(("docker://", "oci:", "oci-archive:", "dir:")) else "docker://" + ref


def _host(ref: str) -> str:
    return _prefix(ref).removeprefix("docker://").split("/", 1)[0]


@contextlib.contextmanager
def _auth_args(flag: str, ref: str, creds: Creds) -> Iterator[list[str]]:
    """Yield ``[flag, tmpfile]`` for ``creds`` against the host of ``ref`` (``[]`` without creds)."""
    if creds is None:
        yield [flag.replace("authfile", "no-creds")]  # never pick up the user's own auth.json
        return
    user, password = creds.split(":", 1) if isinstance(creds, str) else creds
    with tempfile.TemporaryDirectory(prefix="ferry-auth-") as d:
        yield [flag, str(write_authfile(Path(d) / "auth.json", {_host(ref): (user, password)}))]


def _tls_args(prefix: str, tls_verify: bool, cert_dir: Path | None) -> list[str]:
    args = [f"--{prefix}tls-verify={'true' if tls_verify or cert_dir else 'false'}"]
    if cert_dir is not None:
        args.append(f"--{prefix}cert-dir={cert_dir}")
    return args


def push_layout(
    layout_dir: Path,
    ref_name: str,
    dest: str,
    *,
    creds: Creds = None,
    tls_verify: bool = False,
    cert_dir: Path | None = None,
    all: bool = True,
    preserve_digests: bool = True,
    format: str | None = None,
    transport: str = "dir",
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Copy the image/index tagged ``ref_name`` in an OCI layout to ``dest`` keeping exact bytes.

    ``transport="dir"`` (default) first exports it to a temporary skopeo ``dir:`` copy (blobs
    hard-linked), because skopeo 1.9's ``oci:`` source ignores Docker media types in
    ``index.json``; ``"oci"`` copies from ``oci:LAYOUT:REF`` directly (OCI media types only).
    ``all`` copies every instance of an index; ``format`` (``v2s1``/``v2s2``/``oci``) converts
    and therefore drops ``--preserve-digests``.
    """
    from tests.support.images import Layout  # local: images imports nothing from here

    dest = _prefix(dest)
    args = ["copy"]
    if all:
        args.append("--all")
    if format is not None:
        args.append(f"--format={format}")
    elif preserve_digests:
        args.append("--preserve-digests")
    args += _tls_args("dest-", tls_verify, cert_dir)
    layout_dir = Path(layout_dir)
    with contextlib.ExitStack() as stack:
        auth = stack.enter_context(_auth_args("--dest-authfile", dest, creds))
        if transport == "oci":
            src = f"oci:{layout_dir}:{ref_name}"
        elif transport == "dir":
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix=".skopeo-dir-", dir=layout_dir.parent))
            src = f"dir:{Layout(layout_dir).export_dir(ref_name, Path(tmp) / 'image')}"
        else:
            raise ValueError(f"transport must be 'dir' or 'oci', not {transport!r}")
        return skopeo(*args, *auth, src, dest, check=check)


def push_schema1(
    layout_dir: Path,
    ref_name: str,
    dest: str,
    *,
    creds: Creds = None,
    tls_verify: bool = False,
    cert_dir: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Push a single-platform image from a layout converted to signed Docker schema 1.

    skopeo signs the schema1 manifest with an ephemeral key; the destination registry must be
    started with ``schema1=True``. The digest cannot be predicted: read it back with
    :func:`manifest_digest`.
    """
    return push_layout(
        layout_dir, ref_name, dest, creds=creds, tls_verify=tls_verify, cert_dir=cert_dir, all=False, format="v2s1"
    )


def inspect_raw(
    docker_ref: str, *, creds: Creds = None, tls_verify: bool = False, cert_dir: Path | None = None
) -> bytes:
    """The exact manifest bytes ``skopeo inspect --raw`` reads for ``docker_ref``."""
    ref = _prefix(docker_ref)
    with _auth_args("--authfile", ref, creds) as auth:
        return skopeo("inspect", "--raw", *auth, *_tls_args("", tls_verify, cert_dir), ref).stdout


def manifest_digest(
    docker_ref: str, *, creds: Creds = None, tls_verify: bool = False, cert_dir: Path | None = None
) -> str:
    """The registry's digest of the manifest stored for ``docker_ref`` (like ``skopeo manifest-digest``).

    That is ``sha256`` of the exact bytes, except for signed schema1 (see :func:`schema1_digest`).
    """
    return digest_of(inspect_raw(docker_ref, creds=creds, tls_verify=tls_verify, cert_dir=cert_dir))


def digest_of(raw: bytes) -> str:
    """Manifest digest of ``raw``: ``sha256`` of the bytes, or of the JWS payload for signed schema1."""
    with contextlib.suppress(ValueError, AttributeError):
        m = json.loads(raw)
        if m.get("schemaVersion") == 1 and m.get("signatures"):
            return schema1_digest(raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def schema1_digest(raw: bytes) -> str:
    """Digest of a signed Docker schema1 manifest: ``sha256`` of its payload without signatures.

    The payload is ``raw[:formatLength] + base64url(formatTail)`` from the first signature's
    ``protected`` header. This is what distribution sends as ``Docker-Content-Digest``.
    """
    protected = json.loads(raw)["signatures"][0]["protected"]
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    tail = header["formatTail"]
    payload = raw[: header["formatLength"]] + base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4))
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def list_tags(
    repo_ref: str, *, creds: Creds = None, tls_verify: bool = False, cert_dir: Path | None = None
) -> list[str]:
    """Sorted tags of a repository (``host:port/repo``, no tag)."""
    ref = _prefix(repo_ref)
    with _auth_args("--authfile", ref, creds) as auth:
        out = skopeo("list-tags", *auth, *_tls_args("", tls_verify, cert_dir), ref).stdout
    return sorted(json.loads(out)["Tags"] or [])
