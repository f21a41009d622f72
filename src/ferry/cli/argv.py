"""skopeo's command-line booleans as words: a bare ``--tls-verify`` and ``--tls-verify=false`` alike. Apart
from :mod:`ferry.cli.options` (which imports the credential code) so that the glance of
:mod:`ferry.cli.early` reads them as the command does, before anything heavy is imported."""

from __future__ import annotations

from ferry.errors import UsageError

#: skopeo accepts ``--tls-verify`` alone and ``--tls-verify=false``; click flags take no value,
#: so these are string options and a bare flag is rewritten to ``=true`` before parsing.
VALUED_BOOL_FLAGS = ("--tls-verify", "--src-tls-verify", "--dest-tls-verify")


def normalize_argv(argv: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if arg in VALUED_BOOL_FLAGS and nxt.lower() not in ("true", "false"):
            out.append(f"{arg}=true")
        else:
            out.append(arg)
    return out


def parse_bool(value: str, flag: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise UsageError(f"{flag} takes true or false, not {value!r}")
