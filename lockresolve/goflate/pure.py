"""Go's ``compress/gzip`` at BestSpeed, byte for byte, in pure Python.

imgpkg gzips a bundle's single layer with Go's ``compress/gzip`` at level 1
(BestSpeed).  The layer digest, and so the manifest digest, depend on the
exact compressed bytes, and Go's level-1 encoder is not zlib's: it is a
Snappy-style matcher (``deflatefast.go``) feeding Go's own Huffman block
writer.  :class:`GoGzipCompressor` ports both faithfully (Go 1.19 sources:
``compress/flate/deflate.go`` ``encSpeed``, ``deflatefast.go``,
``huffman_bit_writer.go``, ``huffman_code.go``; ``compress/gzip/gzip.go``), so
``lockresolve.goflate.go_gzip(tar)`` equals what imgpkg pushes (the package
chooses this encoder or the C one; its ``gzip_compressor`` and ``go_gzip``
serve both).

How Go encodes at BestSpeed: the input is cut into 65,535-byte windows (the
output does not depend on how writes are chunked).  Each window is matched
against itself and the previous window (a 16,384-entry hash table of 4-byte
values, Snappy's skip heuristic, matches of 4 to 258 bytes at distances up to
32,768).  A window whose tokens are more than 15/16 of its bytes is written
Huffman-only, any other with a dynamic Huffman block; either falls back to a
stored block when coding saves too little.  A final window under 128 bytes is
stored (16 bytes or less) or Huffman-only.  An empty final stored block ends
the stream; the gzip header is ``1f8b 0800 0000 0000 04ff``.

The trade-off: the port runs at roughly 5-6 MB/s on digest-heavy YAML text,
7 MB/s on a tar of real manifests and about 30 MB/s on incompressible bytes
(CPython 3.11; 3.12 and 3.13 run the same code about 20 % slower); zlib does
~140 MB/s on text.
:class:`ZlibGzipCompressor` has the same interface and the same gzip header
but zlib's level-1 deflate stream: much faster, equally valid gzip, but its
bytes (and so the layer digest) differ from imgpkg's.  Use it for very large
layers when digest parity with imgpkg does not matter.

Speed tricks (none changes the output): each window's 4-byte values are
computed in bulk (four strided ``bytearray`` copies interleave the bytes of an
``array("I")``), and only once the window's first match is found, so
incompressible windows never need them (hashing in bulk too, with one
big-integer multiplication per window, measured slower than hashing the ~25 %
of positions Go actually probes: ``int.from_bytes`` and ``to_bytes`` cost
more per byte than the hashes they save; so did keeping the values in a list
rather than an array: fewer interpreter steps, but 65,535 new int objects
per window cost more in allocation and cache misses; so did a dict caching
each value's hash).  Windows are appended to one history buffer, so
hash-table entries are positions in it that stay valid from window to
window; the table is shifted only when the buffer is cut back, every eight
windows (shifting 16,384 entries cost ~5 % of a window).  Beside each entry
the table keeps its 4-byte value, as Go's ``tableEntry`` does, so a probe
compares that instead of fetching the candidate's value, and tests the
distance only on equal values.  In CPython 3.11 nearly every arithmetic
operation on positions or values allocates an int (~200 machine
instructions), so the matcher is written to do few of them: bounds are
compared against ``s`` itself, a view of the values four bytes ahead needs
no additions, tuples map bit lengths to byte offsets, and the byte probes
iterate over a slice of values.  Matches are extended by XOR of 4-byte
values (the lowest set bit marks the first differing byte), then of big-endian
``int.from_bytes`` slices in growing stages (the XOR's bit length alone
gives the first differing byte); tokens are a flat list of small integers
(literal bytes as themselves, then minus the length, the offset code and the
distance) that one ``operator.itemgetter`` call turns into code strings
(about twice as fast as ``map`` over ``__getitem__``), and the matcher counts
them as it goes (a list increment per match for its length and offset code,
the literal bytes gathered for one ``Counter``), which is cheaper than a
``Counter`` over all the symbols.  A match's symbols are computed rather
than looked up in a per-distance table: 32,768 prebuilt tuples are cold in
the cache, and touching them cost more than the arithmetic.  The
bit stream is built as strings of ``0``/``1`` and converted with
``int(..., 2)``; Go's lazy package-merge for length-limited Huffman codes is
replaced by the plain package-merge it abbreviates (same result, fewer
Python steps, its per-item work in C-level ``map`` calls, stopping once a
level repeats the one below); and Huffman construction is skipped when an
entropy bound already proves that Go stores the block.  On random bytes
nearly all the time is ``Counter`` building the byte histogram that entropy
bound needs (no C-level alternative in the standard library measured faster
in wall time: 256 ``bytes.count`` passes, sorting, ``translate`` partitions
(fewer instructions, but branch mispredictions) and chunked counting were
all slower or equal).
"""

