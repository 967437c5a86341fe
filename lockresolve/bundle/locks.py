"""The lock and locations documents a bundle carries or a command writes, as imgpkg reads and writes them.

- ``ImagesLock`` (``.imgpkg/images.yml``): read strictly (unknown keys are
  errors, every ``image`` must be a digest reference, normalised as ggcr's
  ``NewDigest(...).Name()``), written as ``---`` + ``sigs.k8s.io/yaml``.
- ``BundleLock`` (``push``/``copy --lock-output``, ``pull``/``copy --lock``).
- ``ImageLocations`` (``image-locations.yml`` in a bundle's locations image):
  images sorted by reference, as imgpkg sorts them before writing.

Messages follow imgpkg's ``lockconfig`` package. Files are written atomically
with mode 0600, as imgpkg writes them.

This module is the bundle commands' own small reader/writer; the project-wide
``lockresolve.lock`` module supersedes it once merged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from lockresolve.errors import InputError, InvalidReferenceError
from lockresolve.fsutil import atomic_write
from lockresolve.goyaml import marshal
from lockresolve.reference import Reference

__all__ = [
    "API_VERSION",
    "BundleLock",
    "ImageLocation",
    "ImageLocations",
    "ImagesLock",
    "LockedImage",
    "read_any_lock",
]

API_VERSION: Final = "imgpkg.carvel.dev/v1alpha1"
IMAGES_LOCK_KIND: Final = "ImagesLock"
BUNDLE_LOCK_KIND: Final = "BundleLock"
LOCATIONS_KIND: Final = "ImageLocations"


class LockError(InputError):
    """A lock or locations document that imgpkg would refuse."""


def _load_yaml(data: bytes, what: str, source: str | None) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LockError(f"Unmarshaling {what}: not UTF-8", source=source) from None
    yaml = YAML(typ="safe", pure=True)
    try:
        return yaml.load(text)
    except YAMLError as exc:
        raise LockError(f"Unmarshaling {what}: {exc}", source=source) from None


def _check_keys(obj: Mapping[str, Any], allowed: Sequence[str], what: str, src: str | None) -> None:
    for key in obj:
        if key not in allowed:
            raise LockError(
                f'Unmarshaling {what}: error unmarshaling JSON: json: unknown field "{key}"',
                source=src,
            )


def _string(value: Any, name: str, what: str, src: str | None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise LockError(
            f"Unmarshaling {what}: error unmarshaling JSON: json: cannot unmarshal "
            f"{type(value).__name__} into field {name} of type string",
            source=src,
        )
    return value


def _mapping(value: Any, name: str, what: str, src: str | None) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise LockError(
            f"Unmarshaling {what}: error unmarshaling JSON: json: cannot unmarshal "
            f"{type(value).__name__} into {name}",
            source=src,
        )
    return value


def _check_version(doc: Mapping[str, Any], kind: str, prefix: str, src: str | None) -> None:
    if doc.get("apiVersion") != API_VERSION:
        raise LockError(
            f"{prefix}Validating apiVersion: Unknown version (known: {API_VERSION})", source=src
        )
    if doc.get("kind") != kind:
        raise LockError(f"{prefix}Validating kind: Unknown kind (known: {kind})", source=src)


def _digest_name(image: str, prefix: str, src: str | None) -> str:
    try:
        ref = Reference.parse(image)
    except InvalidReferenceError:
        ref = None
    if ref is None or ref.digest is None:
        raise LockError(f"{prefix}Expected ref to be in digest form, got '{image}'", source=src)
    return str(ref)


def _dump(doc: Mapping[str, Any]) -> bytes:
    return ("---\n" + marshal(doc)).encode("utf-8")


def _read_file(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise LockError(f"Reading path {os.fspath(path)}: {exc.strerror or exc}") from None


# --- ImagesLock --------------------------------------------------------------


@dataclass(frozen=True)
class LockedImage:
    """One entry of an ImagesLock: a digest reference and its annotations."""

    image: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> Reference:
        return Reference.parse(self.image)


@dataclass(frozen=True)
class ImagesLock:
    images: tuple[LockedImage, ...] = ()

    @classmethod
    def from_bytes(cls, data: bytes, source: str | None = None) -> ImagesLock:
        """Read strictly, as imgpkg's ``NewImagesLockFromBytes`` (``UnmarshalStrict``)."""
        what = "images lock"
        doc = _mapping(_load_yaml(data, what, source), "ImagesLock", what, source)
        _check_keys(doc, ("apiVersion", "kind", "images"), what, source)
        raw_images = doc.get("images") or []
        if not isinstance(raw_images, list):
            raise LockError(
                f"Unmarshaling {what}: error unmarshaling JSON: json: cannot unmarshal "
                f"{type(raw_images).__name__} into field images",
                source=source,
            )
        entries: list[tuple[str, dict[str, str]]] = []
        for raw in raw_images:
            item = _mapping(raw, "ImageRef", what, source)
            _check_keys(item, ("image", "annotations"), what, source)
            image = _string(item.get("image"), "image", what, source)
            annotations = {
                str(k): _string(v, "annotations", what, source)
                for k, v in _mapping(item.get("annotations"), "annotations", what, source).items()
            }
            entries.append((image, annotations))
        prefix = "Validating images lock: "
        for key in ("apiVersion", "kind"):
            _string(doc.get(key), key, what, source)
        _check_version(doc, IMAGES_LOCK_KIND, prefix, source)
        images = tuple(
            LockedImage(_digest_name(image, prefix, source), annotations)
            for image, annotations in entries
        )
        return cls(images)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> ImagesLock:
        return cls.from_bytes(_read_file(path), source=os.fspath(path))

    def to_bytes(self) -> bytes:
        """``---`` + ``sigs.k8s.io/yaml.Marshal``: keys sorted, empty fields left out."""
        doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": IMAGES_LOCK_KIND}
        if self.images:
            items: list[dict[str, Any]] = []
            for entry in self.images:
                item: dict[str, Any] = {}
                if entry.image:
                    item["image"] = entry.image
                if entry.annotations:
                    item["annotations"] = dict(entry.annotations)
                items.append(item)
            doc["images"] = items
        return _dump(doc)

    def write(self, path: str | os.PathLike[str]) -> None:
        atomic_write(path, self.to_bytes(), mode=0o600)


