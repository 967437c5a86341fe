"""Descriptions of the images and indexes a copy moves, as imgpkg's ``imagedesc`` package.

An :class:`ImageDesc` holds an image's raw manifest and config and its layer
descriptors; an :class:`IndexDesc` an index's raw manifest and its children.
They are built from a registry (:func:`describe`), read from an imgpkg tar's
``manifest.json`` (:func:`descriptors_from_json`) or from an OCI layout, and
written back as ``manifest.json`` (:func:`descriptors_to_json`) byte for byte
as imgpkg's ``json.Marshal`` of ``[]ImageOrImageIndexDescriptor``: struct
fields in declaration order, compact, Go's string escaping, ``null`` for
empty slices and maps, entries sorted by imgpkg's sort key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

import anyio

from lockresolve.bundle.formats.image import go_json_string
from lockresolve.bundle.remote import RemoteImage, RemoteIndex, fetch_artifact
from lockresolve.errors import BundleError, LockresolveError
from lockresolve.mediatypes import (
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER,
    DOCKER_UNCOMPRESSED_LAYER,
    OCI_LAYER,
    OCI_RESTRICTED_LAYER,
    OCI_UNCOMPRESSED_LAYER,
    OCI_UNCOMPRESSED_RESTRICTED_LAYER,
    OCI_ZSTD_LAYER,
)
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.model import Manifest

__all__ = [
    "Artifact",
    "CopyFailed",
    "ImageDesc",
    "IndexDesc",
    "LayerDesc",
    "RefMeta",
    "describe",
    "descriptors_from_json",
    "descriptors_to_json",
    "is_distributable",
    "manifest_of",
    "sort_key",
]

_LAYER_TYPES = frozenset(
    {
        DOCKER_LAYER,
        DOCKER_FOREIGN_LAYER,
        DOCKER_UNCOMPRESSED_LAYER,
        OCI_LAYER,
        OCI_ZSTD_LAYER,
        OCI_UNCOMPRESSED_LAYER,
        OCI_RESTRICTED_LAYER,
        OCI_UNCOMPRESSED_RESTRICTED_LAYER,
    }
)
_NON_DISTRIBUTABLE = frozenset(
    {DOCKER_FOREIGN_LAYER, OCI_RESTRICTED_LAYER, OCI_UNCOMPRESSED_RESTRICTED_LAYER}
)


class CopyFailed(BundleError):
    """One or more items of a copy failed; ``failures`` pairs each item with its error."""

    def __init__(self, failures: Sequence[tuple[str, LockresolveError]]) -> None:
        self.failures = tuple(failures)
        lines = [f"{what}: {err}" for what, err in self.failures]
        super().__init__(f"{len(lines)} item(s) failed to copy:\n  " + "\n  ".join(lines))


def is_distributable(media_type: str) -> bool:
    return media_type not in _NON_DISTRIBUTABLE


@dataclass(frozen=True)
class LayerDesc:
    media_type: str
    digest: str
    diff_id: str
    size: int


class _Carried(TypedDict):
    """The fields :class:`ImageDesc` and :class:`IndexDesc` share, as keyword arguments."""

    refs: tuple[str, ...]
    tag: str
    orig_ref: str
    labels: Mapping[str, str] | None


@dataclass(frozen=True, kw_only=True)
class _Described:
    """What imgpkg's image and index descriptors share: ``Refs``, ``Tag``, ``OrigRef``, ``Labels``."""

    refs: tuple[str, ...]
    tag: str = ""
    orig_ref: str = ""
    labels: Mapping[str, str] | None = None

    @property
    def ref(self) -> Reference:
        return Reference.parse(self.refs[0])


@dataclass(frozen=True, kw_only=True)
class ImageDesc(_Described):
    layers: tuple[LayerDesc, ...]
    config_digest: str
    config_raw: bytes
    manifest_media_type: str
    manifest_digest: str
    manifest_raw: bytes

    @property
    def digest(self) -> str:
        return self.manifest_digest


@dataclass(frozen=True, kw_only=True)
class IndexDesc(_Described):
    images: tuple[ImageDesc, ...]
    indexes: tuple[IndexDesc, ...]
    media_type: str
    digest: str
    raw: bytes


Artifact = ImageDesc | IndexDesc


def sort_key(artifact: Artifact) -> str:
    if isinstance(artifact, IndexDesc):
        return artifact.digest
    return artifact.manifest_digest + "/" + artifact.config_digest


