"""The locations image: where a copied bundle's images came from.

After a copy imgpkg pushes, next to the bundle, a plain one-layer image tagged
``sha256-<bundlehex>.image-locations.imgpkg`` whose only file is
``image-locations.yml`` (``kind: ImageLocations``: each image's original
reference and whether it is a bundle). ``pull`` reads it to learn, without a
HEAD per image, that the bundle's repository holds every image. Like imgpkg,
a 401, 403 or 404 when reading it means "no locations image".

:class:`ImageLocations` is that file: read (not strictly: unknown fields are
ignored) with the lock files' YAML loader, written with images sorted by
reference, as imgpkg sorts them before writing.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lockresolve.bundle.commands.push import PushResult, push_files_image
from lockresolve.bundle.remote import RemoteImage, fetch_artifact, fetch_blob_bytes
from lockresolve.errors import AuthError, BundleError, NotFoundError
from lockresolve.goyaml import marshal
from lockresolve.lock import LOCK_API_VERSION, LockError, imgpkg_wording, load_document
from lockresolve.mediatypes import DOCKER_LAYER
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = [
    "LOCATIONS_FILE",
    "ImageLocation",
    "ImageLocations",
    "fetch_locations",
    "locations_ref",
    "locations_tag",
    "one_per_digest",
    "push_locations",
]

LOCATIONS_FILE = "image-locations.yml"
LOCATIONS_KIND: Final = "ImageLocations"
_MAX_LAYER = 64 << 20


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

        def cannot(value: object, into: str) -> LockError:
            kind = type(value).__name__
            if isinstance(value, list | dict):  # GoList, GoMap
                kind = "list" if isinstance(value, list) else "dict"
            return LockError(
                f"Unmarshaling {what}: error unmarshaling JSON: json: cannot unmarshal "
                f"{kind} into {into}",
                source=source,
            )

        def mapping(value: object, into: str) -> Mapping[str, object]:
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise cannot(value, into)
            return value

        with imgpkg_wording(what):
            loaded = load_document(data, source)
        doc = mapping(loaded, "ImageLocationsConfig")
        raw_images = doc.get("images") or []
        if not isinstance(raw_images, list):
            raise cannot(raw_images, "field images")
        items: list[ImageLocation] = []
        for raw in raw_images:
            item = mapping(raw, "ImageLocation")
            image = item.get("image")
            if image is None:
                image = ""
            if not isinstance(image, str):
                raise cannot(image, "field image of type string")
            is_bundle = item.get("isBundle", False)
            if not isinstance(is_bundle, bool):
                raise LockError(f"Unmarshaling {what}: isBundle is not a boolean", source=source)
            items.append(ImageLocation(image, is_bundle))
        if doc.get("apiVersion") != LOCK_API_VERSION:
            raise LockError(f"Validating apiVersion: Unknown version (known: {LOCK_API_VERSION})")
        if doc.get("kind") != LOCATIONS_KIND:
            raise LockError(f"Validating kind: Unknown kind (known: {LOCATIONS_KIND})")
        return cls(tuple(items))

    def to_bytes(self) -> bytes:
        """imgpkg's bytes: sorted by image; no image is ``images: null`` (Go's nil slice)."""
        ordered = sorted(self.images, key=lambda loc: loc.image.encode("utf-8"))
        doc: dict[str, object] = {
            "apiVersion": LOCK_API_VERSION,
            "images": [{"image": loc.image, "isBundle": loc.is_bundle} for loc in ordered] or None,
            "kind": LOCATIONS_KIND,
        }
        return ("---\n" + marshal(doc)).encode("utf-8")


def one_per_digest(images: Iterable[ImageLocation]) -> tuple[ImageLocation, ...]:
    """A bundle's locations entries as imgpkg records them: one per digest.

    imgpkg's ``NoteCopy`` writes one entry per digest of the bundle's
    ``images.yml`` (its image cache is keyed by digest), so two entries locking
    one digest from two repositories give one entry. Which one imgpkg keeps is
    whichever its concurrent fetches settle first: the first in ``images.yml``
    order for plain images in every recorded run, either for nested bundles
    (see ``tests/fixtures/conformance/locations/``). lockresolve keeps the first.
    """
    seen: set[str] = set()
    kept: list[ImageLocation] = []
    for loc in images:
        digest = loc.image.rpartition("@")[2]
        if digest not in seen:
            seen.add(digest)
            kept.append(loc)
    return tuple(kept)


def locations_tag(bundle_digest: str) -> str:
    algorithm, _, hex_ = bundle_digest.partition(":")
    return f"{algorithm}-{hex_}.image-locations.imgpkg"


def locations_ref(repository: Reference, bundle_digest: str) -> Reference:
    """``<repo>:sha256-<hex>.image-locations.imgpkg`` for the bundle at ``bundle_digest``."""
    return repository.with_tag(locations_tag(bundle_digest))


async def fetch_locations(
    client: RegistryClient, repository: Reference, bundle_digest: str
) -> ImageLocations | None:
    """The bundle's locations config in ``repository``, or None when there is none."""
    ref = locations_ref(repository, bundle_digest)
    try:
        artifact = await fetch_artifact(client, ref)
    except (NotFoundError, AuthError):
        return None
    if not isinstance(artifact, RemoteImage):
        raise BundleError(f"Fetching location image: {ref} is not an image")
    layers = artifact.layers
    if len(layers) != 1:
        raise BundleError(
            "Reading fetched location image: Expected locations OCI Image to only have a "
            f"single layer, got {len(layers)}"
        )
    if layers[0].media_type != DOCKER_LAYER:
        raise BundleError(
            "Reading fetched location image: Expected layer to have docker layer media type, "
            f"was {layers[0].media_type}"
        )
    blob = await fetch_blob_bytes(client, artifact.ref, layers[0].digest, _MAX_LAYER)
    return ImageLocations.from_bytes(_read_locations_file(blob), source=str(ref))


def _read_locations_file(blob: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as gz:
            raw = gz.read(_MAX_LAYER + 1)
        if len(raw) > _MAX_LAYER:
            raise BundleError("Reading fetched location image: layer too large")
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if member.isfile() and os.path.basename(member.name) == LOCATIONS_FILE:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        return fh.read()
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise BundleError(f"Reading fetched location image: {exc}") from None
    raise BundleError(
        "Reading fetched location image: Expected to find image-locations.yml in location image"
    )


async def push_locations(
    client: RegistryClient, repository: Reference, bundle_digest: str, config: ImageLocations
) -> PushResult:
    """Push the locations image for the bundle, as imgpkg's ``LocationsConfigs.Save``."""
    with tempfile.TemporaryDirectory(prefix="imgpkg-bundle-locations") as tmp:
        os.chmod(tmp, 0o700)
        path = Path(tmp) / LOCATIONS_FILE
        path.write_bytes(config.to_bytes())
        path.chmod(0o600)
        return await push_files_image(
            client, locations_ref(repository, bundle_digest), [tmp], exclusions=(), labels={}
        )
