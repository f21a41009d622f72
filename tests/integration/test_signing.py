"""``ferry standalone-sign`` / ``standalone-verify`` against skopeo's: a signature made by one verifies
with the other; a wrong key, manifest or reference, or something that is not a signature, fails with
one line and exit 1. Keys are made here with ``gpg --batch`` in a keyring of the test's own."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.gpg import PASSPHRASE, Keyring, make_keyring
from tests.support.registry import start_registry
from tests.support.skopeo import inspect_raw, push_schema1, schema1_digest

pytestmark = pytest.mark.integration

REFERENCE = "registry.example:5000/proj/app:v1"


@pytest.fixture(scope="module")
def keyring() -> Iterator[Keyring]:
    with make_keyring() as made:
        yield made


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    layout = im.Layout(tmp_path / "layout")
    digest = im.docker_schema2_image(layout, "v1", seed=16)
    path = tmp_path / "manifest.json"
    path.write_bytes(layout.manifest_bytes(digest))
    return path


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_failure(r: FerryResult, code: int, *words: str) -> None:
    assert r.returncode == code, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferry: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == b""
    for word in words:
        assert word in lines[0], r.stderr


def test_ferry_signature_verifies_with_skopeo(tmp_path: Path, keyring: Keyring, manifest: Path) -> None:
    cli = FerryCLI(tmp_path / "cli", env=keyring.env)
    sig = tmp_path / "ferry.sig"
    r = cli.run("standalone-sign", str(manifest), REFERENCE, keyring.fingerprint, "-o", str(sig))
    assert r.returncode == 0 and r.stderr == "", r
    checked = keyring.skopeo("standalone-verify", str(manifest), REFERENCE, keyring.fingerprint, str(sig))
    assert checked.returncode == 0, checked.stderr
    assert _digest(manifest) in checked.stdout  # skopeo 1.9: "Signature verified, digest …"
    r = cli.run("standalone-verify", str(manifest), REFERENCE, keyring.fingerprint, str(sig))
    assert r.returncode == 0, r
    assert r.out == f"Signature verified using fingerprint {keyring.fingerprint}, digest {_digest(manifest)}\n"


def test_skopeo_signature_verifies_with_ferry(tmp_path: Path, keyring: Keyring, manifest: Path) -> None:
    sig = tmp_path / "skopeo.sig"
    made = keyring.skopeo("standalone-sign", "--passphrase-file", str(keyring.passphrase_file), str(manifest),
                          REFERENCE, keyring.protected, "-o", str(sig))
    assert made.returncode == 0, made.stderr
    cli = FerryCLI(tmp_path / "cli", env=keyring.env)
    r = cli.run("standalone-verify", str(manifest), REFERENCE, f"{keyring.fingerprint},{keyring.protected}", str(sig))
    assert r.returncode == 0, r
    assert r.out == f"Signature verified using fingerprint {keyring.protected}, digest {_digest(manifest)}\n"
    # docker.io names normalise as containers/image does: the signature's reference is compared normalised
    made = keyring.skopeo("standalone-sign", str(manifest), "busybox:1", keyring.fingerprint, "-o", str(sig))
    assert made.returncode == 0, made.stderr
    r = cli.run("standalone-verify", str(manifest), "docker.io/library/busybox:1", keyring.fingerprint, str(sig))
    assert r.returncode == 0, r


def test_passphrase_comes_from_the_file_and_a_wrong_one_is_refused(tmp_path: Path, keyring: Keyring,
                                                                   manifest: Path) -> None:
    cli = FerryCLI(tmp_path / "cli", env=keyring.env)
    sig = tmp_path / "protected.sig"
    r = cli.run("standalone-sign", "--passphrase-file", str(keyring.passphrase_file), str(manifest), REFERENCE,
                keyring.protected, "-o", str(sig))
    assert r.returncode == 0, r
    checked = keyring.skopeo("standalone-verify", str(manifest), REFERENCE, keyring.protected, str(sig))
    assert checked.returncode == 0, checked.stderr

    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    subprocess.run(["gpgconf", "--homedir", str(keyring.home), "--kill", "gpg-agent"], check=False)  # no cache
    r = cli.run("standalone-sign", "--passphrase-file", str(wrong), str(manifest), REFERENCE, keyring.protected,
                "-o", str(tmp_path / "never.sig"))
    _one_line_failure(r, 3, "passphrase", keyring.protected)
    assert not (tmp_path / "never.sig").exists()
    assert PASSPHRASE not in r.stderr and "not the passphrase" not in r.stderr


def test_signed_schema1_digest_excludes_its_jws_signatures(tmp_path: Path, keyring: Keyring) -> None:
    layout = im.Layout(tmp_path / "layout")
    im.docker_schema2_image(layout, "v1", seed=17)
    with start_registry(tmp_path / "s1", schema1=True) as reg:
        push_schema1(layout.path, "v1", reg.ref("old/app:v1"))
        raw = inspect_raw(reg.ref("old/app:v1"))
    manifest = tmp_path / "schema1.json"
    manifest.write_bytes(raw)
    assert schema1_digest(raw) != _digest(manifest)
    cli = FerryCLI(tmp_path / "cli", env=keyring.env)
    sig = tmp_path / "s1.sig"
    assert cli.run("standalone-sign", str(manifest), REFERENCE, keyring.fingerprint, "-o", str(sig)).returncode == 0
    checked = keyring.skopeo("standalone-verify", str(manifest), REFERENCE, keyring.fingerprint, str(sig))
    assert checked.returncode == 0 and schema1_digest(raw) in checked.stdout, checked


@pytest.mark.parametrize("change", ["wrong-fingerprint", "changed-manifest", "other-reference", "not-a-signature"])
def test_a_signature_that_does_not_match_fails_with_one_line(tmp_path: Path, keyring: Keyring, manifest: Path,
                                                             change: str) -> None:
    sig = tmp_path / "skopeo.sig"
    made = keyring.skopeo("standalone-sign", str(manifest), REFERENCE, keyring.fingerprint, "-o", str(sig))
    assert made.returncode == 0, made.stderr
    fingerprint, reference, words = keyring.fingerprint, REFERENCE, [keyring.fingerprint]
    if change == "wrong-fingerprint":
        fingerprint, words = keyring.protected, ["not accepted", keyring.fingerprint]
    elif change == "changed-manifest":
        manifest.write_bytes(manifest.read_bytes() + b"\n")  # same JSON, other bytes, other digest
        words = ["does not match the manifest", _digest(manifest)]
    elif change == "other-reference":
        reference, words = "registry.example:5000/proj/app:v2", ["proj/app:v1", "proj/app:v2"]
    else:
        sig.write_bytes(manifest.read_bytes())
        words = ["not an OpenPGP signed message"]
    skopeo_says = keyring.skopeo("standalone-verify", str(manifest), reference, fingerprint, str(sig))
    assert skopeo_says.returncode != 0  # both tools refuse the same signatures
    r = FerryCLI(tmp_path / "cli", env=keyring.env).run("standalone-verify", str(manifest), reference, fingerprint,
                                                        str(sig))
    _one_line_failure(r, 1, *words)


def test_a_public_key_file_replaces_the_keyring(tmp_path: Path, keyring: Keyring, manifest: Path) -> None:
    sig = tmp_path / "skopeo.sig"
    made = keyring.skopeo("standalone-sign", str(manifest), REFERENCE, keyring.fingerprint, "-o", str(sig))
    assert made.returncode == 0, made.stderr
    public = keyring.export(keyring.fingerprint, tmp_path / "public.gpg")
    empty = Path(tempfile.mkdtemp(prefix="fe-", dir="/tmp"))  # a keyring without the key: the file must do
    empty.chmod(0o700)
    try:
        cli = FerryCLI(tmp_path / "cli", env={"GNUPGHOME": str(empty)})
        args = [str(manifest), REFERENCE, "any", str(sig)]
        r = cli.run("standalone-verify", "--public-key-file", str(public), *args)
        assert r.returncode == 0, r
        assert r.out == f"Signature verified using fingerprint {keyring.fingerprint}, digest {_digest(manifest)}\n"
        _one_line_failure(cli.run("standalone-verify", *args), 2, "any", "public key file")
        r = cli.run("standalone-verify", str(manifest), REFERENCE, keyring.fingerprint, str(sig))
        _one_line_failure(r, 1, "public key is not in the keyring")
    finally:
        shutil.rmtree(empty, ignore_errors=True)
