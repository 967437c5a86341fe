"""Unpack downloaded layer files into a directory, checking each layer's diff_id.

Synchronous and CPU-bound (gunzip, sha256, file writes): run it in a worker
thread. The first layer is extracted straight into ``dest``; later layers
(multi-layer images pulled with ``-i``) are extracted beside it and merged on
top, honouring whiteouts (``.wh.<name>`` removes, ``.wh..wh..opq`` empties a
directory) as imgpkg does. Every layer goes through
:func:`lockresolve.bundle.extract.extract_tar`, so nothing can land outside
``dest``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import stat
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lockresolve.bundle.extract import DEFAULT_LIMITS, ExtractLimits, extract_tar
from lockresolve.errors import BundleError, UnsafeArchiveError

__all__ = [
    "DownloadedLayer",
    "gunzip_chunks",
    "iter_uncompressed",
    "unpack_layers",
    "unpack_stream",
]

_CHUNK = 1 << 20  # bytes read from the layer file at a time
_OUT_CHUNK = 256 << 10  # at most this many decompressed bytes at a time (memory stays flat)
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class DownloadedLayer:
    """A layer blob on disk (already verified against ``digest``) and what it should hold."""

    path: Path
    digest: str
    media_type: str
    diff_id: str | None


def _is_gzip(media_type: str, head: bytes) -> bool:
    if media_type.endswith(("+gzip", ".gzip")):
        return True
    if media_type.endswith(("+zstd",)):
        raise BundleError(f"Layers of media type {media_type} are not supported")
    return head[:2] == b"\x1f\x8b"


def iter_uncompressed(path: Path, media_type: str) -> Iterator[bytes]:
    """The layer's tar stream: gunzipped (every gzip member) or read as is."""
    with open(path, "rb") as fh:
        yield from gunzip_chunks(iter(lambda: fh.read(_CHUNK), b""), media_type)


def gunzip_chunks(chunks: Iterator[bytes], media_type: str) -> Iterator[bytes]:
    """The tar stream of a layer given as chunks of its blob: gunzipped, or as is."""
    first = next(chunks, b"")
    if not _is_gzip(media_type, first):
        if first:
            yield first
        yield from chunks
        return
    decomp = zlib.decompressobj(wbits=31)
    started = False
    for chunk in itertools.chain((first,), chunks):
        if not chunk:  # an iterator may hand out empty chunks mid-stream
            continue
        started = True
        while True:
            try:
                # Bounded output: a small, highly compressed chunk cannot
                # expand into a large buffer; the rest waits in unconsumed_tail
                # (or in zlib, when the output filled up: then call again).
                out = decomp.decompress(chunk, _OUT_CHUNK)
            except zlib.error as exc:
                raise UnsafeArchiveError(f"layer is not valid gzip: {exc}") from None
            if out:
                yield out
            if decomp.eof:
                chunk = decomp.unused_data
                decomp = zlib.decompressobj(wbits=31)
                started = bool(chunk)
                if not chunk:
                    break
                continue
            chunk = decomp.unconsumed_tail
            if not chunk and len(out) < _OUT_CHUNK:
                break
    if started:
        raise UnsafeArchiveError("layer is not valid gzip: the stream is truncated")


def _hashing(chunks: Iterator[bytes], hasher: hashlib._Hash) -> Iterator[bytes]:
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk


def _extract_one(
    layer: DownloadedLayer,
    dest: Path,
    limits: ExtractLimits,
    on_bytes: Callable[[int], None],
    preserve_permissions: bool = False,
) -> None:
    _extract_tar_stream(
        iter_uncompressed(layer.path, layer.media_type),
        layer,
        dest,
        limits,
        on_bytes,
        preserve_permissions,
    )


def _extract_tar_stream(
    tar: Iterator[bytes],
    layer: DownloadedLayer,
    dest: Path,
    limits: ExtractLimits,
    on_bytes: Callable[[int], None],
    preserve_permissions: bool = False,
) -> None:
    # The diff_id (the uncompressed tar's digest) is checked when the config gives one;
    # without one there is nothing to compare with, so nothing is hashed.
    hasher = hashlib.sha256() if layer.diff_id else None
    stream = _hashing(tar, hasher) if hasher is not None else tar

    def counted() -> Iterator[bytes]:
        for chunk in stream:
            on_bytes(len(chunk))
            yield chunk

    source = counted()
    extract_tar(source, dest, limits=limits, preserve_permissions=preserve_permissions)
    for _ in source:  # hash whatever follows the end-of-archive marker
        pass
    if hasher is None:
        return
    actual = "sha256:" + hasher.hexdigest()
    if actual != layer.diff_id:
        raise UnsafeArchiveError(
            f"layer {layer.digest}: its content hashes to {actual}, "
            f"not to the config's diff_id {layer.diff_id}"
        )


def unpack_stream(
    blob: Iterator[bytes],
    layer: DownloadedLayer,
    dest: str | os.PathLike[str],
    *,
    limits: ExtractLimits = DEFAULT_LIMITS,
    on_bytes: Callable[[int], None] = lambda n: None,
    preserve_permissions: bool = False,
) -> None:
    """Extract one layer into the empty directory ``dest`` from the chunks of its blob.

    For a layer that is extracted while it downloads (``layer.path`` is not
    read). The whole blob is consumed, so a download that verifies its digest
    at the end gets to do so; the diff_id is checked as in :func:`unpack_layers`.
    """
    tar = gunzip_chunks(iter(blob), layer.media_type)
    _extract_tar_stream(tar, layer, Path(dest), limits, on_bytes, preserve_permissions)
    for _ in blob:  # whatever follows the last gzip member (nothing, in a valid layer)
        pass


