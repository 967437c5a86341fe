"""``copy``: a bundle (with its images and nested bundles), an image, or a lock's images,
from a registry, an imgpkg tar or an OCI layout, to a repository, a tar or an OCI layout.

The steps are imgpkg's (``cmd/copy_repo_src.go``): collect what to copy,
describe it (manifests and configs), write every item to the destination
under its ``sha256-<hex>.imgpkg`` tag, write each bundle's locations image,
re-apply the original tags, then write ``--lock-output``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from lockresolve.bundle.collect import (
    ROOT_BUNDLE_LABEL,
    BundleNode,
    Collection,
    collect_bundle,
    collect_image,
    collect_images_lock,
    images_lock_from_layer,
    lock_annotations_of,
)
from lockresolve.bundle.formats.image import BUNDLE_LABEL
from lockresolve.bundle.formats.imgtar import TarWriteResult, read_imgpkg_tar, write_imgpkg_tar
from lockresolve.bundle.imagedesc import Artifact, CopyFailed, ImageDesc, describe
from lockresolve.bundle.locations import (
    ImageLocation,
    ImageLocations,
    one_per_digest,
    push_locations,
)
from lockresolve.bundle.progress import Progress
from lockresolve.bundle.referrerstag import without_fallback_indexes, write_fallback_tags
from lockresolve.bundle.relocate import write_artifacts, write_tags
from lockresolve.bundle.signatures import COSIGN_SUFFIXES, REFERRERS_SUFFIXES, attached_metas
from lockresolve.bundle.sources import BlobSource, FileBlobs, Region, RegistryBlobs
from lockresolve.errors import BundleError, LockresolveError, UsageError
from lockresolve.lock import BundleLock, ImagesLock, ImagesLockEntry, read_any_lock
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = ["CopyResult", "CopySource", "copy"]


@dataclass(frozen=True)
class CopySource:
    """Exactly one of: ``bundle``, ``image``, ``lock`` (a file), ``tar``, ``oci_layout``."""

    bundle: str | None = None
    image: str | None = None
    lock: str | os.PathLike[str] | None = None
    tar: str | os.PathLike[str] | None = None
    oci_layout: str | os.PathLike[str] | None = None

    def check(self) -> None:
        given = [v for v in (self.lock, self.tar, self.bundle, self.image, self.oci_layout) if v]
        if len(given) != 1:
            raise UsageError(
                "Expected either --lock, --bundle (-b), --image (-i), or --tar as a source"
            )


@dataclass(frozen=True)
class CopyResult:
    artifacts: tuple[Artifact, ...]
    bundle: str | None = None
    tag: str = ""
    tar: TarWriteResult | None = None


@dataclass(frozen=True)
class _Loaded:
    artifacts: list[Artifact]
    blobs: BlobSource
    bundles: tuple[BundleNode, ...]
    images_lock: ImagesLock | None = None


def _root(artifacts: Sequence[Artifact]) -> ImageDesc | None:
    roots = [
        a
        for a in artifacts
        if isinstance(a, ImageDesc) and a.labels and ROOT_BUNDLE_LABEL in a.labels
    ]
    if len(roots) > 1:
        raise BundleError("Internal inconsistency: expected only 1 root bundle")
    return roots[0] if roots else None


def _is_bundle(image: ImageDesc) -> bool:
    try:
        config = json.loads(image.config_raw)
        labels = (config.get("config") or {}).get("Labels") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(labels, dict) and BUNDLE_LABEL in labels


async def _bundle_nodes_from_files(
    artifacts: Sequence[Artifact], blobs: FileBlobs
) -> tuple[BundleNode, ...]:
    """For a tar or layout source: the bundle graph, read from the bundles' own layers."""
    root = _root(artifacts)
    if root is None:
        return ()
    by_digest = {a.digest: a for a in artifacts}
    nodes: dict[str, BundleNode] = {}
    pending = [root]
    while pending:
        bundle = pending.pop()
        if bundle.manifest_digest in nodes:
            continue
        if len(bundle.layers) != 1:
            raise BundleError("Expected bundle to only have a single layer")
        lock = await anyio.to_thread.run_sync(
            _lock_of, blobs.region(bundle.layers[0].digest), bundle
        )
        images: list[ImageLocation] = []
        for entry in lock.images:
            digest = str(entry.reference.digest)
            found = by_digest.get(digest)
            if found is None:
                raise BundleError(
                    f"Internal inconsistency: '{entry.image}' not found in the source"
                )
            child_is_bundle = isinstance(found, ImageDesc) and _is_bundle(found)
            images.append(ImageLocation(entry.image, child_is_bundle))
            if child_is_bundle:
                assert isinstance(found, ImageDesc)
                pending.append(found)
        ref = Reference.parse(bundle.refs[0]) if bundle.refs else None
        if ref is None:
            raise BundleError("a bundle in the source has no reference")
        nodes[bundle.manifest_digest] = BundleNode(
            ref.with_digest(bundle.manifest_digest), one_per_digest(images)
        )
    return tuple(nodes.values())


