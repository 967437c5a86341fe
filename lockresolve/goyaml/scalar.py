"""How yaml.v2's emitter judges a string: plain, quoted or block (``yaml_emitter_analyze_scalar``)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lockresolve.goyaml.resolve import plain_is_string

__all__ = [
    "ScalarAnalysis",
    "analyze_scalar",
    "escape_char",
    "is_break",
    "is_plain_safe",
    "needs_escape",
    "quote_double",
]


# --- scalar analysis (emitterc.go yaml_emitter_analyze_scalar) ----------------


def _printable(c: str) -> bool:
    o = ord(c)
    return (
        o == 0x0A
        or 0x20 <= o <= 0x7E
        or 0xA0 <= o <= 0xD7FF
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
    )


_BREAKS = frozenset("\r\n\x85\u2028\u2029")


def is_break(c: str) -> bool:
    return c in _BREAKS


def _is_blankz_at(value: str, i: int) -> bool:
    return i >= len(value) or value[i] in " \t\0" or value[i] in _BREAKS


@dataclass(frozen=True)
class ScalarAnalysis:
    multiline: bool
    flow_plain_allowed: bool
    block_plain_allowed: bool
    single_quoted_allowed: bool
    block_allowed: bool


#: Token-like values (image references, names, tags, digests): an alphanumeric first
#: character (so no ``---``, ``-``, ``?`` or ``%`` at the start), then only characters
#: that are never an indicator inside a scalar (":" aside), no space, quote,
#: backslash or break, all printable. For these the full analysis below always gives
#: the answer _simple_analysis gives (tests/resolve/test_goyaml.py compares the two),
#: and they read back as themselves in plain, single- and double-quoted style
#: (plain still needs ``is_plain_safe``: ``1e3``, ``true`` and ``a:`` match too).
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./@:+=~-]*")
_SIMPLE_PLAIN = ScalarAnalysis(False, True, True, True, True)
_SIMPLE_COLON = ScalarAnalysis(False, False, True, True, True)


def _simple_analysis(value: str) -> ScalarAnalysis | None:
    """The analysis of an ordinary token-like value, or None when it needs the full one."""
    if not TOKEN.fullmatch(value) or value[-1] == ":":
        return None
    return _SIMPLE_COLON if ":" in value else _SIMPLE_PLAIN


def analyze_scalar(value: str) -> ScalarAnalysis:
    """yaml.v2's judgement of ``value`` (what styles can write it)."""
    simple = _simple_analysis(value)
    if simple is not None:
        return simple
    return _analyze_cached(value) if len(value) <= _CACHE_MAX_LEN else _analyze_regex(value)


_CACHE_MAX_LEN = 4096


@functools.lru_cache(maxsize=4096)
def _analyze_cached(value: str) -> ScalarAnalysis:
    return _analyze_regex(value)


# The character loop below (``_analyze``, the port of emitterc.go) restated as a few
# searches over the whole string, so that no Python code runs per character. Each
# flag of the loop depends on a character and at most its two neighbours:
# ``previous_space`` / ``previous_break`` are the previous character's class, an
# indicator's "followed by whitespace" is the next character being a space or a tab
# (or the end), "preceded by whitespace" the previous one being blank or a break.
# tests/resolve/test_goyaml_fast.py checks the two give the same answer (hypothesis
# over characters chosen to hit every branch, and the recorded cases).
_BREAK_CLASS = "\r\n\x85\u2028\u2029"
_NON_PRINTABLE_ASCII = re.compile("[^\n -~]")
_ANY_BREAK = re.compile(f"[{_BREAK_CLASS}]")
_BREAK_SPACE = re.compile(f"[{_BREAK_CLASS}] ")
_SPACE_BREAK = re.compile(f" [{_BREAK_CLASS}]")
#: flow indicators after the first character
_FLOW_LATER = re.compile(r"[,?\[\]{}:]")
#: block (and flow) indicators after the first character: ``: `` and `` #``
_COLON_WS = re.compile(r":(?:[ \t]|\Z)")
_HASH_AFTER_BLANK = re.compile(f"[ \\t\\0{_BREAK_CLASS}]#")
_FIRST_BOTH = frozenset("#,[]{}&*!|>'\"%@`")


@functools.cache
def _non_printable() -> re.Pattern[str]:
    """Compiled at first use: its ranges take about 15 ms to compile, and most runs are ASCII."""
    return re.compile("[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")


def _analyze_regex(value: str) -> ScalarAnalysis:
    """What :func:`_analyze` returns, found by regular expressions instead of a loop."""
    if not value:
        return ScalarAnalysis(False, False, True, True, False)
    first, last = value[0], value[-1]
    flow_ind = block_ind = value.startswith(("---", "..."))
    followed = len(value) == 1 or value[1] in " \t"
    if first in _FIRST_BOTH or (first == "-" and followed):
        flow_ind = block_ind = True
    elif first in "?:":
        flow_ind = True
        block_ind = block_ind or followed
    if _COLON_WS.search(value, 1) or _HASH_AFTER_BLANK.search(value):
        flow_ind = block_ind = True
    elif not flow_ind and _FLOW_LATER.search(value, 1):
        flow_ind = True
    line_breaks = _ANY_BREAK.search(value) is not None
    special = (_NON_PRINTABLE_ASCII if value.isascii() else _non_printable()).search(
        value
    ) is not None
    trailing_space = last == " "
    return _styles(
        line_breaks=line_breaks,
        at_edges=first == " " or first in _BREAKS or trailing_space or last in _BREAKS,
        trailing_space=trailing_space,
        break_space=line_breaks and _BREAK_SPACE.search(value) is not None,
        space_break=line_breaks and _SPACE_BREAK.search(value) is not None,
        special=special,
        flow_ind=flow_ind,
        block_ind=block_ind,
    )


