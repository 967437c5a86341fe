"""YAML 1.1 scalar resolution as yaml.v2 does it, Go's number formatting, yaml.v2's key order."""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Sequence
from decimal import Decimal
from enum import Enum

__all__ = [
    "GoYAMLError",
    "ScalarKind",
    "format_float",
    "go_key_less",
    "is_base60_float",
    "json_number_text",
    "plain_is_string",
    "resolve_plain",
    "resolve_tagged",
    "sort_keys",
]


class GoYAMLError(ValueError):
    """Data that yaml.v2 would refuse (an explicit tag that does not fit its value)."""


class ScalarKind(Enum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    NULL = "null"
    TIMESTAMP = "timestamp"
    MERGE = "merge"


_MAP: dict[str, tuple[ScalarKind, object]] = {}
for _words, _kind, _value in (
    (
        ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"),
        ScalarKind.BOOL,
        True,
    ),
    (
        ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"),
        ScalarKind.BOOL,
        False,
    ),
    (("", "~", "null", "Null", "NULL"), ScalarKind.NULL, None),
    ((".nan", ".NaN", ".NAN"), ScalarKind.FLOAT, math.nan),
    ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), ScalarKind.FLOAT, math.inf),
    (("-.inf", "-.Inf", "-.INF"), ScalarKind.FLOAT, -math.inf),
    (("<<",), ScalarKind.MERGE, "<<"),
):
    for _w in _words:
        _MAP[_w] = (_kind, _value)

_HINT_DIGIT = frozenset("0123456789")
_HINT_SIGN = frozenset("+-")
_HINT_MAP = frozenset("yYnNtTfFoO~")

_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1


def _go_parse_uint_body(body: str) -> int | None:
    """``strconv.ParseUint(body, 0, ...)`` without the range check; None if invalid."""
    if not body:
        return None
    base = 10
    digits = body
    if len(body) >= 2 and body[0] == "0" and body[1] in "xXoObB":
        base = {"x": 16, "o": 8, "b": 2}[body[1].lower()]
        digits = body[2:]
    elif len(body) >= 2 and body[0] == "0":
        base = 8
        digits = body[1:]
    if not digits:
        return None
    allowed = "0123456789abcdefABCDEF"[: {2: 2, 8: 8, 10: 10, 16: 22}[base]]
    if any(c not in allowed for c in digits):
        return None
    return int(digits, base)


def _go_parse_int(s: str) -> int | None:
    """``strconv.ParseInt(s, 0, 64)``: None when invalid or out of range."""
    sign = 1
    body = s
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    value = _go_parse_uint_body(body)
    if value is None:
        return None
    value *= sign
    if value < _INT64_MIN or value > _INT64_MAX:
        return None
    return value


def _go_parse_uint(s: str) -> int | None:
    value = _go_parse_uint_body(s)
    if value is None or value > _UINT64_MAX:
        return None
    return value


def _go_parse_float(s: str) -> float | None:
    try:
        value = float(s)
    except ValueError:
        return None
    if math.isinf(value):  # Go reports ErrRange on overflow
        return None
    return value


_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_TS_DATE = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_TS_TIME = r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?"
_TS_FORMS = (
    re.compile(_TS_DATE + r"[Tt]" + _TS_TIME + r"(?:Z|[-+]\d{2}:\d{2})"),
    re.compile(_TS_DATE + r" " + _TS_TIME),
    re.compile(_TS_DATE),
)


def _is_timestamp(s: str) -> bool:
    """yaml.v2's ``parseTimestamp`` (the layouts it tries with ``time.Parse``)."""
    if len(s) < 5 or not s[:4].isascii() or not s[:4].isdigit() or s[4] != "-":
        return False
    for form in _TS_FORMS:
        m = form.fullmatch(s)
        if m is None:
            continue
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if not 1 <= month <= 12 or day < 1:
            continue
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if day > (_DAYS[month - 1] if month != 2 or leap else 28):
            continue
        if m.lastindex and m.lastindex >= 6:
            hour, minute, sec = int(m.group(4)), int(m.group(5)), int(m.group(6))
            if hour > 23 or minute > 59 or sec > 59:
                continue
        return True
    return False


def resolve_plain(s: str) -> tuple[ScalarKind, object]:
    """Resolve an untagged plain scalar the way yaml.v2 does (YAML 1.1 rules).

    Timestamps resolve to :attr:`ScalarKind.TIMESTAMP` with the text as value
    (yaml.v2 hands them to ``interface{}`` as strings).
    """
    if s == "":
        return _MAP[""]
    first = s[0]
    if not (first in _HINT_DIGIT or first in _HINT_SIGN or first in _HINT_MAP or first == "."):
        return ScalarKind.STR, s
    hit = _MAP.get(s)
    if hit is not None:
        return hit
    if first == ".":
        if _DOT_FLOAT.fullmatch(s):
            value = _go_parse_float(s)
            if value is not None:
                return ScalarKind.FLOAT, value
        return ScalarKind.STR, s
    if first in _HINT_MAP:
        return ScalarKind.STR, s
    if _is_timestamp(s):
        return ScalarKind.TIMESTAMP, s
    plain = s.replace("_", "")
    as_int = _go_parse_int(plain)
    if as_int is not None:
        return ScalarKind.INT, as_int
    as_uint = _go_parse_uint(plain)
    if as_uint is not None:
        return ScalarKind.INT, as_uint
    if _YAML_STYLE_FLOAT.fullmatch(plain):
        value = _go_parse_float(plain)
        if value is not None:
            return ScalarKind.FLOAT, value
    return ScalarKind.STR, s


