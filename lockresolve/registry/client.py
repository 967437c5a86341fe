"""The registry client: every network call lockresolve makes goes through here.

:class:`RegistryClient` is the registry API (manifests, blobs, uploads, tags,
referrers) on :class:`.sender.Sender`, which owns the one ``httpx.AsyncClient``
of a run, a ``CapacityLimiter`` per registry host and the retries. httpx's
errors become :mod:`lockresolve.errors` in the sender and :mod:`.errormap` and
nowhere else. Uploads are in :mod:`.uploads`, paged listings in :mod:`.listing`.

Requests are built from the plain functions in :mod:`.protocol`; answers are
returned as values from :mod:`.model`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urljoin, urlsplit

import httpx

from lockresolve.errors import DigestMismatchError, ProtocolError
from lockresolve.mediatypes import MANIFEST_ACCEPT
from lockresolve.reference import Reference
from lockresolve.registry import listing, uploads
from lockresolve.registry.errormap import (
    TooLarge,
    check_declared_length,
    content_length,
    error_from_response,
    read_capped,
    served_by,
    transport_error,
)
from lockresolve.registry.model import Descriptor, Manifest, RequestStats, sha256_digest
from lockresolve.registry.protocol import (
    MAX_MANIFEST_BYTES,
    Referrer,
    blob_path,
    is_sha256_digest,
    manifest_path,
    redact_url,
    repository_scope,
    same_origin,
)
from lockresolve.registry.sender import BodyFactory, Sender

__all__ = ["BodyFactory", "RegistryClient", "RequestStats"]

log = logging.getLogger("lockresolve.http")

_MAX_REDIRECTS = 5


class RegistryClient(Sender):
    """Async client for OCI/Docker registries. Use as ``async with RegistryClient(...)``."""

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- manifests -------------------------------------------------------------

    async def _manifest_request(
        self, method: str, ref: Reference, accept: Sequence[str] = MANIFEST_ACCEPT
    ) -> httpx.Response:
        """HEAD or GET (streamed) ``ref``'s manifest; the caller reads and closes the answer."""
        return await self.send(
            method,
            ref.registry,
            manifest_path(ref.repository, ref.identifier),
            scopes=[repository_scope(ref.repository, "pull")],
            subject=ref.original,
            headers={"Accept": ", ".join(accept)},
            stream=method == "GET",
        )

    async def _exists(self, response: httpx.Response, subject: str) -> bool:
        """A HEAD's answer: 200 is ``True``, 404 ``False``; other answers raise."""
        await response.aclose()
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise await error_from_response(response, subject)

    async def head_manifest(self, ref: Reference) -> Descriptor | None:
        """HEAD a manifest: its descriptor, or ``None`` when the answer carried no digest.

        Raises for errors; a 404 is followed by a GET so the error carries the
        registry's own code and message (a failing run only).
        """
        response = await self._manifest_request("HEAD", ref)
        status = response.status_code
        if status == 200:
            digest = response.headers.get("docker-content-digest", "")
            if not is_sha256_digest(digest):
                return None  # absent or not a digest: the GET hashes the content itself
            if ref.digest is not None and digest != str(ref.digest):
                raise DigestMismatchError(
                    f"the registry answered digest {digest}",
                    subject=ref.original,
                    method="HEAD",
                    url=redact_url(str(response.request.url)),
                )
            return Descriptor(
                digest=digest,
                media_type=response.headers.get("content-type", "").split(";")[0].strip(),
                size=content_length(response),
            )
        if status in (405, 501):
            return None
        if status == 404:
            await response.aclose()
            # One GET only to learn the registry's own error code and message.
            manifest = await self.get_manifest(ref)
            return manifest.descriptor  # the tag appeared in between
        raise await error_from_response(response, ref.original)

    async def manifest_exists(self, ref: Reference) -> bool:
        """One HEAD: whether the manifest exists (404 is ``False``, other errors raise)."""
        return await self._exists(await self._manifest_request("HEAD", ref), ref.original)

    async def resolve(self, ref: Reference) -> Descriptor:
        """The descriptor a tag or digest points at: one HEAD, a GET only when needed."""
        descriptor = await self.head_manifest(ref)
        if descriptor is not None:
            return descriptor
        return (await self.get_manifest(ref)).descriptor

    async def get_manifest(
        self, ref: Reference, accept: Sequence[str] = MANIFEST_ACCEPT
    ) -> Manifest:
        """GET a manifest, verified against the digest asked for or announced."""
        response = await self._manifest_request("GET", ref, accept)
        if response.status_code != 200:
            raise await error_from_response(response, ref.original)
        url = redact_url(str(response.request.url))
        try:
            data = await read_capped(response, MAX_MANIFEST_BYTES)
        except TooLarge:
            raise ProtocolError(
                f"manifest larger than {MAX_MANIFEST_BYTES} bytes refused",
                subject=ref.original,
                method="GET",
                url=url,
            ) from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, "GET", url, ref.original) from None
        finally:
            await response.aclose()
        digest = sha256_digest(data)
        expected = str(ref.digest) if ref.digest is not None else None
        announced = response.headers.get("docker-content-digest")
        for claimed in (expected, announced):
            if claimed and claimed.startswith("sha256:") and claimed != digest:
                raise DigestMismatchError(
                    f"manifest content hashes to {digest}, not {claimed}",
                    subject=ref.original,
                    method="GET",
                    url=url,
                )
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return Manifest(data=data, media_type=media_type or _sniff_media_type(data), digest=digest)

    async def put_manifest(
        self, registry: str, repository: str, reference: str, data: bytes, media_type: str
    ) -> str:
        """PUT a manifest under a tag or digest; returns its digest."""
        subject = f"{registry}/{repository}:{reference}"
        response = await self.send(
            "PUT",
            registry,
            manifest_path(repository, reference),
            scopes=[repository_scope(repository, "pull,push")],
            subject=subject,
            headers={"Content-Type": media_type},
            body=data,
        )
        if response.status_code not in (200, 201, 202):
            raise await error_from_response(response, subject)
        await response.aclose()
        digest = sha256_digest(data)
        announced = response.headers.get("docker-content-digest")
        if announced and announced != digest:
            raise DigestMismatchError(
                f"the registry stored the manifest as {announced}, expected {digest}",
                subject=subject,
            )
        return digest

    # -- blobs -----------------------------------------------------------------

    async def blob_exists(self, registry: str, repository: str, digest: str) -> bool:
        subject = f"{registry}/{repository}@{digest}"
        response = await self.send(
            "HEAD",
            registry,
            blob_path(repository, digest),
            scopes=[repository_scope(repository, "pull")],
            subject=subject,
        )
        return await self._exists(response, subject)

    async def get_blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        *,
        chunk_size: int = 1 << 20,
        size: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream a blob, verifying its digest; raises at the end on a mismatch.

        Redirects (to storage) are followed; the registry's Authorization header
        is never sent to another host (nor to another scheme). A broken transfer
        resumes with ``Range``. ``size`` is the descriptor's: a blob that would
        be longer (a ``Content-Length`` that says so, or the bytes themselves) is
        refused before the byte past it is handed out, one that ends short at
        the end. The host's concurrency slot is held until the stream is done.
        Callers must not commit what they read before the iterator finishes.
        """
        subject = f"{registry}/{repository}@{digest}"
        hasher = hashlib.sha256()
        received = 0
        resumes = 0
        while True:
            response = await self._open_blob(registry, repository, digest, subject, received)
            try:
                skip = received if response.status_code == 200 else 0
                if size is not None:
                    check_declared_length(response, size - received + skip, size, subject)
                async for chunk in response.aiter_bytes(chunk_size):
                    if skip:
                        drop = min(skip, len(chunk))
                        chunk = chunk[drop:]
                        skip -= drop
                        if not chunk:
                            continue
                    if size is not None and received + len(chunk) > size:
                        raise ProtocolError(
                            f"blob is longer than the {size} bytes its descriptor declares",
                            subject=subject,
                            method="GET",
                            url=redact_url(str(response.request.url)),
                        )
                    hasher.update(chunk)
                    received += len(chunk)
                    yield chunk
                break
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout) as exc:
                resumes += 1
                if resumes > self.policy.retries:
                    raise transport_error(exc, "GET", str(response.request.url), subject) from None
                log.debug("blob %s interrupted at %d bytes; resuming", digest, received)
                self.stats.retries += 1
            finally:
                await response.aclose()
        if size is not None and received != size:
            raise ProtocolError(
                f"blob ended after {received} of the {size} bytes its descriptor declares",
                subject=subject,
                method="GET",
            )
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise DigestMismatchError(
                f"blob content hashes to {actual}", subject=subject, method="GET"
            )

    async def _open_blob(
        self, registry: str, repository: str, digest: str, subject: str, offset: int
    ) -> httpx.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = await self.send(
            "GET",
            registry,
            blob_path(repository, digest),
            scopes=[repository_scope(repository, "pull")],
            subject=subject,
            headers=headers,
            stream=True,
        )
        registry_url = str(response.request.url)
        registry = served_by(response, registry)
        for _ in range(_MAX_REDIRECTS):
            if response.status_code not in (301, 302, 303, 307, 308):
                break
            location = response.headers.get("location")
            await response.aclose()
            if not location:
                raise ProtocolError("redirect without a Location", subject=subject, method="GET")
            target = urljoin(str(response.request.url), location)
            if urlsplit(target).scheme not in ("http", "https"):
                raise ProtocolError(
                    "redirect to a non-http URL refused", subject=subject, method="GET"
                )
            same_host = same_origin(target, registry_url)
            response = await self.send(
                "GET",
                registry,
                target,
                scopes=[repository_scope(repository, "pull")],
                subject=subject,
                headers=headers,
                stream=True,
                auth=same_host,
            )
        else:
            await response.aclose()
            raise ProtocolError("too many redirects", subject=subject, method="GET")
        if response.status_code not in (200, 206):
            raise await error_from_response(response, subject)
        return response

    # -- uploads (uploads.py) and listings (listing.py) -------------------------

    async def mount_blob(
        self, registry: str, repository: str, digest: str, from_repository: str
    ) -> str | None:
        """Cross-repository mount. ``None`` when mounted, else an upload location to use."""
        return await uploads.mount_blob(self, registry, repository, digest, from_repository)

    async def upload_blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        size: int,
        body: bytes | BodyFactory,
        *,
        location: str | None = None,
    ) -> None:
        """Upload a blob: POST, then one streaming PUT ``?digest=``; PATCH chunks as fallback.

        ``body`` must be replayable (bytes, or a factory giving a fresh stream)
        so that a failed attempt can be retried.
        """
        await uploads.upload_blob(self, registry, repository, digest, size, body, location=location)

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of a repository, following ``Link`` pagination (bounded)."""
        return await listing.list_tags(self, registry, repository)

    async def referrers(
        self, registry: str, repository: str, digest: str, artifact_type: str | None = None
    ) -> tuple[Referrer, ...] | None:
        """The OCI 1.1 referrers of ``digest``; ``None`` when the registry has no referrers
        API (see :func:`.listing.list_referrers`)."""
        return await listing.list_referrers(self, registry, repository, digest, artifact_type)


def _sniff_media_type(data: bytes) -> str:
    try:
        value = __import__("json").loads(data).get("mediaType")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
