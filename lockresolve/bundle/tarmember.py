"""Find one file in a layer's tar and read it, with the safe extractor's limits.

``copy`` and ``describe`` need only ``.imgpkg/images.yml`` of a bundle layer;
Python's :mod:`tarfile` would read an extended (PAX or GNU long-name) header
of any declared size into memory. This reads the stream with
:mod:`lockresolve.bundle.extract`'s own tar reader (extended headers capped at
:attr:`ExtractLimits.max_extended_header_size`), skips other entries'
data without keeping it, and refuses a wanted file over ``max_size`` with an
error that names it instead of cutting it short.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import BinaryIO, Final

# The tar reader is the extractor's: one parser, one set of limits.
from lockresolve.bundle.extract import _REGULAR, DEFAULT_LIMITS, ExtractLimits, _Source, _TarReader
from lockresolve.errors import BundleError, UnsafeArchiveError

__all__ = ["IMAGES_LOCK_MAX", "find_images_lock"]

#: the largest ``.imgpkg/images.yml`` read from a layer (lockresolve's limit; imgpkg has none)
IMAGES_LOCK_MAX: Final = 16 << 20
_SKIP_CHUNK: Final = 1 << 20
# Types whose size field carries no data (Go's isHeaderOnlyType).
_HEADER_ONLY: Final = frozenset(b"123456")


def _is_images_lock(name: str) -> bool:
    # Go's filepath.Dir/Base (imgpkg's rule), which clean the path first; old
    # Windows-made layers separate with "\\".
    clean = posixpath.normpath(name.replace("\\", "/"))
    return posixpath.dirname(clean) == ".imgpkg" and posixpath.basename(clean) == "images.yml"


def find_images_lock(
    source: Iterable[bytes] | BinaryIO,
    *,
    max_size: int = IMAGES_LOCK_MAX,
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> bytes | None:
    """The bytes of the first regular file ``.imgpkg/images.yml``, or None when there is none.

    Raises :class:`UnsafeArchiveError` for a corrupt tar or one over ``limits``,
    and :class:`BundleError` naming the file when it is larger than ``max_size``.
    """
    reader = _TarReader(_Source(source), limits)
    while (header := reader.next()) is not None:
        if header.typeflag in _REGULAR and _is_images_lock(header.name):
            if header.size > max_size:
                raise BundleError(
                    f"{header.name} is {header.size} bytes, over the limit of {max_size} bytes"
                )
            data = reader.read_data(header.size)
            if len(data) < header.size:
                raise UnsafeArchiveError(
                    f"tar entry {header.name!r}: data shorter than its declared size"
                )
            return data
        if header.typeflag not in _HEADER_ONLY:
            remaining = header.size
            while remaining:
                piece = reader.read_data(min(remaining, _SKIP_CHUNK))
                if not piece:
                    raise UnsafeArchiveError(
                        f"tar entry {header.name!r}: data shorter than its declared size"
                    )
                remaining -= len(piece)
            reader.skip_padding(header.size, header.name)
    return None
