"""Where a copy reads blobs from: a registry, an imgpkg tar, or an OCI image layout.

Each source streams a blob as a replayable body (so an upload can be retried)
and tells whether it lives in a registry repository (so the destination can
mount it instead of receiving the bytes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from lockresolve.bundle.progress import Progress
from lockresolve.errors import BundleError
from lockresolve.reference import Reference
from lockresolve.registry.client import BodyFactory, RegistryClient

__all__ = ["BlobSource", "FileBlobs", "Region", "RegistryBlobs"]

_CHUNK = 1 << 20


class BlobSource(Protocol):
    def origin(self, artifact_ref: str) -> tuple[str, str] | None:
        """``(registry, repository)`` holding the artifact's blobs, or None (local files)."""

    def body(self, artifact_ref: str, digest: str, progress: Progress | None = None) -> BodyFactory:
        """The blob's bytes, as a factory of fresh streams."""


@dataclass(frozen=True)
class RegistryBlobs:
    client: RegistryClient

    def origin(self, artifact_ref: str) -> tuple[str, str] | None:
        ref = Reference.parse(artifact_ref)
        return ref.registry, ref.repository

    def body(self, artifact_ref: str, digest: str, progress: Progress | None = None) -> BodyFactory:
        ref = Reference.parse(artifact_ref)
        client = self.client

        async def stream() -> AsyncIterator[bytes]:
            async for chunk in client.get_blob(ref.registry, ref.repository, digest):
                if progress is not None:
                    progress.advance(len(chunk))
                yield chunk

        return stream


@dataclass(frozen=True)
class Region:
    """``size`` bytes at ``offset`` in ``path``."""

    path: Path
    offset: int
    size: int


async def _read_region(region: Region, progress: Progress | None) -> AsyncIterator[bytes]:
    async with await anyio.open_file(region.path, "rb") as fh:
        await fh.seek(region.offset)
        remaining = region.size
        while remaining:
            chunk = await fh.read(min(_CHUNK, remaining))
            if not chunk:
                raise BundleError(f"{region.path}: ends inside a blob")
            remaining -= len(chunk)
            if progress is not None:
                progress.advance(len(chunk))
            yield chunk


@dataclass(frozen=True)
class FileBlobs:
    """Blobs stored in local files (entries of a tar, files of an OCI layout), by digest."""

    regions: dict[str, Region]
    what: str

    def origin(self, artifact_ref: str) -> tuple[str, str] | None:
        return None

    def region(self, digest: str) -> Region:
        region = self.regions.get(digest)
        if region is None:
            raise BundleError(f"{self.what}: blob {digest} not found")
        return region

    def body(self, artifact_ref: str, digest: str, progress: Progress | None = None) -> BodyFactory:
        region = self.region(digest)

        def stream() -> AsyncIterator[bytes]:
            return _read_region(region, progress)

        return stream
