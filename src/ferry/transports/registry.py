"""OCI distribution client over :mod:`ferry.http`: manifests, blobs, uploads, mounts, tags, catalog.

:class:`Repository` binds a client to one repository and is both a Source and a Destination.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote, urljoin

from ferry import warmup
from ferry.errors import DigestMismatchError, FerryError, NetworkError, NotFoundError, ProtocolError
from ferry.http import RegistryHTTP
from ferry.media import ACCEPT, MAX_MANIFEST_BYTES, Descriptor, Manifest, parse_manifest
from ferry.refs import is_digest
from ferry.retry import RETRYABLE_STATUSES
from ferry.transports.base import BlobsMissingError, OpenStream

CHUNK = 1024 * 1024
#: Blobs this large are uploaded in PATCH chunks that an interrupted transfer can resume from.
CHUNKED_MIN = 128 * 1024 * 1024
UPLOAD_CHUNK = 64 * 1024 * 1024  # a multiple of copy.BlobOpener.CHECKPOINT, so resume offsets have a hash state
log = logging.getLogger("ferry.registry")


def pull_scope(repo: str) -> frozenset[str]:
    return frozenset({f"repository:{repo}:pull"})


def push_scope(repo: str, mount_from: str | None = None) -> frozenset[str]:
    scopes = {f"repository:{repo}:pull,push"}
    if mount_from and mount_from != repo:
        scopes.add(f"repository:{mount_from}:pull")
    return frozenset(scopes)


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={quote(digest)}"


class _Slicer:
    """Cuts one byte stream into consecutive pieces of exact sizes (one per PATCH)."""

    def __init__(self, chunks: AsyncIterator[bytes], what: str) -> None:
        self._it = chunks.__aiter__()
        self._rest = b""
        self._what = what

    async def take(self, n: int) -> AsyncIterator[bytes]:
        while n > 0:
            if not self._rest:
                try:
                    self._rest = await self._it.__anext__()
                except StopAsyncIteration:
                    raise ProtocolError(f"{self._what} ended early") from None
            piece, self._rest = self._rest[:n], self._rest[n:]
            n -= len(piece)
            yield piece


class _HeldTags:
    """What a run knows of the tags one repository holds, so that a copy of many new tags asks one
    listing instead of a HEAD per tag (a cold run: every tag new, the repository often not there).

    The listing is asked only once a HEAD in the repository has found a tag missing and another tag
    is asked about: it takes the place of that second HEAD, so it never adds a request, and a run
    whose tags are all present (nothing to do) or a one-image copy asks none. A tag in the listing,
    or pushed since, is still asked about by HEAD: only absence is taken from it. It lives for one run
    (one :class:`RegistryClient`); a tag another writer pushes meanwhile is copied over, as it would
    be after a HEAD found a different digest.
    """

    def __init__(self) -> None:
        self._missed = False
        self._listing: asyncio.Future[set[str] | None] | None = None
        self._pushed: set[str] = set()

    def missed(self) -> None:
        self._missed = True

    def pushed(self, tag: str) -> None:
        self._pushed.add(tag)

    async def may_hold(self, tag: str, list_tags: Callable[[], Awaitable[set[str] | None]]) -> bool:
        """False when the repository's listing shows it lacks ``tag``."""
        if self._listing is None:
            if not self._missed:
                return True
            self._listing = asyncio.ensure_future(list_tags())
        listed = await asyncio.shield(self._listing)
        return listed is None or tag in listed or tag in self._pushed


