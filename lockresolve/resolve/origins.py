"""kbld's origin records (``kbld.carvel.dev/origins``, ``origins`` of an override).

kbld decodes them into its ``[]Origin`` struct: only the known kinds and
fields survive (``git``, ``local``, ``resolved``, ``tagged``, ``preresolved``,
``platformSelected``), strings are coerced as Go does, and writing them back
leaves out the fields marked ``omitempty``. The result is plain data, ready
for :func:`lockresolve.goyaml.marshal`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from lockresolve.errors import YAMLInputError
from lockresolve.resolve.documents import parse_yaml_value
from lockresolve.resolve.godata import describe_type, go_string_field

__all__ = ["origins_data", "origins_from_data", "parse_origins"]


_ORIGIN_FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    # origin kind -> (field, type, omitempty)
    "git": (
        ("remoteURL", "str", False),
        ("sha", "str", False),
        ("dirty", "bool", False),
        ("tags", "strs", True),
    ),
    "local": (("path", "str", False),),
    "resolved": (("url", "str", False), ("tag", "str", True)),
    "tagged": (("tags", "strs", False),),
    "preresolved": (("url", "str", False),),
    "platformSelected": (
        ("index", "str", True),
        ("os", "str", True),
        ("architecture", "str", True),
        ("variant", "str", True),
    ),
}


def origins_from_data(
    value: object, fail: Callable[[str], Exception]
) -> tuple[Mapping[str, object], ...]:
    """Decode origins like kbld's ``[]Origin`` (unknown kinds and fields dropped)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail(f"expected a list of origins, got {describe_type(value)}")
    out: list[Mapping[str, object]] = []
    for item in value:
        if item is None:
            item = {}
        if not isinstance(item, dict):
            raise fail(f"expected an origin map, got {describe_type(item)}")
        origin: dict[str, object] = {}
        for kind, spec in _ORIGIN_FIELDS.items():
            body = _fold_get(item, kind)
            if body is None:
                continue
            if not isinstance(body, dict):
                raise fail(f"origin {kind}: expected a map, got {describe_type(body)}")
            fields: dict[str, object] = {}
            for name, typ, omitempty in spec:
                raw = _fold_get(body, name)
                parsed: object
                if typ == "str":
                    parsed = go_string_field(raw)
                    if parsed is None:
                        raise fail(
                            f"origin {kind}.{name}: expected a string, got {describe_type(raw)}"
                        )
                    if omitempty and parsed == "":
                        continue
                elif typ == "bool":
                    if raw is not None and not isinstance(raw, bool):
                        raise fail(
                            f"origin {kind}.{name}: expected true or false, got {describe_type(raw)}"
                        )
                    parsed = bool(raw)
                else:
                    if raw is None:
                        if omitempty:
                            continue
                        parsed = None
                    elif not isinstance(raw, list):
                        raise fail(
                            f"origin {kind}.{name}: expected a list, got {describe_type(raw)}"
                        )
                    else:
                        strs = [go_string_field(x) for x in raw]
                        if any(s is None for s in strs):
                            raise fail(f"origin {kind}.{name}: expected strings")
                        if omitempty and not strs:
                            continue
                        parsed = strs
                fields[name] = parsed
            origin[kind] = fields
        out.append(origin)
    return tuple(out)


def origins_data(origins: Iterable[Mapping[str, object]]) -> list[object]:
    """Origins as plain ``dict`` / ``list`` data: what is marshalled, and compared."""
    return [_plain(origin) for origin in origins]


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _fold_get(m: dict[str, object], name: str) -> object:
    if name in m:
        return m[name]
    for k, v in m.items():
        if k.casefold() == name.casefold():
            return v
    return None


def parse_origins(text: str, fail: Callable[[str], Exception]) -> tuple[Mapping[str, object], ...]:
    """Parse a ``kbld.carvel.dev/origins`` annotation (a YAML list)."""
    if not text.strip():
        return ()
    try:
        value = parse_yaml_value(text, "kbld.carvel.dev/origins")
    except YAMLInputError as exc:
        raise fail(exc.message) from None
    return origins_from_data(value, fail)
