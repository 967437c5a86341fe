"""OCI image layouts as a copy destination and source (beyond imgpkg).

An OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``)
is the air-gap format skopeo, crane, oras and containerd read. ``copy
--to-oci-layout DIR`` writes every item of the copy: manifests and configs
byte for byte (digests kept), layers streamed, indexes whole. ``index.json``
lists each item once per name (``org.opencontainers.image.ref.name``): its
original tag when it has one, and always its imgpkg tag
``sha256-<hex>.imgpkg``, so ``skopeo copy oci:DIR:1.0 ...`` finds it.
imgpkg's metadata (the original reference, the root-bundle label) rides in
annotations of its own, so ``copy --oci-layout DIR --to-repo ...`` restores
the same tags, locations images and lock output as a copy from the registry.

Blobs are written to a temporary name, verified against their digest, then
renamed; a blob already present with the right digest is not written again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from lockresolve.bundle.commands.push import default_tag
from lockresolve.bundle.imagedesc import (
    Artifact,
    CopyFailed,
    ImageDesc,
    IndexDesc,
    LayerDesc,
    is_distributable,
    manifest_of,
)
from lockresolve.bundle.progress import Progress
from lockresolve.bundle.remote import manifest_descriptors
from lockresolve.bundle.sources import BlobSource, FileBlobs, Region
from lockresolve.errors import BundleError, InputError, LockresolveError
from lockresolve.mediatypes import INDEX_MEDIA_TYPES, OCI_INDEX
from lockresolve.registry.model import Manifest

__all__ = ["read_oci_layout", "write_oci_layout"]

REF_NAME = "org.opencontainers.image.ref.name"
ORIG_REF = "dev.carvel.imgpkg.copy.orig-ref"
LABELS = "dev.carvel.imgpkg.copy.labels"
TAG = "dev.carvel.imgpkg.copy.tag"
_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
_CHUNK = 1 << 20
_MAX_JSON = 64 << 20


def _blob_path(root: Path, digest: str) -> Path:
    algorithm, _, hex_ = digest.partition(":")
    if algorithm != "sha256" or len(hex_) != 64 or not all(c in "0123456789abcdef" for c in hex_):
        raise BundleError(f"unsupported or invalid digest {digest!r}")
    return root / "blobs" / algorithm / hex_


def _write_bytes(root: Path, digest: str, data: bytes) -> None:
    path = _blob_path(root, digest)
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise BundleError(f"content does not hash to {digest}")
    if path.is_file() and path.stat().st_size == len(data):
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _present(path: Path, digest: str, size: int) -> bool:
    if not path.is_file() or path.stat().st_size != size:
        return False
    hasher = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest() == digest


async def _write_stream(
    root: Path, layer: LayerDesc, ref: str, source: BlobSource, progress: Progress
) -> None:
    path = _blob_path(root, layer.digest)
    if await anyio.to_thread.run_sync(lambda: _present(path, layer.digest, layer.size)):
        return
    progress.expect(layer.size)
    tmp = path.with_name(path.name + ".tmp")
    hasher = hashlib.sha256()
    async with await anyio.open_file(tmp, "wb") as fh:
        async for chunk in source.body(ref, layer.digest, progress)():
            hasher.update(chunk)
            await fh.write(chunk)
    if "sha256:" + hasher.hexdigest() != layer.digest:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"blob {layer.digest}: content hashes to sha256:{hasher.hexdigest()}")
    os.replace(tmp, path)


def _images(artifact: Artifact) -> Iterable[ImageDesc]:
    if isinstance(artifact, ImageDesc):
        yield artifact
        return
    for index in artifact.indexes:
        yield from _images(index)
    yield from artifact.images


def _indexes(artifact: Artifact) -> Iterable[IndexDesc]:
    if isinstance(artifact, IndexDesc):
        yield artifact
        for index in artifact.indexes:
            yield from _indexes(index)


def _annotations(artifact: Artifact, name: str) -> dict[str, str]:
    notes = {REF_NAME: name}
    if artifact.orig_ref:
        notes[ORIG_REF] = artifact.orig_ref
    if artifact.tag:
        notes[TAG] = artifact.tag
    if artifact.labels is not None:
        notes[LABELS] = json.dumps(dict(artifact.labels), sort_keys=True)
    return notes


def _index_json(artifacts: Sequence[Artifact]) -> bytes:
    entries: list[dict[str, Any]] = []
    for artifact in artifacts:
        manifest = manifest_of(artifact)
        names = [default_tag(manifest.digest)]
        if artifact.tag:
            names.insert(0, artifact.tag)
        for name in names:
            entries.append(
                {
                    "mediaType": manifest.media_type,
                    "digest": manifest.digest,
                    "size": len(manifest.data),
                    "annotations": _annotations(artifact, name),
                }
            )
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return json.dumps(doc, separators=(",", ":")).encode()


async def write_oci_layout(
    directory: str | os.PathLike[str],
    artifacts: Sequence[Artifact],
    source: BlobSource,
    *,
    progress: Progress | None = None,
) -> Path:
    """Write ``artifacts`` as an OCI image layout in ``directory`` (created or updated)."""
    root = Path(directory)
    bar = progress or Progress.disabled()
    try:
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        for artifact in artifacts:
            for index in _indexes(artifact):
                _write_bytes(root, index.digest, index.raw)
            for image in _images(artifact):
                _write_bytes(root, image.manifest_digest, image.manifest_raw)
                _write_bytes(root, image.config_digest, image.config_raw)
    except OSError as exc:
        raise InputError(f"Writing OCI layout: {exc.strerror}", source=str(root)) from None
    layers: dict[str, tuple[LayerDesc, str]] = {}
    for artifact in artifacts:
        for image in _images(artifact):
            for layer in image.layers:
                if is_distributable(layer.media_type):
                    layers.setdefault(layer.digest, (layer, image.refs[0] if image.refs else ""))
    failures: list[tuple[str, LockresolveError]] = []

    async def one(layer: LayerDesc, ref: str) -> None:
        try:
            await _write_stream(root, layer, ref, source, bar)
        except LockresolveError as exc:
            failures.append((layer.digest, exc))

    async with anyio.create_task_group() as tg:
        for layer, ref in layers.values():
            tg.start_soon(one, layer, ref)
    if failures:
        raise CopyFailed(failures)
    (root / "oci-layout").write_bytes(_LAYOUT)
    tmp = root / "index.json.tmp"
    tmp.write_bytes(_index_json(artifacts))
    os.replace(tmp, root / "index.json")
    return root


# --- reading -----------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > _MAX_JSON:
            raise BundleError(f"{path}: too large")
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"Reading OCI layout: {exc}", source=str(path)) from None


def _read_blob(root: Path, digest: str) -> bytes:
    path = _blob_path(root, digest)
    try:
        data = path.read_bytes() if path.stat().st_size <= _MAX_JSON else b""
    except OSError as exc:
        raise InputError(f"Reading OCI layout: {exc.strerror}", source=str(path)) from None
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise BundleError(f"Reading OCI layout: {path} does not hash to {digest}")
    return data


def _describe(
    root: Path, digest: str, media_type: str, meta: Mapping[str, Any], name: str
) -> Artifact:
    raw = _read_blob(root, digest)
    ref = f"{name}@{digest}"
    manifest = Manifest(raw, media_type, digest)
    doc = json.loads(raw)
    if media_type in INDEX_MEDIA_TYPES or (not media_type and "manifests" in doc):
        images: list[ImageDesc] = []
        indexes: list[IndexDesc] = []
        for child in manifest_descriptors(manifest, "manifests"):
            described = _describe(root, child.digest, child.media_type, meta, name)
            if isinstance(described, IndexDesc):
                indexes.append(described)
            else:
                images.append(described)
        return IndexDesc(
            refs=(ref,),
            images=tuple(images),
            indexes=tuple(indexes),
            media_type=media_type,
            digest=digest,
            raw=raw,
            **meta,
        )
    config = doc.get("config") or {}
    config_digest = str(config.get("digest", ""))
    config_raw = _read_blob(root, config_digest)
    try:
        diff_ids = json.loads(config_raw).get("rootfs", {}).get("diff_ids") or []
    except (ValueError, AttributeError):
        diff_ids = []
    layers = tuple(
        LayerDesc(d.media_type, d.digest, str(diff_ids[i]) if i < len(diff_ids) else "", d.size)
        for i, d in enumerate(manifest_descriptors(manifest, "layers"))
    )
    return ImageDesc(
        refs=(ref,),
        layers=layers,
        config_digest=config_digest,
        config_raw=config_raw,
        manifest_media_type=media_type,
        manifest_digest=digest,
        manifest_raw=raw,
        **meta,
    )


def read_oci_layout(directory: str | os.PathLike[str]) -> tuple[list[Artifact], FileBlobs]:
    """The items listed in ``index.json`` (one per digest and copy tag) and the layout's
    blob files."""
    root = Path(directory)
    layout = _read_json(root / "oci-layout")
    if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
        raise InputError("not an OCI image layout (no imageLayoutVersion)", source=str(root))
    index = _read_json(root / "index.json")
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list):
        raise InputError("index.json has no manifests list", source=str(root))
    artifacts: dict[tuple[str, str], Artifact] = {}
    for entry in entries:
        digest = str(entry.get("digest", ""))
        notes = entry.get("annotations") or {}
        # one item per digest and copy tag: one manifest copied under two tags (a cosign
        # tag pointing at an SBOM that is also an .sbom) is two items, as in a tar
        key = (digest, str(notes.get(TAG, "")) if isinstance(notes, dict) else "")
        if key in artifacts:
            continue
        labels = json.loads(notes[LABELS]) if LABELS in notes else None
        orig_ref = str(notes.get(ORIG_REF, ""))
        name = orig_ref.split("@")[0] if orig_ref else f"oci-layout/{root.name}"
        meta = {"tag": str(notes.get(TAG, "")), "orig_ref": orig_ref, "labels": labels}
        artifacts[key] = _describe(root, digest, str(entry.get("mediaType", "")), meta, name)
    regions: dict[str, Region] = {}
    blobs_dir = root / "blobs" / "sha256"
    if blobs_dir.is_dir():
        for path in blobs_dir.iterdir():
            if path.is_file() and not path.name.endswith(".tmp"):
                regions["sha256:" + path.name] = Region(path, 0, path.stat().st_size)
    return list(artifacts.values()), FileBlobs(regions, f"OCI layout {root}")
