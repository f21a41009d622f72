"""Real Helm chart archives for tests: a tiny chart (Chart.yaml, values.yaml, templates/) tarred
and gzipped as ``helm package`` lays it out (``<name>/…``), and a provenance file in Helm's
clearsigned format (the signed Chart.yaml, then the archive's sha256 under ``files:``)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import yaml

#: Fixed tar and gzip timestamps: the same chart always has the same bytes and digest.
EPOCH = 1_600_000_000


def chart_yaml(name: str, version: str, **extra: object) -> str:
    meta: dict[str, object] = {"apiVersion": "v2", "name": name, "version": version,
                               "description": f"{name}, a test chart", "type": "application", **extra}
    return yaml.safe_dump(meta, sort_keys=False)


def chart_archive(name: str, version: str, *, files: dict[str, str | None] | None = None,
                  **extra: object) -> bytes:
    """A chart package ``<name>-<version>.tgz`` as bytes; ``files`` adds or replaces entries by
    path inside the chart, and removes those it maps to None (``{"Chart.yaml": None}``)."""
    entries: dict[str, str | None] = {
        "Chart.yaml": chart_yaml(name, version, **extra),
        "values.yaml": "replicaCount: 1\nimage:\n  repository: nginx\n  tag: stable\n",
        "templates/configmap.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
            "data:\n  replicas: {{ .Values.replicaCount | quote }}\n"
        ),
        ".helmignore": ".git/\n",
    }
    entries.update(files or {})
    return tgz({f"{name}/{path}": text for path, text in entries.items() if text is not None})


def tgz(entries: dict[str, str]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=EPOCH) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def provenance(name: str, version: str, archive: bytes) -> bytes:
    """A provenance file as ``helm package --sign`` writes it (the signature block is a fixed
    test value: nothing here verifies it, ferry carries it byte for byte)."""
    digest = hashlib.sha256(archive).hexdigest()
    body = (f"{chart_yaml(name, version)}\n...\nfiles:\n  {name}-{version}.tgz: sha256:{digest}\n")
    return (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + body
        + "-----BEGIN PGP SIGNATURE-----\n\nwsBcBAEBCgAQBQJfXlVgCRBsY2FsIHRlc3QAAFRkCAB0ZXN0LXNpZ25hdHVyZQ==\n"
        "=fErY\n-----END PGP SIGNATURE-----\n"
    ).encode()
