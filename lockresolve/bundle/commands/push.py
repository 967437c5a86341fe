"""``push``: files to a one-layer image or bundle, byte for byte as imgpkg pushes them.

Steps, in imgpkg's order (``pkg/imgpkg/cmd/push.go``,
``plainimage/contents.go``): reserved-label check, reference check, bundle
layout rules, the layer plan (imgpkg's ``dir:``/``file:`` lines), then the
layer is tarred and gzipped to a temporary file in a worker thread while both
digests are computed, the config and layer blobs are uploaded (skipped when
the repository has them), and the manifest is put under the tag and under
``sha256-<hex>.imgpkg``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from lockresolve.bundle.formats.image import (
    BUNDLE_LABEL,
    check_user_labels,
    config_json,
    manifest_json,
)
from lockresolve.bundle.formats.tar import DEFAULT_EXCLUSIONS, plan_layer
from lockresolve.bundle.layer import GzipKind, LayerFile, build_layer
from lockresolve.bundle.progress import Progress
from lockresolve.bundle.transfer import file_body, push_blob
from lockresolve.bundle.validate import refuse_bundle_as_image, validate_bundle
from lockresolve.errors import BundleError, InvalidReferenceError
from lockresolve.mediatypes import DOCKER_MANIFEST_SCHEMA2
from lockresolve.reference import DEFAULT_TAG, Reference
from lockresolve.registry.client import RegistryClient

__all__ = ["PushResult", "default_tag", "parse_push_target", "push", "push_files_image"]


@dataclass(frozen=True)
class PushResult:
    """What a push produced: ``image`` is ``<registry>/<repo>@sha256:<hex>``."""

    image: str
    digest: str
    tag: str
    layer: str
    diff_id: str
    uploaded_blobs: int


def default_tag(digest: str) -> str:
    """imgpkg's digest tag: ``sha256-<hex>.imgpkg``."""
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}-{hex_}.imgpkg"


def parse_push_target(text: str) -> Reference:
    """A tag reference to push to (imgpkg uses ``name.NewTag``: digests are refused)."""
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError as exc:
        raise BundleError(f"Parsing '{text}': {exc.reason}") from None
    if ref.digest is not None:
        raise BundleError(
            f"Parsing '{text}': a digest reference cannot be pushed to; give a tag instead"
        )
    return ref


async def push(
    client: RegistryClient,
    target: str,
    paths: Sequence[str | os.PathLike[str]],
    *,
    bundle: bool,
    exclusions: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    lock_output: str | os.PathLike[str] | None = None,
    gzip: GzipKind = "go",
    on_line: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> PushResult:
    """Push ``paths`` to ``target`` as a bundle (``bundle=True``) or a plain image.

    ``on_line`` receives imgpkg's ``dir:``/``file:`` lines before the upload.
    ``lock_output`` (bundles only) receives a BundleLock. Raises
    :class:`BundleError` for imgpkg's refusals, :class:`UsageError` for a
    reserved label, registry errors as they come.
    """
    user_labels = dict(labels or {})
    check_user_labels(user_labels)
    if not bundle and lock_output is not None:
        raise BundleError("Lock output is not compatible with image, use bundle for lock output")
    ref = parse_push_target(target)
    if bundle:
        validate_bundle(paths)
        user_labels[BUNDLE_LABEL] = "true"
    else:
        refuse_bundle_as_image(paths)
    result = await push_files_image(
        client,
        ref,
        paths,
        exclusions=DEFAULT_EXCLUSIONS if exclusions is None else tuple(exclusions),
        labels=user_labels,
        gzip=gzip,
        on_line=on_line,
        progress=progress,
    )
    if lock_output is not None:
        # Imported here: the lock writer brings the YAML stack (~0.3 s, ~3 MB),
        # which a push without --lock-output does not need.
        from lockresolve.lock import BundleLock

        BundleLock(image=result.image, tag=result.tag).write(lock_output)
    return result


async def push_files_image(
    client: RegistryClient,
    ref: Reference,
    paths: Sequence[str | os.PathLike[str]],
    *,
    exclusions: Sequence[str] = DEFAULT_EXCLUSIONS,
    labels: Mapping[str, str] | None = None,
    gzip: GzipKind = "go",
    on_line: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> PushResult:
    """Tar, gzip and push ``paths`` as one image at the tag of ``ref`` (no bundle rules)."""
    plan = plan_layer(paths, exclusions)
    if on_line is not None:
        for line in plan.log_lines:
            on_line(line)
    bar = progress or Progress.disabled()
    with tempfile.TemporaryDirectory(prefix="lockresolve-push-") as tmp:
        bar.expect(plan.tar_size)
        layer = await anyio.to_thread.run_sync(
            lambda: build_layer(plan, tmp, gzip=gzip, on_tar_bytes=bar.advance)
        )
        bar.expect(layer.size)
        return await _upload_image(client, ref, layer, labels or {}, bar)


async def _upload_image(
    client: RegistryClient,
    ref: Reference,
    layer: LayerFile,
    labels: Mapping[str, str],
    progress: Progress,
) -> PushResult:
    client.write_to(ref.registry, ref.repository)  # a destination: never a mirror
    config = config_json(layer.diff_id, labels)
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = manifest_json(config_digest, len(config), layer.digest, layer.size)
    uploaded = 0

    async def blob(digest: str, size: int, body: bytes | Path) -> None:
        nonlocal uploaded
        payload = body if isinstance(body, bytes) else file_body(body, progress)
        if await push_blob(client, ref.registry, ref.repository, digest, size, payload):
            uploaded += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(blob, config_digest, len(config), config)
        tg.start_soon(blob, layer.digest, layer.size, layer.path)
    tag = ref.tag or DEFAULT_TAG
    digest = await client.put_manifest(
        ref.registry, ref.repository, tag, manifest, DOCKER_MANIFEST_SCHEMA2
    )
    await client.put_manifest(
        ref.registry, ref.repository, default_tag(digest), manifest, DOCKER_MANIFEST_SCHEMA2
    )
    return PushResult(
        image=f"{ref.context}@{digest}",
        digest=digest,
        tag=tag,
        layer=layer.digest,
        diff_id=layer.diff_id,
        uploaded_blobs=uploaded,
    )