from __future__ import annotations

import math
import operator
import sys
import zlib
from array import array
from bisect import bisect_left
from collections import Counter
from functools import cache, lru_cache
from itertools import repeat
from operator import itemgetter
from struct import Struct
from typing import Final, NamedTuple, Protocol

__all__ = [
    "GZIP_HEADER",
    "GoGzipCompressor",
    "GzipCompressor",
    "ZlibGzipCompressor",
]

#: Go's gzip header at BestSpeed: no name, mtime 0, XFL 4 (fastest), OS 255.
GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"

_WINDOW: Final = 65535  # maxStoreBlockSize: BestSpeed encodes windows of this size
_MAX_OFFSET: Final = 32768  # maxMatchOffset
_MAX_MATCH: Final = 258  # maxMatchLength
_INPUT_MARGIN: Final = 15  # inputMargin (16 - 1)
_HASH_MUL: Final = 0x1E35A7BD
_TABLE_BITS: Final = 14
_HISTORY_PAD: Final = _MAX_OFFSET + 1  # dummy bytes before the history (see _DeflateFast)
_HISTORY_MAX: Final = _HISTORY_PAD + 8 * _WINDOW  # the history buffer is cut back beyond this
_NUM_LIT: Final = 286  # maxNumLit
_NUM_OFF: Final = 30  # offsetCodeCount
_EOB: Final = 256  # endBlockMarker
_CODEGEN_ORDER: Final = (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15)
_LENGTH_EXTRA: Final = (0,) * 8 + (1,) * 4 + (2,) * 4 + (3,) * 4 + (4,) * 4 + (5,) * 4 + (0,)
_LENGTH_BASE: Final = (
    *(0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56),
    *(64, 80, 96, 112, 128, 160, 192, 224, 255),
)
_OFFSET_EXTRA: Final = tuple(max(0, (c >> 1) - 1) for c in range(_NUM_OFF))
# Token symbols: 0-255 is a literal byte; a match is three symbols: minus its
# length (a negative index: the code table keeps length codes at its end), its
# offset code, then its distance (which stands for the distance's extra bits).
_CODE_SYM0: Final = 256  # 256 + offset code, code 0..29
_DIST_SYM0: Final = 512  # 512 + distance, distance 1..32768
_NUM_SYMS: Final = _DIST_SYM0 + _MAX_OFFSET + 1 + _MAX_MATCH + 1  # then -258..-1
_U32: Final = Struct("<I")
# bit length of the lowest set bit of the XOR of two little-endian 4-byte values
# -> 4 plus the byte where they first differ (for the values 4 bytes ahead of a
# match).
_LOW_BYTE_4: Final = tuple(4 + ((b - 1) >> 3) for b in range(33))
# bit length of the XOR of two big-endian byte strings -> how many bytes from the
# end the first difference is (0 when they are equal).
_FROM_END: Final = tuple((b + 7) >> 3 for b in range(8 * _MAX_MATCH + 1))
# offset code -> its token symbol (shared int objects: a match touches no
# per-distance object)
_CODE_SYMS: Final = tuple(_CODE_SYM0 + c for c in range(_NUM_OFF))
_MINUS_4: Final = repeat(-4)  # an endless map argument: clears a key's two low bits
_BIG_ENDIAN: Final = sys.byteorder == "big"


def _lsb(value: int, nbits: int) -> str:
    """``value`` as ``nbits`` bits in DEFLATE's emission order (least significant first)."""
    return format(value, f"0{nbits}b")[::-1] if nbits else ""