def _styles(
    *,
    line_breaks: bool,
    at_edges: bool,
    trailing_space: bool,
    break_space: bool,
    space_break: bool,
    special: bool,
    flow_ind: bool,
    block_ind: bool,
) -> ScalarAnalysis:
    """The styles emitterc.go allows from what it found in a scalar.

    ``at_edges``: a space or a break leads or trails; ``break_space`` and
    ``space_break``: a break followed by a space, a space followed by a break.
    """
    flow_plain = block_plain = single = block = True
    if at_edges:
        flow_plain = block_plain = False
    if trailing_space:
        block = False
    if break_space:
        flow_plain = block_plain = single = False
    if space_break or special:
        flow_plain = block_plain = single = block = False
    if line_breaks:
        flow_plain = block_plain = False
    if flow_ind:
        flow_plain = False
    if block_ind:
        block_plain = False
    return ScalarAnalysis(line_breaks, flow_plain, block_plain, single, block)


def _analyze(value: str) -> ScalarAnalysis:
    """The reference: emitterc.go's loop, character by character (tests compare with it)."""
    if not value:
        return ScalarAnalysis(False, False, True, True, False)
    block_ind = flow_ind = line_breaks = special = False
    leading_space = leading_break = trailing_space = trailing_break = False
    break_space = space_break = False
    previous_space = previous_break = False
    if value.startswith("---") or value.startswith("..."):
        block_ind = flow_ind = True
    preceded_by_ws = True
    n = len(value)
    for i, c in enumerate(value):
        followed_by_ws = i + 1 >= n or value[i + 1] in " \t"
        if i == 0:
            if c in "#,[]{}&*!|>'\"%@`":
                flow_ind = block_ind = True
            elif c in "?:":
                flow_ind = True
                if followed_by_ws:
                    block_ind = True
            elif c == "-" and followed_by_ws:
                flow_ind = block_ind = True
        else:
            if c in ",?[]{}":
                flow_ind = True
            elif c == ":":
                flow_ind = True
                if followed_by_ws:
                    block_ind = True
            elif c == "#" and preceded_by_ws:
                flow_ind = block_ind = True
        if not _printable(c):
            special = True
        if c == " ":
            if i == 0:
                leading_space = True
            if i + 1 == n:
                trailing_space = True
            if previous_break:
                break_space = True
            previous_space, previous_break = True, False
        elif is_break(c):
            line_breaks = True
            if i == 0:
                leading_break = True
            if i + 1 == n:
                trailing_break = True
            if previous_space:
                space_break = True
            previous_space, previous_break = False, True
        else:
            previous_space = previous_break = False
        preceded_by_ws = _is_blankz_at(value, i)
    return _styles(
        line_breaks=line_breaks,
        at_edges=leading_space or leading_break or trailing_space or trailing_break,
        trailing_space=trailing_space,
        break_space=break_space,
        space_break=space_break,
        special=special,
        flow_ind=flow_ind,
        block_ind=block_ind,
    )


def is_plain_safe(value: str, *, flow: bool) -> bool:
    """Can ``value`` be written as a plain scalar and still load as this string?

    True only when both yaml.v2 (YAML 1.1) and a YAML 1.2 reader see a string.
    """
    if not value or not plain_is_string(value):
        return False
    # YAML 1.2 core schema extras (ruamel): 0o17, 1e3 style, .inf variants
    if re.fullmatch(r"[-+]?(0o[0-7]+|0x[0-9a-fA-F]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)", value):
        return False
    a = analyze_scalar(value)
    return a.flow_plain_allowed if flow else a.block_plain_allowed


def escape_char(c: str) -> str:
    o = ord(c)
    simple = {
        0x00: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f",
        0x0D: "r", 0x1B: "e", 0x22: '"', 0x5C: "\\", 0x85: "N", 0xA0: "_",
        0x2028: "L", 0x2029: "P",
    }  # fmt: skip
    if o in simple:
        return "\\" + simple[o]
    if o <= 0xFF:
        return f"\\x{o:02X}"
    if o <= 0xFFFF:
        return f"\\u{o:04X}"
    return f"\\U{o:08X}"


def needs_escape(value: str, c: str) -> bool:
    return not _printable(c) or value.startswith("\ufeff") or is_break(c) or c == '"' or c == "\\"


def quote_double(value: str) -> str:
    """A double-quoted YAML scalar on a single line (yaml.v2's escapes, no folding)."""
    return '"' + "".join(escape_char(c) if needs_escape(value, c) else c for c in value) + '"'
