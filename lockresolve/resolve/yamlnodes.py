"""YAML text to a node graph with positions, safely.

ruamel.yaml's parser supplies the events (with exact character offsets); the
composing is done here, without recursion, so that:

* every node keeps its span in the text (to splice new values in place);
* aliases are shared node objects (never expanded here);
* nesting deeper than :data:`MAX_DEPTH` is an error, not a ``RecursionError``;
* alias bombs are refused up front: the expanded size of every node is
  computed as it completes and yaml.v2's own rule ("document contains
  excessive aliasing") is applied, plus a hard cap.

Only the first document of the text is composed, as yaml.v2's ``Unmarshal``
does (kbld splits the stream on ``---`` lines before parsing).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.reader import ReaderError

from lockresolve.errors import YAMLInputError

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MappingNode",
    "Node",
    "ScalarNode",
    "SequenceNode",
    "compose",
]

MAX_DEPTH = 1000
MAX_EXPANDED_NODES = 2_000_000


@dataclass(frozen=True, eq=False)
class _Base:
    start: int  # character offset of the node (anchor and tag included)
    end: int
    line: int  # 0-based line of ``start`` in the composed text
    column: int
    tag: str | None
    anchor: str | None
    # expanded size (aliases followed), aliased share of it, expanded depth
    size: int = field(default=1, repr=False)
    aliased: int = field(default=0, repr=False)
    depth: int = field(default=1, repr=False)


@dataclass(frozen=True, eq=False)
class ScalarNode(_Base):
    value: str = ""
    style: str | None = None  # None (plain), "'", '"', "|", ">"


@dataclass(frozen=True, eq=False)
class MappingNode(_Base):
    pairs: tuple[tuple[Node, Node], ...] = ()
    flow: bool = False


@dataclass(frozen=True, eq=False)
class SequenceNode(_Base):
    items: tuple[Node, ...] = ()
    flow: bool = False


Node = ScalarNode | MappingNode | SequenceNode


@dataclass
class _Frame:
    event: MappingStartEvent | SequenceStartEvent
    children: list[tuple[Node, bool]]  # (node, reached through an alias)


def _allowed_alias_ratio(decodes: int) -> float:
    low, high = 400_000, 4_000_000
    if decodes <= low:
        return 0.99
    if decodes >= high:
        return 0.10
    return 0.99 - 0.89 * ((decodes - low) / (high - low))


def _parse(text: str) -> list[Event]:
    """Parser events for ``text``.

    ruamel's libyaml binding (ruamel.yaml.clib, when installed) is about twenty
    times faster and gives the same events and marks, but its libyaml is older
    and refuses some YAML the pure-Python parser (like Go's yaml.v2) accepts,
    for example ``{image: reg.io/b:1}``. So a refusal is checked again with the
    pure-Python parser, whose verdict and message count.
    """
    cparser = _clib_parser()
    if cparser is not None:
        # What ``YAML(typ="safe").parse`` does with the binding, without building a
        # YAML object (its plug-in discovery globs the file system) and a loader
        # class for every call: events need neither a constructor nor a resolver.
        parser = cparser(text)
        try:
            events: list[Event] = []
            while parser.check_event():
                events.append(parser.get_event())
            return events
        except YAMLError:
            pass
        finally:
            parser.dispose()
    return list(YAML(typ="safe", pure=True).parse(text))


@functools.cache
def _clib_parser() -> type[Any] | None:
    """ruamel's libyaml parser class, or None when ruamel.yaml.clib is not installed."""
    found = YAML(typ="safe").Parser
    return found if found is not None and "clib" in getattr(found, "__module__", "") else None


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, max(0, min(index, len(text))))


_FLOW_OPEN_AFTER = frozenset(" \t\r\n[{,:-?")


def _flow_too_deep(text: str, limit: int) -> int | None:
    """Index where ``[``/``{`` nesting first exceeds ``limit``, by a cheap scan.

    ruamel's scanner slows down quadratically on very deep flow nesting, so
    such input is refused before parsing. The scan skips quoted scalars and
    comments, and counts a bracket only where a flow collection can start.
    """
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    i, n = 0, len(text)
    prev = "\n"
    while i < n:
        c = text[i]
        if c in "\"'" and prev in _FLOW_OPEN_AFTER:
            close = i + 1
            while close < n:
                if text[close] == c:
                    if c == "'" and close + 1 < n and text[close + 1] == "'":
                        close += 2
                        continue
                    break
                close += 2 if c == '"' and text[close] == "\\" else 1
            i, prev = close + 1, c
            continue
        if c == "#" and prev in " \t\r\n":
            cut = text.find("\n", i)
            i, prev = (n if cut < 0 else cut), "\n"
            continue
        if c in "[{" and prev in _FLOW_OPEN_AFTER:
            depth += 1
            if depth > limit:
                return i
        elif c in "]}" and depth:
            depth -= 1
        prev = c
        i += 1
    return None


