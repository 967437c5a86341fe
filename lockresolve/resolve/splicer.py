"""Edits to a resource's original text: replaced scalars, inserted entries, dedented items.

:class:`Splicer` collects the edits of one resource at the positions ruamel
recorded and applies them; an edit it cannot make raises
:class:`Unspliceable` (the caller then writes the resource as kbld does).
``needs_check`` says whether the result must be parsed again to be trusted
(see :mod:`lockresolve.resolve.render`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lockresolve.goyaml import TOKEN, analyze_scalar, is_plain_safe, quote_double
from lockresolve.resolve.documents import Resource
from lockresolve.resolve.fragments import (
    LINE_BREAKS,
    NewValue,
    block_entry,
    block_tail,
    flow_text,
    literal_block,
)
from lockresolve.resolve.yamlnodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["Edit", "Splicer", "Unspliceable", "lines_with_ends", "node_parents"]


class Unspliceable(Exception):
    """The edit cannot be made in the text; fall back to re-serialising."""


def lines_with_ends(text: str) -> list[str]:
    """Lines split on LF only (``str.splitlines`` also splits on U+2028 and friends)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


def node_parents(root: Node) -> dict[int, MappingNode | SequenceNode]:
    """The collection each node is written in (the first one: anchors come before aliases)."""
    parents: dict[int, MappingNode | SequenceNode] = {}
    seen: set[int] = set()
    work: list[Node] = [root]
    while work:
        node = work.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            continue
        children = (
            [n for pair in node.pairs for n in pair]
            if isinstance(node, MappingNode)
            else list(node.items)
        )
        for child in children:
            parents.setdefault(id(child), node)
        work.extend(reversed(children))
    return parents


