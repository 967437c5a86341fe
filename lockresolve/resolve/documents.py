"""One input's text to resources and config documents, by kbld's rules.

* The stream is split on lines that start with ``---`` (k8s ``YAMLReader``):
  after ``---`` only spaces or a ``#`` comment may follow, anything else is an
  error. Each piece is parsed on its own; only its first YAML document counts.
* Empty, ``null``, ``{}`` and comment-only documents are dropped; any other
  document must be a map.
* A map with a top-level ``items`` list is split into its items (it must then
  have a ``kind``); an item with neither ``kind`` nor ``apiVersion`` gets the
  list's ``apiVersion`` and its ``kind`` without the ``List`` suffix, as
  apimachinery does. The wrapper disappears.
* kbld (``kbld.k14s.io/v1alpha1`` ``Config``, ``Sources``, ``ImageOverrides``,
  ``ImageDestinations``, ``ImageKeys``) and imgpkg ``ImagesLock`` documents
  are config, everything else is a resource to echo.

Each :class:`Resource` keeps the text it came from and its span in it, so the
renderer can splice new values into the original formatting.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockresolve.errors import InputError, YAMLInputError
from lockresolve.resolve.godata import GoList, GoMap, to_data
from lockresolve.resolve.yamlnodes import MappingNode, Node, SequenceNode, compose

__all__ = [
    "CONFIG_API_VERSION",
    "CONFIG_KINDS",
    "IMAGES_LOCK_API_VERSION",
    "Chunk",
    "ConfigDocument",
    "ParsedSource",
    "Resource",
    "parse_source",
    "parse_yaml_value",
    "split_chunks",
]

CONFIG_API_VERSION = "kbld.k14s.io/v1alpha1"
CONFIG_KINDS = frozenset({"Config", "Sources", "ImageOverrides", "ImageDestinations", "ImageKeys"})
IMAGES_LOCK_API_VERSION = "imgpkg.carvel.dev/v1alpha1"


@dataclass(frozen=True)
class Chunk:
    """The text between two ``---`` separator lines (line endings kept)."""

    text: str
    line_offset: int  # 0-based line of text[0] in the source


@dataclass(frozen=True)
class Resource:
    """A document (or list item) to echo with its images resolved.

    ``data`` is what kbld sees (treat it as read-only). ``text`` is the whole
    chunk the resource came from and ``span`` its own part of it; ``item`` is
    true for a resource split out of a list (its span starts inside a line).
    ``implied`` are ``(key, value)`` entries kbld adds to the data (list items
    without ``kind`` and ``apiVersion``).
    """

    source: str
    text: str
    line_offset: int
    span: tuple[int, int]
    item: bool
    node: MappingNode
    data: GoMap
    implied: tuple[tuple[str, str], ...] = ()

    @property
    def line(self) -> int:
        """1-based line of the resource in its source."""
        return self.line_offset + self.node.line + 1 if self.item else self.line_offset + 1

    @property
    def newline(self) -> str:
        cut = self.text.find("\n")
        return "\r\n" if cut > 0 and self.text[cut - 1] == "\r" else "\n"


@dataclass(frozen=True)
class ConfigDocument:
    """A kbld config document or an ImagesLock, as data (with node positions)."""

    source: str
    line_offset: int
    line: int  # 1-based line of the document
    api_version: str
    kind: str
    data: GoMap


@dataclass(frozen=True)
class ParsedSource:
    name: str
    resources: tuple[Resource, ...]
    configs: tuple[ConfigDocument, ...]


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line, ``end`` after its ``\\n`` (Go ``ReadLine`` splits on LF)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    n = len(text)
    while pos < n:
        cut = text.find("\n", pos)
        end = n if cut < 0 else cut + 1
        spans.append((pos, end))
        pos = end
    return spans


def split_chunks(text: str, source: str) -> list[Chunk]:
    """Split a stream on ``---`` lines exactly as kbld's YAML reader does."""
    chunks: list[Chunk] = []
    start_line: int | None = None
    start_pos = 0
    lines = _lines(text)
    for number, (begin, end) in enumerate(lines):
        if text.startswith("---", begin):
            rest = text[begin + 3 : end].strip()
            if rest and not rest.startswith("#"):
                raise YAMLInputError(f"invalid YAML document separator: {rest}", source, number + 1)
            if start_line is not None:
                chunks.append(Chunk(text[start_pos:begin], start_line))
            start_line = None
            continue
        if start_line is None:
            start_line, start_pos = number, begin
    if start_line is not None:
        chunks.append(Chunk(text[start_pos:], start_line))
    return chunks


