"""OCI distribution client over :mod:`ferry.http`: manifests, blobs, uploads, mounts, tags, catalog.

:class:`Repository` binds a client to one repository and is both a Source and a Destination.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote, urljoin

from ferry.errors import DigestMismatchError, NetworkError, NotFoundError, ProtocolError
from ferry.http import RegistryHTTP, read_limited
from ferry.media import ACCEPT, MAX_MANIFEST_BYTES, Descriptor, Manifest, parse_manifest
from ferry.refs import is_digest

CHUNK = 1024 * 1024


def pull_scope(repo: str) -> frozenset[str]:
    return frozenset({f"repository:{repo}:pull"})


def push_scope(repo: str, mount_from: str | None = None) -> frozenset[str]:
    scopes = {f"repository:{repo}:pull,push"}
    if mount_from and mount_from != repo:
        scopes.add(f"repository:{mount_from}:pull")
    return frozenset(scopes)


class RegistryClient:
    """Registry operations on any repository of one host."""

    def __init__(self, http: RegistryHTTP) -> None:
        self.http = http
        self.registry = http.registry

    def repository(self, name: str) -> Repository:
        return Repository(self, name)

    async def ping(self) -> None:
        resp = await self.http.request("GET", "/v2/", what="/v2/ (API check)")
        resp.release()

    # -- manifests --------------------------------------------------------------------------

    async def get_manifest(self, repo: str, reference: str) -> Manifest:
        what = f"manifest {repo}:{reference}" if not is_digest(reference) else f"manifest {repo}@{reference}"
        resp = await self.http.request(
            "GET", f"/v2/{repo}/manifests/{reference}", scopes=pull_scope(repo),
            headers={"Accept": ACCEPT}, what=what,
        )
        try:
            raw = await read_limited(resp, MAX_MANIFEST_BYTES, what)
            content_type = resp.headers.get("Content-Type")
            header_digest = resp.headers.get("Docker-Content-Digest")
        finally:
            resp.release()
        expected = reference if is_digest(reference) else None
        manifest = parse_manifest(raw, content_type, expected)
        if header_digest and header_digest.startswith("sha256:") and header_digest != manifest.digest:
            raise DigestMismatchError(
                f"{self.registry}: {what}: Docker-Content-Digest {header_digest} does not match the content "
                f"({manifest.digest})"
            )
        return manifest

    async def head_manifest(self, repo: str, reference: str) -> str | None:
        """The digest under a tag or digest, or None when absent. Falls back to GET when HEAD has no digest."""
        resp = await self.http.request(
            "HEAD", f"/v2/{repo}/manifests/{reference}", scopes=pull_scope(repo),
            headers={"Accept": ACCEPT}, allow=(404,), what=f"manifest {repo}:{reference}",
        )
        resp.release()
        if resp.status == 404:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        if digest and is_digest(digest):
            return digest
        try:
            return (await self.get_manifest(repo, reference)).digest
        except NotFoundError:
            return None

    async def put_manifest(self, repo: str, reference: str, manifest: Manifest) -> None:
        resp = await self.http.request(
            "PUT", f"/v2/{repo}/manifests/{reference}", scopes=push_scope(repo),
            headers={"Content-Type": manifest.media_type}, body=manifest.raw, ok=(201, 200, 202),
            what=f"manifest upload {repo}:{reference}",
        )
        resp.release()
        stored = resp.headers.get("Docker-Content-Digest")
        if stored and stored.startswith("sha256:") and stored != manifest.digest:
            raise DigestMismatchError(
                f"{self.registry}: stored manifest {repo}:{reference} as {stored}, expected {manifest.digest}"
            )

    async def delete_manifest(self, repo: str, digest: str) -> None:
        scopes = frozenset({f"repository:{repo}:delete", f"repository:{repo}:pull,push,delete"})
        resp = await self.http.request(
            "DELETE", f"/v2/{repo}/manifests/{digest}", scopes=scopes, ok=(202, 200),
            what=f"manifest {repo}@{digest}",
        )
        resp.release()

    # -- blobs ------------------------------------------------------------------------------

    async def has_blob(self, repo: str, digest: str) -> bool:
        resp = await self.http.request(
            "HEAD", f"/v2/{repo}/blobs/{digest}", scopes=pull_scope(repo), allow=(404,), what=f"blob {digest}"
        )
        resp.release()
        return resp.status == 200

    async def read_blob(self, repo: str, desc: Descriptor) -> AsyncIterator[bytes]:
        """Stream a blob; stops with an error when the server sends more than the descriptor's size."""
        resp = await self.http.request(
            "GET", f"/v2/{repo}/blobs/{desc.digest}", scopes=pull_scope(repo), what=f"blob {repo}@{desc.digest}"
        )
        try:
            received = 0
            async for chunk in resp.content.iter_chunked(CHUNK):
                received += len(chunk)
                if desc.size >= 0 and received > desc.size:
                    raise ProtocolError(
                        f"{self.registry}: blob {desc.digest} is larger than the {desc.size} bytes its descriptor says"
                    )
                self.http.stats.bytes_received += len(chunk)
                yield chunk
        finally:
            resp.release()

    async def mount_blob(self, repo: str, digest: str, from_repo: str) -> str | None:
        """Mount ``digest`` from ``from_repo``. None when mounted, else the upload URL to continue with."""
        resp = await self.http.request(
            "POST", f"/v2/{repo}/blobs/uploads/", scopes=push_scope(repo, from_repo),
            params={"mount": digest, "from": from_repo}, ok=(201, 202), what=f"blob mount into {repo}",
        )
        resp.release()
        if resp.status == 201:
            return None
        return self._location(resp, repo)

    async def start_upload(self, repo: str) -> str:
        resp = await self.http.request(
            "POST", f"/v2/{repo}/blobs/uploads/", scopes=push_scope(repo), ok=(202,), what=f"blob upload to {repo}"
        )
        resp.release()
        return self._location(resp, repo)

    def _location(self, resp, repo: str) -> str:  # type: ignore[no-untyped-def]
        location = resp.headers.get("Location")
        if not location:
            raise ProtocolError(f"{self.registry}: upload to {repo} answered without a Location")
        return urljoin(str(resp.url), location)

    async def upload_blob(
        self,
        repo: str,
        desc: Descriptor,
        chunks: Callable[[], AsyncIterator[bytes]],
        location: str | None = None,
    ) -> None:
        """Upload a blob in one streamed PUT (after POST, or into ``location`` from a failed mount).

        The registry verifies the digest given in the query; ``chunks`` must verify the source side.
        """
        headers = {"Content-Type": "application/octet-stream"}
        if desc.size >= 0:
            headers["Content-Length"] = str(desc.size)
        stats = self.http.stats

        def counted() -> AsyncIterator[bytes]:
            async def gen() -> AsyncIterator[bytes]:
                async for chunk in chunks():
                    stats.bytes_sent += len(chunk)
                    yield chunk

            return gen()

        # An interrupted PUT leaves its upload session in an unknown state: each retry starts a new one.
        attempt = 0
        while True:
            attempt += 1
            if location is None:
                location = await self.start_upload(repo)
            sep = "&" if "?" in location else "?"
            url = f"{location}{sep}digest={quote(desc.digest)}"
            try:
                resp = await self.http.request(
                    "PUT", url, scopes=push_scope(repo), headers=headers, body=counted, ok=(201, 204),
                    what=f"blob upload {repo}@{desc.digest}", retries=False,
                )
                resp.release()
                return
            except NetworkError:
                if attempt >= self.http.retry.attempts:
                    raise
                location = None
                await self.http.backoff(attempt, None, f"blob upload {desc.digest} interrupted")

    # -- listing ----------------------------------------------------------------------------

    async def list_tags(self, repo: str) -> list[str]:
        # distribution 2.8 ignores n/last and sends one page without Link; other registries page.
        return await self._string_list(f"/v2/{repo}/tags/list", "tags", pull_scope(repo), f"tags of {repo}")

    async def catalog(self, page_size: int = 1000) -> list[str]:
        return await self._string_list(
            f"/v2/_catalog?n={page_size}", "repositories", frozenset({"registry:catalog:*"}), "catalog"
        )

    async def _string_list(self, path: str, key: str, scopes: frozenset[str], what: str) -> list[str]:
        items: list[str] = []
        async for body in self.http.pages(path, scopes=scopes, what=what):
            page = body.get(key) if isinstance(body, dict) else None
            if page is None:
                page = []
            if not isinstance(page, list) or not all(isinstance(x, str) for x in page):
                raise ProtocolError(f"{self.registry}: {what}: {key!r} is not a list of strings")
            items.extend(page)
        return items


