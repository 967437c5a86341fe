"""Read an image or index from a registry: manifest, config, layers, bundle label.

:func:`fetch_artifact` GETs the manifest once (every media type accepted) and,
for an image, its config blob; the result tells pull and copy whether the
reference is an index, a plain image or a bundle (config label
``dev.carvel.imgpkg.bundle``), as imgpkg's ``IsBundle`` decides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lockresolve.bundle.formats.image import BUNDLE_LABEL
from lockresolve.errors import BundleError, ProtocolError
from lockresolve.mediatypes import INDEX_MEDIA_TYPES
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.model import Descriptor, Manifest

__all__ = [
    "MAX_CONFIG_BYTES",
    "RemoteImage",
    "RemoteIndex",
    "fetch_artifact",
    "fetch_blob_bytes",
    "manifest_descriptors",
]

MAX_CONFIG_BYTES = 16 << 20


@dataclass(frozen=True)
class RemoteIndex:
    """An image index (or Docker manifest list) at ``ref`` (a digest reference)."""

    ref: Reference
    manifest: Manifest

    @property
    def children(self) -> tuple[Descriptor, ...]:
        return manifest_descriptors(self.manifest, "manifests")


@dataclass(frozen=True)
class RemoteImage:
    """An image at ``ref`` (a digest reference): its manifest and raw config."""

    ref: Reference
    manifest: Manifest
    config: bytes

    @property
    def config_descriptor(self) -> Descriptor:
        doc = _json(self.manifest.data, "manifest")
        cfg = doc.get("config") if isinstance(doc, dict) else None
        if not isinstance(cfg, dict) or not isinstance(cfg.get("digest"), str):
            raise ProtocolError("manifest without a config descriptor", subject=str(self.ref))
        return Descriptor(
            digest=cfg["digest"], media_type=str(cfg.get("mediaType", "")), size=_size(cfg)
        )

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return manifest_descriptors(self.manifest, "layers")

    @property
    def config_json(self) -> Mapping[str, Any]:
        doc = _json(self.config, "config")
        return doc if isinstance(doc, dict) else {}

    @property
    def diff_ids(self) -> tuple[str, ...]:
        rootfs = self.config_json.get("rootfs")
        ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        return tuple(str(d) for d in ids) if isinstance(ids, list) else ()

    @property
    def labels(self) -> Mapping[str, str]:
        config = self.config_json.get("config")
        labels = config.get("Labels") if isinstance(config, dict) else None
        return labels if isinstance(labels, dict) else {}

    @property
    def is_bundle(self) -> bool:
        return BUNDLE_LABEL in self.labels


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BundleError(f"Reading {what}: not valid JSON") from None


def _size(obj: Mapping[str, Any]) -> int:
    size = obj.get("size", 0)
    return size if isinstance(size, int) and size >= 0 else 0


def manifest_descriptors(manifest: Manifest, key: str) -> tuple[Descriptor, ...]:
    doc = _json(manifest.data, "manifest")
    items = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return ()
    out: list[Descriptor] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
            raise ProtocolError(f"manifest has an invalid {key} entry", subject=manifest.digest)
        out.append(
            Descriptor(
                digest=item["digest"], media_type=str(item.get("mediaType", "")), size=_size(item)
            )
        )
    return tuple(out)


async def fetch_blob_bytes(
    client: RegistryClient, ref: Reference, digest: str, limit: int = MAX_CONFIG_BYTES
) -> bytes:
    """A small blob (a config) read whole, refused above ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    async for chunk in client.get_blob(ref.registry, ref.repository, digest):
        total += len(chunk)
        if total > limit:
            raise ProtocolError(f"blob {digest} is larger than {limit} bytes", subject=str(ref))
        parts.append(chunk)
    return b"".join(parts)


async def fetch_artifact(
    client: RegistryClient, ref: Reference, manifest: Manifest | None = None
) -> RemoteImage | RemoteIndex:
    """The index or image ``ref`` points at; ``ref`` of the result carries the digest."""
    if manifest is None:
        manifest = await client.get_manifest(ref)
    digest_ref = ref.with_digest(manifest.digest)
    if manifest.media_type in INDEX_MEDIA_TYPES or _looks_like_index(manifest):
        return RemoteIndex(digest_ref, manifest)
    image = RemoteImage(digest_ref, manifest, b"")
    config = await fetch_blob_bytes(client, digest_ref, image.config_descriptor.digest)
    return RemoteImage(digest_ref, manifest, config)


def _looks_like_index(manifest: Manifest) -> bool:
    if manifest.media_type:
        return False
    doc = _json(manifest.data, "manifest")
    return isinstance(doc, dict) and "manifests" in doc
