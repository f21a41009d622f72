"""Greetings from a glance at the command line, before typer and the command's modules are imported.

A copy, inspect, list-tags or delete spends most of its start-up importing typer and its own modules
before the command's first line greets its registries (:mod:`ferry.warmup`). :func:`greet` reads the
registries and their TLS flags off the arguments first, with string tests alone, and greets them then.

The glance only ever informs. The command still parses its arguments as always and greets with what
they say; :func:`ferry.warmup.greet` starts one greeting per registry and TLS settings, so when the glance
read them right the command's greeting is the one under way, and when it read them wrong it is a
greeting the command never takes (a greeting sends no credential). Anything the glance is unsure of (an
option before the command that may take a value, more or fewer references than the command takes,
``--max-requests``, help) leaves the greeting to the command.
"""

from __future__ import annotations

from ferry.access import Access, AccessMap
from ferry.cli.argv import parse_bool
from ferry.errors import UsageError
from ferry.refs import TRANSPORTS, ImageRef, RegistryRef, parse_image_ref

#: The commands greeted early, and the flag prefix of each image argument they take, in order.
SIDES = {"copy": ("src-", "dest-"), "inspect": ("",), "list-tags": ("",), "delete": ("",)}
#: Global options that may stand before the command and take no value.
LEADING_FLAGS = frozenset({"--debug", "--insecure-policy"})
#: Arguments after which the command sends no greeting, or nothing at all.
_NO_GREETING = frozenset({"--max-requests", "--help", "-h", "--"})


def greet(args: list[str]) -> None:
    """Greet the registries ``args`` (the command line after ``ferry``, as :func:`ferry.cli.argv.normalize_argv`
    gives it) name, when they plainly do."""
    at = 0
    while at < len(args) and args[at] in LEADING_FLAGS:
        at += 1
    prefixes = SIDES.get(args[at]) if at < len(args) else None
    rest = args[at + 1:]
    if prefixes is None or any(arg.partition("=")[0] in _NO_GREETING for arg in rest):
        return
    texts = [arg for arg in rest if arg.partition(":")[0] in TRANSPORTS]
    if len(texts) != len(prefixes):
        return
    amap = AccessMap()
    refs: list[ImageRef] = []
    for text, prefix in zip(texts, prefixes, strict=True):
        flag = f"--{prefix}tls-verify"
        value = _value(rest, flag)
        try:
            verify = True if value is None else parse_bool(value, flag)
            ref = parse_image_ref(text)
        except UsageError:
            return
        refs.append(ref)
        if isinstance(ref, RegistryRef):
            amap.add(ref, Access(tls_verify=verify, cert_dir=_value(rest, f"--{prefix}cert-dir")))
    from ferry import warmup

    warmup.greet_refs(amap, refs)


def _value(args: list[str], flag: str) -> str | None:
    """The last value ``flag`` is given, as ``--flag=V`` or ``--flag V``."""
    value = None
    for i, arg in enumerate(args):
        if arg.startswith(f"{flag}="):
            value = arg[len(flag) + 1:]
        elif arg == flag and i + 1 < len(args):
            value = args[i + 1]
    return value