class Repository:
    """One repository: a Source and a Destination for the copy algorithm."""

    def __init__(self, client: RegistryClient, name: str) -> None:
        self.client = client
        self.name = name
        self.registry = client.registry

    async def get_manifest(self, reference: str) -> Manifest:
        return await self.client.get_manifest(self.name, reference)

    def read_blob(self, desc: Descriptor) -> AsyncIterator[bytes]:
        return self.client.read_blob(self.name, desc)

    async def has_blob(self, desc: Descriptor) -> bool:
        return await self.client.has_blob(self.name, desc.digest)

    @property
    def store_key(self) -> str:
        return f"docker://{self.registry}"

    async def put_blob(self, desc: Descriptor, open_stream: Callable[[], AsyncIterator[bytes]]) -> None:
        await self.client.upload_blob(self.name, desc, open_stream)

    async def mount_or_put_blob(
        self, desc: Descriptor, from_name: str, open_stream: Callable[[], AsyncIterator[bytes]]
    ) -> bool:
        location = await self.client.mount_blob(self.name, desc.digest, from_name)
        if location is None:
            return True
        await self.client.upload_blob(self.name, desc, open_stream, location)
        return False

    async def has_manifest(self, reference: str) -> str | None:
        return await self.client.head_manifest(self.name, reference)

    async def put_manifest(self, manifest: Manifest, reference: str) -> None:
        await self.client.put_manifest(self.name, reference, manifest)

    async def commit(self) -> None:
        return None

    async def close(self) -> None:
        return None


def verified(chunks: AsyncIterator[bytes], desc: Descriptor, what: str) -> AsyncIterator[bytes]:
    """Pass chunks through while hashing; raise before the last chunk leaves if the digest or size is wrong.

    Holding back one chunk means a wrong blob never completes an upload: the error aborts the request
    body before the registry sees its end.
    """

    async def gen() -> AsyncIterator[bytes]:
        algo, _, expected = desc.digest.partition(":")
        h = hashlib.new(algo)
        size = 0
        pending: bytes | None = None
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if desc.size >= 0 and size > desc.size:
                raise ProtocolError(f"{what}: blob {desc.digest} is larger than its descriptor's {desc.size} bytes")
            h.update(chunk)
            if pending is not None:
                yield pending
            pending = chunk
        if desc.size >= 0 and size != desc.size:
            raise ProtocolError(f"{what}: blob {desc.digest} ended at {size} of {desc.size} bytes")
        if h.hexdigest() != expected:
            raise DigestMismatchError(f"{what}: blob content does not match {desc.digest}")
        if pending is not None:
            yield pending

    return gen()