def _lock_of(region: Region, bundle: ImageDesc) -> ImagesLock:
    shown = bundle.refs[0] if bundle.refs else bundle.manifest_digest
    return images_lock_from_layer(lambda: io.BufferedReader(_Limited(region)), shown)


class _Limited(io.RawIOBase):
    """A read-only view of one region of a file (one tar entry), for streaming readers."""

    def __init__(self, region: Region) -> None:
        super().__init__()
        self._fh = open(region.path, "rb")  # noqa: SIM115 - closed by close()
        self._fh.seek(region.offset)
        self._left = region.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._left)
        got = self._fh.readinto(view[:n]) if n else 0
        self._left -= got
        return got

    def close(self) -> None:
        self._fh.close()
        super().close()


async def _load(
    client: RegistryClient,
    source: CopySource,
    on_line: Callable[[str], None],
    cosign_signatures: bool = False,
    referrers: bool = False,
) -> _Loaded:
    if source.tar:
        artifacts, blobs = read_imgpkg_tar(Path(source.tar))
        return _Loaded(artifacts, blobs, await _bundle_nodes_from_files(artifacts, blobs))
    if source.oci_layout:
        from lockresolve.bundle.formats.ocilayout import read_oci_layout

        artifacts, blobs = read_oci_layout(Path(source.oci_layout))
        return _Loaded(artifacts, blobs, await _bundle_nodes_from_files(artifacts, blobs))
    images_lock: ImagesLock | None = None
    collection: Collection
    if source.bundle:
        collection = await collect_bundle(client, source.bundle)
    elif source.image:
        collection = await collect_image(client, source.image)
    else:
        assert source.lock is not None
        lock = read_any_lock(source.lock)
        if isinstance(lock, BundleLock):
            collection = await collect_bundle(client, lock.image, tag=lock.tag)
        else:
            images_lock = lock
            collection = await collect_images_lock(client, lock)
    suffixes = (COSIGN_SUFFIXES if cosign_signatures else ()) + (
        REFERRERS_SUFFIXES if referrers else ()
    )
    if suffixes:
        attached = await attached_metas(client, collection.metas, suffixes)
        collection = dataclasses.replace(collection, metas=(*collection.metas, *attached))
    on_line(f"copy | exporting {len(collection.metas)} images...")
    for meta in sorted(collection.metas, key=lambda m: m.ref):
        on_line(f"copy | will export {meta.ref}")
    artifacts = await describe(client, collection.metas)
    on_line(f"copy | exported {len(collection.metas)} images")
    return _Loaded(artifacts, RegistryBlobs(client), collection.bundles, images_lock)


def _lock_output(
    path: str | os.PathLike[str], loaded: _Loaded, dst: Reference
) -> tuple[str | None, str]:
    root = _root(loaded.artifacts)
    if root is not None:
        image = f"{dst.context}@{root.manifest_digest}"
        BundleLock(image=image, tag=root.tag).write(path)
        return image, root.tag
    for artifact in loaded.artifacts:
        if isinstance(artifact, ImageDesc) and _is_bundle(artifact):
            raise BundleError(
                "Unable to determine correct root bundle to use for lock-output. hint: if "
                "copying from a tarball, try re-generating the tarball"
            )
    if loaded.images_lock is not None:
        entries = []
        for entry in loaded.images_lock.images:
            entries.append(
                ImagesLockEntry(f"{dst.context}@{entry.reference.digest}", dict(entry.annotations))
            )
        ImagesLock(tuple(entries)).write(path)
    else:
        by_digest = {a.digest: a for a in loaded.artifacts}
        ImagesLock(
            tuple(
                ImagesLockEntry(f"{dst.context}@{d}", lock_annotations_of(by_digest[d].labels))
                for d in sorted(by_digest)
            )
        ).write(path)
    return None, ""