class _Tables:
    """Per-symbol tables for match lengths and distances, built once on first use."""

    def __init__(self) -> None:
        # (length, its literal/length code, its extra bits), lengths 4..258; a
        # length's token symbol is minus the length
        self.lengths: list[tuple[int, int, str]] = []
        # distance -> its offset code
        self.dist_code: list[int] = [0]
        code = 0
        for length in range(3, _MAX_MATCH + 1):
            x = length - 3
            while code + 1 < len(_LENGTH_BASE) and _LENGTH_BASE[code + 1] <= x:
                code += 1
            if length > 3:
                extra = _lsb(x - _LENGTH_BASE[code], _LENGTH_EXTRA[code])
                self.lengths.append((length, 257 + code, extra))
        # token symbol -> bits; the distance symbols (extra bits) never change
        self.code_table = [""] * _NUM_SYMS
        dist = 1
        for c in range(_NUM_OFF):
            nbits = _OFFSET_EXTRA[c]
            for v in range(1 << nbits):
                self.dist_code.append(c)
                self.code_table[_DIST_SYM0 + dist] = _lsb(v, nbits)
                dist += 1


@cache
def _tables() -> _Tables:
    return _Tables()


# --- Huffman codes (huffman_code.go) -------------------------------------------------


def _bit_counts(freqs: list[int], max_bits: int) -> list[int]:
    """How many symbols get each code length, exactly as Go's huffmanEncoder.bitCounts.

    ``freqs`` are the non-zero frequencies in increasing (frequency, symbol)
    order, at least three of them.  Go runs the lazy "boundary" package-merge;
    this is the plain package-merge it is a lazy form of, with the same tie
    rule (a package goes before a leaf of equal weight), which selects the same
    items.  Items are keyed ``4 * weight + 1`` for a leaf, ``4 * weight`` for a
    package, so sorting applies that rule, and a package's key is the sum of
    its two items' keys with the two low bits cleared.
    """
    n = len(freqs)
    max_bits = min(max_bits, n - 1)
    need = 2 * n - 2  # items taken from the top list
    leaves = [4 * f + 1 for f in freqs]
    lists = [leaves]  # the deepest level holds leaves only
    while len(lists) < max_bits:
        below = lists[-1]
        # Pair up the items below (C-level maps), merge with the leaves (the
        # sort merges two sorted runs), keep the lightest ``need``.
        packages = map(operator.and_, map(operator.add, below[0::2], below[1::2]), _MINUS_4)
        items = [*leaves, *packages]
        items.sort()
        del items[need:]
        if items == below:
            # Same items, same packages: every level above is this one too.
            lists += [below] * (max_bits - len(lists))
            break
        lists.append(items)
    # From the top down: the leaves among the items taken at each level are the
    # lightest ones; the packages taken there take twice as many items below.
    # Keys are sorted, leaves odd and packages even, so the leaves among the
    # first ``take`` items are the leaves lighter than the last one taken, and
    # the ones equal to it if it is a leaf (bisection, not a pass over them).
    leaf_counts = []
    take = need
    for items in reversed(lists):
        take = min(take, len(items))
        if take == 0:
            count = 0
        else:
            last = items[take - 1]
            count = bisect_left(leaves, last)
            if last & 1:
                count += take - bisect_left(items, last)
        leaf_counts.append(count)
        take = 2 * (take - count)
    if leaf_counts[0] != n:
        raise AssertionError("goflate: Huffman code does not fit in max_bits")
    leaf_counts.append(0)
    return [0] + [leaf_counts[b - 1] - leaf_counts[b] for b in range(1, max_bits + 1)]


def _huffman(freq: list[int], max_bits: int) -> tuple[list[str], list[int]]:
    """Go's huffmanEncoder.generate: per symbol, its code as emitted bits and its length."""
    codes = [""] * len(freq)
    lengths = [0] * len(freq)
    # (frequency, symbol) order, as one integer per symbol (symbols are < 512)
    keys = sorted([f << 9 | sym for sym, f in enumerate(freq) if f])
    n = len(keys)
    if n <= 2:
        for code, sym in enumerate(sorted(k & 511 for k in keys)):
            codes[sym] = str(code)
            lengths[sym] = 1
        return codes, lengths
    bit_count = _bit_counts([*map(operator.rshift, keys, repeat(9, n))], max_bits)
    syms = [*map(operator.and_, keys, repeat(511, n))]
    code = 0
    end = n
    for nbits, count in enumerate(bit_count):
        code <<= 1
        if nbits == 0 or count == 0:
            continue
        # The `count` most frequent remaining symbols get `nbits`-bit codes,
        # assigned in symbol order.  Codes are emitted most significant bit first.
        fmt = f"0{nbits}b"
        for sym in sorted(syms[end - count : end]):
            codes[sym] = format(code, fmt)
            lengths[sym] = nbits
            code += 1
        end -= count
    return codes, lengths


