"""Blob and manifest moves shared by push and copy: skip what is there, mount, stream.

Every function takes the shared :class:`RegistryClient`; the per-host limit
is applied by the client on each request, so callers may run many of these
at once in one task group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio

from lockresolve.bundle.progress import Progress
from lockresolve.registry.client import BodyFactory, RegistryClient

__all__ = ["BlobOnce", "copy_blob", "file_body", "push_blob"]

_CHUNK = 1 << 20


def file_body(path: Path, progress: Progress | None = None) -> BodyFactory:
    """A replayable upload body that streams ``path`` in 1 MiB chunks."""

    async def body() -> AsyncIterator[bytes]:
        async with await anyio.open_file(path, "rb") as fh:
            while chunk := await fh.read(_CHUNK):
                if progress is not None:
                    progress.advance(len(chunk))
                yield chunk

    return body


async def push_blob(
    client: RegistryClient,
    registry: str,
    repository: str,
    digest: str,
    size: int,
    body: bytes | BodyFactory,
) -> bool:
    """Upload a blob unless the repository already has it; True when it was uploaded."""
    if await client.blob_exists(registry, repository, digest):
        return False
    await client.upload_blob(registry, repository, digest, size, body)
    return True


def _source_body(
    client: RegistryClient,
    registry: str,
    repository: str,
    digest: str,
    size: int,
    progress: Progress | None,
) -> BodyFactory:
    async def body() -> AsyncIterator[bytes]:
        async for chunk in client.get_blob(registry, repository, digest, size=size):
            if progress is not None:
                progress.advance(len(chunk))
            yield chunk

    return body


async def copy_blob(
    client: RegistryClient,
    source: tuple[str, str],
    target: tuple[str, str],
    digest: str,
    size: int,
    progress: Progress | None = None,
) -> str:
    """Copy one blob between repositories: ``"present"``, ``"mounted"`` or ``"uploaded"``.

    ``source`` and ``target`` are ``(registry, repository)``. Present blobs are
    skipped; on the same registry the blob is mounted; otherwise it streams
    from the source GET into the target PUT (verified against ``digest``).
    """
    registry, repository = target
    if await client.blob_exists(registry, repository, digest):
        return "present"
    location: str | None = None
    if source[0] == registry:
        location = await client.mount_blob(registry, repository, digest, source[1])
        if location is None:
            return "mounted"
    # On one registry the source GET runs inside the PUT's request and shares its
    # concurrency slot (see lockresolve.registry.limits), so a declined mount cannot
    # deadlock the host's limiter.
    body = _source_body(client, source[0], source[1], digest, size, progress)
    await client.upload_blob(registry, repository, digest, size, body, location=location)
    return "uploaded"


class BlobOnce:
    """Each blob written once per destination repository, however many images share it.

    Images of one copy often share a config or a layer. Written concurrently, each would
    upload (or mount) the same blob into the same repository at once, and a registry may
    then answer a manifest PUT with ``MANIFEST_BLOB_UNKNOWN`` while another commit of that
    blob is still settling (seen with docker-registry 2.8). The first caller for a key
    writes it; later callers wait for it to finish, and write it themselves only when the
    first failed (its error is that caller's own to report).
    """

    def __init__(self) -> None:
        self._running: dict[tuple[str, str, str], anyio.Event] = {}
        self._done: set[tuple[str, str, str]] = set()

    async def write(
        self, key: tuple[str, str, str], write: Callable[[], Awaitable[object]]
    ) -> None:
        while key not in self._done:
            running = self._running.get(key)
            if running is not None:
                await running.wait()
                continue
            event = self._running[key] = anyio.Event()
            try:
                await write()
                self._done.add(key)
            finally:
                del self._running[key]
                event.set()
