"""Blob uploads for :class:`~lockresolve.registry.client.RegistryClient`: mount, a single
streamed PUT, the chunked PATCH fallback. Every request goes through :class:`.Sender`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from lockresolve.errors import ProtocolError, TransportError
from lockresolve.registry.errormap import error_from_response
from lockresolve.registry.protocol import parse_error_body, repository_scope, upload_path
from lockresolve.registry.sender import RETRY_STATUSES, BodyFactory, Sender

__all__ = ["mount_blob", "upload_blob"]

log = logging.getLogger("lockresolve.http")


def _location(response: httpx.Response, subject: str) -> str:
    location = response.headers.get("location")
    if not location:
        raise ProtocolError("upload answer without a Location", subject=subject, method="POST")
    return str(urljoin(str(response.request.url), location))


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    sep = "&" if urlsplit(url).query else "?"
    return url + sep + urlencode(extra)


async def _chunks(body: bytes | BodyFactory, size: int) -> AsyncIterator[bytes]:
    if isinstance(body, bytes):
        for i in range(0, len(body), size):
            yield body[i : i + size]
        return
    buf = bytearray()
    async for part in body():
        buf += part
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


async def _start_upload(
    sender: Sender, registry: str, repository: str, scopes: Sequence[str], subject: str
) -> str:
    """POST a new upload session; its location."""
    response = await sender.send(
        "POST", registry, upload_path(repository), scopes=scopes, subject=subject
    )
    await response.aclose()
    if response.status_code != 202:
        raise await error_from_response(response, subject)
    return _location(response, subject)


async def mount_blob(
    sender: Sender, registry: str, repository: str, digest: str, from_repository: str
) -> str | None:
    """Cross-repository mount. ``None`` when mounted, else an upload location to use."""
    subject = f"{registry}/{repository}@{digest}"
    response = await sender.send(
        "POST",
        registry,
        upload_path(repository) + "?" + urlencode({"mount": digest, "from": from_repository}),
        scopes=[
            repository_scope(repository, "pull,push"),
            repository_scope(from_repository, "pull"),
        ],
        subject=subject,
    )
    if response.status_code == 201:
        await response.aclose()
        return None
    if response.status_code == 202:
        await response.aclose()
        return _location(response, subject)
    if response.status_code in (401, 403):
        # The token may not read the source repository (another credential or project
        # owns it): the registry refuses the mount as a whole. Upload instead.
        await response.aclose()
        log.debug("mount of %s refused (%d); uploading", digest, response.status_code)
        scopes = [repository_scope(repository, "pull,push")]
        return await _start_upload(sender, registry, repository, scopes, subject)
    raise await error_from_response(response, subject)


async def upload_blob(
    sender: Sender,
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
    subject = f"{registry}/{repository}@{digest}"
    scopes = [repository_scope(repository, "pull,push")]
    retries = sender.policy.retries
    attempt = 0
    reauthorised = False
    while True:
        if location is None:
            location = await _start_upload(sender, registry, repository, scopes, subject)
        put_url = _with_query(location, {"digest": digest})
        try:
            response = await sender.send(
                "PUT",
                registry,
                put_url,
                scopes=scopes,
                subject=subject,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(size),
                },
                body=body,
                retry=False,
                auth=sender.same_origin(registry, put_url),
            )
        except TransportError:
            # A dropped or reset connection: the upload session may be gone,
            # so start a new one and send the (replayable) body again.
            if attempt >= retries:
                raise
            sender.stats.retries += 1
            location = None
            await sender.sleep(sender.backoff(attempt))
            attempt += 1
            continue
        await response.aclose()
        if response.status_code in (201, 204):
            return
        if response.status_code == 401 and callable(body) and not reauthorised:
            # The token was refused after the streamed body was sent (expired or
            # revoked mid-push); the auth flow cannot replay it. Once: a new session
            # and a fresh body, with the fresh token the flow now fetches.
            reauthorised = True
            sender.stats.retries += 1
            location = None
            continue
        if response.status_code in (400, 405, 415, 501) and attempt == 0:
            codes = {d.code for d in parse_error_body(response.content or b"")}
            if response.status_code != 400 or codes & {"BLOB_UPLOAD_INVALID", "UNSUPPORTED"}:
                async with sender.one_slot(registry):
                    await _upload_chunks(sender, registry, repository, digest, body, scopes)
                return
        if response.status_code in RETRY_STATUSES and attempt < retries:
            location = None
            await sender.sleep(sender.backoff(attempt))
            attempt += 1
            continue
        raise await error_from_response(response, subject)


async def _upload_chunks(
    sender: Sender,
    registry: str,
    repository: str,
    digest: str,
    body: bytes | BodyFactory,
    scopes: Sequence[str],
    chunk_size: int = 8 << 20,
) -> None:
    # The body (a GET stream, in a copy) is read between the PATCHes, outside any
    # request: the caller holds one slot for it all (see Sender.one_slot).
    subject = f"{registry}/{repository}@{digest}"
    location = await _start_upload(sender, registry, repository, scopes, subject)
    offset = 0
    async for chunk in _chunks(body, chunk_size):
        response = await sender.send(
            "PATCH",
            registry,
            location,
            scopes=scopes,
            subject=subject,
            auth=sender.same_origin(registry, location),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
            body=chunk,
        )
        await response.aclose()
        if response.status_code != 202:
            raise await error_from_response(response, subject)
        offset += len(chunk)
        location = _location(response, subject)
    response = await sender.send(
        "PUT",
        registry,
        _with_query(location, {"digest": digest}),
        scopes=scopes,
        subject=subject,
        auth=sender.same_origin(registry, location),
    )
    await response.aclose()
    if response.status_code not in (201, 204):
        raise await error_from_response(response, subject)
