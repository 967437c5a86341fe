"""kbld's and imgpkg's lock files: byte-exact writers and strict readers, for resolve and bundles.

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
* BundleLock (``push``/``copy --lock-output``, ``pull``/``copy --lock``).

Writers produce what kbld / imgpkg write (``---`` + ``sigs.k8s.io/yaml`` over
Go structs, empty fields left out), through :func:`lockresolve.goyaml.marshal`;
files are written atomically with mode 0600, as imgpkg writes them. Readers
follow imgpkg's ``UnmarshalStrict``: unknown fields and duplicate keys are
errors, scalars become Go strings as ``sigs.k8s.io/yaml`` makes them, and every
image must be a digest reference. ImagesLock images are normalised as ggcr's
``NewDigest(...).Name()``, through :class:`~lockresolve.reference.Reference`
like every other reference lockresolve reads (ggcr HEAD's rules: with
v0.19.1's, a lock the resolver wrote for ``localhost/app`` or ``reg.io/a``
would not read back as written).

There are two ways in, with one parser behind them: :func:`read_images_lock`
and :func:`read_bundle_lock` (text; the resolver's messages, with the line),
and ``ImagesLock.from_bytes`` / ``from_path``, ``BundleLock.from_bytes`` /
``from_path`` and :func:`read_any_lock` (the bundle commands': imgpkg's
``lockconfig`` wording, ``Unmarshaling images lock: ...`` or ``Validating
bundle lock: ...`` before the same message).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from lockresolve.errors import InputError, InvalidReferenceError
from lockresolve.fsutil import atomic_write
from lockresolve.goyaml import marshal
from lockresolve.reference import Reference
from lockresolve.resolve.configmodel import KBLD_VERSION, PathIndex, SearchRule, UpdateStrategy
from lockresolve.resolve.documents import IMAGES_LOCK_API_VERSION
from lockresolve.resolve.godata import GoList, GoMap, go_string_field, to_data
from lockresolve.resolve.model import LockEntry
from lockresolve.resolve.origins import origins_data
from lockresolve.resolve.sources import decode_source
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
    "imgpkg_wording",
    "kbld_lock_text",
    "load_document",
    "read_any_lock",
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


class _Invalid(LockError):
    """Refused by imgpkg's ``Validate`` (version, kind, digest form) rather than while unmarshaling."""


@dataclass(frozen=True)
class ImagesLockEntry:
    """One image of an ImagesLock: a digest reference (normalised when read) and its annotations."""

    image: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> Reference:
        return Reference.parse(self.image)


@dataclass(frozen=True)
class ImagesLock:
    images: tuple[ImagesLockEntry, ...] = ()

    @classmethod
    def from_bytes(cls, data: bytes, source: str | None = None) -> ImagesLock:
        """Read as imgpkg's ``NewImagesLockFromBytes``, with its wording."""
        with imgpkg_wording("images lock"):
            return images_lock_from_data(load_document(data, source), source)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> ImagesLock:
        return cls.from_bytes(_read_file(path), os.fspath(path))

    def text(self) -> str:
        """``---`` + ``sigs.k8s.io/yaml.Marshal`` of imgpkg's struct (empty fields left out)."""
        doc: dict[str, object] = {"apiVersion": LOCK_API_VERSION, "kind": IMAGES_LOCK_KIND}
        if self.images:
            doc["images"] = [
                _omit_empty(annotations=dict(e.annotations), image=e.image) for e in self.images
            ]
        return "---\n" + marshal(doc)

    def write(self, path: str | os.PathLike[str]) -> None:
        atomic_write(path, self.text().encode("utf-8"), mode=0o600)


@dataclass(frozen=True)
class BundleLock:
    image: str  # digest reference, as written
    tag: str = ""

    @classmethod
    def from_bytes(cls, data: bytes, source: str | None = None) -> BundleLock:
        """Read as imgpkg's ``NewBundleLockFromBytes``, with its wording."""
        with imgpkg_wording("bundle lock"):
            return _bundle_lock_from_data(load_document(data, source), source)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> BundleLock:
        return cls.from_bytes(_read_file(path), os.fspath(path))

    def text(self) -> str:
        """imgpkg's BundleLock; :class:`LockError` unless ``image`` is a digest reference."""
        if _digest_reference(self.image) is None:
            raise _Invalid(f"Expected ref to be in digest form, got '{self.image}'")
        bundle = _omit_empty(image=self.image, tag=self.tag)
        return "---\n" + marshal(
            {"apiVersion": LOCK_API_VERSION, "bundle": bundle, "kind": BUNDLE_LOCK_KIND}
        )

    def write(self, path: str | os.PathLike[str]) -> None:
        atomic_write(path, self.text().encode("utf-8"), mode=0o600)


def _omit_empty(**fields: object) -> dict[str, object]:
    """A Go struct's fields as ``omitempty`` marshals them."""
    return {name: value for name, value in fields.items() if value}


def _digest_reference(image: str) -> Reference | None:
    try:
        ref = Reference.parse(image)
    except InvalidReferenceError:
        return None
    return ref if ref.digest is not None else None


# --- writers -----------------------------------------------------------------


