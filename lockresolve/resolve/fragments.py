"""New YAML text for values spliced into a resource: block entries, flow values, literals.

What :mod:`lockresolve.resolve.splicer` writes where a value is added or
replaced: a plain or double-quoted scalar, a ``|`` literal block, a nested
block mapping, or its flow form.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockresolve.goyaml import analyze_scalar, is_plain_safe, quote_double

__all__ = [
    "LINE_BREAKS",
    "ODD_BREAKS",
    "NewMap",
    "NewStr",
    "NewValue",
    "block_entry",
    "block_tail",
    "flow_text",
    "key_text",
    "literal_block",
    "scalar_text",
]


@dataclass(frozen=True)
class NewStr:
    """A string value to write."""

    value: str


@dataclass(frozen=True)
class NewMap:
    """A mapping to write, its entries in this order."""

    entries: tuple[tuple[str, NewStr | NewMap], ...]


NewValue = NewStr | NewMap
ODD_BREAKS = ("\r", "\x85", "\u2028", "\u2029")
LINE_BREAKS = ("\n", *ODD_BREAKS)


def key_text(key: str, flow: bool) -> str:
    return key if not flow and is_plain_safe(key, flow=False) else quote_double(key)


def scalar_text(value: str, flow: bool) -> str:
    return value if not flow and is_plain_safe(value, flow=False) else quote_double(value)


def flow_text(value: NewValue) -> str:
    if isinstance(value, NewStr):
        return quote_double(value.value)
    inner = ", ".join(f"{quote_double(k)}: {flow_text(v)}" for k, v in value.entries)
    return "{" + inner + "}"


def literal_block(value: str, indent: int, indicator: int, nl: str) -> str | None:
    """``|`` block for ``value`` with content at ``indent`` columns (None if it cannot be one)."""
    if not value or any(b in value for b in ODD_BREAKS) or not analyze_scalar(value).block_allowed:
        return None
    header = "|"
    if value[0] in " \n":
        header += str(indicator)
    if not value.endswith("\n"):
        header += "-"
    elif len(value) == 1 or value[-2] == "\n":
        header += "+"
    lines = value.split("\n")
    if value.endswith("\n"):
        lines.pop()
    pad = " " * indent
    return header + nl + "".join((pad + line if line else "") + nl for line in lines)


def block_tail(value: NewValue, col: int, step: int, nl: str) -> str:
    """What follows ``key:`` for ``value`` in block style, final newline included."""
    if isinstance(value, NewMap):
        return nl + "".join(block_entry(k, v, col + step, step, nl) for k, v in value.entries)
    if "\n" in value.value:
        lit = literal_block(value.value, col + step, step, nl)
        return " " + (lit if lit is not None else quote_double(value.value) + nl)
    return " " + scalar_text(value.value, flow=False) + nl


def block_entry(key: str, value: NewValue, col: int, step: int, nl: str) -> str:
    return " " * col + key_text(key, flow=False) + ":" + block_tail(value, col, step, nl)