def resolve_tagged(tag: str, s: str) -> tuple[ScalarKind, object]:
    """Resolve a scalar with an explicit standard tag (``!!int``, ``!!str``, ...)."""
    short = tag.removeprefix("tag:yaml.org,2002:")
    if short in ("str", "binary"):
        return ScalarKind.STR, s
    if short not in ("bool", "int", "float", "null", "timestamp"):
        return ScalarKind.STR, s  # custom tags: yaml.v2 keeps the text
    kind, value = resolve_plain(s)
    wanted = ScalarKind(short)
    if kind is wanted:
        return kind, value
    if wanted is ScalarKind.FLOAT and kind is ScalarKind.INT:
        assert isinstance(value, int)
        return ScalarKind.FLOAT, float(value)
    raise GoYAMLError(f"cannot decode !!{kind.value} `{s}` as a !!{short}")


def is_base60_float(s: str) -> bool:
    if not s or not (s[0] in "+-" or (s[0].isascii() and s[0].isdigit())) or ":" not in s:
        return False
    return _BASE60_FLOAT.fullmatch(s) is not None


@functools.lru_cache(maxsize=4096)
def plain_is_string(s: str) -> bool:
    """yaml.v2 ``stringv``: may this string be written without quotes? (cached: keys repeat)"""
    kind, _ = resolve_plain(s)
    return kind is ScalarKind.STR and not is_base60_float(s)


# --- numbers -----------------------------------------------------------------


def _shortest_digits(f: float, bits: int) -> tuple[str, int]:
    """Shortest round-trip decimal digits of ``abs(f)`` and the decimal point position.

    Returns ``(digits, dp)`` meaning ``0.digits * 10**dp``, as Go's ``decimal``;
    zero is ``("", 0)``.
    """
    a = abs(f)
    if a == 0:
        return "", 0
    if bits == 32:
        target = struct.unpack("<f", struct.pack("<f", a))[0]
        text = f"{target:.8e}"
        for prec in range(9):
            text = f"{target:.{prec}e}"
            if struct.unpack("<f", struct.pack("<f", float(text)))[0] == target:
                break
    else:
        text = repr(a)
    _, digit_tuple, exponent = Decimal(text).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digit_tuple)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped.lstrip("0")
    return digits, len(digits) + exponent


def _fmt_e(neg: bool, digits: str, dp: int, prec: int) -> str:
    out = "-" if neg else ""
    out += digits[:1] or "0"
    if prec > 0:
        out += "." + (digits[1:] + "0" * prec)[:prec]
    exp = dp - 1 if digits else 0
    out += "e" + ("-" if exp < 0 else "+") + f"{abs(exp):02d}"
    return out


def _fmt_f(neg: bool, digits: str, dp: int, prec: int) -> str:
    out = "-" if neg else ""
    out += (digits + "0" * dp)[:dp] if dp > 0 else "0"
    if prec > 0:
        out += "." + "".join(
            digits[j] if 0 <= j < len(digits) else "0" for j in range(dp, dp + prec)
        )
    return out


def format_float(f: float, fmt: str = "g", bits: int = 64) -> str:
    """Go ``strconv.FormatFloat(f, fmt, -1, bits)`` for ``fmt`` in ``g``, ``e``, ``f``."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = math.copysign(1.0, f) < 0
    if bits == 32:
        try:
            struct.pack("<f", f)
        except OverflowError:
            return "-Inf" if neg else "+Inf"
    digits, dp = _shortest_digits(f, bits)
    nd = len(digits)
    if fmt == "e":
        return _fmt_e(neg, digits, dp, max(nd - 1, 0))
    if fmt == "g" and nd and (dp - 1 < -4 or dp - 1 >= 6):
        return _fmt_e(neg, digits, dp, nd - 1)
    return _fmt_f(neg, digits, dp, max(nd - dp, 0))


def json_number_text(value: int | float) -> str:
    """How Go's ``encoding/json`` writes a number that went through ``float64``."""
    f = float(value)
    if math.isnan(f) or math.isinf(f):
        raise GoYAMLError(f"json: unsupported value: {f}")
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = format_float(f, "e")
        m = re.fullmatch(r"(.*e-)0(\d)", text)
        return m.group(1) + m.group(2) if m else text
    return format_float(f, "f")


# --- key order ---------------------------------------------------------------


def go_key_less(a: str, b: str) -> bool:
    """yaml.v2's ``keyList.Less`` for two string keys (a natural sort)."""
    ar, br = a, b
    for i in range(min(len(ar), len(br))):
        if ar[i] == br[i]:
            continue
        al, bl = ar[i].isalpha(), br[i].isalpha()
        if al and bl:
            return ar[i] < br[i]
        if al or bl:
            return bl
        an = bn = 0
        if ar[i] == "0" or br[i] == "0":
            j = i - 1
            while j >= 0 and ar[j].isdigit():
                if ar[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(ar) and ar[ai].isdigit():
            an = an * 10 + (ord(ar[ai]) - ord("0"))
            ai += 1
        bi = i
        while bi < len(br) and br[bi].isdigit():
            bn = bn * 10 + (ord(br[bi]) - ord("0"))
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ar[i] < br[i]
    return len(ar) < len(br)


def _key_cmp(a: str, b: str) -> int:
    if go_key_less(a, b):
        return -1
    if go_key_less(b, a):
        return 1
    return 0


def sort_keys(keys: Sequence[str]) -> list[str]:
    return sorted(keys, key=functools.cmp_to_key(_key_cmp))
