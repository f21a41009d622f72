"""The rules a ``ferry sync`` command line names, with their access settings: files read, nothing sent
(no aiohttp here, so that the command can greet its registries before importing the engine)."""

from __future__ import annotations

import os
from pathlib import Path

from ferry.access import AccessMap
from ferry.auth.side import Side
from ferry.errors import UsageError
from ferry.plan import skopeo_sync
from ferry.plan.model import Rule
from ferry.refs import RegistryRef, parse_repository


def image_syncer_rules(config: str | None, auth: str | None, images: str | None, registry: str | None,
                       namespace: str | None) -> tuple[list[Rule], AccessMap]:
    """image-syncer's ``--config``, or ``--images`` and ``--auth`` (default ``images.json``/``auth.json``)."""
    from ferry.plan import imagesyncer  # read only for image-syncer's files

    registry = registry or os.environ.get("DEFAULT_REGISTRY") or None
    namespace = namespace or os.environ.get("DEFAULT_NAMESPACE") or None
    if config:
        return imagesyncer.load_config(config, default_registry=registry, default_namespace=namespace)
    images = images or "images.json"
    if not Path(images).exists():
        raise UsageError(f"{images}: no such file", hint="give --images FILE (and --auth FILE), or --config FILE")
    rules = imagesyncer.load_images(images, default_registry=registry, default_namespace=namespace)
    auth = auth or ("auth.json" if Path("auth.json").exists() else None)
    return rules, (imagesyncer.load_auth(auth) if auth else AccessMap())


def skopeo_rules(src: str, dest: str, source: str, destination: str, naming: skopeo_sync.DestNaming,
                 src_side: Side, dst_side: Side, append_suffix: str) -> tuple[list[Rule], AccessMap]:
    """skopeo sync's ``--src docker|yaml --dest docker SOURCE DESTINATION``."""
    if dest != "docker":
        raise UsageError(f"--dest {dest!r} is not supported", hint="ferry sync writes to registries: --dest docker")
    dest_ref = parse_repository(destination) if "/" in destination else RegistryRef(destination, "")
    if src == "yaml":
        base_access = src_side.access("") if src_side.creds is None else None
        rules, amap = skopeo_sync.rules_from_skopeo_yaml(source, destination, naming=naming,
                                                        append_suffix=append_suffix, base=base_access)
    elif src == "docker":
        rules = skopeo_sync.rules_from_docker_source(source, destination, naming=naming,
                                                     append_suffix=append_suffix)
        amap = AccessMap()
        if rules:
            amap.add(rules[0].source, src_side.access(rules[0].source.registry, rules[0].source.repository))
    else:
        raise UsageError(f"--src {src!r} is not supported", hint="use --src docker or --src yaml")
    amap.add(dest_ref, dst_side.access(dest_ref.registry, dest_ref.repository))
    return rules, amap
