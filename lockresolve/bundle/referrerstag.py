"""``copy --referrers`` to a repository: the OCI 1.1 referrers tag schema at the destination.

The distribution spec 1.1 ("Pushing Manifests with Subject"): a client that pushes a
manifest with a ``subject`` to a registry without the referrers API keeps the list itself,
in an OCI image index tagged ``sha256-<hex>`` (the subject's digest), read, merged and
written back. After the items are written, for each subject:

- the destination is asked for the referrers API once (``GET /v2/<repo>/referrers/<digest>``);
  where it is offered, it lists the referrers by their ``subject`` and nothing is written;
- else the index at ``sha256-<hex>`` is read (none: an empty index); a descriptor is added
  for every copied referrer it does not list yet (``mediaType``, ``digest``, ``size``,
  ``artifactType`` (the manifest's, else its config's media type), ``annotations``), the
  entries already there are kept, and the index is written back only when it changed;
- a fallback index copied from the source (its ``sha256-<hex>`` tag) is merged the same way
  into one already at the destination; where there is none it is written byte for byte.

A tag that holds something other than an OCI image index is left alone and reported.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from lockresolve.bundle.imagedesc import Artifact, CopyFailed, IndexDesc
from lockresolve.errors import BundleError, LockresolveError, NotFoundError
from lockresolve.mediatypes import OCI_INDEX
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = [
    "FallbackPlan",
    "is_fallback_index",
    "merge_index",
    "plan_fallback_tags",
    "referrer_descriptor",
    "without_fallback_indexes",
    "write_fallback_tags",
]

_FALLBACK_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def _raw(artifact: Artifact) -> tuple[bytes, str]:
    if isinstance(artifact, IndexDesc):
        return artifact.raw, artifact.media_type
    return artifact.manifest_raw, artifact.manifest_media_type


def is_fallback_index(artifact: Artifact) -> bool:
    """An OCI index copied under a referrers fallback tag ``sha256-<hex>``."""
    return (
        isinstance(artifact, IndexDesc)
        and artifact.media_type == OCI_INDEX
        and bool(_FALLBACK_TAG.match(artifact.tag))
    )


def referrer_descriptor(raw: bytes, media_type: str) -> tuple[str, dict[str, Any]] | None:
    """``(subject digest, descriptor)`` of a manifest with a ``subject``, as the spec lists it
    in a referrers index; ``None`` for a manifest without one."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    subject = doc.get("subject")
    digest = subject.get("digest") if isinstance(subject, dict) else None
    if not isinstance(digest, str) or not _SHA256.match(digest):
        return None
    desc: dict[str, Any] = {
        "mediaType": doc.get("mediaType") or media_type,
        "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
    }
    artifact_type = doc.get("artifactType")
    if not artifact_type:
        config = doc.get("config")
        artifact_type = config.get("mediaType") if isinstance(config, dict) else None
    if isinstance(artifact_type, str) and artifact_type:
        desc["artifactType"] = artifact_type
    annotations = doc.get("annotations")
    if isinstance(annotations, dict) and annotations:
        desc["annotations"] = annotations
    return digest, desc