def images_lock_text(entries: Sequence[LockEntry], *, origins: bool = True) -> str:
    """``--imgpkg-lock-output``: entries sorted by id; origins only when there are some."""
    images: list[ImagesLockEntry] = []
    for entry in sorted(entries, key=lambda e: e.id):
        annotations = {ID_ANNOTATION: entry.id}
        if origins and entry.origins:
            annotations[ORIGINS_ANNOTATION] = marshal(origins_data(entry.origins))
        images.append(ImagesLockEntry(entry.image, annotations))
    return ImagesLock(tuple(images)).text()


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
    if rule.resource_matchers:  # lockresolve's extension, written as given
        from lockresolve.resolve.matchers import matcher_json

        out["resourceMatchers"] = [matcher_json(m) for m in rule.resource_matchers]
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
    return BundleLock(image, tag).text()


# --- readers -------------------------------------------------------------------


def _line(node: Node | None, offset: int) -> int | None:
    return None if node is None else offset + node.line + 1


class _Strict:
    """``UnmarshalStrict`` over decoded data: exact (or case-folded) fields, no extras."""

    def __init__(self, source: str | None, line_offset: int) -> None:
        self.source = source
        self.offset = line_offset

    def fail(
        self,
        message: str,
        container: object = None,
        key: str | int | None = None,
        *,
        invalid: bool = False,
    ) -> LockError:
        node: Node | None = None
        if isinstance(container, GoMap) and isinstance(key, str):
            node = container.value_nodes.get(key) or container.node
        elif isinstance(container, GoList) and isinstance(key, int):
            node = container.item_nodes[key] if key < len(container.item_nodes) else container.node
        elif isinstance(container, GoMap | GoList):
            node = container.node
        error = _Invalid if invalid else LockError
        return error(message, self.source, _line(node, self.offset))

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
        text = go_string_field(value)
        if text is None:
            raise self.fail(f"{what}: expected a string", container, key)
        return text

    def digest_form(self, image: str, container: object, key: str | int) -> Reference:
        ref = _digest_reference(image)
        if ref is None:
            raise self.fail(
                f"Expected ref to be in digest form, got '{image}'", container, key, invalid=True
            )
        return ref


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
            invalid=True,
        )
    if s.string(f.get("kind"), "kind", data, "kind") != kind:
        raise s.fail(f"Validating kind: Unknown kind (known: {kind})", data, "kind", invalid=True)


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
        normalized = str(s.digest_form(image, images, i))
        anns_raw = item_f.get("annotations")
        annotations: dict[str, str] = {}
        if anns_raw is not None:
            if not isinstance(anns_raw, dict):
                raise s.fail(f"{what}.annotations: expected a map", item, "annotations")
            for key, value in anns_raw.items():
                annotations[key] = s.string(value, f"{what}.annotations.{key}", anns_raw, key)
        entries.append(ImagesLockEntry(normalized, annotations))
    return ImagesLock(tuple(entries))


def _bundle_lock_from_data(data: object, source: str | None) -> BundleLock:
    s = _Strict(source, 0)
    f = s.fields(data, ("apiVersion", "kind", "bundle"), "BundleLock")
    _header(s, f, data, BUNDLE_LOCK_KIND)
    bf = s.fields(f.get("bundle"), ("image", "tag"), "bundle")
    bundle = f.get("bundle")
    image = s.string(bf.get("image"), "bundle.image", bundle, "image")
    tag = s.string(bf.get("tag"), "bundle.tag", bundle, "tag")
    s.digest_form(image, bundle, "image")
    return BundleLock(image, tag)


def _document(text: str, source: str | None) -> object:
    root = compose(text, source or "lock")
    if root is None:
        return None
    _check_duplicates(root, source, 0)
    return to_data(root, source or "lock")


def load_document(data: bytes, source: str | None = None) -> object:
    """The first YAML document of an imgpkg file, as Go data (duplicate keys are errors).

    Raises :class:`~lockresolve.errors.YAMLInputError` for text that is not
    UTF-8 or not YAML, and for hostile YAML (the composer's limits).
    """
    return _document(decode_source(source or "lock", data), source)


def read_images_lock(text: str, source: str | None = None) -> ImagesLock:
    """Parse an ``images.yml`` as imgpkg does (first document; strict)."""
    return images_lock_from_data(_document(text, source), source)


def read_bundle_lock(text: str, source: str | None = None) -> BundleLock:
    """Parse a BundleLock as imgpkg does (strict; the bundle must be a digest reference)."""
    return _bundle_lock_from_data(_document(text, source), source)


@contextmanager
def imgpkg_wording(what: str) -> Iterator[None]:
    """imgpkg's ``Unmarshaling <what>: `` or ``Validating <what>: `` before a reader's message."""
    try:
        yield
    except InputError as exc:  # LockError, or YAMLInputError from the loader
        stage = "Validating" if isinstance(exc, _Invalid) else "Unmarshaling"
        raise LockError(f"{stage} {what}: {exc.message}", exc.source, exc.line) from None


def _read_file(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise LockError(f"Reading path {os.fspath(path)}: {exc.strerror or exc}") from None


def read_any_lock(path: str | os.PathLike[str]) -> BundleLock | ImagesLock:
    """A BundleLock, else an ImagesLock (imgpkg's ``NewLockFromPath``)."""
    data = _read_file(path)
    source = os.fspath(path)
    try:
        return BundleLock.from_bytes(data, source)
    except LockError:
        pass
    try:
        return ImagesLock.from_bytes(data, source)
    except LockError as exc:
        raise LockError(
            f"Trying to read bundle or images lock file: {exc.message}", source, exc.line
        ) from None
