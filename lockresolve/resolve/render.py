"""Writing a resource back with its images resolved, keeping the user's formatting.

kbld re-serialises every resource (sorted keys, comments dropped). lockresolve
instead edits the original text in place: each replaced value is spliced in
at the position ruamel recorded (keeping its quoting style where the new
value allows it), and the ``kbld.k14s.io/images`` annotation is inserted as
a literal block next to the existing annotations (creating ``annotations``
and ``metadata`` when needed). Everything else (comments, key order, quoting,
blank lines, CRLF line endings) is left as it was. A resource split out of a
``List`` is its item's text, dedented.

Every result is checked: the spliced text is parsed again and must decode to
exactly the data kbld would have written. When it does not, or when splicing
is impossible (an anchor shared with another place, a flow construct that
cannot take the edit), the resource is written as kbld writes it (sorted
keys, Go yaml.v2 formatting), so the output is always right.

The one exception to the re-parse is the common case where the result is
known without it (``_Splicer.needs_check`` stays false): every edit either
replaces a single-line plain, single- or double-quoted value in block context
by a token-like string (an image reference: see ``goyaml.TOKEN``) written in the same
style, or inserts one ``key: value`` entry, written by this module's emitter,
as a new line just above a sibling key of a block mapping whose keys all
start their lines at one column, in a whole document (not a list item) that
ends with a line break. tests/resolve/test_render_fast.py checks that both
ways give the same text over the conformance inputs and the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lockresolve.errors import InputError
from lockresolve.goyaml import TOKEN, analyze_scalar, is_plain_safe, marshal, quote_double
from lockresolve.resolve.configmodel import SearchRule
from lockresolve.resolve.documents import Resource, split_chunks
from lockresolve.resolve.godata import GoMap, copy_data, count_nodes, go_equal, to_data
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.origins import origins_data
from lockresolve.resolve.walker import Change, apply_rules
from lockresolve.resolve.yamlnodes import MappingNode, Node, ScalarNode, SequenceNode, compose

__all__ = [
    "IMAGES_ANNOTATION",
    "Rendered",
    "annotation_value",
    "render_resource",
    "render_stream",
]

IMAGES_ANNOTATION = "kbld.k14s.io/images"
_HEADER_KEYS = frozenset({"apiVersion", "kind"})

#: tests set this to re-parse every result, to compare with the unchecked ones
_ALWAYS_CHECK = False


class _Unspliceable(Exception):
    """The edit cannot be made in the text; fall back to re-serialising."""


@dataclass(frozen=True)
class Rendered:
    """One resource's output: its text (starting with ``---``) and whether it was spliced."""

    text: str
    spliced: bool


# --- what kbld writes ------------------------------------------------------------


def annotation_value(images: Iterable[ResolvedImage]) -> str:
    """The ``kbld.k14s.io/images`` value: ``{origins, url}`` sorted by url, as kbld marshals it.

    Images without origins (references already pinned by digest) and exact
    duplicates are left out; when nothing is left kbld writes ``null``.
    """
    structs: list[dict[str, object]] = []
    for image in sorted(images, key=lambda i: i.url):
        if not image.origins:
            continue
        entry: dict[str, object] = {"origins": origins_data(image.origins), "url": image.url}
        if entry not in structs:
            structs.append(entry)
    return marshal(structs if structs else None)


def _annotate_data(data: dict[str, object], value: str) -> None:
    """kbld: ``SetAnnotations(GetAnnotations() + images)`` with apimachinery's quirks.

    A ``metadata`` that is not a map is left alone (the setter fails silently);
    ``annotations`` that are not a map of strings are replaced entirely.
    """
    meta = data.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return
    anns = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(anns, dict) and all(isinstance(v, str) for v in anns.values()):
        new: dict[str, object] = dict(anns)
    else:
        new = {}
    new[IMAGES_ANNOTATION] = value
    if not isinstance(meta, dict):
        meta = {}
        data["metadata"] = meta
    meta["annotations"] = new


# --- text fragments ------------------------------------------------------------------


@dataclass(frozen=True)
class _Str:
    value: str


