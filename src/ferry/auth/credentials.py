"""Where credentials come from: explicit flags, ``--authfile``, then the standard files and helpers.

Standard files, in containers' order: ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
``~/.config/containers/auth.json``, ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``.
Keys may be a host or ``host/namespace`` (the longest match wins), with or without ``https://``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from ferry.access import Credential
from ferry.errors import AuthError, ConfigError

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def default_auth_files() -> list[Path]:
    files: list[Path] = []
    if env := os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env))
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(runtime) / "containers" / "auth.json")
    files.append(Path.home() / ".config" / "containers" / "auth.json")
    docker_dir = os.environ.get("DOCKER_CONFIG")
    files.append(Path(docker_dir) / "config.json" if docker_dir else Path.home() / ".docker" / "config.json")
    return files


def default_write_file() -> Path:
    """Where ``ferry login`` writes by default (skopeo's choice)."""
    if env := os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(env)
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime) / "containers" / "auth.json"
    return Path.home() / ".config" / "containers" / "auth.json"


def normalize_key(key: str) -> str:
    """``https://host/v1/`` → ``host``; ``host/ns`` stays; docker hub aliases → ``docker.io``."""
    k = key
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix) :]
    k = k.rstrip("/")
    if k.endswith("/v1") or k.endswith("/v2"):
        k = k[:-3]
    return "docker.io" if k in DOCKER_HUB_KEYS else k


def read_auth_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read auth file: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text, not an auth file", hint="fix or remove the file") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})", hint="fix or remove the file") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deeply", hint="fix or remove the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a JSON object")
    return data


def _decode_auth(entry: Any, key: str, path: Path) -> Credential | None:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: auths entry {key!r} must be an object")
    token = entry.get("identitytoken")
    token = token if isinstance(token, str) and token else None
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except ValueError:  # binascii.Error, UnicodeDecodeError, or characters that are not ASCII at all
            raise ConfigError(f"{path}: entry {key!r} has an invalid base64 'auth' value") from None
        if not sep:
            raise ConfigError(f"{path}: entry {key!r}: 'auth' must encode user:password")
        return Credential(user, password, identity_token=token)
    if token:
        return Credential("<token>", "", identity_token=token)
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Credential(entry["username"], entry["password"])
    return None


def _from_helper(helper: str, server: str) -> Credential | None:
    """Ask ``docker-credential-<helper> get``; the server name goes on stdin, the secret comes back on stdout."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", helper):
        raise ConfigError(f"invalid credential helper name {helper!r} for {server}",
                          hint="a helper is named like 'pass' or 'ecr-login' (docker-credential-NAME)")
    try:
        out = subprocess.run([f"docker-credential-{helper}", "get"], input=server.encode(),
                             capture_output=True, timeout=30, check=False)
    except FileNotFoundError:
        raise AuthError(f"credential helper docker-credential-{helper} is not installed",
                        hint="install it or remove it from the auth file") from None
    except subprocess.TimeoutExpired:
        raise AuthError(f"credential helper docker-credential-{helper} did not answer within 30 s") from None
    if out.returncode != 0:
        return None  # "credentials not found in native keychain"
    try:
        data = json.loads(out.stdout)
        return Credential(data["Username"], data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"credential helper docker-credential-{helper} returned an unreadable answer") from None


def lookup_in_file(path: Path, registry: str, repository: str = "") -> Credential | None:
    """The credential for ``registry[/repository]`` in one auth file, longest key first."""
    data = read_auth_file(path)
    helpers = data.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if normalize_key(key) == registry and isinstance(helper, str):
                return _from_helper(helper, key)
    auths = data.get("auths", {})
    if not isinstance(auths, dict):
        raise ConfigError(f"{path}: 'auths' must be an object")
    target = f"{registry}/{repository}" if repository else registry
    best: tuple[int, str, Any] | None = None
    for key, entry in auths.items():
        k = normalize_key(key)
        if (target == k or target.startswith(k + "/")) and (best is None or len(k) > best[0]):
            best = (len(k), key, entry)
    if best is not None:
        cred = _decode_auth(best[2], best[1], path)
        if cred is not None:
            return cred
    store = data.get("credsStore")
    if isinstance(store, str) and store:
        return _from_helper(store, registry)
    return None


def lookup(registry: str, repository: str = "", authfile: str | None = None) -> Credential | None:
    """``--authfile`` when given (and only it, as skopeo), else the standard files in order."""
    files = [Path(authfile)] if authfile else default_auth_files()
    for path in files:
        cred = lookup_in_file(path, registry, repository)
        if cred is not None:
            return cred
    return None


def parse_creds(value: str, *, password_env: str | None = None) -> Credential:
    """``USER[:PASS]``; without ``:PASS`` the password comes from ``password_env`` or a prompt."""
    user, sep, password = value.partition(":")
    if not user:
        raise ConfigError("credentials need a username: USER[:PASSWORD]")
    if not sep:
        password = os.environ.get(password_env, "") if password_env else ""
        if not password:
            import getpass
            import sys

            if not sys.stdin.isatty():
                raise AuthError(f"no password for {user!r}",
                                hint=f"set {password_env} or give USER:PASSWORD" if password_env else None)
            password = getpass.getpass(f"Password for {user}: ")
    return Credential(user, password)


def write_login(path: Path, registry: str, cred: Credential) -> None:
    """Store a credential docker-style (base64 ``auth``), file mode 0600, written atomically."""
    data = read_auth_file(path)
    auths = data.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise ConfigError(f"{path}: 'auths' must be an object")
    token = base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode()
    auths[registry] = {"auth": token}
    _write_private(path, data)


def remove_login(path: Path, registry: str) -> bool:
    data = read_auth_file(path)
    auths = data.get("auths") or {}
    keys = [k for k in auths if normalize_key(k) == registry]
    for k in keys:
        del auths[k]
    if keys:
        _write_private(path, data)
    return bool(keys)


def remove_all(path: Path) -> None:
    data = read_auth_file(path)
    data["auths"] = {}
    _write_private(path, data)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent="\t")
        f.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
