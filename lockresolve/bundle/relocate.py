"""Write described images and indexes into one destination repository, as imgpkg's import.

Each item is written under its imgpkg tag (``sha256-<hex>.imgpkg``, or the
repo-based tag), an index whole with its children by digest. Blobs already
in the destination are skipped, blobs from a repository of the same registry
are mounted, others stream from their source; a manifest the destination
already has by digest costs one HEAD and a tag. Items move concurrently, at
most ``concurrency`` at once (the client applies its per-host limit to every
request), and each catches its own failure so the others finish.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import anyio

from lockresolve.bundle.commands.push import default_tag
from lockresolve.bundle.imagedesc import (
    Artifact,
    CopyFailed,
    ImageDesc,
    IndexDesc,
    is_distributable,
    manifest_of,
)
from lockresolve.bundle.progress import Progress
from lockresolve.bundle.sources import BlobSource
from lockresolve.bundle.transfer import BlobOnce, copy_blob, push_blob
from lockresolve.errors import BundleError, LockresolveError, NotFoundError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = ["repo_based_tag", "upload_tag", "write_artifacts", "write_tags"]

_TAG_CLEAN = re.compile(r"^[^a-zA-Z0-9_]+|[^a-zA-Z0-9\._-]+")


def repo_based_tag(artifact: Artifact) -> str:
    """imgpkg's ``RepoBasedTagGenerator``: ``<last 49 chars of the repo path>-sha256-<hex>.imgpkg``."""
    source = artifact.orig_ref or (artifact.refs[0] if artifact.refs else "")
    path = "-".join(source.split("@")[0].split("/")[1:])
    cleaned = _TAG_CLEAN.sub("", path)
    start = max(0, len(cleaned) - 49)
    cleaned_tag = _TAG_CLEAN.sub("", cleaned[start:])
    algorithm, _, hex_ = _digest(artifact).partition(":")
    dashed = f"{cleaned_tag}-{algorithm}-{hex_}.imgpkg"
    if dashed.startswith("-"):
        dashed = dashed[1:]
    return dashed.replace(":", "-")


def _digest(artifact: Artifact) -> str:
    return artifact.digest if isinstance(artifact, IndexDesc) else artifact.manifest_digest


def upload_tag(artifact: Artifact, repo_based: bool) -> str:
    return repo_based_tag(artifact) if repo_based else default_tag(_digest(artifact))


async def _put(client: RegistryClient, dst: Reference, reference: str, artifact: Artifact) -> None:
    manifest = manifest_of(artifact)
    digest = await client.put_manifest(
        dst.registry, dst.repository, reference, manifest.data, manifest.media_type
    )
    if digest != manifest.digest:
        raise BundleError(
            f"Expected imported image '{dst.context}:{reference}' to have digest "
            f"'{manifest.digest}' but was '{digest}'"
        )


async def _has_manifest(client: RegistryClient, dst: Reference, digest: str) -> bool:
    try:
        await client.resolve(dst.with_digest(digest))
    except NotFoundError:
        return False
    return True


async def _write_image(
    client: RegistryClient,
    image: ImageDesc,
    source: BlobSource,
    dst: Reference,
    reference: str,
    progress: Progress,
    once: BlobOnce,
) -> None:
    if not await _has_manifest(client, dst, image.manifest_digest):
        target = (dst.registry, dst.repository)
        ref = image.refs[0] if image.refs else ""
        origin = source.origin(ref)
        config_digest = "sha256:" + hashlib.sha256(image.config_raw).hexdigest()
        if config_digest != image.config_digest:
            raise BundleError(f"config of {ref} does not hash to {image.config_digest}")

        async def layer(digest: str, size: int) -> None:
            if origin is not None:
                await copy_blob(client, origin, target, digest, size, progress)
            else:
                body = source.body(ref, digest, progress)
                await push_blob(client, *target, digest, size, body)

        async def config() -> None:
            await push_blob(client, *target, config_digest, len(image.config_raw), image.config_raw)

        async def shared(digest: str, size: int) -> None:
            await once.write((*target, digest), lambda: layer(digest, size))

        async with anyio.create_task_group() as tg:
            tg.start_soon(once.write, (*target, config_digest), config)
            for desc in image.layers:
                if is_distributable(desc.media_type):
                    progress.expect(desc.size)
                    tg.start_soon(shared, desc.digest, desc.size)
    await _put(client, dst, reference, image)


async def _write(
    client: RegistryClient,
    artifact: Artifact,
    source: BlobSource,
    dst: Reference,
    reference: str,
    progress: Progress,
    once: BlobOnce,
) -> None:
    if isinstance(artifact, ImageDesc):
        await _write_image(client, artifact, source, dst, reference, progress, once)
        return
    async with anyio.create_task_group() as tg:
        for index in artifact.indexes:
            tg.start_soon(_write, client, index, source, dst, index.digest, progress, once)
        for image in artifact.images:
            tg.start_soon(_write, client, image, source, dst, image.manifest_digest, progress, once)
    await _put(client, dst, reference, artifact)


async def write_artifacts(
    client: RegistryClient,
    artifacts: Sequence[Artifact],
    source: BlobSource,
    dst: Reference,
    *,
    repo_based_tags: bool = False,
    concurrency: int = 5,
    progress: Progress | None = None,
) -> None:
    """Write every artifact to ``dst`` (a repository); raises :class:`CopyFailed` at the end."""
    bar = progress or Progress.disabled()
    limiter = anyio.CapacityLimiter(max(1, concurrency))
    failures: list[tuple[str, LockresolveError]] = []
    unique = {_digest(a): a for a in artifacts}
    once = BlobOnce()  # a blob shared by several images is written to dst once

    async def one(artifact: Artifact) -> None:
        async with limiter:
            try:
                tag = upload_tag(artifact, repo_based_tags)
                await _write(client, artifact, source, dst, tag, bar, once)
            except LockresolveError as exc:
                failures.append((artifact.refs[0] if artifact.refs else _digest(artifact), exc))

    async with anyio.create_task_group() as tg:
        for artifact in unique.values():
            tg.start_soon(one, artifact)
    if failures:
        raise CopyFailed(failures)


async def write_tags(client: RegistryClient, artifacts: Sequence[Artifact], dst: Reference) -> None:
    """Re-apply each item's original tag (imgpkg's ``tagAllImages``)."""
    failures: list[tuple[str, LockresolveError]] = []

    async def one(artifact: Artifact) -> None:
        try:
            await _put(client, dst, artifact.tag, artifact)
        except LockresolveError as exc:
            failures.append((f"{dst.context}:{artifact.tag}", exc))

    async with anyio.create_task_group() as tg:
        for artifact in artifacts:
            if artifact.tag:
                tg.start_soon(one, artifact)
    if failures:
        raise CopyFailed(failures)
