"""skopeo's everyday commands: copy, inspect, list-tags, delete, manifest-digest, login, logout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ferry.access import Access, Credential
from ferry.auth import credentials
from ferry.cli import params as p
from ferry.cli.app import app, run_async, state
from ferry.cli.argv import parse_bool
from ferry.cli.lookaside import warn_uncopied_signatures
from ferry.cli.options import access_map, greet, rate_limits, side, warn_argv_password
from ferry.errors import NotFoundError, UsageError
from ferry.media import manifest_digest, parse_platform, schema1_config, select_platform
from ferry.refs import RegistryRef, parse_docker_ref, parse_image_ref

if TYPE_CHECKING:
    from ferry.connect import Connections


@app.command()
def copy(
    source: str = typer.Argument(..., metavar="SOURCE-IMAGE"),
    destination: str = typer.Argument(..., metavar="DESTINATION-IMAGE"),
    src_creds: p.SrcCreds = None,
    dest_creds: p.DestCreds = None,
    src_tls_verify: p.SrcTlsVerify = "true",
    dest_tls_verify: p.DestTlsVerify = "true",
    src_cert_dir: p.SrcCertDir = None,
    dest_cert_dir: p.DestCertDir = None,
    authfile: p.AuthFile = None,
    src_authfile: str | None = typer.Option(None, "--src-authfile"),
    dest_authfile: str | None = typer.Option(None, "--dest-authfile"),
    platform: str | None = typer.Option(None, "--platform", metavar="OS/ARCH[/VARIANT]",
                                        help="Copy only this platform of a multi-platform image."),
    all_images: bool = typer.Option(False, "--all", "-a",
                                    help="Every platform (the default; with --override-* it keeps them all)."),
    force: p.Force = False,
    quiet: p.Quiet = False,
    max_bandwidth: p.MaxBandwidth = None,
    max_requests: p.MaxRequests = None,
) -> None:
    """Copy an image (all platforms, digests preserved) between registries and local layouts."""
    src_ref, dst_ref = parse_image_ref(source), parse_image_ref(destination)
    if platform is None and not all_images:
        platform = state.override_platform()  # skopeo without --all: the one platform the overrides name
    if platform is not None:
        parse_platform(platform)
    src_side = side(src_creds, src_tls_verify, src_cert_dir, src_authfile or authfile, "src-")
    dst_side = side(dest_creds, dest_tls_verify, dest_cert_dir, dest_authfile or authfile, "dest-")
    amap = access_map((src_ref, src_side), (dst_ref, dst_side))
    greet(amap, max_requests, (src_ref, dst_ref))
    limits = rate_limits(max_bandwidth, max_requests, pace_uploads=not isinstance(src_ref, RegistryRef))
    state.policy.check(src_ref)
    from ferry.connect import Connections  # aiohttp, while the registries are greeted
    from ferry.copy import ImageCopier

    async def go() -> None:
        conns = Connections(amap, limits=limits)
        src, dst = conns.source(src_ref), conns.destination(dst_ref)
        try:
            reference = src_ref.reference if isinstance(src_ref, RegistryRef) else (src_ref.name or "")
            if isinstance(dst_ref, RegistryRef):
                dst_tag = dst_ref.tag
                if dst_ref.digest:
                    raise UsageError("a destination cannot name a digest; give a tag or none")
            else:
                dst_tag = dst_ref.name
            root = await state.policy.admit(src_ref, src, reference)  # signedBy: the manifest it verified
            result = await ImageCopier().copy(src, dst, reference, dst_tag, platform=platform, force=force, root=root)
        finally:
            await src.close()
            if dst is not src:
                await dst.close()
            await conns.close()
        if quiet:
            return
        s = result.stats
        if result.skipped:
            print(f"{destination} already has {result.digest}; nothing copied", file=sys.stderr)
        else:
            from rich.filesize import decimal  # rich costs start-up time; only this line needs it

            print(
                f"Copied {source} to {destination}: {result.digest} "
                f"({s.blobs_copied} blobs {decimal(s.bytes_copied)}, {s.blobs_mounted} mounted, "
                f"{s.blobs_skipped} already present, {s.manifests_pushed} manifests)",
                file=sys.stderr,
            )

    run_async(go())
    warn_uncopied_signatures(state.registries_d, src_ref)  # after the copy: a refused one needs no warning


def _registry_side(ref: RegistryRef, creds: str | None, tls_verify: str, cert_dir: str | None,
                   authfile: str | None) -> Connections:
    """Connections to ``ref``'s registry, greeted first (aiohttp is imported meanwhile)."""
    amap = access_map((ref, side(creds, tls_verify, cert_dir, authfile)))
    greet(amap, None, (ref,))
    from ferry.connect import Connections

    return Connections(amap)