@dataclass(frozen=True)
class _Map:
    entries: tuple[tuple[str, _Str | _Map], ...]


_Value = _Str | _Map
_ODD_BREAKS = ("\r", "\x85", "\u2028", "\u2029")
_LINE_BREAKS = ("\n", *_ODD_BREAKS)


def _key_text(key: str, flow: bool) -> str:
    return key if not flow and is_plain_safe(key, flow=False) else quote_double(key)


def _scalar_text(value: str, flow: bool) -> str:
    return value if not flow and is_plain_safe(value, flow=False) else quote_double(value)


def _flow_text(value: _Value) -> str:
    if isinstance(value, _Str):
        return quote_double(value.value)
    inner = ", ".join(f"{quote_double(k)}: {_flow_text(v)}" for k, v in value.entries)
    return "{" + inner + "}"


def _literal(value: str, indent: int, indicator: int, nl: str) -> str | None:
    """``|`` block for ``value`` with content at ``indent`` columns (None if it cannot be one)."""
    if not value or any(b in value for b in _ODD_BREAKS) or not analyze_scalar(value).block_allowed:
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


def _block_tail(value: _Value, col: int, step: int, nl: str) -> str:
    """What follows ``key:`` for ``value`` in block style, final newline included."""
    if isinstance(value, _Map):
        return nl + "".join(_block_entry(k, v, col + step, step, nl) for k, v in value.entries)
    if "\n" in value.value:
        lit = _literal(value.value, col + step, step, nl)
        return " " + (lit if lit is not None else quote_double(value.value) + nl)
    return " " + _scalar_text(value.value, flow=False) + nl


def _block_entry(key: str, value: _Value, col: int, step: int, nl: str) -> str:
    return " " * col + _key_text(key, flow=False) + ":" + _block_tail(value, col, step, nl)


# --- splicing ------------------------------------------------------------------------


