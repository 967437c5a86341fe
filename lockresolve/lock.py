"""kbld's and imgpkg's lock files: byte-exact writers and strict readers.

* ImagesLock (``--imgpkg-lock-output``, ``.imgpkg/images.yml``)::

      ---
      apiVersion: imgpkg.carvel.dev/v1alpha1
      images:
      - annotations:
          kbld.carvel.dev/id: <reference as written>
          kbld.carvel.dev/origins: |
            - resolved: ...
        image: <registry>/<repo>@sha256:<hex>
      kind: ImagesLock

* kbld's Config lock (``--lock-output``): ``minimumRequiredVersion`` and one
  ``preresolved`` override per reference, plus the search rules in use.
* BundleLock (``imgpkg push --lock-output``).

Writers produce what kbld / imgpkg write (``sigs.k8s.io/yaml`` over Go
structs), through :func:`lockresolve.goyaml.marshal`. Readers follow imgpkg's
``UnmarshalStrict``: unknown fields and duplicate keys are errors, every
image must be a digest reference (normalised as go-containerregistry does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lockresolve.errors import InputError
from lockresolve.goyaml import format_float, marshal
from lockresolve.resolve.config import KBLD_VERSION, PathIndex, SearchRule, UpdateStrategy
from lockresolve.resolve.documents import IMAGES_LOCK_API_VERSION
from lockresolve.resolve.godata import GoList, GoMap, to_data
from lockresolve.resolve.imageref import normalize_digest_reference
from lockresolve.resolve.model import LockEntry
from lockresolve.resolve.yamlnodes import MappingNode, Node, SequenceNode, compose

__all__ = [
    "BUNDLE_LOCK_KIND",
    "ID_ANNOTATION",
    "IMAGES_LOCK_KIND",
    "LOCK_API_VERSION",
    "ORIGINS_ANNOTATION",
    "BundleLock",
    "ImagesLock",
    "ImagesLockEntry",
    "LockError",
    "bundle_lock_text",
    "images_lock_from_data",
    "images_lock_text",
    "kbld_lock_text",
    "read_bundle_lock",
    "read_images_lock",
]

LOCK_API_VERSION = IMAGES_LOCK_API_VERSION
IMAGES_LOCK_KIND = "ImagesLock"
BUNDLE_LOCK_KIND = "BundleLock"
ID_ANNOTATION = "kbld.carvel.dev/id"
ORIGINS_ANNOTATION = "kbld.carvel.dev/origins"


class LockError(InputError):
    """A lock file that imgpkg would refuse."""


@dataclass(frozen=True)
class ImagesLockEntry:
    """One image of an ImagesLock: its normalised digest reference and annotations."""

    image: str
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class ImagesLock:
    images: tuple[ImagesLockEntry, ...]


@dataclass(frozen=True)
class BundleLock:
    image: str  # digest reference, as written
    tag: str


# --- writers -----------------------------------------------------------------


def images_lock_text(entries: Sequence[LockEntry], *, origins: bool = True) -> str:
    """``--imgpkg-lock-output``: entries sorted by id; origins only when there are some."""
    images: list[dict[str, object]] = []
    for entry in sorted(entries, key=lambda e: e.id):
        annotations: dict[str, object] = {ID_ANNOTATION: entry.id}
        if origins and entry.origins:
            annotations[ORIGINS_ANNOTATION] = marshal([_plain(o) for o in entry.origins])
        images.append({"annotations": annotations, "image": entry.image})
    doc: dict[str, object] = {"apiVersion": LOCK_API_VERSION, "kind": IMAGES_LOCK_KIND}
    if images:
        doc["images"] = images
    return "---\n" + marshal(doc)


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _path_json(part: str | PathIndex) -> object:
    if isinstance(part, str):
        return part
    out: dict[str, object] = {}
    if part.index is not None:
        out["index"] = part.index
    if part.all_indexes is not None:
        out["allIndexes"] = part.all_indexes
    return out


def _strategy_json(strategy: UpdateStrategy) -> dict[str, object]:
    out: dict[str, object] = {}
    if strategy.none:
        out["none"] = {}
    if strategy.entire_value:
        out["entireValue"] = {}
    for name, rules in (("json", strategy.json), ("yaml", strategy.yaml)):
        if rules is not None:
            out[name] = {"searchRules": [rule_json(r) for r in rules]} if rules else {}
    return out


def rule_json(rule: SearchRule) -> dict[str, object]:
    """A search rule as kbld marshals its ``SearchRule`` struct (omitempty fields left out)."""
    out: dict[str, object] = {}
    if rule.key_matcher is not None:
        km: dict[str, object] = {}
        if rule.key_matcher.name:
            km["name"] = rule.key_matcher.name
        if rule.key_matcher.path:
            km["path"] = [_path_json(p) for p in rule.key_matcher.path]
        out["keyMatcher"] = km
    if rule.value_matcher is not None:
        vm: dict[str, object] = {}
        if rule.value_matcher.image:
            vm["image"] = rule.value_matcher.image
        if rule.value_matcher.image_repo:
            vm["imageRepo"] = rule.value_matcher.image_repo
        out["valueMatcher"] = vm
    if rule.update_strategy is not None:
        out["updateStrategy"] = _strategy_json(rule.update_strategy)
    return out


def kbld_lock_text(entries: Sequence[LockEntry], search_rules: Sequence[SearchRule] = ()) -> str:
    """``--lock-output``: kbld's Config with preresolved overrides sorted by image.

    ``search_rules`` are the rules without the default (``keys`` first, then
    ``searchRules``); they are written only when there are some.
    """
    doc: dict[str, object] = {
        "apiVersion": "kbld.k14s.io/v1alpha1",
        "kind": "Config",
        "minimumRequiredVersion": KBLD_VERSION,
    }
    overrides = [
        {"image": e.id, "newImage": e.image, "preresolved": True}
        for e in sorted(entries, key=lambda e: e.id)
    ]
    if overrides:
        doc["overrides"] = overrides
    if search_rules:
        doc["searchRules"] = [rule_json(r) for r in search_rules]
    return marshal(doc)


def bundle_lock_text(image: str, tag: str) -> str:
    """imgpkg's BundleLock (``image`` must be a digest reference)."""
    try:
        normalize_digest_reference(image)
    except ValueError:
        raise LockError(f"Expected ref to be in digest form, got '{image}'") from None
    bundle: dict[str, object] = {}
    if image:
        bundle["image"] = image
    if tag:
        bundle["tag"] = tag
    return "---\n" + marshal(
        {"apiVersion": LOCK_API_VERSION, "bundle": bundle, "kind": BUNDLE_LOCK_KIND}
    )


