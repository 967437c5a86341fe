"""The few Go standard-library string rules kbld's semver code depends on.

``strings.TrimSpace`` (``unicode.IsSpace``), ``strconv.Atoi`` (an ``int`` is
64 bits on the platforms kbld ships for), ``strconv.Itoa`` after an ``int``
increment that wraps, and ``strconv.Quote`` (``%q``) for messages. Python's
``str.strip``, ``int`` and ``repr`` differ from each: ``strip`` also removes
U+001C..U+001F, ``int`` takes ``_``, surrounding whitespace and every script's
digits and has no overflow.
"""

from __future__ import annotations

__all__ = ["GoSyntaxError", "atoi", "increment_int", "is_space", "quote", "trim_space"]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_ASCII_DIGITS = frozenset("0123456789")

#: ``unicode.IsSpace``: the Latin-1 set and the White_Space property beyond it.
_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


class GoSyntaxError(ValueError):
    """What ``strconv.Atoi`` returns an error for (syntax or range)."""


def is_space(c: str) -> bool:
    """``unicode.IsSpace`` for one character."""
    return c in _SPACES


def trim_space(s: str) -> str:
    """``strings.TrimSpace``."""
    start, end = 0, len(s)
    while start < end and s[start] in _SPACES:
        start += 1
    while end > start and s[end - 1] in _SPACES:
        end -= 1
    return s[start:end]


def atoi(s: str) -> int:
    """``strconv.Atoi`` on a 64-bit platform: an optional sign, then ASCII digits only
    (no ``_``, no spaces, no other scripts' digits), within int64."""
    digits = s[1:] if s[:1] in ("+", "-") else s
    if not digits or not set(digits) <= _ASCII_DIGITS:
        raise GoSyntaxError(f"strconv.Atoi: parsing {quote(s)}: invalid syntax")
    value = int(s)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise GoSyntaxError(f"strconv.Atoi: parsing {quote(s)}: value out of range")
    return value


def increment_int(value: int) -> int:
    """``i + 1`` on a Go int64: the maximum wraps to the minimum."""
    return _INT64_MIN if value == _INT64_MAX else value + 1


def quote(s: str) -> str:
    """``strconv.Quote`` (what ``%q`` prints): printable characters as they are."""
    out = ['"']
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)
