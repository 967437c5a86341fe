"""Go's ``compress/gzip`` at BestSpeed, byte for byte, with the C encoder of ``_native.c``.

:class:`NativeGoGzipCompressor` has the interface and the output of
:class:`lockresolve.goflate.pure.GoGzipCompressor`; the DEFLATE stream is
written by the ``_native`` extension module (a C port of the same Go
sources), which releases the GIL while it encodes, so a compressor in a
worker thread runs beside Python code in others.  Importing this module
raises :class:`ImportError` when the extension was not built.
"""

from __future__ import annotations

from lockresolve.goflate._native import Deflater
from lockresolve.goflate.pure import _GzipFrame

__all__ = ["NativeGoGzipCompressor"]


class NativeGoGzipCompressor(_GzipFrame):
    """Gzip exactly as Go's ``compress/gzip`` writes it at BestSpeed, encoded in C.

    Memory is bounded: one pending window, the previous window, the hash
    table and one window's tokens (~0.5 MB), plus the output of one call.
    One compressor must not be used by two threads at once (the C code
    refuses with :class:`RuntimeError`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._deflater = Deflater()

    def _deflate(self, data: bytes) -> bytes:
        return self._deflater.compress(data)

    def _finish(self) -> bytes:
        return self._deflater.flush()