def _entropy_floor(*freq_lists: list[int]) -> int:
    """A lower bound, in bits, on any prefix coding of these symbol frequencies.

    No prefix code beats the empirical entropy, sum(f * log2(total / f)).
    """
    bits = 0.0
    for freqs in freq_lists:
        used = [f for f in freqs if f]
        total = sum(used)
        bits += total * math.log2(total) - sum(map(operator.mul, used, map(math.log2, used)))
    return int(bits) - 1  # -1: margin for float rounding


# --- block writer (huffman_bit_writer.go) --------------------------------------------


def _codegen(lengths: list[int]) -> tuple[list[int], list[int]]:
    """Go's generateCodegen: the run-length coded code lengths and their frequencies."""
    out: list[int] = []
    freq = [0] * 19
    sizes = [*lengths, -1]
    size = sizes[0]
    count = 1
    index = 1
    while size != -1:
        next_size = sizes[index]
        index += 1
        if next_size == size:
            count += 1
            continue
        if size != 0:
            out.append(size)
            freq[size] += 1
            count -= 1
            while count >= 3:
                n = min(6, count)
                out += (16, n - 3)
                freq[16] += 1
                count -= n
        else:
            while count >= 11:
                n = min(138, count)
                out += (18, n - 11)
                freq[18] += 1
                count -= n
            if count >= 3:
                out += (17, count - 3)
                freq[17] += 1
                count = 0
        out += [size] * count
        freq[size] += count
        size = next_size
        count = 1
    return out, freq


def _dynamic_header(num_lit: int, lengths: list[int]) -> tuple[str, int]:
    """A (non-final) dynamic block header for these code lengths, and its size in bits.

    ``lengths`` holds the ``num_lit`` literal/length code lengths followed by
    the offset code lengths.
    """
    codegen, cg_freq = _codegen(lengths)
    cg_codes, cg_lengths = _huffman(cg_freq, 7)
    num_cg = 19
    while num_cg > 4 and cg_freq[_CODEGEN_ORDER[num_cg - 1]] == 0:
        num_cg -= 1
    parts = [
        "001",
        _lsb(num_lit - 257, 5),
        _lsb(len(lengths) - num_lit - 1, 5),
        _lsb(num_cg - 4, 4),
    ]
    parts += [_lsb(cg_lengths[_CODEGEN_ORDER[i]], 3) for i in range(num_cg)]
    extra_bits = {16: 2, 17: 3, 18: 7}
    i = 0
    while i < len(codegen):
        word = codegen[i]
        parts.append(cg_codes[word])
        if word >= 16:
            parts.append(_lsb(codegen[i + 1], extra_bits[word]))
            i += 1
        i += 1
    header = "".join(parts)
    return header, len(header)


class _BitWriter:
    """DEFLATE's little-endian bit stream, built from strings of '0'/'1' in emission order."""

    def __init__(self) -> None:
        self._pending = ""  # fewer than 8 bits not yet in a whole byte
        self._out: list[bytes] = []

    def write(self, parts: list[str]) -> None:
        bits = self._pending + "".join(parts)
        whole = len(bits) & ~7
        if whole:
            self._out.append(int(bits[whole - 1 :: -1], 2).to_bytes(whole >> 3, "little"))
        self._pending = bits[whole:]

    def write_stored(self, data: bytes, final: bool = False) -> None:
        """A stored block: header bits, padding to a byte, LEN, NLEN, the bytes."""
        bits = self._pending + ("100" if final else "000")
        self._pending = ""
        self.write([bits, "0" * (-len(bits) % 8)])
        n = len(data)
        self._out.append(n.to_bytes(2, "little") + (n ^ 0xFFFF).to_bytes(2, "little"))
        if n:
            self._out.append(data)

    def take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out


def _write_huffman_only(w: _BitWriter, data: bytes) -> None:
    """Go's writeBlockHuff: Huffman-coded literals, or stored if that saves too little."""
    freq = [0] * _NUM_LIT
    for byte, count in Counter(data).items():
        freq[byte] = count
    freq[_EOB] = 1
    stored = (len(data) + 5) * 8
    bound = _entropy_floor(freq)
    if stored < bound + (bound >> 4):
        w.write_stored(data)
        return
    codes, lengths = _huffman(freq, 15)
    # The offset code is the fixed huffOffset: one symbol, one bit, counted once.
    header, size = _dynamic_header(_EOB + 1, [*lengths[: _EOB + 1], 1])
    size += sum(f * n for f, n in zip(freq, lengths, strict=True)) + 1
    if stored < size + (size >> 4):
        w.write_stored(data)
        return
    body = "".join(itemgetter(*data)(codes))  # one C-level lookup pass (len(data) > 16)
    w.write([header, body, codes[_EOB]])


