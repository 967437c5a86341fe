"""Go's ``compress/gzip`` at BestSpeed, byte for byte: imgpkg's layer encoder.

Two implementations write the same bytes:

- :mod:`lockresolve.goflate.native`: the C extension ``_native`` (built by
  ``pip install .`` where a C compiler exists), ~100x faster;
- :mod:`lockresolve.goflate.pure`: the reference implementation in pure
  Python, and the fallback.

:class:`GoGzipCompressor` (and so :func:`gzip_compressor` and :func:`go_gzip`)
is the native one when it can be imported, unless the environment variable
``LOCKRESOLVE_PURE_GOFLATE=1`` forces the pure one. :data:`ENCODER` says which
is in use (``lockresolve --version`` prints it).
"""

from __future__ import annotations

import os
from typing import Final, Literal

from lockresolve.goflate.pure import (
    GZIP_HEADER,
    GzipCompressor,
    ZlibGzipCompressor,
    _GzipFrame,
)
from lockresolve.goflate.pure import GoGzipCompressor as PureGoGzipCompressor

__all__ = [
    "ENCODER",
    "GZIP_HEADER",
    "GoGzipCompressor",
    "GzipCompressor",
    "PureGoGzipCompressor",
    "ZlibGzipCompressor",
    "go_gzip",
    "gzip_compressor",
    "native_available",
]

#: The environment variable that forces the pure-Python encoder when set to ``1``.
PURE_ENV: Final = "LOCKRESOLVE_PURE_GOFLATE"


def native_available() -> bool:
    """Whether the C encoder is built and importable (whatever ``LOCKRESOLVE_PURE_GOFLATE`` says)."""
    try:
        import lockresolve.goflate.native  # noqa: F401
    except ImportError:
        return False
    return True


def _select() -> tuple[type[_GzipFrame], Literal["native C", "pure Python"]]:
    if os.environ.get(PURE_ENV) != "1":
        try:
            from lockresolve.goflate.native import NativeGoGzipCompressor
        except ImportError:
            pass
        else:
            return NativeGoGzipCompressor, "native C"
    return PureGoGzipCompressor, "pure Python"


GoGzipCompressor, ENCODER = _select()


def gzip_compressor(kind: Literal["go", "zlib"] = "go") -> GzipCompressor:
    """A new compressor: ``"go"`` for imgpkg's exact bytes, ``"zlib"`` for speed."""
    if kind == "go":
        return GoGzipCompressor()
    if kind == "zlib":
        return ZlibGzipCompressor()
    raise ValueError(f"unknown gzip compressor kind: {kind!r}")


def go_gzip(data: bytes) -> bytes:
    """``data`` gzipped exactly as Go's compress/gzip at BestSpeed (imgpkg's layer)."""
    compressor = GoGzipCompressor()
    return compressor.compress(data) + compressor.flush()