async def _write_locations(
    client: RegistryClient, bundles: Sequence[BundleNode], dst: Reference
) -> None:
    failures: list[tuple[str, LockresolveError]] = []

    async def one(node: BundleNode) -> None:
        try:
            await push_locations(client, dst, node.digest, ImageLocations(node.images))
        except LockresolveError as exc:
            failures.append((f"locations of {node.ref}", exc))

    async with anyio.create_task_group() as tg:
        for node in bundles:
            tg.start_soon(one, node)
    if failures:
        raise CopyFailed(failures)


async def copy(
    client: RegistryClient,
    source: CopySource,
    *,
    to_repo: str | None = None,
    to_tar: str | os.PathLike[str] | None = None,
    to_oci_layout: str | os.PathLike[str] | None = None,
    lock_output: str | os.PathLike[str] | None = None,
    repo_based_tags: bool = False,
    resume: bool = False,
    concurrency: int = 5,
    cosign_signatures: bool = False,
    referrers: bool = False,
    on_line: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy ``source`` to exactly one destination; see the module doc.

    ``cosign_signatures``: also copy each item's cosign signature (imgpkg's
    ``--cosign-signatures``), attestations and SBOMs; ``referrers``: its OCI 1.1
    referrers (fallback tag); see :mod:`lockresolve.bundle.signatures`. With
    ``referrers``, a repository destination without the referrers API gets the
    ``sha256-<hex>`` fallback indexes written or merged
    (:mod:`lockresolve.bundle.referrerstag`), also from a tar or an OCI layout.
    """
    source.check()
    dests = [d for d in (to_repo, to_tar, to_oci_layout) if d]
    if len(dests) != 1:
        raise UsageError("Expected either --to-tar or --to-repo")
    if to_tar and source.tar:
        raise UsageError("Cannot use tar source (--tar) with tar destination (--to-tar)")
    if (to_tar or to_oci_layout) and lock_output:
        raise UsageError("Cannot output lock file with tar destination")
    if resume and not to_tar:
        raise UsageError("Flag --resume can only be used when copying to tar")
    log = on_line or (lambda line: None)
    bar = progress or Progress.disabled()
    dst: Reference | None = None
    if to_repo:
        dst = _parse_repo(to_repo)
        client.write_to(dst.registry, dst.repository)  # a destination: never a mirror
    loaded = await _load(client, source, log, cosign_signatures, referrers)
    if to_tar:
        log("copy | writing layers...")
        written = await write_imgpkg_tar(
            to_tar, loaded.artifacts, loaded.blobs, resume=resume, progress=bar
        )
        for name in written.names[1:]:
            log(f"copy | done: file '{name}'")
        return CopyResult(tuple(loaded.artifacts), tar=written)
    if to_oci_layout:
        from lockresolve.bundle.formats.ocilayout import write_oci_layout

        await write_oci_layout(to_oci_layout, loaded.artifacts, loaded.blobs, progress=bar)
        return CopyResult(tuple(loaded.artifacts))
    assert dst is not None
    log(f"copy | importing {len(loaded.artifacts)} images...")
    await write_artifacts(
        client,
        loaded.artifacts,
        loaded.blobs,
        dst,
        repo_based_tags=repo_based_tags,
        concurrency=concurrency,
        progress=bar,
    )
    log("copy | done uploading images")
    await _write_locations(client, loaded.bundles, dst)
    log("copy | Tagging images")
    if referrers:  # fallback indexes are merged with the destination's, not overwritten
        await write_tags(client, without_fallback_indexes(loaded.artifacts), dst)
        await write_fallback_tags(client, loaded.artifacts, dst)
    else:
        await write_tags(client, loaded.artifacts, dst)
    root = _root(loaded.artifacts)
    bundle = f"{dst.context}@{root.manifest_digest}" if root is not None else None
    if lock_output:
        _lock_output(lock_output, loaded, dst)
    return CopyResult(tuple(loaded.artifacts), bundle=bundle, tag=root.tag if root else "")


def _parse_repo(text: str) -> Reference:
    """``--to-repo``: a repository (imgpkg's ``name.NewRepository``: no tag, no digest)."""
    ref = Reference.parse(text)
    if ref.tag is not None or ref.digest is not None:
        raise UsageError(
            f"Building import repository ref: repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: {text}"
        )
    return ref
