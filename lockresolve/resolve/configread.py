"""Typed reading of a kbld config document's data, with kbld's coercions and file:line errors.

kbld reads its documents with ``sigs.k8s.io/yaml`` into Go structs: numbers and
booleans given for string fields become strings, ``null`` means "not set", field
names match case-insensitively. :class:`Reader` does the same over the values of
:mod:`.godata`, and every error names the document's file and the line of the
offending key or item. :mod:`.config` builds the Config values with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lockresolve.errors import ConfigError
from lockresolve.resolve.documents import ConfigDocument
from lockresolve.resolve.godata import GoList, GoMap, describe_type, go_string_field

__all__ = ["Fields", "Reader", "join_path"]


@dataclass(frozen=True)
class Fields:
    """A map's entries keyed by field name, and the map they came from (for lines)."""

    where: str
    source: object
    values: dict[str, object]
    keys: dict[str, str]  # field name -> key as written

    def get(self, name: str) -> object:
        return self.values.get(name)


class Reader:
    """Typed access to a config document's data, with kbld's coercions and file:line errors."""

    def __init__(self, doc: ConfigDocument, what: str) -> None:
        self.doc = doc
        self.what = what

    def fail(
        self, where: str, message: str, container: object = None, key: str | None = None
    ) -> ConfigError:
        node = None
        if isinstance(container, GoMap):
            node = container.value_nodes.get(key) if key is not None else None
            node = (
                node
                or (container.key_nodes.get(key) if key is not None else None)
                or container.node
            )
        elif isinstance(container, GoList):
            idx = int(key) if key is not None and key.isdigit() else -1
            node = (
                container.item_nodes[idx]
                if 0 <= idx < len(container.item_nodes)
                else container.node
            )
        line = self.doc.line if node is None else self.doc.line_offset + node.line + 1
        prefix = f"{self.what} {where}: " if where else f"{self.what}: "
        return ConfigError(prefix + message, self.doc.source, line)

    def fields(self, m: object, where: str, known: Sequence[str]) -> Fields:
        """Map ``m``'s keys onto ``known`` field names (exact, then case-insensitive)."""
        if m is None:
            return Fields(where, None, {}, {})
        if not isinstance(m, dict):
            raise self.fail(where, f"expected a map, got {describe_type(m)}")
        values: dict[str, object] = {}
        keys: dict[str, str] = {}
        by_fold = {k.casefold(): k for k in known}
        for key, value in m.items():
            name = key if key in known else by_fold.get(key.casefold())
            if name is None:
                raise self.fail(
                    join_path(where, key),
                    f"unknown field {key!r} (known: {', '.join(known)})",
                    m,
                    key,
                )
            if name not in values or key == name:
                values[name] = value
                keys[name] = key
        return Fields(where, m, values, keys)

    def fail_at(self, f: Fields, name: str, message: str) -> ConfigError:
        return self.fail(join_path(f.where, name), message, f.source, f.keys.get(name))

    def string(self, f: Fields, name: str) -> str:
        value = f.get(name)
        coerced = go_string_field(value)
        if coerced is None:
            raise self.fail_at(f, name, f"expected a string, got {describe_type(value)}")
        return coerced

    def boolean(self, f: Fields, name: str) -> bool:
        value = f.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail_at(f, name, f"expected true or false, got {describe_type(value)}")
        return value

    def items(self, f: Fields, name: str) -> list[tuple[str, object, object, str]]:
        """(where, item, list, index) for each item of list field ``name``."""
        value = f.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail_at(f, name, f"expected a list, got {describe_type(value)}")
        where = join_path(f.where, name)
        return [(f"{where}[{i}]", item, value, str(i)) for i, item in enumerate(value)]

    def strings(self, f: Fields, name: str) -> tuple[str, ...]:
        out: list[str] = []
        for where, item, container, index in self.items(f, name):
            coerced = go_string_field(item)
            if coerced is None:
                raise self.fail(
                    where, f"expected a string, got {describe_type(item)}", container, index
                )
            out.append(coerced)
        return tuple(out)


def join_path(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
