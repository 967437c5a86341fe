"""The locations image: where a copied bundle's images came from.

After a copy imgpkg pushes, next to the bundle, a plain one-layer image tagged
``sha256-<bundlehex>.image-locations.imgpkg`` whose only file is
``image-locations.yml`` (``kind: ImageLocations``: each image's original
reference and whether it is a bundle). ``pull`` reads it to learn, without a
HEAD per image, that the bundle's repository holds every image. Like imgpkg,
a 401, 403 or 404 when reading it means "no locations image".
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

from lockresolve.bundle.locks import ImageLocations
from lockresolve.bundle.push import PushResult, push_files_image
from lockresolve.bundle.remote import RemoteImage, fetch_artifact, fetch_blob_bytes
from lockresolve.errors import AuthError, BundleError, NotFoundError
from lockresolve.mediatypes import DOCKER_LAYER
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = [
    "LOCATIONS_FILE",
    "fetch_locations",
    "locations_ref",
    "locations_tag",
    "push_locations",
]

LOCATIONS_FILE = "image-locations.yml"
_MAX_LAYER = 64 << 20


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