def _lines_with_ends(text: str) -> list[str]:
    """Lines split on LF only (``str.splitlines`` also splits on U+2028 and friends)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


def _parents(root: Node) -> dict[int, MappingNode | SequenceNode]:
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


class _Splicer:
    def __init__(self, resource: Resource, root: Node) -> None:
        self.res = resource
        self.text = resource.text
        self.nl = resource.newline
        self.parents = _parents(root)
        self.edits: list[_Edit] = []
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
            raise _Unspliceable("edit outside the resource's text")
        self.edits.append(_Edit(start, end, text))

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
                raise _Unspliceable("a property on its own line")
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
        if any(b in self.text[node.start : node.end] for b in _LINE_BREAKS):
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
        lit = _literal(new, indent, 0, self.nl)
        if lit is None:
            return None
        return lit if node.end >= len(self.text) or self.text[node.end - 1] == "\n" else None

    # mappings
    def insert_entry(
        self, mapping: MappingNode, key: str, value: _Value, after: frozenset[str] = frozenset()
    ) -> None:
        """Add ``key: value`` to ``mapping``, before its first key not in ``after`` when possible."""
        if mapping.flow:
            if self._flow_to_block(mapping, key, value):
                return
            pos = self.value_start(mapping)
            if pos >= len(self.text) or self.text[pos] != "{":
                raise _Unspliceable("flow mapping without '{'")
            sep = ", " if mapping.pairs else ""
            self.add(pos + 1, pos + 1, f"{quote_double(key)}: {_flow_text(value)}{sep}")
            return
        starts = [k for k, _ in mapping.pairs if self._starts_line(k)]
        if not starts:
            raise _Unspliceable("no key of the mapping starts a line")
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
        text = _block_entry(key, value, col, self.step, self.nl)
        if pos == len(self.text) and self.text and not self.text.endswith("\n"):
            text = self.nl + text
        self.add(pos, pos, text)

    def _flow_to_block(self, mapping: MappingNode, key: str, value: _Value) -> bool:
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
            or any(b in self.text[owner.start : end] for b in _LINE_BREAKS)
            or self.text[start : start + 1] != "{"
            or self.text[end - 1 : end] != "}"
        ):
            return False
        col = owner.column + self.step
        lines = [_block_entry(key, value, col, self.step, self.nl)]
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
        self, mapping: MappingNode, key: Node, value_node: Node, value: _Value
    ) -> None:
        self.needs_check = True
        if not any(k is key and v is value_node for k, v in mapping.pairs):
            raise _Unspliceable("the entry comes from a merge key")
        if mapping.flow:
            if isinstance(value_node, ScalarNode) and value_node.start == value_node.end:
                raise _Unspliceable("empty value in a flow mapping")
            if isinstance(value_node, MappingNode | SequenceNode) and not value_node.flow:
                raise _Unspliceable("block collection in a flow mapping")  # pragma: no cover
            self.add(self.value_start(value_node), value_node.end, _flow_text(value))
            return
        colon = key.end
        while colon < len(self.text) and self.text[colon] in " \t":
            colon += 1
        if colon >= len(self.text) or self.text[colon] != ":":
            raise _Unspliceable("complex mapping key")
        start = colon + 1
        empty = isinstance(value_node, ScalarNode) and value_node.start == value_node.end
        if value_node.anchor is not None or (value_node.tag is not None and not empty):
            raise _Unspliceable("the value has an anchor or a tag")
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
            raise _Unspliceable("a multi-line value")
        if ends_line:
            tail = _block_tail(value, key.column, self.step, self.nl)
        else:
            tail = " " + _flow_text(value)
        self.add(start, end, tail)

    # result
    def apply(self) -> str:
        lo, hi = self.res.span
        ordered = sorted(self.edits, key=lambda e: (e.start, e.end))
        out: list[str] = []
        pos = lo
        for edit in ordered:
            if edit.start < pos:
                raise _Unspliceable("overlapping edits")
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
        lines = _lines_with_ends(body)
        out = lines[:1]
        for line in lines[1:]:
            stripped = line.lstrip(" ")
            lead = len(line) - len(stripped)
            if lead >= column:
                out.append(line[column:])
            elif not stripped.strip() or stripped.startswith("#"):
                out.append(stripped)
            else:
                raise _Unspliceable("a line indented less than the list item")
        return "".join(out)


# --- the resource ------------------------------------------------------------------


def _plan_annotation(sp: _Splicer, res: Resource, value: str, counts: Mapping[int, int]) -> None:
    data = res.data
    entry = _Map(((IMAGES_ANNOTATION, _Str(value)),))
    meta = data.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return
    if not isinstance(meta, GoMap):
        if "metadata" in data:
            _check_single(counts, data.value_nodes["metadata"])
            sp.replace_value(
                res.node,
                data.key_nodes["metadata"],
                data.value_nodes["metadata"],
                _Map((("annotations", entry),)),
            )
        else:
            sp.insert_entry(res.node, "metadata", _Map((("annotations", entry),)), _HEADER_KEYS)
        return
    mapping = meta.node
    if mapping is None:
        raise _Unspliceable("metadata without a node")
    _check_single(counts, mapping)
    if not _written_in(res.node, mapping):
        sp.needs_check = True  # reached through a merge key
    anns = meta.get("annotations")
    if isinstance(anns, GoMap) and all(isinstance(v, str) for v in anns.values()):
        if anns.node is None:
            raise _Unspliceable("annotations without a node")
        _check_single(counts, anns.node)
        if not _written_in(mapping, anns.node):
            sp.needs_check = True
        if IMAGES_ANNOTATION in anns:
            node = anns.value_nodes[IMAGES_ANNOTATION]
            _check_single(counts, node)
            sp.replace_value(anns.node, anns.key_nodes[IMAGES_ANNOTATION], node, _Str(value))
        else:
            sp.insert_entry(anns.node, IMAGES_ANNOTATION, _Str(value))
    elif "annotations" in meta:
        _check_single(counts, meta.value_nodes["annotations"])
        sp.replace_value(
            mapping, meta.key_nodes["annotations"], meta.value_nodes["annotations"], entry
        )
    else:
        sp.insert_entry(mapping, "annotations", entry)


def _written_in(mapping: MappingNode, node: Node) -> bool:
    """Is ``node`` the value of one of ``mapping``'s own entries (not a merged one)?"""
    return any(v is node for _, v in mapping.pairs)


