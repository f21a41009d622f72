"""Secrets the configuration migration reads and writes: the ``--robot-secrets`` file of known robot
secrets, and the files new robot secrets and user passwords go to (mode 0600, never overwritten).

Nothing here logs or raises a secret; error messages name the file and the key, never a value.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from pathlib import Path

from ferry.errors import UsageError


def load_robot_secrets(path: str) -> dict[str, str]:
    """``robot$team-a+ci: secret`` pairs from a JSON or YAML mapping (JSON is YAML)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UsageError(f"cannot read the robot secrets file {path}: {e.strerror}") from None
    import yaml  # only when a secrets file is given (~2.6 MB a run otherwise)

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UsageError(f"robot secrets file {path} is neither JSON nor YAML",
                         hint="expected a mapping of robot names (robot$project+name) to secrets") from None
    if not isinstance(data, dict):
        raise UsageError(f"robot secrets file {path} is not a mapping",
                         hint="expected robot$project+name: secret, one per robot")
    for name, value in data.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"robot secrets file {path}: a key is not a robot name")
        if not isinstance(value, str) or not value:
            raise UsageError(f"robot secrets file {path}: the secret of {name!r} is not a non-empty string")
    return dict(data)


def new_secret(length: int = 32) -> str:
    """A random secret Harbor accepts for robots and users (upper, lower and digit, 8-128 characters)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value):
            return value


class SecretSink:
    """A JSON file of ``name → secret``, mode 0600, never written over a file it did not create.

    Rewritten whole after every new entry, so that a run interrupted midway still leaves every secret
    it created at the destination on disk.
    """

    def __init__(self, path: str, flag: str) -> None:
        self.path = Path(path)
        self.flag = flag
        self.entries: dict[str, str] = {}
        self._created = False

    def check(self) -> None:
        """Refuse an existing file before anything is created (it may hold the only copy of secrets)."""
        if self.path.exists():
            raise UsageError(f"{self.path} already exists and is never overwritten",
                             hint=f"move it away or name another file with {self.flag}")

    def add(self, name: str, secret: str) -> None:
        self.entries[name] = secret
        flags = os.O_WRONLY | (os.O_TRUNC if self._created else os.O_CREAT | os.O_EXCL)
        fd = os.open(self.path, flags, 0o600)
        self._created = True
        with os.fdopen(fd, "w") as f:
            json.dump(self.entries, f, indent=2, sort_keys=True)
            f.write("\n")