def _docker_ref(text: str) -> RegistryRef:
    ref = parse_image_ref(text)
    if not isinstance(ref, RegistryRef):
        raise UsageError(f"{text!r}: this command works on docker:// references")
    return ref


def _config_summary(ref: RegistryRef, digest: str, tags: list[str], manifest: Any, config: dict[str, Any]) -> dict:
    cfg = config.get("config") or config.get("container_config") or {}
    layers = manifest.layers
    return {
        "Name": f"{ref.registry}/{ref.repository}",
        "Digest": digest,
        "RepoTags": tags,
        "Created": config.get("created"),
        "DockerVersion": config.get("docker_version", ""),
        "Labels": cfg.get("Labels"),
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Layers": [d.digest for d in layers],
        "LayersData": [
            {"MIMEType": d.media_type, "Digest": d.digest, "Size": d.size, "Annotations": d.annotations}
            for d in layers
        ],
        "Env": cfg.get("Env"),
    }


@app.command()
def inspect(
    image: str = typer.Argument(..., metavar="IMAGE"),
    raw: bool = typer.Option(False, "--raw", help="Print the manifest (or config with --config) exactly as stored."),
    config: bool = typer.Option(False, "--config", help="Print the image configuration."),
    creds: p.Creds = None,
    tls_verify: p.TlsVerify = "true",
    cert_dir: p.CertDir = None,
    authfile: p.AuthFile = None,
    no_tags: bool = typer.Option(False, "--no-tags", "-n", help="Do not list the repository's tags."),
    platform: str | None = typer.Option(None, "--platform",
                                        help="Platform to describe for an index (default: the --override-* "
                                             "options, else linux/amd64)."),
) -> None:
    """Show an image's manifest, configuration or a skopeo-style summary."""
    ref = parse_image_ref(image)
    platform = platform or state.override_platform() or "linux/amd64"
    parse_platform(platform)
    if isinstance(ref, RegistryRef):
        conns = _registry_side(ref, creds, tls_verify, cert_dir, authfile)
    else:
        from ferry.connect import Connections

        conns = Connections()

    async def go() -> None:
        src = conns.source(ref)
        try:
            reference = ref.reference if isinstance(ref, RegistryRef) else (ref.name or "")
            top = await src.get_manifest(reference)
            if raw and not config:
                sys.stdout.buffer.write(top.raw)
                sys.stdout.flush()
                return
            image_manifest = top
            if top.is_index:
                image_manifest = await src.get_manifest(select_platform(top, platform).digest)
            cfg_desc = image_manifest.config
            if cfg_desc is None:  # schema1 keeps its configuration in the manifest
                cfg: dict[str, Any] = schema1_config(image_manifest)
                cfg_raw = json.dumps(cfg).encode()
            else:
                chunks = [c async for c in src.read_blob(cfg_desc)]
                cfg_raw = b"".join(chunks)
                from ferry.media import verify_digest

                verify_digest(cfg_raw, cfg_desc.digest, "image config")
                try:
                    cfg = json.loads(cfg_raw)
                except ValueError:
                    cfg = {}
            if config:
                if raw:
                    sys.stdout.buffer.write(cfg_raw)
                else:
                    print(json.dumps(cfg, indent=4))
                return
            tags: list[str] = []
            if isinstance(ref, RegistryRef) and not no_tags:
                tags = await conns.client(ref.registry, conns.access.for_ref(ref)).list_tags(ref.repository)
            name_ref = ref if isinstance(ref, RegistryRef) else RegistryRef("", str(ref))
            print(json.dumps(_config_summary(name_ref, top.digest, tags, image_manifest, cfg), indent=4))
        finally:
            await src.close()
            await conns.close()

    run_async(go())


