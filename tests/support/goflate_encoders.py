"""Both Go BestSpeed encoders for parity tests: the pure-Python reference and the C one.

The C encoder must be built in the environment that runs the tests
(``pip install -e .`` builds it); a missing one fails the tests that use it,
it is not skipped.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lockresolve.goflate import GzipCompressor, PureGoGzipCompressor

Encoder = Callable[[], GzipCompressor]

ENCODER_NAMES = ["native", "pure"]


def encoder_class(name: str) -> Encoder:
    """The compressor class called ``name`` (``"native"`` or ``"pure"``)."""
    if name == "pure":
        return PureGoGzipCompressor
    try:
        from lockresolve.goflate.native import NativeGoGzipCompressor
    except ImportError as exc:
        pytest.fail(f"the C encoder is not built ({exc}): run pip install -e .")
    return NativeGoGzipCompressor


def encode(encoder: Encoder, data: bytes) -> bytes:
    """``data`` gzipped in one call by a new compressor of ``encoder``."""
    compressor = encoder()
    return compressor.compress(data) + compressor.flush()
