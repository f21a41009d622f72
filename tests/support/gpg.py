"""GPG keys made for a test with ``gpg --batch``, in a keyring of the test's own (``GNUPGHOME``), and
skopeo run against that keyring (it signs and verifies through gpgme, which reads ``GNUPGHOME``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class Keyring:
    home: Path
    fingerprint: str  # a key without passphrase
    protected: str  # a key whose passphrase is in passphrase_file
    passphrase_file: Path

    @property
    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}

    def skopeo(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["skopeo", *args], env={"PATH": "/usr/bin:/bin", "GNUPGHOME": str(self.home),
                                                      "HOME": str(self.home), **(env or {})},
                              capture_output=True, text=True, check=False, timeout=120)

    def export(self, fingerprint: str, path: Path) -> Path:
        """Write the public key ``fingerprint`` to ``path`` (binary, as ``gpg --export`` gives it)."""
        path.write_bytes(subprocess.run(["gpg", "--homedir", str(self.home), "--export", fingerprint],
                                        check=True, capture_output=True).stdout)
        return path


def _gen_key(home: Path, uid: str, *passphrase_args: str) -> str:
    subprocess.run(["gpg", "--homedir", str(home), "--batch", *passphrase_args, "--quick-gen-key", uid,
                    "ed25519", "sign", "never"], check=True, capture_output=True, timeout=60)
    listing = subprocess.run(["gpg", "--homedir", str(home), "--with-colons", "--list-secret-keys", uid],
                             check=True, capture_output=True, text=True).stdout
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


@contextmanager
def make_keyring() -> Iterator[Keyring]:
    """Two signing keys, one with a passphrase; the agent and the directory are gone afterwards."""
    # a short path: gpg-agent's socket lives in the home directory and socket paths are short
    home = Path(tempfile.mkdtemp(prefix="fg-", dir="/tmp"))
    home.chmod(0o700)
    passphrase_file = home / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    try:
        plain = _gen_key(home, "Ferry Test <plain@example.invalid>", "--passphrase", "")
        protected = _gen_key(home, "Ferry Test <protected@example.invalid>", "--pinentry-mode", "loopback",
                             "--passphrase-file", str(passphrase_file))
        yield Keyring(home, plain, protected, passphrase_file)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
