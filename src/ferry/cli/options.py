"""Option values shared by commands: skopeo-style booleans and durations, global options after the
command, credentials and access per side."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ferry.access import AccessMap
from ferry.auth.side import Side
from ferry.cli.argv import parse_bool
from ferry.errors import UsageError
from ferry.refs import ImageRef, RegistryRef

if TYPE_CHECKING:
    from ferry.ratelimit import RateLimits

def _valued_options(params: Sequence[Any]) -> tuple[set[str], set[str]]:
    """Option strings of a click command that take a value, and those that do not."""
    valued: set[str] = set()
    flags: set[str] = set()
    for param in params:
        if getattr(param, "param_type_name", "") != "option" or getattr(param, "is_eager", False):
            continue  # arguments; --help and --version keep their place
        names = [*param.opts, *getattr(param, "secondary_opts", [])]
        (flags if param.is_flag or getattr(param, "count", False) else valued).update(names)
    return valued, flags


def command_index(args: Sequence[str], group: Any) -> int | None:
    """Where the command name is in ``args``: the first word that is no global option nor its value."""
    valued, _ = _valued_options(group.params)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return i + 1 if i + 1 < len(args) else None
        if not arg.startswith("-"):
            return i
        i += 2 if arg in valued else 1
    return None


def hoist_global_options(args: list[str], group: Any) -> list[str]:
    """skopeo takes its global options after the command too (``skopeo copy --debug …``); click only
    before it. Those that follow the command are moved in front of it, with their values; a value
    of one of the command's own options is never mistaken for one (``--src-creds --debug`` stays)."""
    at = command_index(args, group)
    if at is None:
        return args
    global_valued, global_flags = _valued_options(group.params)
    command = group.commands.get(args[at]) if hasattr(group, "commands") else None
    own_valued, _ = _valued_options(command.params) if command is not None else (set(), set())
    moved: list[str] = []
    rest: list[str] = []
    i = at + 1
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in global_flags or (name in global_valued and "=" in arg):
            moved.append(arg)
        elif arg in global_valued:
            moved.extend(args[i:i + 2])
            i += 1
        elif arg in own_valued:
            rest.extend(args[i:i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return [*args[:at], *moved, args[at], *rest]


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, flag: str) -> float:
    """Seconds in a Go duration (``1m30s``, ``1.5h``, ``300ms``, ``0``), the syntax of skopeo's
    ``--command-timeout``. A hand-written dozen lines: no library reads Go's syntax exactly."""
    body = text.strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-")
    if body == "0":
        return 0.0
    parts = _DURATION_PART.findall(body)
    if not body or "".join(number + unit for number, unit in parts) != body:
        raise UsageError(f"{flag} {text!r} is not a duration", hint="for example 90s, 1m30s, 2h or 500ms")
    return sign * sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


_RATE = re.compile(r"((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(i?))?(b|bytes?)?(/s)?", re.IGNORECASE)
_PREFIX_POWER = {"k": 1, "m": 2, "g": 3, "t": 4}


def parse_rate(text: str, flag: str, *, unit: str = "B") -> float:
    """A positive rate: ``200M``, ``1.5G``, ``500k``, ``2MiB/s``, ``1.2 MB`` (as rich.filesize prints) bytes a
    second; k, M, G, T are powers of 1000, Ki … Ti of 1024. With ``unit=""`` a plain number (requests a second)."""
    m = _RATE.fullmatch(text.strip())
    if m is not None and unit and m.group(4) == "b":
        raise UsageError(f"{flag} {text!r}: b is bits; ferry counts bytes", hint="write B or nothing, e.g. 25M")
    if m is None or (not unit and (m.group(2) or m.group(4))):
        example = "for example 200M, 1.5G, 500k or 64MiB" if unit else "for example 20 or 0.5"
        raise UsageError(f"{flag} {text!r} is not a rate", hint=example)
    prefix, binary = (m.group(2) or "").lower(), bool(m.group(3))
    value = float(m.group(1).replace(",", "")) * ((1024 if binary else 1000) ** _PREFIX_POWER[prefix] if prefix else 1)
    if not 0 < value < math.inf:
        raise UsageError(f"{flag} {text!r} is out of range", hint="more than 0; leave it out for no limit")
    return value


def rate_limits(max_bandwidth: str | None, max_requests: str | None, *, pace_uploads: bool = False) -> RateLimits:
    """The run's limits from ``--max-bandwidth`` and ``--max-requests``."""
    from ferry.ratelimit import RateLimits  # asyncio: after the registries are greeted (see greet)

    return RateLimits(
        bandwidth=parse_rate(max_bandwidth, "--max-bandwidth") if max_bandwidth is not None else None,
        requests=parse_rate(max_requests, "--max-requests", unit="") if max_requests is not None else None,
        pace_uploads=pace_uploads,
    )


def warn_argv_password(flag: str) -> None:
    print(f"ferry: warning: a password in {flag} is visible to other users in the process list; "
          "prefer an auth file (ferry login --password-stdin) or the password environment variable",
          file=sys.stderr)


def side(creds: str | None, tls_verify: str, cert_dir: str | None, authfile: str | None, prefix: str = "") -> Side:
    """The :class:`Side` one command line gives: ``prefix`` is ``src-``, ``dest-`` or ``""`` (one registry)."""
    if creds and ":" in creds:
        warn_argv_password(f"--{prefix}creds")
    password_env = {"src-": "FERRY_SRC_PASSWORD", "dest-": "FERRY_DEST_PASSWORD"}.get(prefix)
    return Side(creds, parse_bool(tls_verify, f"--{prefix}tls-verify"), cert_dir, authfile, prefix, password_env)


def greet(amap: AccessMap, max_requests: str | None, refs: Iterable[ImageRef]) -> None:
    """Start each registry's first exchange now, while the rest of the command is imported
    (:mod:`ferry.warmup`; once per registry, with the TLS settings of its first reference); not under
    ``--max-requests``, whose budget every request must draw on."""
    if max_requests is not None:
        return
    from ferry import warmup

    warmup.greet_refs(amap, refs)


def access_map(*pairs: tuple[ImageRef, Side]) -> AccessMap:
    """Access for the registries named on the command line, by repository."""
    amap = AccessMap()
    for ref, one_side in pairs:
        if isinstance(ref, RegistryRef):
            amap.add(ref, one_side.access(ref.registry, ref.repository))
    return amap
