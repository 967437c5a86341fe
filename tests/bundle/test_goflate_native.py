"""The C encoder against the pure-Python reference: same bytes everywhere, GIL released.

``test_goflate.py`` checks both encoders against Go's recorded vectors; this
file is the bounded differential fuzz test (C against pure Python on sizes
from 0 to 3 MB, around the window boundaries, with long matches, matches
reaching into the previous window and incompressible input), the recorded
bundle cases through both encoders, the choice between them
(``LOCKRESOLVE_PURE_GOFLATE``, ``--version``), and that the C encoder lets
other Python threads run while it encodes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockresolve.bundle.formats.tar import DEFAULT_EXCLUSIONS, iter_tar, plan_layer
from lockresolve.goflate import PureGoGzipCompressor
from tests.fixtures.goflate.regen import WINDOW, yaml_text
from tests.support.bundle_cases import BundleCase, load_cases
from tests.support.goflate_encoders import ENCODER_NAMES, Encoder, encode, encoder_class

CASES = load_cases()


@pytest.fixture(scope="module")
def native() -> Encoder:
    return encoder_class("native")


def _chunks(data: bytes, rng: random.Random, biggest: int) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(data):
        size = rng.choice([1, 7, WINDOW - 1, WINDOW, WINDOW + 1, rng.randint(1, biggest)])
        out.append(data[pos : pos + size])
        pos += size
    return out


def _streamed(encoder: Encoder, chunks: list[bytes]) -> bytes:
    compressor = encoder()
    return b"".join(compressor.compress(c) for c in chunks) + compressor.flush()


def _assert_same(native: Encoder, data: bytes, seed: int = 0) -> None:
    expected = encode(PureGoGzipCompressor, data)
    got = encode(native, data)
    assert len(got) == len(expected)
    assert got == expected, f"first difference at byte {_first_difference(got, expected)}"
    chunks = _chunks(data, random.Random(seed), 3 * WINDOW)
    assert _streamed(native, chunks) == expected
    assert gzip.decompress(got) == data


def _first_difference(a: bytes, b: bytes) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


# --- inputs ---------------------------------------------------------------------------------

_SIZES = [
    *(0, 1, 2, 3, 4, 15, 16, 17, 18, 31, 32, 127, 128, 129, 1000),
    *(WINDOW - 1, WINDOW, WINDOW + 1, WINDOW + 16, WINDOW + 17, WINDOW + 127, WINDOW + 128),
    *(2 * WINDOW - 1, 2 * WINDOW, 2 * WINDOW + 1),
]


def _make(kind: str, size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if kind == "random":  # incompressible: Huffman-only or stored windows
        return rng.randbytes(size)
    if kind == "zeros":  # one long run: 258-byte matches at distance 1
        return bytes(size)
    if kind == "text":
        return yaml_text(rng, size)
    if kind == "period":  # a period longer than a window: matches reach into the previous one
        unit = rng.randbytes(WINDOW // 2 + 77)
        return (unit * (size // len(unit) + 1))[:size]
    if kind == "far":  # repeats just inside and just beyond maxMatchOffset (32,768)
        block = rng.randbytes(32_760)
        return (block + rng.randbytes(9) + block + rng.randbytes(40) + block)[:size].ljust(size)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["random", "zeros", "text", "period", "far"])
@pytest.mark.parametrize("size", _SIZES)
def test_native_equals_pure_around_thresholds(native: Encoder, kind: str, size: int) -> None:
    _assert_same(native, _make(kind, size, seed=size), seed=size)


def test_native_equals_pure_on_a_3_mb_mixed_stream(native: Encoder) -> None:
    rng = random.Random(5)
    parts: list[bytes] = []
    while sum(map(len, parts)) < 3_000_000:
        kind = rng.choice(["random", "zeros", "text", "period", "far"])
        parts.append(_make(kind, rng.randint(1, 300_000), rng.randint(0, 10**6)))
    data = b"".join(parts)[:3_000_000]
    _assert_same(native, data, seed=5)


def test_native_equals_pure_on_long_matches_and_skewed_bytes(native: Encoder) -> None:
    rng = random.Random(6)
    # Runs of 257, 258, 259 and 260 bytes, matches just at the 258-byte cap,
    # 2- and 3-symbol alphabets (Huffman codes of one or two symbols), a byte
    # distribution that hits the 15-bit code length limit.
    runs = b"".join(
        bytes([rng.randrange(4)]) * rng.choice([257, 258, 259, 260]) for _ in range(900)
    )
    two = bytes(rng.choice(b"ab") for _ in range(150_000))
    three = bytes(rng.choice(b"abc") for _ in range(150_000))
    skewed = bytes(min(255, int(rng.expovariate(0.05))) for _ in range(200_000))
    for data in (runs, two, three, skewed, runs + skewed + two):
        _assert_same(native, data)


_pieces = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=9), st.integers(1, 800)),
    st.builds(
        lambda seed, n: random.Random(seed).randbytes(n), st.integers(0, 99), st.integers(0, 70_000)
    ),
    st.builds(
        lambda seed, n: yaml_text(random.Random(seed), n), st.integers(0, 99), st.integers(0, 9000)
    ),
)


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(_pieces, max_size=25),
    repeat=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_native_equals_pure_fuzzed(pieces: list[bytes], repeat: int, seed: int) -> None:
    data = b"".join(pieces) * repeat
    _assert_same(encoder_class("native"), data, seed=seed)


# --- bundles --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODER_NAMES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_recorded_bundle_layer_is_imgpkgs_with_both_encoders(
    case: BundleCase, name: str, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    case.materialise(root)
    plan = plan_layer(case.file_paths(root), case.exclusions() or DEFAULT_EXCLUSIONS)
    compressor = encoder_class(name)()
    digest = hashlib.sha256()
    size = 0
    for chunk in iter_tar(plan, 1 << 16):
        out = compressor.compress(chunk)
        digest.update(out)
        size += len(out)
    out = compressor.flush()
    digest.update(out)
    size += len(out)
    assert "sha256:" + digest.hexdigest() == case.expected["layer_digest"]
    assert size == case.expected["layer_size"]


# --- the choice of encoder ------------------------------------------------------------------


def _version(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "lockresolve.cli", "--version"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    return out.stdout.strip()


def test_version_names_the_native_encoder_by_default(native: Encoder) -> None:
    env = {"LOCKRESOLVE_PURE_GOFLATE": "0"}
    assert _version(env).endswith("(gzip encoder: native C)")


def test_environment_variable_forces_the_pure_encoder() -> None:
    assert _version({"LOCKRESOLVE_PURE_GOFLATE": "1"}).endswith("(gzip encoder: pure Python)")
    code = (
        "import lockresolve.goflate as g, lockresolve.goflate.pure as p;"
        "print(g.GoGzipCompressor is p.GoGzipCompressor, g.ENCODER)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "LOCKRESOLVE_PURE_GOFLATE": "1"},
        check=True,
    )
    assert out.stdout.split() == ["True", "pure", "Python"]


# --- the C API ------------------------------------------------------------------------------


def test_native_accepts_any_bytes_like_and_refuses_after_flush(native: Encoder) -> None:
    from lockresolve.goflate._native import Deflater

    data = yaml_text(random.Random(8), 150_000)
    deflater = Deflater()
    out = deflater.compress(bytearray(data[:70_000]))
    out += deflater.compress(memoryview(data)[70_000:])
    out += deflater.flush()
    # the raw DEFLATE stream: what the gzip frame wraps
    assert out == encode(PureGoGzipCompressor, data)[10:-8]
    assert deflater.flush() == b""
    with pytest.raises(ValueError):
        deflater.compress(b"more")
    with pytest.raises(TypeError):
        Deflater().compress("text")  # type: ignore[arg-type]


def test_native_releases_the_gil_while_encoding(native: Encoder) -> None:
    # One call of the C code on 24 MB (the raw deflater: the gzip frame's CRC
    # is zlib's, which releases the GIL too): if it held the GIL, this thread
    # could not count while it runs.
    from lockresolve.goflate._native import Deflater

    data = random.Random(9).randbytes(8_000_000) * 3
    started = threading.Event()
    finished = threading.Event()

    def work() -> None:
        deflater = Deflater()
        started.set()
        deflater.compress(data)
        finished.set()

    worker = threading.Thread(target=work)
    ticks = 0
    worker.start()
    started.wait()
    time.sleep(0.01)
    while not finished.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert ticks >= 5, f"only {ticks} ticks while the C encoder ran"
