"""``pull``: a bundle or image to a directory, safely, with imgpkg's relocation of ``images.yml``.

Everything is assembled in a staging directory next to ``-o``: a one-layer
image (every bundle) is extracted while it downloads, its chunks handed to
the safe extractor in a worker thread (the client checks the blob's digest at
the end, the extractor the diff_id); the layers of a multi-layer image are
downloaded (verified against their digests by the client) to temporary
files, then extracted in a worker thread through the safe extractor (each
layer's diff_id checked against the config), ``images.yml`` is read strictly and
rewritten when relocated, nested bundles are pulled for ``--recursive``, and
only then is the staging directory moved to ``-o``. A refusal or failure at
any point leaves ``-o`` as it was. A non-empty ``-o`` is replaced only with
``force`` (imgpkg always deletes it first).

Relocation, as imgpkg's ``UpdateRelativeToRepo``: when the bundle's
repository has the locations image
(``<repo>:sha256-<hex>.image-locations.imgpkg``) or answers a HEAD for every
image's digest, ``images.yml`` is rewritten with each image as
``<bundle repo>@<digest>`` (annotations kept).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.to_thread

from lockresolve.bundle.extract import replace_directory, staging_directory
from lockresolve.bundle.fetchimage import extract_image
from lockresolve.bundle.includepaths import normalize_include_paths, prune_to_includes
from lockresolve.bundle.progress import Progress
from lockresolve.bundle.remote import RemoteImage, RemoteIndex, fetch_artifact
from lockresolve.errors import AuthError, BundleError, LockresolveError, NotFoundError, UsageError
from lockresolve.fsutil import atomic_write
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

if TYPE_CHECKING:
    from lockresolve.lock import ImagesLock, ImagesLockEntry

# The lock and locations modules (YAML, the Go emitter, push for a locations image)
# are imported where a bundle needs them: an image pull (-i) never does.

__all__ = [
    "BUNDLE_FLAG_HINT",
    "NOT_BUNDLE_HINT",
    "PullResult",
    "PulledBundle",
    "check_output_path",
    "precheck_output",
    "pull",
    "pull_lock",
]

PullKind = Literal["bundle", "image"]

NOT_BUNDLE_HINT = (
    "Expected bundle image but found plain image (hint: Did you use -i instead of -b?)"
)
BUNDLE_FLAG_HINT = (
    "Expected bundle flag when pulling a bundle (hint: Use -b instead of -i for bundles)"
)
INDEX_REFUSED = (
    "Unable to pull non-images, such as image indexes. "
    "(hint: provide a specific digest to the image instead)"
)
IMAGES_LOCK_PATH = os.path.join(".imgpkg", "images.yml")
NESTED_DIR = os.path.join(".imgpkg", "bundles")


@dataclass(frozen=True)
class PulledBundle:
    """A bundle written under ``-o``: ``path`` is relative to it (``""`` for the root)."""

    image: str
    path: str
    relocated: bool
    nested: tuple[PulledBundle, ...] = ()


@dataclass(frozen=True)
class PullResult:
    image: str
    is_bundle: bool
    bundle: PulledBundle | None = None


@dataclass
class _Context:
    client: RegistryClient
    recursive: bool
    on_line: Callable[[str], None]
    progress: Progress
    workdir: Path
    preserve_permissions: bool = False
    processed: dict[str, bool] = field(default_factory=dict)
    nested_count: int = 0


def check_output_path(out: str | os.PathLike[str]) -> None:
    """imgpkg's guard against deleting the wrong directory."""
    text = os.fspath(out)
    if text == "":
        raise UsageError("Expected --output to be none empty")
    if text in ("/", ".", ".."):
        raise UsageError("Disallowed output directory (trying to avoid accidental deletion)")


def precheck_output(out: str | os.PathLike[str], force: bool) -> None:
    """Refuse early (before any download) what :func:`replace_directory` would refuse."""
    if force:
        return
    path = os.path.abspath(os.fspath(out))
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        with os.scandir(path) as it:
            if next(it, None) is None:
                return
        raise BundleError(f"Output directory is not empty: '{path}' (use --force to replace it)")
    raise BundleError(
        f"Output path exists and is not a directory: '{path}' (use --force to replace it)"
    )


