"""The value kbld sees for a YAML node: yaml.v2 decoding, then JSON.

kbld reads every document with ``sigs.k8s.io/yaml``: yaml.v2 decodes it
(YAML 1.1 scalars, ``<<`` merge keys where later keys win, aliases copied),
then it becomes JSON (map keys turned into strings). :func:`to_data` builds
that value from a node graph as plain Python data: ``dict`` / ``list`` /
``str`` / ``int`` / ``float`` / ``bool`` / ``None``. Mappings and sequences
are :class:`GoMap` / :class:`GoList`, which also remember the node each value
came from, so a change found in the data can be written back into the text.

Aliases are expanded into independent copies, as yaml.v2 does; the composer
has already bounded the expanded size.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections import Counter

from lockresolve.errors import YAMLInputError
from lockresolve.goyaml import GoYAMLError, ScalarKind, format_float, resolve_plain, resolve_tagged
from lockresolve.resolve.yamlnodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "GoList",
    "GoMap",
    "copy_data",
    "count_nodes",
    "describe_type",
    "go_equal",
    "go_string",
    "go_string_field",
    "scalar_value",
    "to_data",
]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class GoMap(dict[str, object]):
    """A decoded mapping; ``value_nodes[key]`` is the node its value came from."""

    __slots__ = ("key_nodes", "node", "value_nodes")

    def __init__(self, node: MappingNode | None = None) -> None:
        super().__init__()
        self.node = node
        self.value_nodes: dict[str, Node] = {}
        self.key_nodes: dict[str, Node] = {}


class GoList(list[object]):
    """A decoded sequence; ``item_nodes[i]`` is the node item ``i`` came from."""

    __slots__ = ("item_nodes", "node")

    def __init__(self, node: SequenceNode | None = None) -> None:
        super().__init__()
        self.node = node
        self.item_nodes: list[Node] = []


def scalar_value(node: ScalarNode) -> object:
    """The Go value of a scalar node (raises :class:`GoYAMLError` on a bad tag)."""
    if node.tag is None or node.tag == "!":
        if node.style is None and node.tag is None:
            kind, value = resolve_plain(node.value)
            if kind in (ScalarKind.TIMESTAMP, ScalarKind.MERGE):
                return node.value
            return value
        return node.value
    if node.tag == "tag:yaml.org,2002:binary":
        try:
            raw = base64.b64decode("".join(node.value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise GoYAMLError("!!binary value contains invalid base64 data") from None
        return raw.decode("utf-8", "replace")
    if node.tag.startswith("tag:yaml.org,2002:"):
        kind, value = resolve_tagged(node.tag, node.value)
        return node.value if kind in (ScalarKind.TIMESTAMP, ScalarKind.MERGE) else value
    return node.value


def _is_merge_key(node: Node) -> bool:
    if not isinstance(node, ScalarNode) or node.value != "<<":
        return False
    return (node.tag is None and node.style is None) or node.tag == _MERGE_TAG


def go_string(value: object) -> str | None:
    """A decoded key as ``sigs.k8s.io/yaml`` turns it into a JSON key; None if it cannot."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -(1 << 63) <= value < (1 << 63) else None
    if isinstance(value, float):
        text = format_float(value, "g", 32)
        return {"+Inf": ".inf", "-Inf": "-.inf", "NaN": ".nan"}.get(text, text)
    return None


