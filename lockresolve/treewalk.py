"""Nested data as a flat stream of tokens, without recursion.

The YAML emitter (:mod:`lockresolve.goyaml.emitter`) and the Go JSON encoder
(:mod:`lockresolve.resolve.gojson`) both walk dicts and lists in document
order; an explicit stack keeps deep data from reaching Python's recursion limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["flatten"]

T = TypeVar("T")

_END = object()


def flatten(
    root: object,
    expand: Callable[[object], tuple[T, Iterable[object], T] | None],
    leaf: Callable[[object], T],
) -> Iterator[T]:
    """The tokens of ``root`` in document order.

    ``expand(item)`` gives a container's opening token, its children and its
    closing token, or ``None`` for a leaf, whose token is ``leaf(item)``.
    """
    stack: list[tuple[Iterator[object], T | None]] = [(iter((root,)), None)]
    while stack:
        children, closing = stack[-1]
        item = next(children, _END)
        if item is _END:
            stack.pop()
            if closing is not None:
                yield closing
            continue
        node = expand(item)
        if node is None:
            yield leaf(item)
        else:
            opening, inner, close = node
            yield opening
            stack.append((iter(inner), close))
