"""``marshal`` without the state machine, for the shapes locks and annotations have.

The lock files, the ``kbld.k14s.io/images`` annotation and the origins records
are block mappings and sequences of token-like strings (image references, tags,
digests, keys such as ``kbld.carvel.dev/id``), integers, booleans, ``null`` and
multi-line strings written as literal blocks. For those, what yaml.v2's emitter
does reduces to a few rules (the line numbers are those of ``emitter.py``'s
``_Emitter``):

* a mapping's keys each start a line at the mapping's indentation; a sequence
  that is a mapping's value is indentless (its ``-`` at the key's column); a
  sequence's items start ``- `` at its indentation, and a collection in an item
  begins on the ``-`` line, two columns in;
* a token-like string is written as is when yaml.v2 reads it back as a string
  (``plain_is_string``), else in double quotes; it has no space, so it is never
  folded, and no character in it needs an escape;
* a multi-line string without a character that forbids a literal block is a ``|``
  block (``|2`` when it starts with a space or a break; ``-`` / ``+`` chomping)
  with its lines two columns in from the node's indentation, empty lines empty;
* an empty mapping or sequence is ``{}`` / ``[]``.

:func:`fast_marshal` returns ``None`` for anything else (a float, a string with a
space, a key longer than 128 bytes, a value whose literal block is not allowed,
deeper than :data:`MAX_DEPTH`, a root scalar), and :func:`marshal` then runs the
general emitter; tests/resolve/test_goyaml_fast.py checks that both give the same
bytes, by hypothesis over data built to reach every rule and its edges, and over
every lock and annotation of the recorded cases.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from lockresolve.goyaml.resolve import plain_is_string, sort_keys
from lockresolve.goyaml.scalar import TOKEN, analyze_scalar

__all__ = ["MAX_DEPTH", "fast_marshal"]

#: nesting beyond this goes to the general (non-recursive) emitter
MAX_DEPTH = 64
#: yaml.v2 writes a key longer than this (in UTF-8 bytes) as a complex ``?`` key
_SIMPLE_KEY_MAX = 128
_ODD_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


class _Decline(Exception):
    """The data has a shape this module does not write: use the general emitter."""


def _token_text(value: str) -> str:
    """A token-like string as yaml.v2 writes it in block context."""
    if value[-1] == ":" or not TOKEN.fullmatch(value):
        raise _Decline
    return value if plain_is_string(value) else '"' + value + '"'


@functools.lru_cache(maxsize=1024)
def _key_text(key: str) -> str:
    """A simple key's text (keys repeat: cached)."""
    if len(key) > _SIMPLE_KEY_MAX or not key:
        raise _Decline
    return _token_text(key)


@functools.lru_cache(maxsize=1024)
def _sorted(keys: tuple[str, ...]) -> tuple[str, ...]:
    """yaml.v2's key order (mappings of one shape repeat: cached)."""
    return tuple(sort_keys(keys))


def _literal(value: str, indent: int) -> str:
    """`` |...`` and the block's lines, for a string holding a line break."""
    if any(b in value for b in _ODD_BREAKS) or not analyze_scalar(value).block_allowed:
        raise _Decline
    header = " |2" if value[0] in " \n" else " |"
    if value[-1] != "\n":
        header += "-"
    elif len(value) == 1 or value[-2] == "\n":
        header += "+"
    pad = " " * indent
    body = "\n".join(pad + line if line else "" for line in value.split("\n"))
    return header + "\n" + body + ("" if value[-1] == "\n" else "\n")


def _scalar(value: object, indent: int) -> str:
    """`` value`` and its line end, for a scalar whose node indentation is ``indent``."""
    if value is None:
        return " null\n"
    if value is True:
        return " true\n"
    if value is False:
        return " false\n"
    if isinstance(value, str):
        if "\n" in value:
            return _literal(value, indent + 2)
        if not value:
            raise _Decline
        return " " + _token_text(value) + "\n"
    if isinstance(value, int) and not isinstance(value, bool):
        return " " + str(value) + "\n"
    raise _Decline


class _Writer:
    def __init__(self) -> None:
        self.out: list[str] = []

    def value(self, value: object, indent: int, depth: int) -> None:
        """A mapping's value, just after ``key:`` (the key at ``indent``)."""
        if type(value) is str and "\n" not in value and value:
            self.out.append(" " + _token_text(value) + "\n")
        elif isinstance(value, dict | Mapping):
            if not value:
                self.out.append(" {}\n")
                return
            self.out.append("\n")
            self.mapping(value, indent + 2, depth + 1, inline=False)
        elif isinstance(value, list | tuple):
            if not value:
                self.out.append(" []\n")
                return
            self.out.append("\n")
            self.sequence(value, indent, depth + 1, inline=False)
        else:
            self.out.append(_scalar(value, indent))

    def item(self, value: object, indent: int, depth: int) -> None:
        """A sequence's item, just after ``-`` (the ``-`` at ``indent``)."""
        if isinstance(value, dict | Mapping):
            if not value:
                self.out.append(" {}\n")
                return
            self.mapping(value, indent + 2, depth + 1, inline=True)
        elif isinstance(value, list | tuple):
            if not value:
                self.out.append(" []\n")
                return
            self.sequence(value, indent + 2, depth + 1, inline=True)
        else:
            self.out.append(_scalar(value, indent))

    def mapping(
        self, value: Mapping[object, object], indent: int, depth: int, *, inline: bool
    ) -> None:
        if depth > MAX_DEPTH:
            raise _Decline
        keys = tuple(k for k in value if type(k) is str)
        if len(keys) != len(value):
            raise _Decline
        if len(keys) > 1:
            keys = _sorted(keys)
        pad = " " * indent
        for i, key in enumerate(keys):
            self.out.append((" " if inline and i == 0 else pad) + _key_text(key) + ":")
            self.value(value[key], indent, depth)

    def sequence(
        self, value: list[object] | tuple[object, ...], indent: int, depth: int, *, inline: bool
    ) -> None:
        if depth > MAX_DEPTH:
            raise _Decline
        pad = " " * indent
        for i, item in enumerate(value):
            self.out.append(" -" if inline and i == 0 else pad + "-")
            self.item(item, indent, depth)


def fast_marshal(data: object) -> str | None:
    """``marshal(data)`` for a mapping or sequence of the shapes above, else ``None``."""
    writer = _Writer()
    try:
        if isinstance(data, dict | Mapping) and data:
            writer.mapping(data, 0, 1, inline=False)
        elif isinstance(data, list | tuple) and data:
            writer.sequence(data, 0, 1, inline=False)
        else:
            return None
    except _Decline:
        return None
    return "".join(writer.out)
