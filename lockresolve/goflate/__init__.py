"""Go's ``compress/gzip`` at BestSpeed, byte for byte: imgpkg's layer encoder.

:mod:`lockresolve.goflate.pure` is the reference implementation in pure Python.
"""

from lockresolve.goflate.pure import (
    GZIP_HEADER,
    GoGzipCompressor,
    GzipCompressor,
    ZlibGzipCompressor,
    go_gzip,
    gzip_compressor,
)

__all__ = [
    "GZIP_HEADER",
    "GoGzipCompressor",
    "GzipCompressor",
    "ZlibGzipCompressor",
    "go_gzip",
    "gzip_compressor",
]