async def pull_lock(
    client: RegistryClient,
    lock_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    **kwargs: object,
) -> PullResult:
    """``pull --lock FILE``: the bundle of a BundleLock."""
    from lockresolve.lock import BundleLock

    lock = BundleLock.from_path(lock_path)
    return await pull(client, lock.image, out, kind="bundle", **kwargs)  # type: ignore[arg-type]


async def pull(
    client: RegistryClient,
    source: str,
    out: str | os.PathLike[str],
    *,
    kind: PullKind,
    recursive: bool = False,
    force: bool = False,
    image_is_bundle_check: bool = True,
    include_paths: Sequence[str] = (),
    preserve_permissions: bool = False,
    on_line: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Pull ``source`` (a bundle with ``kind="bundle"``, else an image) into ``out``.

    ``include_paths``: keep only these files or folders (and ``.imgpkg/``), see
    :mod:`lockresolve.bundle.includepaths`.
    """
    check_output_path(out)
    includes = normalize_include_paths(include_paths)
    if recursive and kind == "image":
        raise UsageError("Cannot use --recursive (-r) flag when pulling a bundle")
    precheck_output(out, force)
    ref = Reference.parse(source)
    artifact = await fetch_artifact(client, ref)
    if isinstance(artifact, RemoteIndex):
        raise BundleError(INDEX_REFUSED if kind == "image" else NOT_BUNDLE_HINT)
    if kind == "bundle" and not artifact.is_bundle:
        raise BundleError(NOT_BUNDLE_HINT)
    if kind == "image" and artifact.is_bundle and image_is_bundle_check:
        raise BundleError(BUNDLE_FLAG_HINT)
    log = on_line or (lambda line: None)
    bar = progress or Progress.disabled()
    with (
        staging_directory(out) as staging,
        tempfile.TemporaryDirectory(prefix="lockresolve-pull-") as work,
    ):
        ctx = _Context(client, recursive, log, bar, Path(work), preserve_permissions)
        if kind == "image":
            log(f"Pulling image '{artifact.ref}'")
            await _extract_image(ctx, artifact, staging, indent="")
            result = PullResult(image=str(artifact.ref), is_bundle=artifact.is_bundle)
        else:
            pulled = await _pull_bundle(ctx, artifact, staging, "", indent="")
            log("")
            log("Locating image lock file images...")
            if pulled.relocated:
                log(
                    f"The bundle repo ({artifact.ref.context}) is hosting every image specified "
                    "in the bundle's Images Lock file (.imgpkg/images.yml)"
                )
            else:
                log("One or more images not found in bundle repo; skipping lock file update")
            result = PullResult(image=pulled.image, is_bundle=True, bundle=pulled)
        if includes:
            prune_to_includes(staging, includes, str(artifact.ref))
        replace_directory(staging, out, force=force)
    return result


async def _extract_image(ctx: _Context, image: RemoteImage, dest: Path, indent: str) -> None:
    await extract_image(
        ctx.client,
        image,
        dest,
        workdir=ctx.workdir,
        progress=ctx.progress,
        on_line=ctx.on_line,
        indent=indent,
        preserve_permissions=ctx.preserve_permissions,
    )


async def _relocation(
    ctx: _Context, bundle: RemoteImage, lock: ImagesLock
) -> tuple[bool, Mapping[str, bool]]:
    """Whether the bundle's repository holds every image, and known ``isBundle`` flags."""
    from lockresolve.bundle.locations import fetch_locations

    locations = await fetch_locations(ctx.client, bundle.ref, bundle.manifest.digest)
    if locations is not None:
        return True, {loc.image: loc.is_bundle for loc in locations.images}
    missing: list[str] = []
    failures: list[LockresolveError] = []

    async def head(entry: ImagesLockEntry) -> None:
        target = _in_repo(bundle.ref, entry.image)
        try:
            await ctx.client.resolve(target)
        except (NotFoundError, AuthError):
            missing.append(entry.image)
        except LockresolveError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for entry in lock.images:
            tg.start_soon(head, entry)
    if failures:
        raise failures[0]
    return not missing, {}


def _in_repo(repo: Reference, image: str) -> Reference:
    """``<repo>@<digest of image>`` (imgpkg's ``replaceImageRepo``)."""
    digest = Reference.parse(image).digest
    assert digest is not None  # ImagesLock entries are digest references
    return Reference(repo.registry, repo.repository).with_digest(digest)


def _read_lock(dest: Path, shown: str) -> ImagesLock:
    from lockresolve.lock import ImagesLock

    path = dest / IMAGES_LOCK_PATH
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(
            f"Reading path {os.path.join(shown, IMAGES_LOCK_PATH)}: {exc.strerror}"
        ) from None
    return ImagesLock.from_bytes(data, source=os.path.join(shown, IMAGES_LOCK_PATH))


def _rewrite_lock(dest: Path, lock: ImagesLock, repo: Reference) -> None:
    from lockresolve.lock import ImagesLock, ImagesLockEntry

    path = dest / IMAGES_LOCK_PATH
    relocated = ImagesLock(
        tuple(
            ImagesLockEntry(str(_in_repo(repo, entry.image)), entry.annotations)
            for entry in lock.images
        )
    )
    mode = path.stat().st_mode & 0o777
    atomic_write(path, relocated.text().encode("utf-8"), mode=mode)


async def _pull_bundle(
    ctx: _Context, bundle: RemoteImage, staging: Path, rel: str, indent: str
) -> PulledBundle:
    word = "bundle" if rel == "" else "nested bundle"
    ctx.on_line(f"{indent}Pulling {word} '{bundle.ref}'")
    dest = staging / rel if rel else staging
    await _extract_image(ctx, bundle, dest, indent + "  ")
    lock = _read_lock(dest, rel or ".")
    relocated, known_bundles = await _relocation(ctx, bundle, lock)
    nested: list[PulledBundle] = []
    if ctx.recursive:
        for entry in lock.images:
            child = await _pull_nested(
                ctx, bundle, entry, relocated, known_bundles, staging, rel, indent
            )
            if child is not None:
                nested.append(child)
    if relocated:
        _rewrite_lock(dest, lock, bundle.ref)
    return PulledBundle(str(bundle.ref), rel, relocated, tuple(nested))


async def _pull_nested(
    ctx: _Context,
    parent: RemoteImage,
    entry: ImagesLockEntry,
    relocated: bool,
    known_bundles: Mapping[str, bool],
    staging: Path,
    parent_rel: str,
    indent: str,
) -> PulledBundle | None:
    child_indent = indent + "  "
    seen = ctx.processed.get(entry.image)
    if seen is not None:
        if seen:
            ctx.on_line(f"{child_indent}Pulling nested bundle '{entry.image}'")
            ctx.on_line(f"{child_indent}  Skipped, already downloaded")
        return None
    primary = _in_repo(parent.ref, entry.image) if relocated else Reference.parse(entry.image)
    artifact: RemoteImage | RemoteIndex | None = None
    if entry.image in known_bundles:
        is_bundle = known_bundles[entry.image]
    else:
        artifact = await fetch_artifact(ctx.client, primary)
        is_bundle = isinstance(artifact, RemoteImage) and artifact.is_bundle
    ctx.processed[entry.image] = is_bundle
    if not is_bundle:
        return None
    if artifact is None:
        artifact = await fetch_artifact(ctx.client, primary)
    if not isinstance(artifact, RemoteImage):  # the locations image said bundle; it is not
        raise BundleError(f"Expected '{primary}' to be a bundle but it is an index")
    ctx.nested_count += 1
    if parent_rel == "" and ctx.nested_count == 1:
        ctx.on_line("")
        ctx.on_line("Nested bundles")
    digest = artifact.manifest.digest
    rel = os.path.join(NESTED_DIR, digest.replace("sha256:", "sha256-"))
    return await _pull_bundle(ctx, artifact, staging, rel, child_indent)