class Splicer:
    def __init__(self, resource: Resource, root: Node) -> None:
        self.res = resource
        self.text = resource.text
        self.nl = resource.newline
        self.parents = node_parents(root)
        self.edits: list[Edit] = []
        self.step = self._indent_step(resource.node)
        #: whether the result must be parsed again to be trusted (see the module's doc)
        self.needs_check = resource.item or bool(resource.implied)

    @staticmethod
    def _indent_step(node: MappingNode) -> int:
        """The document's indentation step, from the first nested block mapping."""
        for k, v in node.pairs:
            if isinstance(v, MappingNode) and not v.flow and v.pairs:
                inner = v.pairs[0][0].column
                if inner > k.column:
                    return inner - k.column
        return 2

    def add(self, start: int, end: int, text: str) -> None:
        lo, hi = self.res.span
        if start < lo or end > hi or start > end:
            raise Unspliceable("edit outside the resource's text")
        self.edits.append(Edit(start, end, text))

    def line_start(self, pos: int) -> int:
        return self.text.rfind("\n", 0, pos) + 1

    def line_end(self, pos: int) -> int:
        """Index just after the newline ending the line that holds ``pos`` (or the end)."""
        cut = self.text.find("\n", pos)
        return len(self.text) if cut < 0 else cut + 1

    def value_start(self, node: Node) -> int:
        """Skip a node's anchor and tag; the value itself must follow on the same line."""
        pos = node.start
        text = self.text
        while pos < node.end and text[pos] in "&!":
            while pos < len(text) and text[pos] not in " \t\r\n":
                pos += 1
            while pos < len(text) and text[pos] in " \t":
                pos += 1
            if pos < len(text) and text[pos] in "\r\n":
                raise Unspliceable("a property on its own line")
        return pos

    def in_flow(self, node: Node) -> bool:
        parent = self.parents.get(id(node))
        return parent is not None and parent.flow

    # image values
    def replace_scalar(self, node: ScalarNode, new: str) -> None:
        flow = self.in_flow(node)
        start = self.value_start(node)
        block = node.style in ("|", ">")
        if "\n" in new:
            text = None
            if block and not flow:
                text = self._literal_like(node, start, new)
            if text is None:
                text = quote_double(new) + (self._eol_for(node) if block else "")
        elif node.style is None:
            text = new if is_plain_safe(new, flow=flow) else quote_double(new)
        elif node.style == "'":
            a = analyze_scalar(new)
            text = (
                "'" + new.replace("'", "''") + "'" if a.single_quoted_allowed else quote_double(new)
            )
        else:
            text = quote_double(new) + (self._eol_for(node) if block else "")
        if not self._same_style_token(node, flow, new):
            self.needs_check = True
        self.add(start, node.end, text)

    def _same_style_token(self, node: ScalarNode, flow: bool, new: str) -> bool:
        """Is ``new`` written as a token value in the style of ``node``, in a block collection?"""
        if flow or node.style not in (None, "'", '"') or node.anchor is not None:
            return False
        # A token reads back as itself in each of these styles (replace_scalar quotes
        # the ones that plain style would read otherwise, such as ``1e3``).
        if node.tag is not None or node.start >= node.end or not TOKEN.fullmatch(new):
            return False
        if any(b in self.text[node.start : node.end] for b in LINE_BREAKS):
            return False
        parent = self.parents.get(id(node))
        if isinstance(parent, MappingNode):
            return not any(k is node for k, _ in parent.pairs)
        return isinstance(parent, SequenceNode)

    def _eol_for(self, node: ScalarNode) -> str:
        """A block scalar's span ends at the next line; keep a line break after the new value."""
        return self.nl if node.end > 0 and self.text[node.end - 1] == "\n" else ""

    def _literal_like(self, node: ScalarNode, start: int, new: str) -> str | None:
        body_start = self.line_end(start)
        indent = None
        for line in self.text[body_start : node.end].split("\n"):
            if line.strip():
                indent = len(line) - len(line.lstrip(" "))
                break
        if not indent:
            return None
        if new[0] in " \n":
            return None
        lit = literal_block(new, indent, 0, self.nl)
        if lit is None:
            return None
        return lit if node.end >= len(self.text) or self.text[node.end - 1] == "\n" else None

    # mappings
    def insert_entry(
        self, mapping: MappingNode, key: str, value: NewValue, after: frozenset[str] = frozenset()
    ) -> None:
        """Add ``key: value`` to ``mapping``, before its first key not in ``after`` when possible."""
        if mapping.flow:
            if self._flow_to_block(mapping, key, value):
                return
            pos = self.value_start(mapping)
            if pos >= len(self.text) or self.text[pos] != "{":
                raise Unspliceable("flow mapping without '{'")
            sep = ", " if mapping.pairs else ""
            self.add(pos + 1, pos + 1, f"{quote_double(key)}: {flow_text(value)}{sep}")
            return
        starts = [k for k, _ in mapping.pairs if self._starts_line(k)]
        if not starts:
            raise Unspliceable("no key of the mapping starts a line")
        col = starts[0].column
        preferred = [k for k in starts if getattr(k, "value", None) not in after]
        if not preferred or not self._plain_block_keys(mapping, col):
            self.needs_check = True
        if preferred:
            pos = self.line_start(preferred[0].start)
        elif self._at_line_start(mapping.end):
            pos = mapping.end
        else:
            pos = self.line_start(starts[0].start)
        text = block_entry(key, value, col, self.step, self.nl)
        if pos == len(self.text) and self.text and not self.text.endswith("\n"):
            text = self.nl + text
        self.add(pos, pos, text)

    def _flow_to_block(self, mapping: MappingNode, key: str, value: NewValue) -> bool:
        """Rewrite a one-line flow mapping that is a block entry's value in block style,
        ``key: value`` first, then its entries as written, one per line; what followed
        it on the line (a comment) stays on the key's line. False when it is not such a
        mapping (the caller then inserts in flow style)."""
        parent = self.parents.get(id(mapping))
        if not isinstance(parent, MappingNode) or parent.flow:
            return False
        owner = next((k for k, v in parent.pairs if v is mapping), None)
        start, end = self.value_start(mapping), mapping.end
        if (
            owner is None
            or not self._starts_line(owner)
            or mapping.anchor is not None
            or mapping.tag is not None
            or any(b in self.text[owner.start : end] for b in LINE_BREAKS)
            or self.text[start : start + 1] != "{"
            or self.text[end - 1 : end] != "}"
        ):
            return False
        col = owner.column + self.step
        lines = [block_entry(key, value, col, self.step, self.nl)]
        for k, v in mapping.pairs:
            if k.start >= k.end or v.start >= v.end:
                return False  # an entry without a key or value as text
            entry = self.text[k.start : k.end] + ": " + self.text[v.start : v.end]
            lines.append(" " * col + entry + self.nl)
        self.needs_check = True
        cut = start
        while cut > owner.end and self.text[cut - 1] in " \t":
            cut -= 1
        self.add(cut, end, "")
        eol = self.line_end(end)
        block = "".join(lines)
        if eol == len(self.text) and not self.text.endswith("\n"):
            block = self.nl + block
        self.add(eol, eol, block)
        return True

    def _plain_block_keys(self, mapping: MappingNode, col: int) -> bool:
        """Are all keys plain strings (no merge key), each starting a line at ``col``?"""
        if mapping.anchor is not None or mapping.tag is not None:
            return False
        for key, _ in mapping.pairs:
            if not isinstance(key, ScalarNode) or key.style is not None or key.value == "<<":
                return False
            if key.anchor is not None or key.tag is not None or key.column != col:
                return False
            if not self._starts_line(key):
                return False
        return True

    def _starts_line(self, node: Node) -> bool:
        return not self.text[self.line_start(node.start) : node.start].strip(" ")

    def _at_line_start(self, pos: int) -> bool:
        return pos == len(self.text) or pos == 0 or self.text[pos - 1] == "\n"

    def replace_value(
        self, mapping: MappingNode, key: Node, value_node: Node, value: NewValue
    ) -> None:
        self.needs_check = True
        if not any(k is key and v is value_node for k, v in mapping.pairs):
            raise Unspliceable("the entry comes from a merge key")
        if mapping.flow:
            if isinstance(value_node, ScalarNode) and value_node.start == value_node.end:
                raise Unspliceable("empty value in a flow mapping")
            if isinstance(value_node, MappingNode | SequenceNode) and not value_node.flow:
                raise Unspliceable("block collection in a flow mapping")  # pragma: no cover
            self.add(self.value_start(value_node), value_node.end, flow_text(value))
            return
        colon = key.end
        while colon < len(self.text) and self.text[colon] in " \t":
            colon += 1
        if colon >= len(self.text) or self.text[colon] != ":":
            raise Unspliceable("complex mapping key")
        start = colon + 1
        empty = isinstance(value_node, ScalarNode) and value_node.start == value_node.end
        if value_node.anchor is not None or (value_node.tag is not None and not empty):
            raise Unspliceable("the value has an anchor or a tag")
        if isinstance(value_node, ScalarNode) and value_node.style in ("|", ">"):
            end, ends_line = value_node.end, True
        elif empty:
            end = self.line_end(start)
            ends_line = not self.text[start:end].strip()
            if not ends_line:  # a comment follows: write the value before it
                end = start
        elif (
            value_node.line == key.line and "\n" not in self.text[value_node.start : value_node.end]
        ):
            eol = self.line_end(value_node.end)
            ends_line = not self.text[value_node.end : eol].strip()
            end = eol if ends_line else value_node.end
        else:
            raise Unspliceable("a multi-line value")
        if ends_line:
            tail = block_tail(value, key.column, self.step, self.nl)
        else:
            tail = " " + flow_text(value)
        self.add(start, end, tail)

    # result
    def apply(self) -> str:
        lo, hi = self.res.span
        ordered = sorted(self.edits, key=lambda e: (e.start, e.end))
        out: list[str] = []
        pos = lo
        for edit in ordered:
            if edit.start < pos:
                raise Unspliceable("overlapping edits")
            out.append(self.text[pos : edit.start])
            out.append(edit.text)
            pos = edit.end
        out.append(self.text[pos:hi])
        body = "".join(out)
        if self.res.item:
            body = self._dedent(body, self.res.node.column)
        if body and not body.endswith("\n"):
            self.needs_check = True  # the added break could end a block scalar differently
            body += self.nl
        return body

    @staticmethod
    def _dedent(body: str, column: int) -> str:
        lines = lines_with_ends(body)
        out = lines[:1]
        for line in lines[1:]:
            stripped = line.lstrip(" ")
            lead = len(line) - len(stripped)
            if lead >= column:
                out.append(line[column:])
            elif not stripped.strip() or stripped.startswith("#"):
                out.append(stripped)
            else:
                raise Unspliceable("a line indented less than the list item")
        return "".join(out)
