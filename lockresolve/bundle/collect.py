"""What a copy takes: the bundle, every image of its ``images.yml``, nested bundles.

As imgpkg's ``getProvidedSourceImages`` and ``AllImagesLockRefs``: each image
of a bundle is looked for first in the bundle's repository
(``<bundle repo>@<digest>``), then at its original reference; an image the
bundle's locations image marks as not a bundle is taken from the bundle's
repository without a look. Bundles found among the images are walked in turn
(concurrently; each task records its own failure so one does not cancel the
others). The result lists what to describe and, per bundle, the
``(original image, isBundle)`` pairs its locations image will record.
"""

from __future__ import annotations

import gzip
import io
import json
import tempfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
import anyio.to_thread

from lockresolve.bundle.commands.pull import NOT_BUNDLE_HINT
from lockresolve.bundle.imagedesc import CopyFailed, RefMeta
from lockresolve.bundle.locations import ImageLocation, fetch_locations, one_per_digest
from lockresolve.bundle.remote import RemoteImage, RemoteIndex, fetch_artifact
from lockresolve.bundle.tarmember import find_images_lock
from lockresolve.errors import AuthError, BundleError, LockresolveError, NotFoundError
from lockresolve.lock import BundleLock, ImagesLock, ImagesLockEntry
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = [
    "LOCK_ANNOTATIONS_LABEL",
    "ROOT_BUNDLE_LABEL",
    "BundleNode",
    "Collection",
    "collect_bundle",
    "collect_bundle_lock",
    "collect_image",
    "collect_images_lock",
    "images_lock_from_layer",
    "lock_annotations_label",
    "lock_annotations_of",
    "read_bundle_lock",
]

ROOT_BUNDLE_LABEL = "dev.carvel.imgpkg.copy.root-bundle"
BUNDLE_FLAG_HINT = (
    "Expected bundle flag when copying a bundle (hint: Use -b instead of -i for bundles)"
)


@dataclass(frozen=True)
class BundleNode:
    """A bundle met during the walk: where it was read, and its images for the locations image."""

    ref: Reference
    images: tuple[ImageLocation, ...]

    @property
    def digest(self) -> str:
        assert self.ref.digest is not None
        return str(self.ref.digest)


@dataclass(frozen=True)
class Collection:
    metas: tuple[RefMeta, ...]
    bundles: tuple[BundleNode, ...] = ()
    root_tag: str = ""


def images_lock_from_layer(opener: Callable[[], io.BufferedReader], shown: str) -> ImagesLock:
    """The ``.imgpkg/images.yml`` of a bundle layer (gzip or not), streamed, memory flat.

    Extended tar headers are capped (:mod:`lockresolve.bundle.tarmember`), and an
    ``images.yml`` over 16 MiB is an error naming it, never read cut short.
    """
    with opener() as raw:
        head = raw.peek(2)[:2]
        stream: IO[bytes] | gzip.GzipFile = raw
        if head == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=raw)
        try:
            data = find_images_lock(stream)
        except BundleError as exc:
            raise BundleError(f"Reading ImagesLock file of {shown}: {exc}") from None
        except (OSError, EOFError, zlib.error) as exc:
            raise BundleError(f"Reading ImagesLock file of {shown}: reading tar: {exc}") from None
    if data is None:
        raise BundleError(
            "Reading ImagesLock file: Expected to find .imgpkg/images.yml in bundle image"
        )
    return ImagesLock.from_bytes(data, source=shown)


async def read_bundle_lock(client: RegistryClient, bundle: RemoteImage) -> ImagesLock:
    layers = bundle.layers
    if len(layers) != 1:
        raise BundleError(
            f"Reading ImagesLock file: Expected bundle to only have a single layer, got {len(layers)}"
        )
    with tempfile.TemporaryDirectory(prefix="lockresolve-bundle-") as tmp:
        path = Path(tmp) / "layer"
        async with await anyio.open_file(path, "wb") as fh:
            async for chunk in client.get_blob(
                bundle.ref.registry,
                bundle.ref.repository,
                layers[0].digest,
                size=layers[0].size or None,
            ):
                await fh.write(chunk)
        return await anyio.to_thread.run_sync(
            lambda: images_lock_from_layer(lambda: open(path, "rb"), str(bundle.ref))
        )


def _in_repo(repo: Reference, image: str) -> Reference:
    digest = Reference.parse(image).digest
    assert digest is not None
    return Reference(repo.registry, repo.repository).with_digest(digest)


async def _first_existing(client: RegistryClient, candidates: list[Reference]) -> Reference:
    last: LockresolveError | None = None
    for candidate in candidates:
        try:
            await client.resolve(candidate)
            return candidate
        except (NotFoundError, AuthError) as exc:
            last = exc
    assert last is not None
    raise last