class _Tokens(NamedTuple):
    """One window's tokens as the matcher leaves them (see :func:`_match`)."""

    symbols: list[int]  # every token's symbols, in order
    literals: bytearray  # the literal bytes, for their histogram
    lengths: list[int]  # lengths[-n]: how many matches are n bytes long
    offsets: list[int]  # offsets[c]: how many matches have offset code c


def _write_dynamic(w: _BitWriter, tokens: _Tokens, data: bytes, code_table: list[str]) -> None:
    """Go's encSpeed for a window with matches: writeBlockDynamic for its tokens.

    That is stored if it saves too little, and writeBlockHuff instead when the
    tokens are more than 15/16 of the bytes.  ``code_table`` maps every token
    symbol to its bits; it starts as a copy of ``_Tables.code_table`` and is
    updated here with this block's codes.
    """
    t = _tables()
    symbols, literals, lengths, off = tokens
    lit = [0] * _NUM_LIT
    for byte, count in Counter(literals).items():
        lit[byte] = count
    for length, code, _ in t.lengths:
        lit[code] += lengths[-length]
    n = len(data)
    if len(literals) + sum(lengths) > n - (n >> 4):
        _write_huffman_only(w, data)
        return
    lit[_EOB] = 1
    num_lit = _NUM_LIT
    while lit[num_lit - 1] == 0:
        num_lit -= 1
    num_off = _NUM_OFF
    while num_off > 0 and off[num_off - 1] == 0:
        num_off -= 1
    if num_off == 0:
        off[0] = 1
        num_off = 1
    stored = (len(data) + 5) * 8
    bound = _entropy_floor(lit, off)
    if stored < bound + (bound >> 4):
        w.write_stored(data)
        return
    lit_codes, lit_lengths = _huffman(lit, 15)
    off_codes, off_lengths = _huffman(off, 15)
    header, size = _dynamic_header(num_lit, lit_lengths[:num_lit] + off_lengths[:num_off])
    size += sum(f * n for f, n in zip(lit, lit_lengths, strict=True))
    size += sum(f * n for f, n in zip(off, off_lengths, strict=True))
    if stored < size + (size >> 4):
        w.write_stored(data)
        return
    code_table[:256] = lit_codes[:256]
    code_table[_CODE_SYM0 : _CODE_SYM0 + _NUM_OFF] = off_codes
    for length, code, extra in t.lengths:
        code_table[-length] = lit_codes[code] + extra
    body = "".join(itemgetter(*symbols)(code_table))  # at least the first match's 3 symbols
    w.write([header, body, lit_codes[_EOB]])


# --- the matcher (deflatefast.go) -----------------------------------------------------


def _values(buf: bytes | bytearray) -> bytearray:
    """The little-endian 4-byte value at each position of ``buf`` (0 for the last three),
    as the bytes of an ``array("I")``.

    Byte k of the value at p is ``buf[p + k]``: four strided ``bytearray``
    assignments (a C loop of byte copies each) interleave them.
    """
    positions = max(len(buf) - 3, 0)
    out = bytearray(4 * len(buf))
    for k in range(4):
        out[3 - k if _BIG_ENDIAN else k : 4 * positions : 4] = buf[k : k + positions]
    return out


@lru_cache(maxsize=4)
def _probe_positions(s_limit: int) -> tuple[int, ...]:
    """The positions Go's search loop probes from 0 while no match turns up."""
    positions = []
    s = 0
    skip = 32
    while s + (skip >> 5) <= s_limit:
        positions.append(s)
        step = skip >> 5
        skip += step
        s += step
    return tuple(positions)


