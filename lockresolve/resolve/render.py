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
known without it (``Splicer.needs_check`` stays false): every edit either
replaces a single-line plain, single- or double-quoted value in block context
by a token-like string (an image reference: see ``goyaml.TOKEN``) written in the same
style, or inserts one ``key: value`` entry, written by ``fragments.block_entry``,
as a new line just above a sibling key of a block mapping whose keys all
start their lines at one column, in a whole document (not a list item) that
ends with a line break. tests/resolve/test_render_fast.py checks that both
ways give the same text over the conformance inputs and the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lockresolve.errors import InputError
from lockresolve.goyaml import marshal
from lockresolve.resolve.annotation import IMAGES_ANNOTATION, annotate_data, annotation_value
from lockresolve.resolve.configmodel import SearchRule
from lockresolve.resolve.documents import Resource, split_chunks
from lockresolve.resolve.fragments import NewMap, NewStr
from lockresolve.resolve.godata import GoMap, copy_data, count_nodes, go_equal, to_data
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.splicer import Splicer, Unspliceable
from lockresolve.resolve.walker import Change, apply_rules
from lockresolve.resolve.yamlnodes import MappingNode, Node, ScalarNode, compose

__all__ = [
    "IMAGES_ANNOTATION",
    "Rendered",
    "annotation_value",
    "render_resource",
    "render_stream",
]

_HEADER_KEYS = frozenset({"apiVersion", "kind"})

#: tests set this to re-parse every result, to compare with the unchecked ones
_ALWAYS_CHECK = False


@dataclass(frozen=True)
class Rendered:
    """One resource's output: its text (starting with ``---``) and whether it was spliced."""

    text: str
    spliced: bool


# --- the resource ------------------------------------------------------------------


def _plan_annotation(sp: Splicer, res: Resource, value: str, counts: Mapping[int, int]) -> None:
    data = res.data
    entry = NewMap(((IMAGES_ANNOTATION, NewStr(value)),))
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
                NewMap((("annotations", entry),)),
            )
        else:
            sp.insert_entry(res.node, "metadata", NewMap((("annotations", entry),)), _HEADER_KEYS)
        return
    mapping = meta.node
    if mapping is None:
        raise Unspliceable("metadata without a node")
    _check_single(counts, mapping)
    if not _written_in(res.node, mapping):
        sp.needs_check = True  # reached through a merge key
    anns = meta.get("annotations")
    if isinstance(anns, GoMap) and all(isinstance(v, str) for v in anns.values()):
        if anns.node is None:
            raise Unspliceable("annotations without a node")
        _check_single(counts, anns.node)
        if not _written_in(mapping, anns.node):
            sp.needs_check = True
        if IMAGES_ANNOTATION in anns:
            node = anns.value_nodes[IMAGES_ANNOTATION]
            _check_single(counts, node)
            sp.replace_value(anns.node, anns.key_nodes[IMAGES_ANNOTATION], node, NewStr(value))
        else:
            sp.insert_entry(anns.node, IMAGES_ANNOTATION, NewStr(value))
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
        raise Unspliceable("the node is shared through an alias or merge key")


def _plan_changes(sp: Splicer, changes: Sequence[Change], counts: Mapping[int, int]) -> None:
    by_node: dict[int, list[Change]] = {}
    for change in changes:
        if change.node is None:
            raise Unspliceable("a value without a position")
        by_node.setdefault(id(change.node), []).append(change)
    for group in by_node.values():
        node = group[0].node
        if not isinstance(node, ScalarNode):
            raise Unspliceable("a replaced value that is not a scalar")
        if len({c.value for c in group}) != 1 or counts.get(id(node), 0) != len(group):
            raise Unspliceable("a value shared by places that resolve differently")
        sp.replace_scalar(node, group[0].value)


def _chunk_root(res: Resource) -> Node:
    """The root node of the chunk the resource came from (for parent lookups)."""
    root = compose(res.text, res.source, res.line_offset)
    assert root is not None
    return root


def _reparse(body: str, res: Resource) -> object:
    chunks = split_chunks(body, res.source)
    if len(chunks) != 1:
        raise Unspliceable("the text no longer splits into one document")
    root = compose(chunks[0].text, res.source)
    if root is None:
        raise Unspliceable("the text no longer holds a document")
    return to_data(root, res.source)


def _splice(
    res: Resource, changes: Sequence[Change], annotation: str | None, expected: object
) -> str:
    root = res.node if not res.item else _chunk_root(res)
    sp = Splicer(res, root)
    counts = count_nodes(res.data)
    _plan_changes(sp, changes, counts)
    for key, value in res.implied:
        sp.insert_entry(res.node, key, NewStr(value))
    if annotation is not None:
        _plan_annotation(sp, res, annotation, counts)
    body = sp.apply()
    if not sp.needs_check and not _ALWAYS_CHECK:
        return body
    try:
        got = _reparse(body, res)
    except InputError as exc:
        raise Unspliceable(f"the spliced text does not parse: {exc}") from None
    if not go_equal(got, expected):
        raise Unspliceable("the spliced text does not decode to kbld's result")
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
        annotate_data(data, annotation)
    nl = res.newline
    try:
        body = _splice(res, changes, annotation, data)
        return Rendered("---" + nl + body, True)
    except Unspliceable:
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