# --- BundleLock --------------------------------------------------------------


@dataclass(frozen=True)
class BundleLock:
    image: str
    tag: str = ""

    @classmethod
    def from_bytes(cls, data: bytes, source: str | None = None) -> BundleLock:
        what = "bundle lock"
        doc = _mapping(_load_yaml(data, what, source), "BundleLock", what, source)
        _check_keys(doc, ("apiVersion", "kind", "bundle"), what, source)
        bundle = _mapping(doc.get("bundle"), "bundle", what, source)
        _check_keys(bundle, ("image", "tag"), what, source)
        image = _string(bundle.get("image"), "image", what, source)
        tag = _string(bundle.get("tag"), "tag", what, source)
        for key in ("apiVersion", "kind"):
            _string(doc.get(key), key, what, source)
        prefix = "Validating bundle lock: "
        _check_version(doc, BUNDLE_LOCK_KIND, prefix, source)
        _digest_name(image, prefix, source)
        return cls(image=image, tag=tag)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> BundleLock:
        return cls.from_bytes(_read_file(path), source=os.fspath(path))

    def to_bytes(self) -> bytes:
        bundle: dict[str, Any] = {}
        if self.image:
            bundle["image"] = self.image
        if self.tag:
            bundle["tag"] = self.tag
        return _dump({"apiVersion": API_VERSION, "bundle": bundle, "kind": BUNDLE_LOCK_KIND})

    def write(self, path: str | os.PathLike[str]) -> None:
        atomic_write(path, self.to_bytes(), mode=0o600)


def read_any_lock(path: str | os.PathLike[str]) -> BundleLock | ImagesLock:
    """A BundleLock, else an ImagesLock (imgpkg's ``NewLockFromPath``)."""
    data = _read_file(path)
    try:
        return BundleLock.from_bytes(data, source=os.fspath(path))
    except LockError:
        pass
    try:
        return ImagesLock.from_bytes(data, source=os.fspath(path))
    except LockError as exc:
        raise LockError(
            f"Trying to read bundle or images lock file: {exc.message}", source=os.fspath(path)
        ) from None


# --- ImageLocations ----------------------------------------------------------


@dataclass(frozen=True)
class ImageLocation:
    image: str
    is_bundle: bool


@dataclass(frozen=True)
class ImageLocations:
    images: tuple[ImageLocation, ...] = ()

    @classmethod
    def from_bytes(cls, data: bytes, source: str | None = None) -> ImageLocations:
        what = "image locations config"
        doc = _mapping(_load_yaml(data, what, source), "ImageLocationsConfig", what, source)
        items: list[ImageLocation] = []
        for raw in doc.get("images") or []:
            item = _mapping(raw, "ImageLocation", what, source)
            image = _string(item.get("image"), "image", what, source)
            is_bundle = item.get("isBundle", False)
            if not isinstance(is_bundle, bool):
                raise LockError(f"Unmarshaling {what}: isBundle is not a boolean", source=source)
            items.append(ImageLocation(image, is_bundle))
        if doc.get("apiVersion") != API_VERSION:
            raise LockError(f"Validating apiVersion: Unknown version (known: {API_VERSION})")
        if doc.get("kind") != LOCATIONS_KIND:
            raise LockError(f"Validating kind: Unknown kind (known: {LOCATIONS_KIND})")
        return cls(tuple(items))

    def to_bytes(self) -> bytes:
        ordered = sorted(self.images, key=lambda loc: loc.image.encode("utf-8"))
        doc: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "images": [{"image": loc.image, "isBundle": loc.is_bundle} for loc in ordered],
            "kind": LOCATIONS_KIND,
        }
        return _dump(doc)