class _DeflateFast:
    """Go's deflateFast: the hash table and the history carried between windows.

    Windows are appended to one history buffer, and table entries are
    positions in it, so that they need no shifting from window to window (Go
    stores ``e.cur``-based offsets and shifts them near 2**31; shifting never
    changes a match).  The buffer starts with ``_HISTORY_PAD`` dummy bytes and
    ``0``, a position among them, stands for "no usable candidate": any
    position probed is more than maxMatchOffset past it.  When the buffer
    would grow past ``_HISTORY_MAX`` bytes it is cut back to the padding and
    the previous window; the table is then shifted by ``_shift`` (its older
    entries reset to ``0``) before the next match search that needs it, so
    windows without matches (incompressible input) never pay for it: until
    then an entry is a buffer position plus ``_shift``.  ``_table_values``
    holds each entry's 4-byte value (Go's ``tableEntry.val``; an entry reset
    to ``0`` keeps its old value, but fails the distance test).  ``_values``
    holds the 4-byte values of the buffer; it is exact below ``_values_end``
    (the last three there depend on the next window), and zero-filled where
    no match was ever searched for.
    """

    def __init__(self) -> None:
        self._table = [0] * (1 << _TABLE_BITS)
        self._table_values = [0] * (1 << _TABLE_BITS)  # Go's tableEntry.val
        # bytes, not bytearray: appending a window copies the buffer (cheap,
        # once per window), but a bytes slice is one allocation instead of
        # two, and ``int.from_bytes`` copies a bytearray argument first.
        self._buf = bytes(_HISTORY_PAD)
        self._values = array("I", bytes(4 * _HISTORY_PAD))
        self._values_end = _HISTORY_PAD
        self._prev_len = 0  # size of the previous window, at the end of _buf
        self._shift = 0  # table entries are buffer positions plus this

    def encode(self, src: bytes) -> _Tokens | None:
        """Match one window of at least 17 bytes.

        Returns the tokens, or ``None`` when no match was found (every byte is
        a literal).
        """
        buf = self._buf
        if len(buf) + len(src) > _HISTORY_MAX:
            self._cut_history()
            buf = self._buf
        start = len(buf)
        prev_start = start - self._prev_len
        self._prev_len = len(src)
        buf += src
        self._buf = buf
        found = self._first_match(buf, start, len(src))
        if found is None:
            return None
        if self._shift:
            shift = self._shift
            self._shift = 0
            self._table = [x - shift if x >= shift else 0 for x in self._table]
        # The 4-byte values from the previous window on (only the last three
        # computed ones change: they reached into this window).
        values = self._values
        lo = max(self._values_end - 3, prev_start)
        if len(values) < lo:
            values.frombytes(bytes(4 * (lo - len(values))))
        del values[lo:]
        values.frombytes(_values(buf[lo:]))
        self._values_end = len(buf)
        with memoryview(values) as view, view[4:] as ahead:
            return _match(buf, values, ahead, self._table, self._table_values, *found, start)

    def _cut_history(self) -> None:
        """Keep only the padding and the previous window (the table is shifted later)."""
        prev_len = self._prev_len
        buf = self._buf
        keep_from = len(buf) - prev_len
        delta = keep_from - _HISTORY_PAD
        self._buf = bytes(_HISTORY_PAD) + buf[keep_from:]
        self._shift += delta
        values = self._values
        self._values = array("I", bytes(4 * _HISTORY_PAD)) + values[keep_from:]
        self._values_end = max(_HISTORY_PAD, min(self._values_end - delta, len(self._values)))

    def _first_match(self, buf: bytes, start: int, n: int) -> tuple[int, int] | None:
        """Go's search loop until the window's first match, hashing only the probed positions.

        Until a match, the probed positions depend only on the window size ``n``;
        the window is at ``start`` in ``buf``.  Returns the match position and
        its candidate.  A candidate below the padding's end is more than
        maxMatchOffset back (the previous window follows the padding).
        """
        table = self._table
        table_values = self._table_values
        shift = self._shift
        unpack = _U32.unpack_from
        positions = [*map(start.__add__, _probe_positions(n - _INPUT_MARGIN))]
        for s, value in zip(positions, [unpack(buf, s)[0] for s in positions], strict=True):
            h = ((value * _HASH_MUL) & 0xFFFFFFFF) >> (32 - _TABLE_BITS)
            candidate = table[h] - shift
            table[h] = s + shift
            if value != table_values[h]:
                table_values[h] = value
            elif s - candidate <= _MAX_OFFSET:
                return s, candidate
        return None