@dataclass
class _Walk:
    client: RegistryClient
    metas: dict[str, RefMeta] = field(default_factory=dict)
    bundles: dict[str, BundleNode] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    failures: list[tuple[str, LockresolveError]] = field(default_factory=list)

    def add(self, meta: RefMeta) -> None:
        self.metas.setdefault(f"{meta.ref}:{meta.tag}", meta)

    async def bundle(self, bundle: RemoteImage) -> None:
        digest = bundle.manifest.digest
        if digest in self.seen:
            return
        self.seen.add(digest)
        lock = await read_bundle_lock(self.client, bundle)
        locations = await fetch_locations(self.client, bundle.ref, digest)
        flags: Mapping[str, bool] = (
            {loc.image: loc.is_bundle for loc in locations.images} if locations else {}
        )
        found: dict[str, ImageLocation] = {}

        async def image(entry: ImagesLockEntry) -> None:
            try:
                found[entry.image] = await self.image(bundle, entry, flags.get(entry.image))
            except LockresolveError as exc:
                self.failures.append((entry.image, exc))

        async with anyio.create_task_group() as tg:
            for entry in lock.images:
                tg.start_soon(image, entry)
        self.bundles[digest] = BundleNode(
            bundle.ref, one_per_digest(found[e.image] for e in lock.images if e.image in found)
        )

    async def image(
        self, bundle: RemoteImage, entry: ImagesLockEntry, known: bool | None
    ) -> ImageLocation:
        in_repo = _in_repo(bundle.ref, entry.image)
        if known is False:
            self.add(RefMeta(ref=str(in_repo), orig_ref=entry.image))
            return ImageLocation(entry.image, False)
        source = await _first_existing(self.client, [in_repo, Reference.parse(entry.image)])
        artifact = await fetch_artifact(self.client, source)
        is_bundle = isinstance(artifact, RemoteImage) and artifact.is_bundle
        self.add(RefMeta(ref=str(artifact.ref), orig_ref=entry.image, prefetched=artifact))
        if is_bundle:
            assert isinstance(artifact, RemoteImage)
            await self.bundle(artifact)
        return ImageLocation(entry.image, is_bundle)


def _tag_of(ref: Reference) -> str:
    return "" if ref.digest is not None else ref.effective_tag or ""


async def collect_bundle(
    client: RegistryClient, source: str, *, tag: str | None = None
) -> Collection:
    """The bundle at ``source`` and everything it locks (``tag`` overrides the tag to re-apply)."""
    ref = Reference.parse(source)
    artifact = await fetch_artifact(client, ref)
    if not isinstance(artifact, RemoteImage) or not artifact.is_bundle:
        raise BundleError(NOT_BUNDLE_HINT)
    walk = _Walk(client)
    await walk.bundle(artifact)
    if walk.failures:
        raise CopyFailed(walk.failures)
    root_tag = _tag_of(ref) if tag is None else tag
    root = RefMeta(
        ref=str(artifact.ref),
        tag=root_tag,
        labels={ROOT_BUNDLE_LABEL: ""},
        orig_ref=str(artifact.ref),
        prefetched=artifact,
    )
    walk.add(root)
    root_node = walk.bundles.pop(artifact.manifest.digest)
    return Collection(
        metas=tuple(walk.metas.values()),
        bundles=(root_node, *walk.bundles.values()),
        root_tag=root_tag,
    )


async def collect_image(client: RegistryClient, source: str) -> Collection:
    """``copy -i``: one image or index (a bundle is refused with imgpkg's hint)."""
    ref = Reference.parse(source)
    artifact = await fetch_artifact(client, ref)
    if isinstance(artifact, RemoteImage) and artifact.is_bundle:
        raise BundleError(BUNDLE_FLAG_HINT)
    return Collection(
        metas=(RefMeta(ref=str(artifact.ref), tag=_tag_of(ref), prefetched=artifact),)
    )


async def collect_images_lock(client: RegistryClient, lock: ImagesLock) -> Collection:
    """``copy --lock`` with an ImagesLock: every image; bundles are refused, as imgpkg does."""
    metas: dict[str, RefMeta] = {}
    for entry in lock.images:
        artifact: RemoteImage | RemoteIndex = await fetch_artifact(client, entry.reference)
        if isinstance(artifact, RemoteImage) and artifact.is_bundle:
            raise BundleError(
                "Unable to copy bundles using an Images Lock file "
                "(hint: Create a bundle with these images)"
            )
        labels = None
        if entry.annotations:  # carried through a tar or layout (imgpkg #217)
            labels = {LOCK_ANNOTATIONS_LABEL: lock_annotations_label(entry.annotations)}
        metas.setdefault(
            str(artifact.ref), RefMeta(ref=str(artifact.ref), labels=labels, prefetched=artifact)
        )
    return Collection(metas=tuple(metas.values()))


#: the label that carries an ImagesLock entry's annotations through ``--to-tar`` and
#: ``--to-oci-layout`` (imgpkg, which has no such thing, keeps it in ``Labels`` and ignores it)
LOCK_ANNOTATIONS_LABEL = "dev.carvel.lockresolve.images-lock.annotations"


def lock_annotations_label(annotations: Mapping[str, str]) -> str:
    return json.dumps(dict(annotations), sort_keys=True, separators=(",", ":"))


def lock_annotations_of(labels: Mapping[str, str] | None) -> dict[str, str]:
    """The ImagesLock annotations a tar or layout item carries ({} when none)."""
    raw = (labels or {}).get(LOCK_ANNOTATIONS_LABEL)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


async def collect_bundle_lock(client: RegistryClient, lock: BundleLock) -> Collection:
    return await collect_bundle(client, lock.image, tag=lock.tag)