@dataclass(frozen=True)
class RefMeta:
    """What to describe: a digest reference and the metadata imgpkg carries with it."""

    ref: str
    tag: str = ""
    labels: Mapping[str, str] | None = None
    orig_ref: str = ""
    prefetched: RemoteImage | RemoteIndex | None = field(default=None, compare=False)


# --- from a registry ---------------------------------------------------------


def _carried(meta: RefMeta, ref: str) -> _Carried:
    return {"refs": (ref,), "tag": meta.tag, "orig_ref": meta.orig_ref, "labels": meta.labels}


def _image_desc(image: RemoteImage, meta: RefMeta, ref: str) -> ImageDesc:
    diff_ids = image.diff_ids
    layers = tuple(
        LayerDesc(
            media_type=d.media_type,
            digest=d.digest,
            diff_id=(diff_ids[i] if i < len(diff_ids) else "")
            if d.media_type in _LAYER_TYPES
            else "",
            size=d.size,
        )
        for i, d in enumerate(image.layers)
    )
    return ImageDesc(
        **_carried(meta, ref),
        layers=layers,
        config_digest=image.config_descriptor.digest,
        config_raw=image.config,
        manifest_media_type=image.manifest.media_type,
        manifest_digest=image.manifest.digest,
        manifest_raw=image.manifest.data,
    )


async def _describe_one(client: RegistryClient, meta: RefMeta) -> Artifact:
    ref = Reference.parse(meta.ref)
    artifact = meta.prefetched or await fetch_artifact(client, ref)
    if isinstance(artifact, RemoteImage):
        return _image_desc(artifact, meta, str(artifact.ref))
    return await _describe_index(client, artifact, meta)


async def _describe_index(client: RegistryClient, index: RemoteIndex, meta: RefMeta) -> IndexDesc:
    children = index.children
    results: list[Artifact | None] = [None] * len(children)

    async def child(i: int, digest: str) -> None:
        child_ref = Reference(index.ref.registry, index.ref.repository).with_digest(digest)
        results[i] = await _describe_one(client, replace(meta, ref=str(child_ref), prefetched=None))

    async with anyio.create_task_group() as tg:
        for i, desc in enumerate(children):
            tg.start_soon(child, i, desc.digest)
    images = tuple(r for r in results if isinstance(r, ImageDesc))
    indexes = tuple(r for r in results if isinstance(r, IndexDesc))
    return IndexDesc(
        **_carried(meta, str(index.ref)),
        images=images,
        indexes=indexes,
        media_type=index.manifest.media_type,
        digest=index.manifest.digest,
        raw=index.manifest.data,
    )


async def describe(client: RegistryClient, metas: Sequence[RefMeta]) -> list[Artifact]:
    """Describe every reference (concurrently); failures are gathered, not cancelling."""
    results: list[Artifact | None] = [None] * len(metas)
    failures: list[tuple[str, LockresolveError]] = []

    async def one(i: int, meta: RefMeta) -> None:
        try:
            results[i] = await _describe_one(client, meta)
        except LockresolveError as exc:
            failures.append((meta.ref, exc))

    async with anyio.create_task_group() as tg:
        for i, meta in enumerate(metas):
            tg.start_soon(one, i, meta)
    if failures:
        raise CopyFailed(failures)
    return [r for r in results if r is not None]


# --- imgpkg's manifest.json --------------------------------------------------


def _s(value: str) -> str:
    return go_json_string(value)


def _list(items: Sequence[str]) -> str:
    return "null" if not items else "[" + ",".join(items) + "]"


def _labels(labels: Mapping[str, str] | None) -> str:
    if labels is None:
        return "null"
    pairs = [f"{_s(k)}:{_s(labels[k])}" for k in sorted(labels, key=lambda k: k.encode())]
    return "{" + ",".join(pairs) + "}"


def _layer_json(layer: LayerDesc) -> str:
    return (
        f'{{"MediaType":{_s(layer.media_type)},"Digest":{_s(layer.digest)},'
        f'"DiffID":{_s(layer.diff_id)},"Size":{layer.size}}}'
    )


def _raw(data: bytes) -> str:
    return _s(data.decode("utf-8", "surrogateescape"))


def _described_json(described: _Described, fields: str) -> str:
    """``{"Refs":..., <fields>, "Tag":..., "OrigRef":..., "Labels":...}``, in the structs' order."""
    return (
        f'{{"Refs":{_list([_s(r) for r in described.refs])},{fields},'
        f'"Tag":{_s(described.tag)},"OrigRef":{_s(described.orig_ref)},'
        f'"Labels":{_labels(described.labels)}}}'
    )