@app.command("list-tags")
def list_tags(
    repository: str = typer.Argument(..., metavar="docker://HOST/REPOSITORY"),
    creds: p.Creds = None,
    tls_verify: p.TlsVerify = "true",
    cert_dir: p.CertDir = None,
    authfile: p.AuthFile = None,
) -> None:
    """List a repository's tags (every page, as skopeo prints them)."""
    if not repository.startswith("docker://"):
        raise UsageError(f"{repository!r}: list-tags takes docker://HOST/REPOSITORY")
    ref = parse_docker_ref(repository[len("docker://"):], default_tag=False)
    if ref.tag or ref.digest:
        raise UsageError(f"{repository!r} names a tag or digest; list-tags takes a repository")

    conns = _registry_side(ref, creds, tls_verify, cert_dir, authfile)

    async def go() -> None:
        try:
            tags = await conns.client(ref.registry, conns.access.for_ref(ref)).list_tags(ref.repository)
        finally:
            await conns.close()
        print(json.dumps({"Repository": f"{ref.registry}/{ref.repository}", "Tags": tags}, indent=4))

    run_async(go())


@app.command()
def delete(
    image: str = typer.Argument(..., metavar="docker://HOST/REPOSITORY:TAG|@DIGEST"),
    creds: p.Creds = None,
    tls_verify: p.TlsVerify = "true",
    cert_dir: p.CertDir = None,
    authfile: p.AuthFile = None,
) -> None:
    """Delete an image: a tag is resolved to its digest, which is deleted (with every tag on it)."""
    ref = _docker_ref(image)

    conns = _registry_side(ref, creds, tls_verify, cert_dir, authfile)

    async def go() -> None:
        client = conns.client(ref.registry, conns.access.for_ref(ref))
        try:
            digest = ref.digest or await client.head_manifest(ref.repository, ref.reference)
            if digest is None:
                raise NotFoundError(f"{ref}: no such image")
            await client.delete_manifest(ref.repository, digest)
        finally:
            await conns.close()

    run_async(go())


@app.command("manifest-digest")
def manifest_digest_cmd(path: Path = typer.Argument(..., metavar="MANIFEST-FILE")) -> None:
    """Print the digest of a manifest file, as a registry would compute it."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    print(manifest_digest(raw))


def _host(value: str) -> str:
    """``docker://host``, ``https://host/`` or ``host`` → ``host``."""
    host = value.removeprefix("docker://").removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if "@" in host:  # user:password@host: never echoed back
        raise UsageError("REGISTRY must not contain credentials", hint="use --username and --password-stdin")
    if not host:
        raise UsageError(f"invalid registry {value!r}", hint="expected a host name such as registry.example:5000")
    return host


@app.command()
def login(
    registry: str = typer.Argument(..., metavar="REGISTRY"),
    username: str | None = typer.Option(None, "--username", "-u"),
    password: str | None = typer.Option(None, "--password", "-p", help="Discouraged: visible in the process list."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    authfile: p.AuthFile = None,
    tls_verify: p.TlsVerify = "true",
    cert_dir: p.CertDir = None,
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check the credentials with the registry first."),
) -> None:
    """Check credentials with a registry and store them in the auth file (mode 0600)."""
    host = _host(registry)
    if password is not None:
        warn_argv_password("--password")
    if password_stdin:
        if password is not None:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.readline().rstrip("\r\n")
    if username is None:
        if not sys.stdin.isatty() or password_stdin:
            raise UsageError("--username is required when not on a terminal")
        username = input("Username: ")
    if password is None:
        import getpass

        if not sys.stdin.isatty():
            raise UsageError("no password: use --password-stdin")
        password = getpass.getpass("Password: ")
    cred = Credential(username, password)

    async def check() -> None:
        from ferry.connect import Connections

        conns = Connections()
        access = Access(credential=cred, tls_verify=parse_bool(tls_verify, "--tls-verify"), cert_dir=cert_dir)
        try:
            await conns.client(host, access).ping()
        finally:
            await conns.close()

    if verify:
        run_async(check())
    path = Path(authfile) if authfile else credentials.default_write_file()
    credentials.write_login(path, host, cred)
    print("Login Succeeded!")


@app.command()
def logout(
    registry: str | None = typer.Argument(None, metavar="REGISTRY"),
    authfile: p.AuthFile = None,
    all_: bool = typer.Option(False, "--all", "-a", help="Remove every stored credential."),
) -> None:
    """Remove stored credentials for a registry."""
    path = Path(authfile) if authfile else credentials.default_write_file()
    if all_:
        if path.exists():
            credentials.remove_all(path)
        print("Removed login credentials for all registries")
        return
    if not registry:
        raise UsageError("logout needs a REGISTRY or --all")
    host = _host(registry)
    if not credentials.remove_login(path, host):
        raise NotFoundError(f"not logged into {host}")
    print(f"Removed login credentials for {host}")