# --- readers -------------------------------------------------------------------


def _line(source: str | None, node: Node | None, offset: int) -> int | None:
    return None if node is None else offset + node.line + 1


class _Strict:
    """``UnmarshalStrict`` over decoded data: exact (or case-folded) fields, no extras."""

    def __init__(self, source: str | None, line_offset: int) -> None:
        self.source = source
        self.offset = line_offset

    def fail(
        self, message: str, container: object = None, key: str | int | None = None
    ) -> LockError:
        node: Node | None = None
        if isinstance(container, GoMap) and isinstance(key, str):
            node = container.value_nodes.get(key) or container.node
        elif isinstance(container, GoList) and isinstance(key, int):
            node = container.item_nodes[key] if key < len(container.item_nodes) else container.node
        elif isinstance(container, GoMap | GoList):
            node = container.node
        return LockError(message, self.source, _line(self.source, node, self.offset))

    def fields(self, value: object, known: Sequence[str], what: str) -> dict[str, object]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{what}: expected a map", value)
        out: dict[str, object] = {}
        folded = {k.casefold(): k for k in known}
        for key, item in value.items():
            name = key if key in known else folded.get(key.casefold())
            if name is None:
                raise self.fail(f'{what}: unknown field "{key}"', value, key)
            out[name] = item
        return out

    def string(self, value: object, what: str, container: object, key: str) -> str:
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
        raise self.fail(f"{what}: expected a string", container, key)


