"""Go's compress/gzip at BestSpeed: byte identity with Go, streaming, round trips.

The expected bytes come from Go itself: ``tests/fixtures/goflate/vectors.json``
holds the sha256 and length of Go 1.19's gzip.BestSpeed output for every
input of ``make_inputs()`` (see the README next to it to regenerate).  The
tests of Go's bytes and of streaming run for both encoders: the pure-Python
reference and the C one (``encoder`` fixture); the C one must be built
(``pip install -e .``).  ``test_goflate_native.py`` compares the two on many
more inputs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import zlib
from array import array
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockresolve.goflate import (
    GZIP_HEADER,
    GoGzipCompressor,
    PureGoGzipCompressor,
    ZlibGzipCompressor,
    go_gzip,
    gzip_compressor,
)
from lockresolve.goflate import pure as goflate
from tests.fixtures.goflate.regen import WINDOW, make_inputs, yaml_text
from tests.support.goflate_encoders import ENCODER_NAMES, Encoder, encode, encoder_class

VECTORS_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "goflate" / "vectors.json"
VECTORS: dict[str, dict[str, int | str]] = json.loads(VECTORS_FILE.read_text())["vectors"]


@pytest.fixture(scope="module")
def inputs() -> dict[str, bytes]:
    return make_inputs()


@pytest.fixture(params=ENCODER_NAMES)
def encoder(request: pytest.FixtureRequest) -> Encoder:
    return encoder_class(request.param)


def _chunked(compressor: goflate.GzipCompressor, data: bytes, sizes: list[int]) -> bytes:
    out = []
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(compressor.compress(data[pos : pos + size]))
        pos += size
        i += 1
    out.append(compressor.flush())
    return b"".join(out)


# --- byte identity with Go -------------------------------------------------------------


def test_vectors_describe_these_inputs(inputs: dict[str, bytes]) -> None:
    assert sorted(inputs) == sorted(VECTORS)
    for name, data in inputs.items():
        assert len(data) == VECTORS[name]["input_len"], name


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_output_is_byte_identical_to_go(
    name: str, inputs: dict[str, bytes], encoder: Encoder
) -> None:
    data = inputs[name]
    out = encode(encoder, data)
    assert len(out) == VECTORS[name]["gzip_len"]
    assert hashlib.sha256(out).hexdigest() == VECTORS[name]["gzip_sha256"]
    assert gzip.decompress(out) == data


def test_empty_input_is_header_final_empty_stored_block_and_trailer(encoder: Encoder) -> None:
    expected = GZIP_HEADER + bytes.fromhex("010000ffff") + bytes(8)
    assert encode(encoder, b"") == expected
    assert hashlib.sha256(expected).hexdigest() == VECTORS["empty"]["gzip_sha256"]


# --- gzip framing ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["go", "zlib"])
def test_header_and_trailer(kind: str) -> None:
    data = yaml_text(random.Random(3), 100_000)
    compressor = gzip_compressor(kind)  # type: ignore[arg-type]
    out = compressor.compress(data) + compressor.flush()
    # No name, mtime 0, XFL 4 (fastest), OS 255: what Go writes at BestSpeed.
    assert out[:10] == bytes.fromhex("1f8b08000000000004ff") == GZIP_HEADER
    assert out[-8:-4] == zlib.crc32(data).to_bytes(4, "little")
    assert out[-4:] == len(data).to_bytes(4, "little")
    assert gzip.decompress(out) == data


def test_zlib_kind_is_valid_gzip_but_not_gos_bytes() -> None:
    data = yaml_text(random.Random(4), 200_000)
    fast = gzip_compressor("zlib")
    out = fast.compress(data) + fast.flush()
    assert isinstance(fast, ZlibGzipCompressor)
    assert gzip.decompress(out) == data
    assert out[:10] == GZIP_HEADER
    assert out != go_gzip(data)


def test_factory_kinds() -> None:
    assert isinstance(gzip_compressor(), GoGzipCompressor)
    assert isinstance(gzip_compressor("go"), GoGzipCompressor)
    with pytest.raises(ValueError, match="brotli"):
        gzip_compressor("brotli")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["go", "zlib"])
def test_compress_after_flush_is_refused(kind: str) -> None:
    compressor = gzip_compressor(kind)  # type: ignore[arg-type]
    out = compressor.compress(b"abc") + compressor.flush()
    assert compressor.flush() == b""
    with pytest.raises(ValueError):
        compressor.compress(b"more")
    assert gzip.decompress(out) == b"abc"


# --- streaming ---------------------------------------------------------------------------


def test_output_does_not_depend_on_write_sizes(inputs: dict[str, bytes], encoder: Encoder) -> None:
    data = inputs["mixed-3m"][:400_000]
    whole = encode(encoder, data)
    rng = random.Random(11)
    for sizes in (
        [1, 17, 1000, WINDOW - 1, WINDOW, WINDOW + 1, 200_000, 0, 3],
        [rng.randint(0, 150_000) or 1 for _ in range(20)],
        [len(data)],
    ):
        assert _chunked(encoder(), data, sizes) == whole


def test_compressed_windows_come_out_before_flush(
    inputs: dict[str, bytes], encoder: Encoder
) -> None:
    data = inputs["yaml-300k"]
    compressor = encoder()
    early = compressor.compress(data[: 3 * WINDOW + 10])
    # Three full windows are encoded already: a decoder gets (almost) all of
    # them from the bytes returned so far.
    partial = zlib.decompressobj(wbits=31).decompress(early)
    assert len(partial) >= 3 * WINDOW - 300
    assert data.startswith(partial)
    rest = compressor.compress(data[3 * WINDOW + 10 :]) + compressor.flush()
    assert early + rest == encode(encoder, data)


# --- round trips -------------------------------------------------------------------------

_pieces = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=8), st.integers(1, 600)),
    st.builds(
        lambda seed, n: yaml_text(random.Random(seed), n), st.integers(0, 99), st.integers(0, 3000)
    ),
)
_data = st.builds(
    lambda filler, pieces: random.Random(len(pieces)).randbytes(filler) + b"".join(pieces),
    st.sampled_from([0, 0, 0, WINDOW - 40, WINDOW, WINDOW + 17]),
    st.lists(_pieces, max_size=30),
)


@settings(max_examples=40, deadline=None)
@given(data=_data, kind=st.sampled_from(["go", "zlib"]))
def test_round_trip(data: bytes, kind: str) -> None:
    compressor = gzip_compressor(kind)  # type: ignore[arg-type]
    out = compressor.compress(data) + compressor.flush()
    assert gzip.decompress(out) == data


@settings(max_examples=15, deadline=None)
@given(
    data=_data,
    sizes=st.lists(st.integers(1, 3 * WINDOW), min_size=1, max_size=8),
    name=st.sampled_from(ENCODER_NAMES),
)
def test_round_trip_chunked_equals_one_shot(data: bytes, sizes: list[int], name: str) -> None:
    encoder = encoder_class(name)
    out = _chunked(encoder(), data, sizes)
    assert out == encode(PureGoGzipCompressor, data)
    assert gzip.decompress(out) == data


# --- the matcher's bookkeeping -------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(buf=st.binary(max_size=40))
def test_values_are_the_4_byte_values_at_each_position(buf: bytes) -> None:
    values = array("I", goflate._values(buf))
    expected = [int.from_bytes(buf[p : p + 4], "little") for p in range(len(buf) - 3)]
    assert values.tolist() == expected + [0] * min(3, len(buf))


def test_tokens_count_their_own_symbols(inputs: dict[str, bytes]) -> None:
    # The matcher counts literals, lengths and offset codes as it emits them;
    # the counts must be those of the symbol list (lengths as minus the length,
    # then the offset code's and the distance's symbols).
    windows = 0
    for data in inputs.values():
        matcher = goflate._DeflateFast()
        for start in range(0, len(data) - 128, WINDOW):
            tokens = matcher.encode(data[start : start + WINDOW])
            if tokens is None:
                continue
            windows += 1
            symbols = tokens.symbols
            lengths = [0] * len(tokens.lengths)
            offsets = [0] * len(tokens.offsets)
            literals = bytearray()
            i = 0
            while i < len(symbols):
                if symbols[i] < 0:
                    lengths[symbols[i]] += 1
                    offsets[symbols[i + 1] - goflate._CODE_SYM0] += 1
                    i += 3
                else:
                    literals.append(symbols[i])
                    i += 1
            assert (lengths, offsets, literals) == (tokens.lengths, tokens.offsets, tokens.literals)
    assert windows > 10


# --- Huffman code lengths ----------------------------------------------------------------


def _go_bit_counts(freqs: list[int], max_bits: int) -> list[int]:
    """A line-by-line port of Go 1.19's huffmanEncoder.bitCounts (huffman_code.go)."""
    max_int32 = 2**31 - 1
    n = len(freqs)
    freqs = [*freqs, max_int32]
    max_bits = min(max_bits, n - 1)
    size = 17
    last_freq = [0] * size
    next_char = [0] * size
    next_pair = [0] * size
    needed = [0] * size
    leaf_counts = [[0] * size for _ in range(size)]
    for level in range(1, max_bits + 1):
        last_freq[level] = freqs[1]
        next_char[level] = freqs[2]
        next_pair[level] = max_int32 if level == 1 else freqs[0] + freqs[1]
        leaf_counts[level][level] = 2
    needed[max_bits] = 2 * n - 4
    level = max_bits
    while True:
        if next_pair[level] == max_int32 and next_char[level] == max_int32:
            needed[level] = 0
            next_pair[level + 1] = max_int32
            level += 1
            continue
        prev_freq = last_freq[level]
        if next_char[level] < next_pair[level]:
            count = leaf_counts[level][level] + 1
            last_freq[level] = next_char[level]
            leaf_counts[level][level] = count
            next_char[level] = freqs[count]
        else:
            last_freq[level] = next_pair[level]
            leaf_counts[level][:level] = leaf_counts[level - 1][:level]
            needed[level - 1] = 2
        needed[level] -= 1
        if needed[level] == 0:
            if level == max_bits:
                break
            next_pair[level + 1] = prev_freq + last_freq[level]
            level += 1
        else:
            while needed[level - 1] > 0:
                level -= 1
    counts = leaf_counts[max_bits]
    assert counts[max_bits] == n
    bit_count = [0] * (max_bits + 1)
    for bits, lvl in enumerate(range(max_bits, 0, -1), start=1):
        bit_count[bits] = counts[lvl] - counts[lvl - 1]
    return bit_count


_fibonacci = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181]


@settings(max_examples=200, deadline=None)
@given(
    freqs=st.one_of(
        st.lists(st.integers(1, 12), min_size=3, max_size=286),
        st.lists(st.integers(1, 65535), min_size=3, max_size=286),
        st.lists(st.sampled_from(_fibonacci), min_size=3, max_size=60),
        st.lists(st.integers(0, 14).map(lambda k: 2**k), min_size=3, max_size=40),
    ),
    max_bits=st.sampled_from([15, 7]),
)
def test_package_merge_equals_gos_bit_counts(freqs: list[int], max_bits: int) -> None:
    # Frequencies as in one block: a window holds at most 65,535 symbols (+ end
    # of block), so Go's int32 sums never overflow.
    if len(freqs) > 2**max_bits:
        freqs = freqs[: 2**max_bits]
    freqs.sort()
    counts = goflate._bit_counts(freqs, max_bits)
    assert counts == _go_bit_counts(freqs, max_bits)
    # A complete prefix code: Kraft sum exactly 1, every symbol coded.
    assert sum(counts) == len(freqs)
    assert sum(c * 2.0**-b for b, c in enumerate(counts)) == 1.0
