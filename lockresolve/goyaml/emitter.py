"""yaml.v2's emitter (``emitterc.go``) for plain data, and ``sigs.k8s.io/yaml.Marshal``.

The state machine is driven by an explicit event list, so deep data never
recurses. Only what marshalling plain data needs is ported: no anchors, tags,
folded scalars or explicit documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from lockresolve.goyaml.fastemit import fast_marshal
from lockresolve.goyaml.resolve import (
    GoYAMLError,
    ScalarKind,
    format_float,
    json_number_text,
    plain_is_string,
    resolve_plain,
    sort_keys,
)
from lockresolve.goyaml.scalar import (
    ScalarAnalysis,
    analyze_scalar,
    escape_char,
    is_break,
    needs_escape,
)
from lockresolve.treewalk import flatten

__all__ = ["marshal", "marshal_general"]


# --- the emitter -------------------------------------------------------------

_PLAIN, _SINGLE, _DOUBLE, _LITERAL = "plain", "single", "double", "literal"


_BREAK_CHARS = frozenset("\r\n\x85\u2028\u2029")
_ODD_BREAK_CHARS = _BREAK_CHARS - {"\n"}


@dataclass(frozen=True, slots=True)
class _Ev:
    kind: (
        str  # stream_start doc_start map_start map_end seq_start seq_end scalar doc_end stream_end
    )
    value: str = ""
    style: str = _PLAIN
    flow: bool = False


# the events without a value, shared (events are immutable)
_STREAM_START, _STREAM_END = _Ev("stream_start"), _Ev("stream_end")
_DOC_START, _DOC_END = _Ev("doc_start"), _Ev("doc_end")
_MAP_START, _MAP_END = _Ev("map_start"), _Ev("map_end")
_SEQ_START, _SEQ_END = _Ev("seq_start"), _Ev("seq_end")


class _Emitter:
    """yaml.v2's emitter state machine for untagged, anchor-free events."""

    best_indent = 2
    best_width = 80

    def __init__(self, events: list[_Ev]) -> None:
        self.events = events
        self.head = 0
        self.out: list[str] = []
        self.states: list[str] = []
        self.state = "stream_start"
        self.indents: list[int] = []
        self.indent = -1
        self.flow_level = 0
        self.root_context = self.sequence_context = False
        self.mapping_context = self.simple_key_context = False
        self.line = self.column = 0
        self.whitespace = self.indention = True
        self.open_ended = False
        self.scalar: ScalarAnalysis | None = None
        self.scalar_value = ""
        self.scalar_style = _PLAIN

    # low-level writers
    def put(self, s: str) -> None:
        self.out.append(s)
        self.column += 1

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0
        self.line += 1

    def write(self, c: str) -> None:
        self.out.append(c)
        self.column += 1

    def write_all(self, s: str) -> None:
        for c in s:
            self.write(c)

    def write_break(self, c: str) -> None:
        if c == "\n":
            self.put_break()
        else:
            self.write(c)
            self.column = 0
            self.line += 1

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        if self.column < indent:
            self.out.append(" " * (indent - self.column))
            self.column = indent
        self.whitespace = True
        self.indention = True

    def write_indicator(
        self, indicator: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool
    ) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.write_all(indicator)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention
        self.open_ended = False

    # driver
    def run(self) -> str:
        while self.head < len(self.events):
            ev = self.events[self.head]
            if ev.kind == "scalar":
                self.scalar = analyze_scalar(ev.value)
                self.scalar_value = ev.value
            self.dispatch(ev)
            self.head += 1
        return "".join(self.out)

    def increase_indent(self, flow: bool, indentless: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = self.best_indent if flow else 0
        elif not indentless:
            self.indent += self.best_indent

    def pop_indent(self) -> None:
        self.indent = self.indents.pop()

    def pop_state(self) -> None:
        self.state = self.states.pop()

    def dispatch(self, ev: _Ev) -> None:
        st = self.state
        if st == "stream_start":
            self.indent = -1
            self.state = "first_doc"
        elif st in ("first_doc", "doc_start"):
            if ev.kind == "doc_start":
                if st != "first_doc":
                    self.write_indent()
                    self.write_indicator("---", True, False, False)
                self.state = "doc_content"
            else:  # stream_end
                self.state = "end"
        elif st == "doc_content":
            self.states.append("doc_end")
            self.emit_node(ev, root=True)
        elif st == "doc_end":
            self.write_indent()
            self.state = "doc_start"
        elif st in ("flow_seq_first", "flow_seq"):
            self.flow_sequence_item(ev, st == "flow_seq_first")
        elif st in ("flow_map_first", "flow_map_key"):
            self.flow_mapping_key(ev, st == "flow_map_first")
        elif st in ("flow_map_simple_value", "flow_map_value"):
            self.flow_mapping_value(ev, st == "flow_map_simple_value")
        elif st in ("block_seq_first", "block_seq"):
            self.block_sequence_item(ev, st == "block_seq_first")
        elif st in ("block_map_first", "block_map_key"):
            self.block_mapping_key(ev, st == "block_map_first")
        elif st in ("block_map_simple_value", "block_map_value"):
            self.block_mapping_value(ev, st == "block_map_simple_value")
        else:  # pragma: no cover - the event list is generated, never user input
            raise GoYAMLError(f"emitter: unexpected event {ev.kind} in state {st}")

    def next_is_empty(self) -> bool:
        nxt = self.events[self.head + 1] if self.head + 1 < len(self.events) else None
        cur = self.events[self.head]
        return nxt is not None and (
            (cur.kind == "seq_start" and nxt.kind == "seq_end")
            or (cur.kind == "map_start" and nxt.kind == "map_end")
        )

    def check_simple_key(self) -> bool:
        ev = self.events[self.head]
        if ev.kind == "scalar":
            assert self.scalar is not None
            if self.scalar.multiline:
                return False
            return len(ev.value.encode("utf-8", "surrogatepass")) <= 128
        if ev.kind in ("seq_start", "map_start"):
            return self.next_is_empty()
        return False

    def flow_item_start(self, ev: _Ev, first: bool, brackets: str, end: str) -> bool:
        """What a flow sequence item and a flow mapping key begin with; False at the end."""
        if first:
            self.write_indicator(brackets[0], True, True, False)
            self.increase_indent(True, False)
            self.flow_level += 1
        if ev.kind == end:
            self.flow_level -= 1
            self.pop_indent()
            self.write_indicator(brackets[1], False, False, False)
            self.pop_state()
            return False
        if not first:
            self.write_indicator(",", False, False, False)
        if self.column > self.best_width:
            self.write_indent()
        return True

    def block_item_start(self, ev: _Ev, first: bool, indentless: bool, end: str) -> bool:
        """What a block sequence item and a block mapping key begin with; False at the end."""
        if first:
            self.increase_indent(False, indentless)
        if ev.kind == end:
            self.pop_indent()
            self.pop_state()
            return False
        self.write_indent()
        return True

    def mapping_key(self, ev: _Ev, context: str, is_indention: bool) -> None:
        """A mapping key in ``context`` (``flow`` or ``block``): simple, or after ``?``."""
        if self.check_simple_key():
            self.states.append(f"{context}_map_simple_value")
            self.emit_node(ev, mapping=True, simple_key=True)
            return
        self.write_indicator("?", True, False, is_indention)
        self.states.append(f"{context}_map_value")
        self.emit_node(ev, mapping=True)

    def flow_sequence_item(self, ev: _Ev, first: bool) -> None:
        if self.flow_item_start(ev, first, "[]", "seq_end"):
            self.states.append("flow_seq")
            self.emit_node(ev, sequence=True)

    def flow_mapping_key(self, ev: _Ev, first: bool) -> None:
        if self.flow_item_start(ev, first, "{}", "map_end"):
            self.mapping_key(ev, "flow", False)

    def flow_mapping_value(self, ev: _Ev, simple: bool) -> None:
        if simple:
            self.write_indicator(":", False, False, False)
        else:
            if self.column > self.best_width:
                self.write_indent()
            self.write_indicator(":", True, False, False)
        self.states.append("flow_map_key")
        self.emit_node(ev, mapping=True)

    def block_sequence_item(self, ev: _Ev, first: bool) -> None:
        indentless = self.mapping_context and not self.indention
        if self.block_item_start(ev, first, indentless, "seq_end"):
            self.write_indicator("-", True, False, True)
            self.states.append("block_seq")
            self.emit_node(ev, sequence=True)

    def block_mapping_key(self, ev: _Ev, first: bool) -> None:
        if self.block_item_start(ev, first, False, "map_end"):
            self.mapping_key(ev, "block", True)

    def block_mapping_value(self, ev: _Ev, simple: bool) -> None:
        if simple:
            self.write_indicator(":", False, False, False)
        else:
            self.write_indent()
            self.write_indicator(":", True, False, True)
        self.states.append("block_map_key")
        self.emit_node(ev, mapping=True)

    def emit_node(
        self,
        ev: _Ev,
        *,
        root: bool = False,
        sequence: bool = False,
        mapping: bool = False,
        simple_key: bool = False,
    ) -> None:
        self.root_context = root
        self.sequence_context = sequence
        self.mapping_context = mapping
        self.simple_key_context = simple_key
        if ev.kind == "scalar":
            self.emit_scalar(ev)
        elif ev.kind == "seq_start":
            if self.flow_level > 0 or ev.flow or self.next_is_empty():
                self.state = "flow_seq_first"
            else:
                self.state = "block_seq_first"
        elif ev.kind == "map_start":
            if self.flow_level > 0 or ev.flow or self.next_is_empty():
                self.state = "flow_map_first"
            else:
                self.state = "block_map_first"
        else:  # pragma: no cover
            raise GoYAMLError(f"emitter: expected a node, got {ev.kind}")

    def select_style(self, ev: _Ev) -> str:
        a = self.scalar
        assert a is not None
        style = ev.style
        if self.simple_key_context and a.multiline:
            style = _DOUBLE
        if style == _PLAIN:
            if (self.flow_level > 0 and not a.flow_plain_allowed) or (
                self.flow_level == 0 and not a.block_plain_allowed
            ):
                style = _SINGLE
            if not ev.value and (self.flow_level > 0 or self.simple_key_context):
                style = _SINGLE
        if style == _SINGLE and not a.single_quoted_allowed:
            style = _DOUBLE
        if style == _LITERAL and (
            not a.block_allowed or self.flow_level > 0 or self.simple_key_context
        ):
            style = _DOUBLE
        return style

    def emit_scalar(self, ev: _Ev) -> None:
        style = self.select_style(ev)
        self.increase_indent(True, False)
        allow_breaks = not self.simple_key_context
        if style == _PLAIN:
            self.write_plain(ev.value, allow_breaks)
        elif style == _SINGLE:
            self.write_single(ev.value, allow_breaks)
        elif style == _DOUBLE:
            self.write_double(ev.value, allow_breaks)
        else:
            self.write_literal(ev.value)
        self.pop_indent()
        self.pop_state()

    def write_plain(self, value: str, allow_breaks: bool) -> None:
        if not self.whitespace:
            self.put(" ")
        if value and " " not in value and not _BREAK_CHARS.intersection(value):
            # No space and no break: the loop below would write every character as is.
            self.out.append(value)
            self.column += len(value)
            self.whitespace = self.indention = False
            if self.root_context:
                self.open_ended = True
            return
        self.write_spaced(value, allow_breaks, single=False)
        self.whitespace = False
        self.indention = False
        if self.root_context:
            self.open_ended = True

    def write_spaced(self, value: str, allow_breaks: bool, *, single: bool) -> None:
        """The text of a plain or (``single``) single-quoted scalar, folded at spaces.

        yaml.v2's ``yaml_emitter_write_plain_scalar`` and ``..._single_quoted_scalar``
        share this loop; the quoted one folds only inside the value and doubles ``'``.
        """
        spaces = breaks = False
        n = len(value)
        for i, c in enumerate(value):
            if c == " ":
                nxt_space = i + 1 < n and value[i + 1] == " "
                if (
                    allow_breaks
                    and not spaces
                    and self.column > self.best_width
                    and (not single or 0 < i < n - 1)
                    and not nxt_space
                ):
                    self.write_indent()
                else:
                    self.write(c)
                spaces = True
            elif is_break(c):
                if not breaks and c == "\n":
                    self.put_break()  # the first line feed of a run is written twice
                self.write_break(c)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                if single and c == "'":
                    self.put("'")
                self.write(c)
                self.indention = False
                spaces = breaks = False

    def write_single(self, value: str, allow_breaks: bool) -> None:
        self.write_indicator("'", True, False, False)
        self.write_spaced(value, allow_breaks, single=True)
        self.write_indicator("'", False, False, False)
        self.whitespace = False
        self.indention = False

    def write_double(self, value: str, allow_breaks: bool) -> None:
        spaces = False
        self.write_indicator('"', True, False, False)
        n = len(value)
        for i, c in enumerate(value):
            if needs_escape(value, c):
                for e in escape_char(c):
                    self.put(e)
                spaces = False
            elif c == " ":
                if allow_breaks and not spaces and self.column > self.best_width and 0 < i < n - 1:
                    self.write_indent()
                    if i + 1 < n and value[i + 1] == " ":
                        self.put("\\")
                else:
                    self.write(c)
                spaces = True
            else:
                self.write(c)
                spaces = False
        self.write_indicator('"', False, False, False)
        self.whitespace = False
        self.indention = False

    def write_block_hints(self, value: str) -> None:
        if value and (value[0] == " " or is_break(value[0])):
            self.write_indicator(str(self.best_indent), False, False, False)
        self.open_ended = False
        chomp = ""
        if not value or not is_break(value[-1]):
            chomp = "-"
        elif len(value) == 1 or is_break(value[-2]):
            chomp = "+"
            self.open_ended = True
        if chomp:
            self.write_indicator(chomp, False, False, False)

    def write_literal(self, value: str) -> None:
        self.write_indicator("|", True, False, False)
        self.write_block_hints(value)
        self.put_break()
        self.indention = True
        self.whitespace = True
        breaks = True
        if not _ODD_BREAK_CHARS.intersection(value):
            # Line by line: what the loop below does character by character.
            for i, part in enumerate(value.split("\n")):
                if i:
                    self.put_break()
                    self.indention = True
                    breaks = True
                if part:
                    if breaks:
                        self.write_indent()
                    self.out.append(part)
                    self.column += len(part)
                    self.indention = False
                    breaks = False
            return
        for c in value:
            if is_break(c):
                self.write_break(c)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.write(c)
                self.indention = False
                breaks = False


# --- data to events ------------------------------------------------------------


def _number_scalar(value: int | float) -> str:
    """A number as it comes out of kbld: JSON through float64, then YAML.

    Integers are written exactly (kbld rounds those above 2**53 through float64;
    lockresolve keeps them).
    """
    if isinstance(value, int):
        return str(value)
    kind, parsed = resolve_plain(json_number_text(value))
    if kind is ScalarKind.INT:
        return str(parsed)
    assert isinstance(parsed, float)
    text = format_float(parsed, "g")
    return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)