def _match(
    buf: bytes,
    values: array[int],
    ahead: memoryview,
    table: list[int],
    table_values: list[int],
    s: int,
    c: int,
    next_emit: int,
    /,
) -> _Tokens:
    """The body of Go's deflateFast.encode, from a first match at ``s`` against ``c``.

    Positions index ``buf`` (the history, ending with this window); ``next_emit``
    is where this window starts; ``values[p]`` is the 4-byte value at p and
    ``ahead[p]`` the one at p + 4 (a view of ``values``: the first step of
    extending a match needs no additions).  Returns the tokens, counted as
    they are made (two list increments per match cost less than a ``Counter``
    over its three symbols).  Go's hash of the 4-byte value v is
    (v * 0x1e35a7bd mod 2**32) >> 18; ``table_values`` holds the value stored
    with each table entry (Go's ``tableEntry.val``), so a probe compares it
    without fetching the candidate's value, reads the candidate only on equal
    values, and checks only those against maxMatchOffset.
    """
    dist_code = _tables().dist_code
    code_syms = _CODE_SYMS
    from_end = _FROM_END
    low_byte_4 = _LOW_BYTE_4
    from_bytes = int.from_bytes
    end = len(buf)
    s_limit = end - 15  # inputMargin
    # Bounds tested against s itself, to save an addition per test.
    before_56 = end - 56
    before_120 = end - 120
    before_258 = end - 258  # maxMatchLength
    before_32 = s_limit - 32
    symbols: list[int] = []
    literals = bytearray()
    lengths = [0] * (_MAX_MATCH + 1)  # lengths[-n]: matches n bytes long
    offsets = [0] * _NUM_OFF
    while True:
        # A 4-byte match at s against c: emit the literals before it, then copies.
        if next_emit < s:
            run = buf[next_emit:s]
            symbols += run
            literals += run
        while True:
            # Extend the match: first 4 bytes by XOR of their 4-byte values
            # (the lowest set bit marks the first differing byte), then by XOR
            # of big-endian ``int.from_bytes`` of whole slices, in stages (56,
            # then 120, then 258 bytes from s: most matches end early, and
            # converting bytes costs per byte); there the XOR's bit length
            # tells how far from the slice's end the first difference is.  At
            # least 12 bytes follow s + 4 (s < s_limit); slices stop at the
            # end of the window.
            x = ahead[s] ^ ahead[c]
            d = s - c
            if x:
                e = s + low_byte_4[(x & -x).bit_length()]
            else:
                j = s + 8
                e = s + 56 if s < before_56 else end
                x = from_bytes(buf[j:e], "big") ^ from_bytes(buf[j - d : e - d], "big")
                if x:
                    e -= from_end[x.bit_length()]
                else:
                    j = e
                    e = s + 120 if s < before_120 else end
                    x = from_bytes(buf[j:e], "big") ^ from_bytes(buf[j - d : e - d], "big")
                    if x:
                        e -= from_end[x.bit_length()]
                    else:
                        j = e
                        e = s + 258 if s < before_258 else end
                        x = from_bytes(buf[j:e], "big") ^ from_bytes(buf[j - d : e - d], "big")
                        e -= from_end[x.bit_length()]
            # The tokens: minus the length, the offset code's symbol, the
            # distance's (see _Tokens), counted as they are made.
            n = s - e
            lengths[n] += 1
            code = dist_code[d]
            offsets[code] += 1
            symbols += (n, code_syms[code], d + 512)  # _DIST_SYM0
            s = e
            if s >= s_limit:
                if s < end:
                    run = buf[s:end]
                    symbols += run
                    literals += run
                return _Tokens(symbols, literals, lengths, offsets)
            # Go inserts s - 1 into the table, then tries s as the next match.
            a = s - 1
            v = values[a]
            h = (v * 0x1E35A7BD & 0xFFFFFFFF) >> 18
            table[h] = a
            table_values[h] = v
            v = values[s]
            h = (v * 0x1E35A7BD & 0xFFFFFFFF) >> 18
            if v != table_values[h]:
                table_values[h] = v
                table[h] = s
                next_emit = s
                s += 1
                break
            c = table[h]
            table[h] = s
            if s - c > 32768:  # maxMatchOffset
                next_emit = s
                s += 1
                break
        # Search for the next match: every byte for 32 probes, then Snappy's
        # skipping.  The byte probes take their values from a slice (one C
        # copy) rather than a lookup each.
        stop = s + 32 if s < before_32 else s_limit
        for s, v in enumerate(values[s:stop], s):  # noqa: B020
            h = (v * 0x1E35A7BD & 0xFFFFFFFF) >> 18
            if v != table_values[h]:  # the common case: no need for the candidate
                table_values[h] = v
                table[h] = s
                continue
            c = table[h]
            table[h] = s
            if s - c <= 32768:
                break
        else:
            s = stop
            skip = 64
            while True:
                step = skip >> 5
                if s + step > s_limit:
                    if next_emit < end:
                        run = buf[next_emit:end]
                        symbols += run
                        literals += run
                    return _Tokens(symbols, literals, lengths, offsets)
                skip += step
                v = values[s]
                h = (v * 0x1E35A7BD & 0xFFFFFFFF) >> 18
                if v != table_values[h]:
                    table_values[h] = v
                    table[h] = s
                else:
                    c = table[h]
                    table[h] = s
                    if s - c <= 32768:
                        break
                s += step