def _image_json(image: ImageDesc) -> str:
    return _described_json(
        image,
        f'"Layers":{_list([_layer_json(layer) for layer in image.layers])},'
        f'"Config":{{"Digest":{_s(image.config_digest)},"Raw":{_raw(image.config_raw)}}},'
        f'"Manifest":{{"MediaType":{_s(image.manifest_media_type)},'
        f'"Digest":{_s(image.manifest_digest)},"Raw":{_raw(image.manifest_raw)}}}',
    )


def _index_json(index: IndexDesc) -> str:
    return _described_json(
        index,
        f'"Images":{_list([_image_json(i) for i in index.images])},'
        f'"Indexes":{_list([_index_json(i) for i in index.indexes])},'
        f'"MediaType":{_s(index.media_type)},"Digest":{_s(index.digest)},'
        f'"Raw":{_raw(index.raw)}',
    )


def descriptors_to_json(artifacts: Sequence[Artifact]) -> bytes:
    """imgpkg's ``manifest.json``: sorted by imgpkg's key, Go's ``json.Marshal`` bytes."""
    parts = []
    for artifact in sorted(artifacts, key=lambda a: sort_key(a).encode()):
        if isinstance(artifact, IndexDesc):
            parts.append(f'{{"ImageIndex":{_index_json(artifact)},"Image":null}}')
        else:
            parts.append(f'{{"ImageIndex":null,"Image":{_image_json(artifact)}}}')
    return ("[" + ",".join(parts) + "]").encode("utf-8", "surrogateescape")


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BundleError(f"Reading manifest.json: field {key} is not a string")
    return value


def _strs(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BundleError(f"Reading manifest.json: field {key} is not a list of strings")
    return tuple(value)


def _opt_labels(obj: Mapping[str, Any]) -> Mapping[str, str] | None:
    value = obj.get("Labels")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BundleError("Reading manifest.json: Labels is not an object")
    return {str(k): str(v) for k, v in value.items()}


def _carried_from(obj: Mapping[str, Any]) -> _Carried:
    return {
        "refs": _strs(obj, "Refs"),
        "tag": _str(obj, "Tag"),
        "orig_ref": _str(obj, "OrigRef"),
        "labels": _opt_labels(obj),
    }


def _image_from(obj: Mapping[str, Any]) -> ImageDesc:
    layers = []
    for raw in obj.get("Layers") or []:
        size = raw.get("Size", 0)
        if not isinstance(size, int) or size < 0:
            raise BundleError("Reading manifest.json: a layer size is invalid")
        layers.append(
            LayerDesc(_str(raw, "MediaType"), _str(raw, "Digest"), _str(raw, "DiffID"), size)
        )
    config = obj.get("Config") or {}
    manifest = obj.get("Manifest") or {}
    return ImageDesc(
        **_carried_from(obj),
        layers=tuple(layers),
        config_digest=_str(config, "Digest"),
        config_raw=_str(config, "Raw").encode("utf-8", "surrogateescape"),
        manifest_media_type=_str(manifest, "MediaType"),
        manifest_digest=_str(manifest, "Digest"),
        manifest_raw=_str(manifest, "Raw").encode("utf-8", "surrogateescape"),
    )


def _index_from(obj: Mapping[str, Any]) -> IndexDesc:
    return IndexDesc(
        **_carried_from(obj),
        images=tuple(_image_from(i) for i in obj.get("Images") or []),
        indexes=tuple(_index_from(i) for i in obj.get("Indexes") or []),
        media_type=_str(obj, "MediaType"),
        digest=_str(obj, "Digest"),
        raw=_str(obj, "Raw").encode("utf-8", "surrogateescape"),
    )


def descriptors_from_json(data: bytes) -> list[Artifact]:
    """Read imgpkg's ``manifest.json``; raw manifests and configs are checked by digest later."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"Reading manifest.json: {exc}") from None
    if not isinstance(doc, list):
        raise BundleError("Reading manifest.json: expected a list")
    out: list[Artifact] = []
    try:
        for item in doc:
            if item.get("ImageIndex") is not None:
                out.append(_index_from(item["ImageIndex"]))
            elif item.get("Image") is not None:
                out.append(_image_from(item["Image"]))
            else:
                raise BundleError("Reading manifest.json: an entry is neither image nor index")
    except (AttributeError, TypeError, KeyError) as exc:
        raise BundleError(f"Reading manifest.json: malformed entry ({exc})") from None
    return out


def manifest_of(artifact: Artifact) -> Manifest:
    if isinstance(artifact, IndexDesc):
        return Manifest(artifact.raw, artifact.media_type, artifact.digest)
    return Manifest(artifact.manifest_raw, artifact.manifest_media_type, artifact.manifest_digest)