def _check_single(counts: Mapping[int, int], node: Node) -> None:
    if counts.get(id(node), 0) > 1:
        raise _Unspliceable("the node is shared through an alias or merge key")


def _plan_changes(sp: _Splicer, changes: Sequence[Change], counts: Mapping[int, int]) -> None:
    by_node: dict[int, list[Change]] = {}
    for change in changes:
        if change.node is None:
            raise _Unspliceable("a value without a position")
        by_node.setdefault(id(change.node), []).append(change)
    for group in by_node.values():
        node = group[0].node
        if not isinstance(node, ScalarNode):
            raise _Unspliceable("a replaced value that is not a scalar")
        if len({c.value for c in group}) != 1 or counts.get(id(node), 0) != len(group):
            raise _Unspliceable("a value shared by places that resolve differently")
        sp.replace_scalar(node, group[0].value)


def _chunk_root(res: Resource) -> Node:
    """The root node of the chunk the resource came from (for parent lookups)."""
    root = compose(res.text, res.source, res.line_offset)
    assert root is not None
    return root


def _reparse(body: str, res: Resource) -> object:
    chunks = split_chunks(body, res.source)
    if len(chunks) != 1:
        raise _Unspliceable("the text no longer splits into one document")
    root = compose(chunks[0].text, res.source)
    if root is None:
        raise _Unspliceable("the text no longer holds a document")
    return to_data(root, res.source)


def _splice(
    res: Resource, changes: Sequence[Change], annotation: str | None, expected: object
) -> str:
    root = res.node if not res.item else _chunk_root(res)
    sp = _Splicer(res, root)
    counts = count_nodes(res.data)
    _plan_changes(sp, changes, counts)
    for key, value in res.implied:
        sp.insert_entry(res.node, key, _Str(value))
    if annotation is not None:
        _plan_annotation(sp, res, annotation, counts)
    body = sp.apply()
    if not sp.needs_check and not _ALWAYS_CHECK:
        return body
    try:
        got = _reparse(body, res)
    except InputError as exc:
        raise _Unspliceable(f"the spliced text does not parse: {exc}") from None
    if not go_equal(got, expected):
        raise _Unspliceable("the spliced text does not decode to kbld's result")
    return body


def render_resource(
    res: Resource,
    rules: Sequence[SearchRule],
    resolved: Mapping[str, ResolvedImage],
    *,
    annotate: bool = True,
    skip: Callable[[str], bool] | None = None,
) -> Rendered:
    """The output for one resource: ``---`` + its text with images resolved.

    ``resolved`` maps every reference as written to its result; a reference
    missing from it raises :class:`LookupError` (the engine's bug, not the user's),
    unless ``skip`` says to leave it as written (``--exclude``).
    """
    data = copy_data(res.data)
    images: list[ResolvedImage] = []

    def visit(ref: str, _line: int) -> str | None:
        image = resolved.get(ref)
        if image is None:
            if skip is not None and skip(ref):
                return None
            raise LookupError(f"Expected to find image for '{ref}'")
        images.append(image)
        return image.url

    changes = apply_rules(data, res, rules, visit)
    annotation = annotation_value(images) if annotate and images else None
    assert isinstance(data, dict)
    if annotation is not None:
        _annotate_data(data, annotation)
    nl = res.newline
    try:
        body = _splice(res, changes, annotation, data)
        return Rendered("---" + nl + body, True)
    except _Unspliceable:
        text = marshal(data)
        if nl != "\n":
            text = text.replace("\n", nl)
        return Rendered("---" + nl + text, False)


def render_stream(
    resources: Iterable[Resource],
    rules: Sequence[SearchRule],
    resolved: Mapping[str, ResolvedImage],
    *,
    annotate: bool = True,
) -> str:
    """Every resource rendered, in input order (kbld's stdout)."""
    return "".join(render_resource(r, rules, resolved, annotate=annotate).text for r in resources)
