"""skopeo's ``standalone-sign`` and ``standalone-verify``: simple signing with local files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from ferry import signing
from ferry.cli.app import app
from ferry.errors import UsageError


@contextmanager
def _file(path: Path, doing: str) -> Iterator[None]:
    """A file that cannot be read or written is bad input: one line naming it."""
    try:
        yield
    except OSError as e:
        raise UsageError(f"{path}: cannot {doing}: {e.strerror}") from None


def _read(path: Path, what: str) -> bytes:
    with _file(path, f"read the {what}"):
        return path.read_bytes()


@app.command("standalone-sign")
def standalone_sign(
    manifest: Path = typer.Argument(..., metavar="MANIFEST"),
    docker_reference: str = typer.Argument(..., metavar="DOCKER-REFERENCE"),
    fingerprint: str = typer.Argument(..., metavar="KEY-FINGERPRINT"),
    output: Path = typer.Option(..., "--output", "-o", metavar="SIGNATURE", help="Write the signature here."),
    passphrase_file: Path | None = typer.Option(None, "--passphrase-file",
                                                help="File whose first line is the key's passphrase."),
) -> None:
    """Sign a manifest file for a docker reference with a GPG key (containers' simple signing)."""
    passphrase = signing.read_passphrase_file(passphrase_file)
    signature = signing.sign(_read(manifest, "manifest"), docker_reference, fingerprint, passphrase)
    with _file(output, "write the signature"):
        output.write_bytes(signature)


@app.command("standalone-verify")
def standalone_verify(
    manifest: Path = typer.Argument(..., metavar="MANIFEST"),
    docker_reference: str = typer.Argument(..., metavar="DOCKER-REFERENCE"),
    fingerprints: str = typer.Argument(..., metavar="KEY-FINGERPRINTS",
                                       help='Comma-separated fingerprints, or "any" with --public-key-file.'),
    signature: Path = typer.Argument(..., metavar="SIGNATURE"),
    public_key_file: Path | None = typer.Option(None, "--public-key-file",
                                                help="Trust the keys in this file instead of the GPG keyring."),
) -> None:
    """Verify a simple signing signature of a manifest file; exit 1 when it does not verify."""
    manifest_bytes, signature_bytes = _read(manifest, "manifest"), _read(signature, "signature")
    public_keys = _read(public_key_file, "public key file") if public_key_file is not None else None
    verified = signing.verify(signature_bytes, manifest_bytes, docker_reference, fingerprints.split(","),
                              public_keys=public_keys)
    print(f"Signature verified using fingerprint {verified.fingerprint}, digest {verified.manifest_digest}")