def _check_duplicates(root: Node, source: str | None, offset: int) -> None:
    work = [root]
    seen: set[int] = set()
    while work:
        node = work.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            keys: set[str] = set()
            for k, v in node.pairs:
                text = getattr(k, "value", None)
                if isinstance(text, str):
                    if text in keys:
                        raise LockError(
                            f'mapping key "{text}" already defined', source, offset + k.line + 1
                        )
                    keys.add(text)
                work.extend((k, v))
        elif isinstance(node, SequenceNode):
            work.extend(node.items)


def _header(s: _Strict, f: dict[str, object], data: object, kind: str) -> None:
    api = s.string(f.get("apiVersion"), "apiVersion", data, "apiVersion")
    if api != LOCK_API_VERSION:
        raise s.fail(
            f"Validating apiVersion: Unknown version (known: {LOCK_API_VERSION})",
            data,
            "apiVersion",
        )
    if s.string(f.get("kind"), "kind", data, "kind") != kind:
        raise s.fail(f"Validating kind: Unknown kind (known: {kind})", data, "kind")


def images_lock_from_data(
    data: object, source: str | None = None, line_offset: int = 0
) -> ImagesLock:
    """An ImagesLock from decoded data (e.g. a document of a ``-f`` input)."""
    s = _Strict(source, line_offset)
    f = s.fields(data, ("apiVersion", "kind", "images"), "ImagesLock")
    _header(s, f, data, IMAGES_LOCK_KIND)
    images = f.get("images")
    if images is None:
        images = []
    if not isinstance(images, list):
        raise s.fail("images: expected a list", data, "images")
    entries: list[ImagesLockEntry] = []
    for i, item in enumerate(images):
        what = f"images[{i}]"
        item_f = s.fields(item, ("image", "annotations"), what)
        image = s.string(item_f.get("image"), f"{what}.image", item, "image")
        try:
            normalized = normalize_digest_reference(image)
        except ValueError:
            raise s.fail(f"Expected ref to be in digest form, got '{image}'", images, i) from None
        anns_raw = item_f.get("annotations")
        annotations: dict[str, str] = {}
        if anns_raw is not None:
            if not isinstance(anns_raw, dict):
                raise s.fail(f"{what}.annotations: expected a map", item, "annotations")
            for key, value in anns_raw.items():
                annotations[key] = s.string(value, f"{what}.annotations.{key}", anns_raw, key)
        entries.append(ImagesLockEntry(normalized, annotations))
    return ImagesLock(tuple(entries))


def _parse(text: str, source: str | None) -> tuple[object, Node | None]:
    root = compose(text, source or "lock")
    if root is None:
        return None, None
    _check_duplicates(root, source, 0)
    return to_data(root, source or "lock"), root


def read_images_lock(text: str, source: str | None = None) -> ImagesLock:
    """Parse an ``images.yml`` as imgpkg does (first document; strict)."""
    data, _ = _parse(text, source)
    return images_lock_from_data(data, source)


def read_bundle_lock(text: str, source: str | None = None) -> BundleLock:
    """Parse a BundleLock as imgpkg does (strict; the bundle must be a digest reference)."""
    data, _ = _parse(text, source)
    s = _Strict(source, 0)
    f = s.fields(data, ("apiVersion", "kind", "bundle"), "BundleLock")
    _header(s, f, data, BUNDLE_LOCK_KIND)
    bf = s.fields(f.get("bundle"), ("image", "tag"), "bundle")
    bundle = f.get("bundle")
    image = s.string(bf.get("image"), "bundle.image", bundle, "image")
    tag = s.string(bf.get("tag"), "bundle.tag", bundle, "tag")
    try:
        normalize_digest_reference(image)
    except ValueError:
        raise s.fail(f"Expected ref to be in digest form, got '{image}'", bundle, "image") from None
    return BundleLock(image, tag)