class _Composer:
    def __init__(self, text: str, source: str, line_offset: int) -> None:
        self.text = text
        self.source = source
        self.line_offset = line_offset
        self.anchors: dict[str, Node] = {}
        self.stack: list[_Frame] = []

    def error(self, message: str, line: int | None) -> YAMLInputError:
        return YAMLInputError(
            message, self.source, None if line is None else self.line_offset + line + 1
        )

    def events(self) -> Iterator[Event]:
        too_deep = _flow_too_deep(self.text, MAX_DEPTH)
        if too_deep is not None:
            raise self.error(
                f"document nesting exceeds {MAX_DEPTH} levels", _line_of(self.text, too_deep)
            )
        try:
            yield from _parse(self.text)
        except ReaderError as exc:
            char = exc.character
            code = ord(char) if isinstance(char, str) and len(char) == 1 else char
            what = f"character #x{code:04x}" if isinstance(code, int) else "character"
            raise self.error(
                f"unacceptable {what}: {exc.reason}", _line_of(self.text, exc.position)
            ) from None
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
            raise self.error(problem, None if mark is None else mark.line) from None
        except YAMLError as exc:
            position = getattr(exc, "position", None)
            line = _line_of(self.text, position) if isinstance(position, int) else None
            detail = " ".join(str(exc).split())
            raise self.error(f"invalid YAML: {detail}", line) from None

    def add(self, node: Node, via_alias: bool) -> Node | None:
        if not self.stack:
            return node
        self.stack[-1].children.append((node, via_alias))
        return None

    def register(self, node: Node) -> None:
        if node.anchor is not None:
            self.anchors[node.anchor] = node

    def finish_collection(self, end: MappingEndEvent | SequenceEndEvent) -> Node:
        frame = self.stack.pop()
        ev = frame.event
        kids = [n for n, _ in frame.children]
        size = 1 + sum(n.size for n in kids)
        aliased = sum(n.size if via else n.aliased for n, via in frame.children)
        depth = 1 + max((n.depth for n in kids), default=0)
        start, line, column = ev.start_mark.index, ev.start_mark.line, ev.start_mark.column
        end_index = end.end_mark.index
        flow = bool(ev.flow_style)
        node: Node
        if isinstance(ev, MappingStartEvent):
            if len(kids) % 2:
                raise self.error("mapping with a key and no value", line)
            node = MappingNode(
                start, end_index, line, column, ev.tag, ev.anchor, size, aliased, depth,
                pairs=tuple((kids[i], kids[i + 1]) for i in range(0, len(kids), 2)),
                flow=flow,
            )  # fmt: skip
        else:
            node = SequenceNode(
                start, end_index, line, column, ev.tag, ev.anchor, size, aliased, depth,
                items=tuple(kids),
                flow=flow,
            )  # fmt: skip
        self.check_limits(node)
        return node

    def check_limits(self, node: Node) -> None:
        if node.depth > MAX_DEPTH:
            raise self.error(
                f"document nesting exceeds {MAX_DEPTH} levels (aliases included)", node.line
            )
        if node.size > MAX_EXPANDED_NODES:
            raise self.error(
                f"document expands to more than {MAX_EXPANDED_NODES} nodes "
                "(too large, or excessive aliasing)",
                node.line,
            )
        if (
            node.aliased > 100
            and node.size > 1000
            and node.aliased / node.size > _allowed_alias_ratio(node.size)
        ):
            raise self.error("document contains excessive aliasing", node.line)

    def compose(self) -> Node | None:
        for ev in self.events():
            if isinstance(ev, ScalarEvent):
                scalar = ScalarNode(
                    start=ev.start_mark.index,
                    end=ev.end_mark.index,
                    line=ev.start_mark.line,
                    column=ev.start_mark.column,
                    tag=ev.tag,
                    anchor=ev.anchor,
                    value=ev.value,
                    style=ev.style or None,
                )
                self.register(scalar)
                done = self.add(scalar, False)
            elif isinstance(ev, MappingStartEvent | SequenceStartEvent):
                if len(self.stack) >= MAX_DEPTH:
                    raise self.error(
                        f"document nesting exceeds {MAX_DEPTH} levels", ev.start_mark.line
                    )
                self.stack.append(_Frame(ev, []))
                continue
            elif isinstance(ev, MappingEndEvent | SequenceEndEvent):
                node = self.finish_collection(ev)
                self.register(node)
                done = self.add(node, False)
            elif isinstance(ev, AliasEvent):
                target = self.anchors.get(ev.anchor)
                if target is None:
                    raise self.error(f"unknown anchor '{ev.anchor}' referenced", ev.start_mark.line)
                done = self.add(target, True)
            elif isinstance(ev, DocumentEndEvent):
                return None
            else:
                continue
            if done is not None:
                return done
        return None


def compose(text: str, source: str, line_offset: int = 0) -> Node | None:
    """Compose the first YAML document of ``text``; ``None`` when it is empty.

    ``line_offset`` is added to error lines (``text`` may be a slice of a file).
    Raises :class:`YAMLInputError` for malformed or hostile input.
    """
    try:
        return _Composer(text, source, line_offset).compose()
    except RecursionError:  # pragma: no cover - the composer does not recurse
        raise YAMLInputError("document nesting too deep", source) from None
