"""``--exclude PATTERN`` and the ``Config`` key ``excludes:`` (a lockresolve extension).

A value whose reference matches a pattern is left exactly as written, is not
resolved and is kept out of the locks (kbld #155; k8s-digester's
``--skip-prefixes``). Patterns are shell-style (:func:`fnmatch.fnmatchcase`:
``*`` and ``?`` match any character, ``/`` and ``:`` included; ``[...]``
classes), matched against the reference as written and against its normalised
form (``nginx`` is ``index.docker.io/library/nginx:latest``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
from collections.abc import Sequence

from lockresolve.errors import InvalidReferenceError
from lockresolve.reference import Reference

__all__ = ["Exclusions"]


class Exclusions:
    """The patterns of one run; :meth:`match` is cached per reference."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(dict.fromkeys(patterns))
        self.match = functools.lru_cache(maxsize=None)(self._match)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def _match(self, written: str) -> bool:
        names = [written]
        with contextlib.suppress(InvalidReferenceError):
            names.append(str(Reference.parse(written)))
        return any(fnmatch.fnmatchcase(n, p) for p in self.patterns for n in names)
