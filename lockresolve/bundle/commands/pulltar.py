"""``pull --tar FILE`` / ``pull --oci-layout DIR``: a bundle or image from files, no registry.

Beyond imgpkg (#223). The source is an imgpkg tar (``copy --to-tar``, by
imgpkg or lockresolve) or an OCI image layout (``copy --to-oci-layout``,
skopeo's ``oci:``). What is extracted: the root bundle (the item labelled
``dev.carvel.imgpkg.copy.root-bundle``), else the only image of the source;
a source with several items and no root bundle, or an index, is refused.
Each layer is copied out of the source to a temporary file while its digest
is checked, then goes through the same safe extraction as a registry pull
(staging directory, diff_id check, whiteouts), ``--include-path`` applies,
and with ``-r`` nested bundles found in the same source are extracted to
``.imgpkg/bundles/sha256-<hex>/``. ``images.yml`` is left as it is: with no
registry there is nothing to relocate to.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio.to_thread

from lockresolve.bundle.collect import ROOT_BUNDLE_LABEL
from lockresolve.bundle.commands.pull import (
    IMAGES_LOCK_PATH,
    NESTED_DIR,
    PulledBundle,
    PullResult,
    check_output_path,
    precheck_output,
)
from lockresolve.bundle.extract import replace_directory, staging_directory
from lockresolve.bundle.formats.image import BUNDLE_LABEL
from lockresolve.bundle.imagedesc import Artifact, ImageDesc
from lockresolve.bundle.includepaths import normalize_include_paths, prune_to_includes
from lockresolve.bundle.sources import FileBlobs, Region
from lockresolve.bundle.unpack import DownloadedLayer, unpack_layers
from lockresolve.errors import BundleError, DigestMismatchError, UsageError
from lockresolve.lock import ImagesLock

__all__ = ["pull_from_files"]

_CHUNK = 1 << 20


def _is_bundle(image: ImageDesc) -> bool:
    try:
        labels = (json.loads(image.config_raw).get("config") or {}).get("Labels") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(labels, dict) and BUNDLE_LABEL in labels


def _chosen(artifacts: Sequence[Artifact], shown: str) -> ImageDesc:
    roots = [
        a for a in artifacts if isinstance(a, ImageDesc) and ROOT_BUNDLE_LABEL in (a.labels or {})
    ]
    if len(roots) == 1:
        return roots[0]
    if len(roots) > 1:
        raise BundleError(f"{shown}: holds {len(roots)} root bundles; expected one")
    if len(artifacts) == 1 and isinstance(artifacts[0], ImageDesc):
        return artifacts[0]
    if len(artifacts) == 1:
        raise BundleError(
            f"{shown}: holds an image index; unable to pull non-images, such as image indexes"
        )
    raise BundleError(
        f"{shown}: holds {len(artifacts)} items and no root bundle; expected a bundle "
        "(copy -b ... --to-tar) or a single image"
    )


def _copy_out(region: Region, digest: str, dest: Path, shown: str) -> None:
    hasher = hashlib.sha256()
    with open(region.path, "rb") as src, open(dest, "wb") as out:
        src.seek(region.offset)
        remaining = region.size
        while remaining:
            chunk = src.read(min(_CHUNK, remaining))
            if not chunk:
                raise BundleError(f"{shown}: ends inside blob {digest}")
            hasher.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
    actual = "sha256:" + hasher.hexdigest()
    if actual != digest:
        raise DigestMismatchError(f"{shown}: blob {digest} hashes to {actual}")


class _FilePull:
    def __init__(
        self,
        artifacts: Sequence[Artifact],
        blobs: FileBlobs,
        shown: str,
        work: Path,
        preserve_permissions: bool = False,
    ) -> None:
        self.preserve_permissions = preserve_permissions
        self.by_digest = {a.digest: a for a in artifacts}
        self.blobs, self.shown, self.work = blobs, shown, work
        self.lines: list[str] = []
        self.done: set[str] = set()

    def extract(self, image: ImageDesc, dest: Path, indent: str) -> None:
        layers: list[DownloadedLayer] = []
        for n, desc in enumerate(image.layers):
            path = self.work / f"{image.manifest_digest.replace(':', '-')}-{n}"
            _copy_out(self.blobs.region(desc.digest), desc.digest, path, self.shown)
            layers.append(DownloadedLayer(path, desc.digest, desc.media_type, desc.diff_id or None))
        total = len(layers)

        def note(index: int, layer: DownloadedLayer) -> None:
            self.lines.append(f"{indent}Extracting layer '{layer.digest}' ({index + 1}/{total})")

        dest.mkdir(parents=True, exist_ok=True)
        unpack_layers(layers, dest, on_layer=note, preserve_permissions=self.preserve_permissions)
        for layer in layers:
            layer.path.unlink(missing_ok=True)

    def bundle(
        self, image: ImageDesc, staging: Path, rel: str, indent: str, recursive: bool
    ) -> PulledBundle:
        word = "bundle" if rel == "" else "nested bundle"
        ref = image.refs[0] if image.refs else image.manifest_digest
        self.lines.append(f"{indent}Pulling {word} '{ref}' from {self.shown}")
        dest = staging / rel if rel else staging
        self.extract(image, dest, indent + "  ")
        self.done.add(image.manifest_digest)
        lock_path = os.path.join(rel or ".", IMAGES_LOCK_PATH)
        try:
            data = (dest / IMAGES_LOCK_PATH).read_bytes()
        except OSError as exc:
            raise BundleError(f"Reading path {lock_path}: {exc.strerror}") from None
        lock = ImagesLock.from_bytes(data, source=lock_path)
        nested: list[PulledBundle] = []
        for entry in lock.images if recursive else ():
            digest = str(entry.reference.digest)
            child = self.by_digest.get(digest)
            if not isinstance(child, ImageDesc) or not _is_bundle(child) or digest in self.done:
                continue
            child_rel = os.path.join(NESTED_DIR, digest.replace("sha256:", "sha256-"))
            nested.append(self.bundle(child, staging, child_rel, indent + "  ", recursive))
        return PulledBundle(ref, rel, False, tuple(nested))


async def pull_from_files(
    out: str | os.PathLike[str],
    *,
    tar: str | os.PathLike[str] | None = None,
    oci_layout: str | os.PathLike[str] | None = None,
    recursive: bool = False,
    force: bool = False,
    include_paths: Sequence[str] = (),
    preserve_permissions: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> PullResult:
    """Extract the bundle or image held by ``tar`` (or ``oci_layout``) into ``out``."""
    check_output_path(out)
    if (tar is None) == (oci_layout is None):
        raise UsageError("Expected exactly one of --tar or --oci-layout")
    includes = normalize_include_paths(include_paths)
    precheck_output(out, force)
    log = on_line or (lambda line: None)

    def work() -> PullResult:
        if tar is not None:
            from lockresolve.bundle.formats.imgtar import read_imgpkg_tar

            shown = f"tar {os.fspath(tar)}"
            artifacts, blobs = read_imgpkg_tar(Path(tar))
        else:
            assert oci_layout is not None
            from lockresolve.bundle.formats.ocilayout import read_oci_layout

            shown = f"OCI layout {os.fspath(oci_layout)}"
            artifacts, blobs = read_oci_layout(Path(oci_layout))
        image = _chosen(artifacts, shown)
        with (
            staging_directory(out) as staging,
            tempfile.TemporaryDirectory(prefix="lockresolve-pull-") as tmp,
        ):
            job = _FilePull(artifacts, blobs, shown, Path(tmp), preserve_permissions)
            if _is_bundle(image):
                pulled = job.bundle(image, staging, "", "", recursive)
                result = PullResult(image=pulled.image, is_bundle=True, bundle=pulled)
            else:
                if recursive:
                    raise UsageError("Cannot use --recursive (-r) flag when pulling an image")
                ref = image.refs[0] if image.refs else image.manifest_digest
                job.lines.append(f"Pulling image '{ref}' from {shown}")
                job.extract(image, staging, "")
                result = PullResult(image=ref, is_bundle=False)
            if includes:
                prune_to_includes(staging, includes, shown)
            replace_directory(staging, out, force=force)
        for line in job.lines:
            log(line)
        return result

    return await anyio.to_thread.run_sync(work)
