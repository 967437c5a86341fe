"""Go ``encoding/json`` as kbld uses it for the ``json`` update strategy.

kbld decodes the string into ``interface{}`` (every number a ``float64``,
``NaN``/``Infinity`` refused, the last duplicate key wins), applies the nested
search rules and writes it back with ``json.Marshal``: compact, map keys
sorted, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\u`` sequences.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from lockresolve.goyaml import json_number_text
from lockresolve.treewalk import flatten

__all__ = ["MAX_JSON_DEPTH", "dumps", "loads"]

MAX_JSON_DEPTH = 1000


def _refuse_constant(name: str) -> object:
    raise ValueError(f"invalid JSON constant {name}")


def _depth(text: str) -> int:
    depth = best = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            best = max(best, depth)
        elif c in "]}":
            depth -= 1
    return best


def loads(text: str) -> tuple[bool, object]:
    """Decode like Go's ``json.Unmarshal`` into ``interface{}``: ``(ok, value)``.

    Numbers become floats; documents nested deeper than :data:`MAX_JSON_DEPTH`
    are treated as undecodable.
    """
    if _depth(text) > MAX_JSON_DEPTH:
        return False, None
    try:
        value = json.loads(
            text,
            parse_int=float,
            parse_float=float,
            parse_constant=_refuse_constant,
        )
    except (ValueError, RecursionError):
        return False, None
    return True, value


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _string(s: str) -> str:
    out = ['"']
    for c in s:
        esc = _ESCAPES.get(c)
        if esc is not None:
            out.append(esc)
        elif ord(c) < 0x20:
            out.append(f"\\u{ord(c):04x}")
        elif 0xD800 <= ord(c) <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            raise ValueError(f"json: unsupported value: {value}")
        return json_number_text(value)
    if isinstance(value, str):
        return _string(value)
    raise ValueError(f"json: unsupported type: {type(value).__name__}")


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _expand(item: object) -> tuple[str, Iterable[object], str] | None:
    """An object (keys sorted) or an array as its bracket, its parts, its bracket."""
    if isinstance(item, dict):
        parts: list[object] = []
        for i, k in enumerate(sorted(item)):
            parts.append(_Raw(("," if i else "") + _string(k) + ":"))
            parts.append(item[k])
        return "{", parts, "}"
    if isinstance(item, list):
        parts = []
        for i, v in enumerate(item):
            if i:
                parts.append(_Raw(","))
            parts.append(v)
        return "[", parts, "]"
    return None


def _leaf(item: object) -> str:
    return item.text if isinstance(item, _Raw) else _scalar(item)


def dumps(value: object) -> str:
    """Encode like Go's ``json.Marshal`` (compact, sorted keys, HTML-safe)."""
    return "".join(flatten(value, _expand, _leaf))
