"""imgpkg's tar format for ``copy --to-tar`` / ``--tar``, with ``--resume``.

The archive (``imagetar/tar_writer.go``) holds ``manifest.json`` first (the
image and index descriptions, raw manifests and configs inside), then one
``sha256-<hex>.tar.gz`` entry per unique distributable layer, sorted by
digest; every header is Go's (mode 0644, uid/gid 0, mtime 0, USTAR), and the
archive ends with two zero blocks. Configs live only in ``manifest.json``.

Writing: the file's size and every entry's offset are known up front, so the
headers are written first and the layers are streamed into their places
concurrently (``os.pwrite``), under the registry client's per-host limit.
The work goes to ``<file>.partial`` and is renamed over ``<file>`` at the
end; an interrupted run leaves the partial file, and ``--resume`` reuses
every layer of ``<file>`` or ``<file>.partial`` whose bytes match its digest.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from lockresolve.bundle.formats.tar import EntryKind, LayerEntry
from lockresolve.bundle.imagedesc import (
    Artifact,
    CopyFailed,
    ImageDesc,
    LayerDesc,
    descriptors_from_json,
    descriptors_to_json,
    is_distributable,
)
from lockresolve.bundle.progress import Progress
from lockresolve.bundle.sources import BlobSource, FileBlobs, Region
from lockresolve.errors import BundleError, InputError, LockresolveError

__all__ = [
    "MANIFEST_NAME",
    "TarWriteResult",
    "all_images",
    "blob_name",
    "read_imgpkg_tar",
    "read_tar_entries",
    "write_imgpkg_tar",
]

MANIFEST_NAME = "manifest.json"
_BLOCK = 512
_CHUNK = 1 << 20
_MAX_MANIFEST = 256 << 20


def blob_name(digest: str) -> str:
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}-{hex_}.tar.gz"


def _digest_of_name(name: str) -> str | None:
    if not name.endswith(".tar.gz") or "-" not in name:
        return None
    algorithm, _, hex_ = name[: -len(".tar.gz")].partition("-")
    return f"{algorithm}:{hex_}"


def all_images(artifacts: Iterable[Artifact]) -> Iterable[ImageDesc]:
    """Every image, index children included (depth first)."""
    for artifact in artifacts:
        if isinstance(artifact, ImageDesc):
            yield artifact
        else:
            yield from all_images(artifact.indexes)
            yield from artifact.images


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _header(name: str, size: int) -> bytes:
    return LayerEntry(name, EntryKind.FILE, "", size, 0o644).header()


# --- reading -----------------------------------------------------------------


def read_tar_entries(path: Path) -> dict[str, Region]:
    """The regular-file entries of a tar: name -> where its data is. Only headers are read."""
    regions: dict[str, Region] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if member.isfile():
                    regions[member.name] = Region(path, member.offset_data, member.size)
    except (OSError, tarfile.TarError) as exc:
        raise InputError(f"Reading tar: {exc}", source=str(path)) from None
    return regions


def read_imgpkg_tar(path: Path) -> tuple[list[Artifact], FileBlobs]:
    """The descriptions in an imgpkg tar and its layers, by digest."""
    entries = read_tar_entries(path)
    manifest = entries.get(MANIFEST_NAME)
    if manifest is None:
        raise InputError("Reading tar: manifest.json not found", source=str(path))
    if manifest.size > _MAX_MANIFEST:
        raise InputError("Reading tar: manifest.json is too large", source=str(path))
    with open(path, "rb") as fh:
        fh.seek(manifest.offset)
        data = fh.read(manifest.size)
    artifacts = descriptors_from_json(data)
    blobs: dict[str, Region] = {}
    for name, region in entries.items():
        digest = _digest_of_name(name)
        if digest is not None:
            blobs[digest] = region
    return artifacts, FileBlobs(blobs, f"tar {path}")


def _region_matches(region: Region, digest: str, size: int) -> bool:
    if region.size != size or not digest.startswith("sha256:"):
        return False
    hasher = hashlib.sha256()
    try:
        with open(region.path, "rb") as fh:
            fh.seek(region.offset)
            remaining = size
            while remaining:
                chunk = fh.read(min(_CHUNK, remaining))
                if not chunk:
                    return False
                hasher.update(chunk)
                remaining -= len(chunk)
    except OSError:
        return False
    return "sha256:" + hasher.hexdigest() == digest


def _reusable(candidates: Sequence[Path], layers: Sequence[LayerDesc]) -> dict[str, Region]:
    """Layers of earlier (maybe partial) tars whose bytes match their digest."""
    found: dict[str, Region] = {}
    for path in candidates:
        if not path.is_file():
            continue
        try:
            entries = read_tar_entries(path)
        except InputError:
            continue
        for layer in layers:
            region = entries.get(blob_name(layer.digest))
            if (
                layer.digest not in found
                and region is not None
                and _region_matches(region, layer.digest, layer.size)
            ):
                found[layer.digest] = region
    return found


# --- writing -----------------------------------------------------------------


@dataclass(frozen=True)
class TarWriteResult:
    path: Path
    names: tuple[str, ...]
    reused: int
    downloaded: int


def _layers_to_write(artifacts: Sequence[Artifact]) -> list[tuple[LayerDesc, str]]:
    """Unique distributable layers sorted by digest, each with a reference to read it from."""
    chosen: dict[str, tuple[LayerDesc, str]] = {}
    for image in all_images(artifacts):
        for layer in image.layers:
            if is_distributable(layer.media_type):
                chosen.setdefault(layer.digest, (layer, image.refs[0] if image.refs else ""))
    return [chosen[d] for d in sorted(chosen, key=lambda d: d.encode())]


def _copy_region(
    src: Region, fd: int, offset: int, size: int, advance: Callable[[int], None]
) -> None:
    if src.size != size:  # never write outside the member's planned region
        raise BundleError(f"{src.path}: a blob of {src.size} bytes, not {size}")
    with open(src.path, "rb") as fh:
        fh.seek(src.offset)
        remaining = src.size
        while remaining:
            chunk = fh.read(min(_CHUNK, remaining))
            if not chunk:
                raise BundleError(f"{src.path}: ends inside a blob")
            os.pwrite(fd, chunk, offset)
            offset += len(chunk)
            remaining -= len(chunk)
            advance(len(chunk))


async def write_imgpkg_tar(
    path: str | os.PathLike[str],
    artifacts: Sequence[Artifact],
    source: BlobSource,
    *,
    resume: bool = False,
    progress: Progress | None = None,
) -> TarWriteResult:
    """Write imgpkg's tar of ``artifacts`` to ``path``, layers read from ``source``."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    bar = progress or Progress.disabled()
    manifest = descriptors_to_json(artifacts)
    layers = _layers_to_write(artifacts)
    reuse: dict[str, Region] = {}
    if resume:
        reuse = await anyio.to_thread.run_sync(
            lambda: _reusable([target, partial], [layer for layer, _ in layers])
        )
    # Lay out the archive: every header and data offset is known up front.
    plan: list[tuple[str, int, int]] = []  # name, header offset, size
    offset = _BLOCK + _padded(len(manifest))
    for layer, _ in layers:
        plan.append((blob_name(layer.digest), offset, layer.size))
        offset += _BLOCK + _padded(layer.size)
    total = offset + 2 * _BLOCK
    scratch = partial
    if resume and partial.exists() and any(r.path == partial for r in reuse.values()):
        scratch = target.with_name(target.name + ".partial.new")
    try:
        fd = os.open(scratch, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InputError(f"Creating file: {exc.strerror}", source=str(target)) from None
    failures: list[tuple[str, LockresolveError]] = []
    downloaded = 0
    try:
        os.ftruncate(fd, total)
        os.pwrite(fd, _header(MANIFEST_NAME, len(manifest)) + manifest, 0)
        for name, header_at, size in plan:
            os.pwrite(fd, _header(name, size), header_at)
        for layer, _ in layers:
            if layer.digest not in reuse:
                bar.expect(layer.size)

        async def fill(layer: LayerDesc, ref: str, data_at: int) -> None:
            nonlocal downloaded
            try:
                region = reuse.get(layer.digest)
                if region is not None:
                    await anyio.to_thread.run_sync(
                        lambda: _copy_region(region, fd, data_at, layer.size, lambda n: None)
                    )
                    return
                hasher = hashlib.sha256()
                at = data_at
                end = data_at + layer.size  # the member's planned region ends here
                async for chunk in source.body(ref, layer.digest, bar)():
                    if at + len(chunk) > end:
                        raise BundleError(
                            f"blob {layer.digest}: more than the {layer.size} bytes "
                            "its descriptor declares"
                        )
                    os.pwrite(fd, chunk, at)
                    hasher.update(chunk)
                    at += len(chunk)
                if at - data_at != layer.size or "sha256:" + hasher.hexdigest() != layer.digest:
                    raise BundleError(f"blob {layer.digest}: wrong size or content")
                downloaded += 1
            except LockresolveError as exc:
                failures.append((layer.digest, exc))

        async with anyio.create_task_group() as tg:
            for (layer, ref), (_, header_at, _) in zip(layers, plan, strict=True):
                tg.start_soon(fill, layer, ref, header_at + _BLOCK)
        if failures:
            raise CopyFailed(failures)
        os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        if scratch != partial:  # keep one partial file, the most complete, for --resume
            os.replace(scratch, partial)
        if isinstance(exc, OSError):
            raise InputError(f"Writing tar: {exc.strerror}", source=str(target)) from None
        raise
    os.close(fd)
    os.replace(scratch, target)
    if partial.exists() and partial != scratch:
        partial.unlink()
    names = (MANIFEST_NAME, *(name for name, _, _ in plan))
    return TarWriteResult(target, names, reused=len(reuse), downloaded=downloaded)
