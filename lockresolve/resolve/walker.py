"""Finding (and replacing) image references in a resource, as kbld's ``ImageRefs``.

Every map value and sequence item is offered to the search rules with its
path; the first matching rule's update strategy decides:

* ``entireValue``: a string value is a reference (non-strings are skipped);
* ``none``: nothing is replaced;
* ``json``: a string holding JSON is decoded, the rule's nested rules are
  applied to it, and it is written back as compact JSON with sorted keys;
* ``yaml``: the same for YAML documents (JSON tried first), each written back
  as ``---\\n`` + YAML.

A replaced value is not walked into; any other value is. The walk is in
document order and uses an explicit stack (no recursion on deep data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lockresolve.errors import InputError
from lockresolve.goyaml import GoYAMLError, marshal
from lockresolve.resolve import gojson
from lockresolve.resolve.configmodel import SearchRule, UpdateStrategy
from lockresolve.resolve.documents import Resource, split_chunks
from lockresolve.resolve.godata import GoList, GoMap, to_data
from lockresolve.resolve.rules import Path, first_match
from lockresolve.resolve.yamlnodes import Node, compose

__all__ = [
    "Change",
    "Occurrence",
    "References",
    "Visitor",
    "apply_rules",
    "find_references",
]

Visitor = Callable[[str, int], str | None]
"""Called with each reference and its line; returns the replacement, or None to keep it."""


@dataclass(frozen=True)
class Occurrence:
    """One place an image reference was found."""

    ref: str  # exactly as written
    source: str
    line: int  # 1-based; for JSON/YAML held in a string, the line of that string


@dataclass(frozen=True)
class References:
    """Every reference found: distinct strings in first-seen order, and each occurrence."""

    distinct: tuple[str, ...]
    occurrences: tuple[Occurrence, ...]


@dataclass(frozen=True, eq=False)
class Change:
    """A value of the resource's own data that was replaced (not one inside JSON/YAML)."""

    container: GoMap | GoList
    key: str | int
    node: Node | None  # where the old value is written in the text
    value: str  # the new string
    strategy: str  # "entireValue", "json" or "yaml"


class _Walk:
    def __init__(self, visit: Visitor, source: str, mutate: bool) -> None:
        self.visit = visit
        self.source = source
        self.mutate = mutate
        self.changes: list[Change] = []

    def run(
        self,
        data: object,
        rules: Sequence[SearchRule],
        line_of: Callable[[object, str | int], int],
        top: bool,
    ) -> None:
        work: list[tuple[object, str | int, Path]] = []

        def push_entries(container: object, path: Path) -> None:
            if isinstance(container, dict):
                work.extend((container, k, (*path, k)) for k in reversed(list(container)))
            elif isinstance(container, list):
                work.extend((container, i, (*path, i)) for i in reversed(range(len(container))))

        push_entries(data, ())
        while work:
            container, key, path = work.pop()
            value = container[key]  # type: ignore[index]
            rule = first_match(rules, path, value)
            if rule is not None:
                line = line_of(container, key)
                new, updated = self.extract(value, rule.strategy, line)
                if updated:
                    assert isinstance(new, str)
                    if self.mutate:
                        container[key] = new  # type: ignore[index]
                    if top and isinstance(container, GoMap | GoList):
                        self.changes.append(
                            Change(
                                container, key, _node_of(container, key), new, rule.strategy.kind
                            )
                        )
                    continue
            push_entries(value, path)

    def extract(self, value: object, strategy: UpdateStrategy, line: int) -> tuple[object, bool]:
        kind = strategy.kind
        if kind == "none" or not isinstance(value, str):
            return value, False
        if kind == "entireValue":
            new = self.visit(value, line)
            return (new, True) if new is not None else (value, False)
        nested = strategy.nested_rules
        new_json = self.as_json(value, nested, line)
        if new_json is not None:
            return new_json, True
        if kind == "yaml":
            new_yaml = self.as_yaml(value, nested, line)
            if new_yaml is not None:
                return new_yaml, True
        return value, False

    def embedded(self, data: object, rules: Sequence[SearchRule], line: int) -> None:
        inner = _Walk(self.visit, self.source, mutate=True)
        inner.run(data, rules, lambda _c, _k: line, top=False)

    def as_json(self, text: str, rules: Sequence[SearchRule], line: int) -> str | None:
        ok, decoded = gojson.loads(text)
        if not ok:
            return None
        self.embedded(decoded, rules, line)
        try:
            return gojson.dumps(decoded)
        except ValueError:  # pragma: no cover - decoded JSON always re-encodes
            return None

    def as_yaml(self, text: str, rules: Sequence[SearchRule], line: int) -> str | None:
        docs: list[object] = []
        try:
            for chunk in split_chunks(text, self.source):
                root = compose(chunk.text, self.source)
                if root is None:
                    continue
                data = to_data(root, self.source)
                if data is not None:
                    docs.append(data)
        except InputError:
            return None
        out: list[str] = []
        for doc in docs:
            self.embedded(doc, rules, line)
            try:
                out.append("---\n" + marshal(doc))
            except GoYAMLError:  # pragma: no cover - decoded YAML always re-encodes
                return None
        return "".join(out)


def _node_of(container: object, key: str | int) -> Node | None:
    if isinstance(container, GoMap) and isinstance(key, str):
        return container.value_nodes.get(key)
    if isinstance(container, GoList) and isinstance(key, int) and key < len(container.item_nodes):
        return container.item_nodes[key]
    return None


def _line_function(resource: Resource) -> Callable[[object, str | int], int]:
    def line_of(container: object, key: str | int) -> int:
        node = _node_of(container, key)
        return resource.line if node is None else resource.line_offset + node.line + 1

    return line_of


def apply_rules(
    data: object,
    resource: Resource,
    rules: Sequence[SearchRule],
    visit: Visitor,
) -> list[Change]:
    """Apply ``rules`` to ``data`` (a copy of ``resource.data``), replacing in place.

    Returns the replacements of the data's own values, in document order.
    """
    walk = _Walk(visit, resource.source, mutate=True)
    walk.run(data, rules, _line_function(resource), top=True)
    return walk.changes


def find_references(resources: Iterable[Resource], rules: Sequence[SearchRule]) -> References:
    """Every image reference in ``resources`` (kbld's collection pass; nothing is changed)."""
    occurrences: list[Occurrence] = []
    for resource in resources:

        def collect(ref: str, line: int, source: str = resource.source) -> None:
            occurrences.append(Occurrence(ref, source, line))

        walk = _Walk(collect, resource.source, mutate=False)
        walk.run(resource.data, rules, _line_function(resource), top=False)
    distinct = tuple(dict.fromkeys(o.ref for o in occurrences))
    return References(distinct, tuple(occurrences))