def _scalar_event(value: object) -> _Ev:
    if value is None:
        return _Ev("scalar", "null")
    if isinstance(value, bool):
        return _Ev("scalar", "true" if value else "false")
    if isinstance(value, int | float):
        return _Ev("scalar", _number_scalar(value))
    if isinstance(value, str):
        if "\n" in value:
            return _Ev("scalar", value, _LITERAL)
        return _Ev("scalar", value, _PLAIN if plain_is_string(value) else _DOUBLE)
    raise GoYAMLError(f"cannot marshal {type(value).__name__}")


def _expand(item: object) -> tuple[_Ev, Iterable[object], _Ev] | None:
    """A mapping (keys in yaml.v2's order) or a sequence as start, children, end."""
    if isinstance(item, _Ev):
        return None
    if isinstance(item, Mapping):
        pairs: list[object] = []
        for k in sort_keys([str(k) for k in item]):
            pairs.append(_scalar_event(k))
            pairs.append(item[k])
        return _MAP_START, pairs, _MAP_END
    if isinstance(item, list | tuple):
        return _SEQ_START, item, _SEQ_END
    return None


def _leaf_event(item: object) -> _Ev:
    return item if isinstance(item, _Ev) else _scalar_event(item)


def _events(data: object) -> Iterator[_Ev]:
    """Events for ``data`` in document order, without recursion."""
    yield _STREAM_START
    yield _DOC_START
    yield from flatten(data, _expand, _leaf_event)
    yield _DOC_END
    yield _STREAM_END


def marshal(data: object) -> str:
    """``sigs.k8s.io/yaml.Marshal(data)`` for JSON-like data, byte for byte.

    The shapes of locks and annotations take :func:`fast_marshal`'s direct path;
    everything else goes through the emitter (:func:`marshal_general`).
    """
    text = fast_marshal(data)
    return text if text is not None else _Emitter(list(_events(data))).run()


def marshal_general(data: object) -> str:
    """:func:`marshal` through the emitter state machine always (the reference)."""
    return _Emitter(list(_events(data))).run()