def _entries(raw: bytes) -> list[Any] | None:
    """The ``manifests`` of an OCI image index, or ``None`` when ``raw`` is not one."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("mediaType", OCI_INDEX) != OCI_INDEX:
        return None
    if "config" in doc or "layers" in doc:  # an image manifest without its mediaType
        return None
    manifests = doc.get("manifests") or []
    return manifests if isinstance(manifests, list) else None


def merge_index(existing: bytes | None, additions: Sequence[Mapping[str, Any]]) -> bytes | None:
    """``existing`` (an OCI index; ``None``: an empty one) with every descriptor of
    ``additions`` whose digest it does not list appended; ``None`` when nothing is added
    (write nothing). Raises :class:`ValueError` when ``existing`` is not an OCI index."""
    doc: dict[str, Any]
    if existing is None:
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    else:
        if _entries(existing) is None:
            raise ValueError("not an OCI image index")
        doc = json.loads(existing)
        doc["manifests"] = list(doc.get("manifests") or [])
    listed = {m.get("digest") for m in doc["manifests"] if isinstance(m, dict)}
    added = False
    for desc in additions:
        if desc.get("digest") not in listed:
            doc["manifests"].append(dict(desc))
            listed.add(desc.get("digest"))
            added = True
    if not added:
        return None
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class FallbackPlan:
    """For one subject: the fallback index copied from the source (if any) and the copied
    referrers (top-level items with that ``subject``), as descriptors."""

    subject: str
    source_index: bytes | None
    referrers: tuple[Mapping[str, Any], ...]


def plan_fallback_tags(artifacts: Sequence[Artifact]) -> tuple[FallbackPlan, ...]:
    """What :func:`write_fallback_tags` writes, per subject, from the copied items."""
    indexes: dict[str, bytes] = {}
    referrers: dict[str, dict[str, Mapping[str, Any]]] = {}
    for artifact in artifacts:
        if is_fallback_index(artifact):
            assert isinstance(artifact, IndexDesc)
            indexes["sha256:" + artifact.tag.removeprefix("sha256-")] = artifact.raw
            continue
        found = referrer_descriptor(*_raw(artifact))
        if found is not None:
            subject, desc = found
            referrers.setdefault(subject, {})[desc["digest"]] = desc
    subjects = sorted(set(indexes) | set(referrers))
    return tuple(
        FallbackPlan(s, indexes.get(s), tuple(referrers.get(s, {}).values())) for s in subjects
    )


async def _current(client: RegistryClient, ref: Reference) -> bytes | None:
    try:
        return (await client.get_manifest(ref)).data
    except NotFoundError:
        return None


async def _one(client: RegistryClient, dst: Reference, plan: FallbackPlan) -> None:
    tag = plan.subject.replace(":", "-")
    additions: list[Mapping[str, Any]] = []
    if plan.source_index is not None:
        additions.extend(m for m in _entries(plan.source_index) or () if isinstance(m, dict))
    if plan.referrers:
        offered = await client.referrers(dst.registry, dst.repository, plan.subject)
        if offered is None:
            additions.extend(plan.referrers)
    if not additions:
        return
    current = await _current(client, dst.with_tag(tag))
    data: bytes
    if current is None and plan.source_index is not None:
        # the source's index, byte for byte unless it lacks a copied referrer
        data = merge_index(plan.source_index, additions) or plan.source_index
    else:
        try:
            data_or_none = merge_index(current, additions)
        except ValueError:
            raise BundleError(
                f"{dst.context}:{tag} is not an OCI image index; the referrers of "
                f"{plan.subject} were not listed there"
            ) from None
        if data_or_none is None:
            return
        data = data_or_none
    await client.put_manifest(dst.registry, dst.repository, tag, data, OCI_INDEX)


async def write_fallback_tags(
    client: RegistryClient, artifacts: Sequence[Artifact], dst: Reference
) -> None:
    """Write or merge the ``sha256-<hex>`` fallback indexes at ``dst`` (see the module doc);
    each subject's failure is collected, all are raised together as :class:`CopyFailed`."""
    failures: list[tuple[str, LockresolveError]] = []

    async def one(plan: FallbackPlan) -> None:
        try:
            await _one(client, dst, plan)
        except LockresolveError as exc:
            failures.append((f"referrers of {dst.context}@{plan.subject}", exc))

    async with anyio.create_task_group() as tg:
        for plan in plan_fallback_tags(artifacts):
            tg.start_soon(one, plan)
    if failures:
        raise CopyFailed(failures)


def without_fallback_indexes(artifacts: Sequence[Artifact]) -> list[Artifact]:
    """The items whose original tag :func:`write_tags` re-applies when the fallback indexes
    are merged by :func:`write_fallback_tags` instead."""
    return [a for a in artifacts if not is_fallback_index(a)]