def unpack_layers(
    layers: Sequence[DownloadedLayer],
    dest: str | os.PathLike[str],
    *,
    limits: ExtractLimits = DEFAULT_LIMITS,
    on_layer: Callable[[int, DownloadedLayer], None] | None = None,
    on_bytes: Callable[[int], None] = lambda n: None,
    preserve_permissions: bool = False,
) -> None:
    """Extract ``layers`` in order into the empty directory ``dest``; later layers win."""
    target = Path(dest)
    for index, layer in enumerate(layers):
        if on_layer is not None:
            on_layer(index, layer)
        if index == 0:
            _extract_one(layer, target, limits, on_bytes, preserve_permissions)
            continue
        with tempfile.TemporaryDirectory(prefix=".layer-", dir=target.parent) as tmp:
            _extract_one(layer, Path(tmp), limits, on_bytes, preserve_permissions)
            _merge(Path(tmp), target)


def _shown(rel: Path, name: str) -> str:
    return (rel / name).as_posix()


def check_whiteouts(layer_root: Path) -> None:
    """Refuse a layer whose whiteouts could remove what they must not, before anything is removed.

    A whiteout is a regular file ``.wh.<name>`` naming one sibling; refused are
    whiteouts that are directories, whose ``<name>`` is empty, ``.`` or ``..``
    (``.wh...`` would remove the folder above), and ``.wh..wh.*`` names other
    than the opaque marker ``.wh..wh..opq`` (aufs metadata, never in a pushed layer).
    """
    for root, dirs, files in os.walk(layer_root):
        rel = Path(root).relative_to(layer_root)
        for name in dirs:
            if name.startswith(_WHITEOUT):
                raise UnsafeArchiveError(
                    f"tar entry {_shown(rel, name)!r}: a whiteout must be a file, not a directory"
                )
        for name in files:
            if not name.startswith(_WHITEOUT) or name == _OPAQUE:
                continue
            target = name[len(_WHITEOUT) :]
            if target in ("", ".", ".."):
                raise UnsafeArchiveError(
                    f"tar entry {_shown(rel, name)!r}: a whiteout of {target!r} is not allowed"
                )
            if target.startswith(_WHITEOUT):
                raise UnsafeArchiveError(f"tar entry {_shown(rel, name)!r}: unsupported whiteout")


def _checked(root: Path, path: Path, entry: str) -> Path:
    """``path`` itself, once it is known to lie strictly under ``root`` through real directories.

    Every directory between ``root`` and ``path`` must be a directory, not a
    symbolic link, so nothing a merge removes or replaces can be outside ``root``.
    """
    rel = path.relative_to(root)
    if not rel.parts or any(part in ("", ".", "..") for part in rel.parts):
        raise UnsafeArchiveError(
            f"tar entry {entry!r}: would change {path}, outside the layer's root"
        )
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        try:
            st = current.lstat()
        except FileNotFoundError:
            break
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeArchiveError(
                f"tar entry {entry!r}: would change {path}, outside the layer's root "
                f"({current} is not a directory)"
            )
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(path.parent)
    if os.path.commonpath([real_root, real_parent]) != real_root:
        raise UnsafeArchiveError(
            f"tar entry {entry!r}: would change {path}, outside the layer's root"
        )
    return path


def _remove(root: Path, path: Path, entry: str) -> None:
    """Remove ``path`` (a file, or a directory and its content) after :func:`_checked`."""
    _checked(root, path, entry)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        path.unlink()


def _whiteouts_first(name: str) -> tuple[bool, str]:
    # A whiteout hides what the layers below hold, never a file of its own layer.
    return (not name.startswith(_WHITEOUT), name)


def _merge(src: Path, dst: Path) -> None:
    """Move ``src``'s tree over ``dst``: files replace, whiteouts delete.

    ``src`` is checked whole first (:func:`check_whiteouts`), and every path
    changed in ``dst`` is checked to stay under ``dst`` (:func:`_checked`).
    """
    check_whiteouts(src)
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        target_dir = dst / rel
        if rel.parts:
            _checked(dst, target_dir, rel.as_posix())
            if target_dir.is_symlink():
                raise UnsafeArchiveError(
                    f"tar entry {rel.as_posix()!r}: would change {target_dir}, "
                    "a symbolic link out of the layer's root"
                )
            if target_dir.exists() and not target_dir.is_dir():
                target_dir.unlink()
            target_dir.mkdir(exist_ok=True)
        if _OPAQUE in files:
            for child in list(target_dir.iterdir()):
                _remove(dst, child, _shown(rel, _OPAQUE))
        for name in sorted(files, key=_whiteouts_first):
            entry = _shown(rel, name)
            if name == _OPAQUE:
                continue
            if name.startswith(_WHITEOUT):
                _remove(dst, target_dir / name[len(_WHITEOUT) :], entry)
                continue
            target = target_dir / name
            if target.is_dir() and not target.is_symlink():
                _remove(dst, target, entry)
            _checked(dst, target, entry)
            os.replace(Path(root) / name, target)
        for name in dirs:  # a directory replaces a file; os.walk enters it next
            target = target_dir / name
            if target.exists() and not target.is_dir() and not target.is_symlink():
                _remove(dst, target, _shown(rel, name))