# --- gzip ------------------------------------------------------------------------------


class GzipCompressor(Protocol):
    """The ``zlib.compressobj``-like shape both compressors share."""

    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _GzipFrame:
    """The gzip framing both compressors share: Go's header before the first bytes,
    CRC-32 and size of the input, the trailer after the last deflate bytes.

    Subclasses give the deflate stream: :meth:`_deflate` for each input chunk and
    :meth:`_finish` for the end of the stream.
    """

    def __init__(self) -> None:
        self._crc = 0
        self._size = 0
        self._started = False
        self._finished = False

    def compress(self, data: bytes) -> bytes:
        if self._finished:
            raise ValueError("compress() after flush()")
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        return self._framed(self._deflate(data))

    def flush(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        trailer = self._crc.to_bytes(4, "little") + (self._size & 0xFFFFFFFF).to_bytes(4, "little")
        return self._framed(self._finish()) + trailer

    def _framed(self, out: bytes) -> bytes:
        if not self._started:
            self._started = True
            return GZIP_HEADER + out
        return out

    def _deflate(self, data: bytes) -> bytes:
        raise NotImplementedError

    def _finish(self) -> bytes:
        raise NotImplementedError


class GoGzipCompressor(_GzipFrame):
    """Gzip exactly as Go's ``compress/gzip`` writes it at BestSpeed.

    ``compress(data)`` returns whatever compressed bytes are ready (the gzip
    header first); ``flush()`` finishes the stream (last blocks and trailer).
    Memory is bounded: one pending window, and the matcher's history of at
    most eight windows (~0.55 MB, briefly twice that while a window is
    appended) with its 4-byte values (~2.2 MB).
    """

    def __init__(self) -> None:
        super().__init__()
        self._matcher = _DeflateFast()
        self._writer = _BitWriter()
        self._code_table = list(_tables().code_table)
        self._pending = bytearray()

    def _deflate(self, data: bytes) -> bytes:
        view = memoryview(data).cast("B")
        if self._pending:
            need = _WINDOW - len(self._pending)
            self._pending += view[:need]
            view = view[need:]
            if len(self._pending) == _WINDOW:
                self._window(bytes(self._pending))
                self._pending.clear()
        while len(view) >= _WINDOW:
            self._window(bytes(view[:_WINDOW]))
            view = view[_WINDOW:]
        self._pending += view
        return self._writer.take()

    def _finish(self) -> bytes:
        rest = bytes(self._pending)
        self._pending.clear()
        if len(rest) >= 128:
            self._window(rest)
        elif len(rest) > 16:
            _write_huffman_only(self._writer, rest)
        elif rest:
            self._writer.write_stored(rest)
        self._writer.write_stored(b"", final=True)
        return self._writer.take()

    def _window(self, window: bytes) -> None:
        """Go's encSpeed for one window of at least 128 bytes."""
        symbols = self._matcher.encode(window)
        if symbols is None:
            _write_huffman_only(self._writer, window)
        else:
            _write_dynamic(self._writer, symbols, window, self._code_table)


class ZlibGzipCompressor(_GzipFrame):
    """Go's gzip header around zlib's level-1 deflate stream: fast, but not imgpkg's bytes."""

    def __init__(self) -> None:
        super().__init__()
        self._zlib = zlib.compressobj(1, zlib.DEFLATED, -15)

    def _deflate(self, data: bytes) -> bytes:
        return self._zlib.compress(data)

    def _finish(self) -> bytes:
        return self._zlib.flush()