class RegistryClient:
    """Registry operations on any repository of one host."""

    def __init__(self, http: RegistryHTTP) -> None:
        self.http = http
        self.registry = http.registry
        self._writable: set[str] = set()
        self._held: dict[str, _HeldTags] = {}

    def repository(self, name: str, *, write: bool = False) -> Repository:
        if write:
            self._writable.add(name)
        return Repository(self, name)

    def _read_scope(self, repo: str) -> frozenset[str]:
        """Reads of a repository being written ask for pull,push at once: one token serves the whole copy."""
        return push_scope(repo) if repo in self._writable else pull_scope(repo)

    async def ping(self) -> None:
        resp = await self.http.request("GET", "/v2/", what="/v2/ (API check)")
        resp.release()

    # -- manifests --------------------------------------------------------------------------

    async def get_manifest(self, repo: str, reference: str) -> Manifest:
        what = f"manifest {repo}:{reference}" if not is_digest(reference) else f"manifest {repo}@{reference}"
        resp, raw = await self.http.fetch(
            "GET", f"/v2/{repo}/manifests/{reference}", scopes=self._read_scope(repo),
            headers={"Accept": ACCEPT}, what=what, limit=MAX_MANIFEST_BYTES,
        )
        content_type = resp.headers.get("Content-Type")
        header_digest = resp.headers.get("Docker-Content-Digest")
        # by tag, the digest the registry announces is checked before anything is parsed: content damaged
        # on the way is a digest mismatch, not "not valid JSON" or a confusing shape error
        announced = header_digest if header_digest and header_digest.startswith("sha256:") else None
        expected = reference if is_digest(reference) else announced
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
            "HEAD", f"/v2/{repo}/manifests/{reference}", scopes=self._read_scope(repo),
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

    async def tag_digest(self, repo: str, tag: str) -> str | None:
        """:meth:`head_manifest` of a tag, asking no HEAD for tags the repository's listing lacks."""
        held = self._held.get(repo)
        if held is None:
            held = self._held[repo] = _HeldTags()
        if not await held.may_hold(tag, lambda: self._tags_held(repo)):
            return None
        digest = await self.head_manifest(repo, tag)
        if digest is None:
            held.missed()
        return digest

    async def _tags_held(self, repo: str) -> set[str] | None:
        """The repository's tags now: an empty set when it does not exist, None when it cannot be listed."""
        try:
            return set(await self.list_tags(repo))
        except NotFoundError:
            return set()
        except FerryError as e:
            log.debug("%s: tags of %s not listed (%s); asking tag by tag", self.registry, repo, e.message)
            return None

    async def put_manifest(self, repo: str, reference: str, manifest: Manifest) -> None:
        if not is_digest(reference) and (held := self._held.get(repo)) is not None:
            held.pushed(reference)  # before the request: a HEAD after a failed push asks the registry
        try:
            resp = await self.http.request(
                "PUT", f"/v2/{repo}/manifests/{reference}", scopes=push_scope(repo),
                headers={"Content-Type": manifest.media_type}, body=manifest.raw, ok=(201, 200, 202),
                what=f"manifest upload {repo}:{reference}",
            )
        except FerryError as e:
            if e.code != "MANIFEST_BLOB_UNKNOWN":
                raise
            raise BlobsMissingError(e.message, hint=e.hint) from e
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
            "HEAD", f"/v2/{repo}/blobs/{digest}", scopes=self._read_scope(repo), allow=(404,), what=f"blob {digest}"
        )
        resp.release()
        return resp.status == 200

    async def read_blob(self, repo: str, desc: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        """Stream a blob from ``offset``; stops with an error when the server sends more than the
        descriptor's size. A download cut midway is resumed by the HTTP layer (:meth:`RegistryHTTP.download`)."""
        received = offset
        chunks = self.http.download(f"/v2/{repo}/blobs/{desc.digest}", scopes=self._read_scope(repo), offset=offset,
                                    what=f"blob {repo}@{desc.digest}", chunk_size=CHUNK)
        try:
            async for chunk in chunks:
                received += len(chunk)
                if desc.size >= 0 and received > desc.size:
                    raise ProtocolError(
                        f"{self.registry}: blob {desc.digest} is larger than the {desc.size} bytes its descriptor says"
                    )
                yield chunk
        finally:
            await chunks.aclose()

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
        open_stream: OpenStream,
        location: str | None = None,
    ) -> None:
        """Upload a blob (after POST, or into ``location`` from a failed mount).

        Small blobs go in one streamed PUT. Blobs of ``CHUNKED_MIN`` bytes or more go in PATCH chunks,
        so that an interrupted upload resumes from the offset the registry reports instead of starting
        over. The registry verifies the digest given at the end; ``open_stream`` verifies the source side.
        """
        if desc.size >= CHUNKED_MIN:
            await self._upload_chunked(repo, desc, open_stream, location)
            return
        headers = {"Content-Type": "application/octet-stream"}
        if desc.size >= 0:
            headers["Content-Length"] = str(desc.size)
        # An interrupted PUT leaves its upload session in an unknown state: each retry starts a new one.
        # The budget is the PUT's: the POST that opens a session retries on its own (no request is
        # retried by two loops, so attempts never multiply).
        attempts = self.http.attempts()
        while True:
            if location is None:
                location = await self.start_upload(repo)
            try:
                resp = await self.http.request(
                    "PUT", _with_digest(location, desc.digest), scopes=push_scope(repo), headers=headers,
                    body=lambda: self._counted(open_stream(0)), ok=(201, 204),
                    what=f"blob upload {repo}@{desc.digest}", retries=False,
                )
                resp.release()
                return
            except NetworkError:
                if not attempts.left:
                    raise
                location = None
                await attempts.again(f"blob upload {desc.digest} interrupted")

    async def _upload_chunked(self, repo: str, desc: Descriptor, open_stream: OpenStream,
                              location: str | None) -> None:
        what = f"blob upload {repo}@{desc.digest}"
        offset = 0
        attempts = self.http.attempts()
        while True:
            if location is None:
                location, offset = await self.start_upload(repo), 0
            try:
                source = _Slicer(open_stream(offset), f"{self.registry}: source of {desc.digest}")
                while offset < desc.size:
                    # keep the newest Location: its _state must match what the registry holds, or a status
                    # request after a failure finds the session invalid (and distribution cancels it)
                    location = await self._send_chunk(repo, desc, source, location, offset)
                    offset = min(offset + UPLOAD_CHUNK, desc.size)
                resp = await self.http.request("PUT", _with_digest(location, desc.digest), scopes=push_scope(repo),
                                               ok=(201, 204), what=what, retries=False)
                resp.release()
                return
            except NetworkError as err:
                if not attempts.left:
                    raise
                await attempts.again(f"{what} interrupted ({err.message})")
                offset = await self.upload_offset(repo, location)
                if offset is None or (offset % UPLOAD_CHUNK and offset != desc.size):
                    location = None  # the registry dropped the session, or holds part of a chunk
                else:
                    log.info("%s: resuming at byte %d of %d", what, offset, desc.size)

    async def _send_chunk(self, repo: str, desc: Descriptor, source: _Slicer, location: str, offset: int) -> str:
        """PATCH the ``UPLOAD_CHUNK`` piece of the blob at ``offset``; returns the newest Location."""
        end = min(offset + UPLOAD_CHUNK, desc.size)
        headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{end - 1}",
                   "Content-Length": str(end - offset)}
        resp = await self.http.request("PATCH", location, scopes=push_scope(repo), headers=headers,
                                       body=self._counted(source.take(end - offset)), ok=(202,),
                                       what=f"blob chunk {repo}@{desc.digest}", retries=False)
        resp.release()
        return self._location(resp, repo)

    async def upload_offset(self, repo: str, location: str) -> int | None:
        """Bytes the registry holds for an upload session (its ``Range``), or None when the session is gone."""
        try:
            resp = await self.http.request("GET", location, scopes=push_scope(repo), ok=(204, 200),
                                           allow=(404, 400, 416), what="upload status")
        except FerryError:
            return None
        resp.release()
        rng = resp.headers.get("Range", "")
        if resp.status not in (200, 204) or not rng:
            return None
        try:
            last = int(rng.rpartition("-")[2])
        except ValueError:
            return None
        # distribution answers "0-0" for an empty session as for a one-byte one; ferry never holds one byte
        return last + 1 if last else 0

    def _counted(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        stats = self.http.stats

        async def gen() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                stats.bytes_sent += len(chunk)
                yield chunk

        return gen()

    # -- listing ----------------------------------------------------------------------------

    async def list_tags(self, repo: str) -> list[str]:
        # distribution 2.8 ignores n/last and sends one page without Link; other registries page.
        what = f"tags of {repo}"
        early = await self._early_tags(repo, what)
        if early is not None:
            return early
        return await self._string_list(f"/v2/{repo}/tags/list", "tags", pull_scope(repo), what)

    async def _early_tags(self, repo: str, what: str) -> list[str] | None:
        """The tags asked for during start-up (:func:`ferry.warmup.list_tags`: the client's own first
        request), when they came whole in one page; None: the client lists the repository itself, after
        the backoff a retryable answer calls for, counted as the retry it is."""
        early = warmup.listing(self.registry, self.http.access, repo)
        answer = await asyncio.wrap_future(early) if early is not None else None
        if answer is None:
            return None
        self.http.stats.requests += 1
        if answer.body is not None:
            try:
                return self._page_items(json.loads(answer.body), "tags", what)
            except ValueError:
                return None  # not JSON: the client asks again, and reports what it gets
        if answer.status in RETRYABLE_STATUSES:
            await self.http.attempts().again(f"GET {what}: HTTP {answer.status}", answer.retry_after)
        return None

    async def catalog(self, page_size: int = 1000) -> list[str]:
        return await self._string_list(
            f"/v2/_catalog?n={page_size}", "repositories", frozenset({"registry:catalog:*"}), "catalog"
        )

    async def _string_list(self, path: str, key: str, scopes: frozenset[str], what: str) -> list[str]:
        items: list[str] = []
        async for body in self.http.pages(path, scopes=scopes, what=what):
            items.extend(self._page_items(body, key, what))
        return items

    def _page_items(self, body: object, key: str, what: str) -> list[str]:
        page = body.get(key) if isinstance(body, dict) else None
        if page is None:
            return []
        if not isinstance(page, list) or not all(isinstance(x, str) for x in page):
            raise ProtocolError(f"{self.registry}: {what}: {key!r} is not a list of strings")
        return page


class Repository:
    """One repository: a Source and a Destination for the copy algorithm."""

    verifies_blobs = False  # the registry checks the digest only once the whole blob is in

    def __init__(self, client: RegistryClient, name: str) -> None:
        self.client = client
        self.name = name
        self.registry = client.registry

    async def get_manifest(self, reference: str) -> Manifest:
        return await self.client.get_manifest(self.name, reference)

    def read_blob(self, desc: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        return self.client.read_blob(self.name, desc, offset)

    async def has_blob(self, desc: Descriptor) -> bool:
        return await self.client.has_blob(self.name, desc.digest)

    @property
    def store_key(self) -> str:
        return f"docker://{self.registry}"

    async def put_blob(self, desc: Descriptor, open_stream: OpenStream) -> None:
        await self.client.upload_blob(self.name, desc, open_stream)

    async def mount_or_put_blob(
        self, desc: Descriptor, from_name: str, open_stream: OpenStream
    ) -> bool:
        location = await self.client.mount_blob(self.name, desc.digest, from_name)
        if location is None:
            return True
        await self.client.upload_blob(self.name, desc, open_stream, location)
        return False

    async def has_manifest(self, reference: str) -> str | None:
        if is_digest(reference):
            return await self.client.head_manifest(self.name, reference)
        return await self.client.tag_digest(self.name, reference)

    async def put_manifest(self, manifest: Manifest, reference: str) -> None:
        await self.client.put_manifest(self.name, reference, manifest)

    async def commit(self) -> None:
        return None

    async def close(self) -> None:
        return None