class _Builder:
    def __init__(self, source: str, line_offset: int) -> None:
        self.source = source
        self.line_offset = line_offset

    def error(self, message: str, node: Node) -> YAMLInputError:
        return YAMLInputError(message, self.source, self.line_offset + node.line + 1)

    def scalar(self, node: ScalarNode) -> object:
        try:
            return scalar_value(node)
        except GoYAMLError as exc:
            raise self.error(str(exc), node) from None

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise self.error("invalid map key: a mapping or sequence used as a key", node)
        key = go_string(self.scalar(node))
        if key is None:
            raise self.error(f"unsupported map key {node.value!r}", node)
        return key

    def flat_pairs(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The mapping's pairs with ``<<`` merges spliced in, yaml.v2 order (later wins)."""
        out: list[tuple[Node, Node]] = []
        work: list[tuple[Node, Node] | MappingNode] = [node]
        while work:
            item = work.pop()
            if isinstance(item, MappingNode):
                work.extend(reversed(item.pairs))
                continue
            key, value = item
            if not _is_merge_key(key):
                out.append(item)
                continue
            if isinstance(value, MappingNode):
                work.append(value)
            elif isinstance(value, SequenceNode):
                for sub in value.items:  # earlier maps take precedence: merged last
                    if not isinstance(sub, MappingNode):
                        raise self.error("map merge requires map or sequence of maps", value)
                    work.append(sub)
            else:
                raise self.error("map merge requires map or sequence of maps", value)
        return out

    def build(self, root: Node) -> object:
        result: list[object] = []
        # (node, container, key-or-index); container None means "the result"
        work: list[tuple[Node, GoMap | GoList | None, str | None]] = [(root, None, None)]
        while work:
            node, parent, key = work.pop()
            value: object
            children: list[tuple[Node, GoMap | GoList | None, str | None]] = []
            if isinstance(node, ScalarNode):
                value = self.scalar(node)
            elif isinstance(node, MappingNode):
                gomap = GoMap(node)
                for knode, vnode in self.flat_pairs(node):
                    k = self.key(knode)
                    gomap[k] = None
                    gomap.value_nodes[k] = vnode
                    gomap.key_nodes[k] = knode
                children = [(gomap.value_nodes[k], gomap, k) for k in gomap]
                value = gomap
            else:
                golist = GoList(node)
                golist.extend([None] * len(node.items))
                golist.item_nodes.extend(node.items)
                children = [(item, golist, str(i)) for i, item in enumerate(node.items)]
                value = golist
            if parent is None:
                result.append(value)
            elif isinstance(parent, GoMap):
                assert key is not None
                parent[key] = value
            else:
                assert key is not None
                parent[int(key)] = value
            work.extend(reversed(children))
        return result[0]


def to_data(root: Node, source: str, line_offset: int = 0) -> object:
    """Decode ``root`` as kbld would; raises :class:`YAMLInputError` on invalid keys/tags."""
    return _Builder(source, line_offset).build(root)


def copy_data(data: object) -> object:
    """A deep copy that keeps :class:`GoMap` / :class:`GoList` node bookkeeping."""
    holder = GoList(None)
    holder.append(None)
    work: list[tuple[object, GoMap | GoList, str | int]] = [(data, holder, 0)]
    while work:
        value, parent, key = work.pop()
        copied: object = value
        if isinstance(value, dict):
            new_map = GoMap(value.node if isinstance(value, GoMap) else None)
            if isinstance(value, GoMap):
                new_map.value_nodes = dict(value.value_nodes)
                new_map.key_nodes = dict(value.key_nodes)
            new_map.update(dict.fromkeys(value))
            work.extend((v, new_map, k) for k, v in value.items())
            copied = new_map
        elif isinstance(value, list):
            new_list = GoList(value.node if isinstance(value, GoList) else None)
            if isinstance(value, GoList):
                new_list.item_nodes = list(value.item_nodes)
            new_list.extend([None] * len(value))
            work.extend((v, new_list, i) for i, v in enumerate(value))
            copied = new_list
        if isinstance(parent, GoMap):
            assert isinstance(key, str)
            parent[key] = copied
        else:
            assert isinstance(key, int)
            parent[key] = copied
    return holder[0]


def count_nodes(data: object) -> Counter[int]:
    """How many times each node's value appears in ``data`` (aliases and merges repeat them)."""
    counts: Counter[int] = Counter()
    work = [data]
    while work:
        value = work.pop()
        if isinstance(value, GoMap):
            if value.node is not None:
                counts[id(value.node)] += 1
            for k, v in value.items():
                node = value.value_nodes.get(k)
                if node is not None and not isinstance(v, dict | list):
                    counts[id(node)] += 1
                work.append(v)
        elif isinstance(value, GoList):
            if value.node is not None:
                counts[id(value.node)] += 1
            for i, v in enumerate(value):
                if i < len(value.item_nodes) and not isinstance(v, dict | list):
                    counts[id(value.item_nodes[i])] += 1
                work.append(v)
        elif isinstance(value, dict):
            work.extend(value.values())
        elif isinstance(value, list):
            work.extend(value)
    return counts


def go_string_field(value: object) -> str | None:
    """What a Go ``string`` field receives through ``sigs.k8s.io/yaml`` (None: a type error).

    Numbers and booleans become their text (floats as ``FormatFloat(f, 'g', -1, 32)``);
    null leaves the field empty.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value, "g", 32)
    return None


def describe_type(value: object) -> str:
    """A value's type in words, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a map"


def go_equal(a: object, b: object) -> bool:
    """Deep equality where ``True`` is not ``1`` (Go keeps bools and numbers apart)."""
    work = [(a, b)]
    while work:
        x, y = work.pop()
        if isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x == y):
                return False
        elif isinstance(x, int | float) and isinstance(y, int | float):
            if not (
                x == y
                or (
                    isinstance(x, float)
                    and isinstance(y, float)
                    and math.isnan(x)
                    and math.isnan(y)
                )
            ):
                return False
        elif isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return False
            work.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            work.extend(zip(x, y, strict=True))
        elif (type(x) is not type(y) and not (isinstance(x, str) and isinstance(y, str))) or x != y:
            return False
    return True