def _string_field(m: GoMap, key: str) -> str:
    value = m.get(key)
    return value if isinstance(value, str) else ""


def _is_config(data: GoMap) -> bool:
    api, kind = _string_field(data, "apiVersion"), _string_field(data, "kind")
    return (api == CONFIG_API_VERSION and kind in CONFIG_KINDS) or (
        api == IMAGES_LOCK_API_VERSION and kind == "ImagesLock"
    )


def _kind_name(node: Node) -> str:
    return "a list" if isinstance(node, SequenceNode) else "a scalar"


def _parse_chunk(chunk: Chunk, source: str) -> tuple[list[Resource], list[ConfigDocument]]:
    root = compose(chunk.text, source, chunk.line_offset)
    if root is None:
        return [], []
    data = to_data(root, source, chunk.line_offset)
    if data is None:
        return [], []
    if not isinstance(data, GoMap) or not isinstance(root, MappingNode):
        raise InputError(
            f"a document must be a map, found {_kind_name(root)}",
            source,
            chunk.line_offset + root.line + 1,
        )
    if not data:
        return [], []
    whole = Resource(source, chunk.text, chunk.line_offset, (0, len(chunk.text)), False, root, data)
    items = data.get("items")
    candidates = [whole] if not isinstance(items, GoList) else _split_list(whole, items)
    resources: list[Resource] = []
    configs: list[ConfigDocument] = []
    for res in candidates:
        if _is_config(res.data):
            configs.append(
                ConfigDocument(
                    source,
                    chunk.line_offset,
                    res.line,
                    _string_field(res.data, "apiVersion"),
                    _string_field(res.data, "kind"),
                    res.data,
                )
            )
        else:
            resources.append(res)
    return resources, configs


def _split_list(whole: Resource, items: GoList) -> list[Resource]:
    """apimachinery ``UnstructuredList``: each item its own resource."""
    list_kind = _string_field(whole.data, "kind")
    line = whole.line_offset + whole.node.line + 1
    if not list_kind:
        raise InputError(
            "a document with a top-level 'items' list must have a 'kind' (Object 'Kind' is missing)",
            whole.source,
            line,
        )
    list_api = _string_field(whole.data, "apiVersion")
    out: list[Resource] = []
    for i, item in enumerate(items):
        node = items.item_nodes[i]
        if item is None:
            item = GoMap(None)
        if not isinstance(item, GoMap):
            raise InputError(
                f"items[{i}] must be a map",
                whole.source,
                whole.line_offset + node.line + 1,
            )
        implied: tuple[tuple[str, str], ...] = ()
        if not _string_field(item, "kind") and not _string_field(item, "apiVersion"):
            implied = (("apiVersion", list_api), ("kind", list_kind.removesuffix("List")))
            for key, value in implied:
                item[key] = value
        mapping = node if isinstance(node, MappingNode) else None
        if mapping is None:  # a null item: only the implied keys, no text of its own
            mapping = MappingNode(
                start=node.start,
                end=node.start,
                line=node.line,
                column=node.column,
                tag=None,
                anchor=None,
            )
        out.append(
            Resource(
                whole.source,
                whole.text,
                whole.line_offset,
                (mapping.start, mapping.end),
                True,
                mapping,
                item,
                implied,
            )
        )
    return out


def parse_source(name: str, text: str) -> ParsedSource:
    """Parse one input (already decoded) into resources and config documents."""
    resources: list[Resource] = []
    configs: list[ConfigDocument] = []
    for chunk in split_chunks(text, name):
        rs, cs = _parse_chunk(chunk, name)
        resources.extend(rs)
        configs.extend(cs)
    return ParsedSource(name, tuple(resources), tuple(configs))


def parse_yaml_value(text: str, source: str, line_offset: int = 0) -> object:
    """The first YAML document of ``text`` as kbld's data (any type; None when empty)."""
    root = compose(text, source, line_offset)
    if root is None:
        return None
    return to_data(root, source, line_offset)
