"""``describe``: a bundle's images and nested bundles, as ``imgpkg describe`` (v0.42.3).

Reads manifests, configs and each bundle's own layer (its ``.imgpkg``), never
an image's layers: layer digests come from the manifests. The walk is
imgpkg's ``v1.Describe``: each image of a bundle's ``images.yml`` is looked
for first in the bundle's repository, then at its origin (one HEAD each, none
when the bundle's locations image says it is not a bundle); bundles are
described in turn, relative to their own repository; entries with one digest
count once (the first in ``images.yml`` order). The description is the value
imgpkg prints with ``--output-type yaml`` (``sha: <digest>``, then the
``sigs.k8s.io/yaml`` of the ``Description``), or its text form. With
``cosign_artifacts`` (imgpkg's ``--cosign-artifacts``, on by default) the
``sha256-<hex>.sig`` of the bundle and of each of its images is listed as an
image of type ``Signature`` (annotation ``tag``); a denied one (403) is listed
as imgpkg does: ``<repo>:<tag>: {imageType: Signature, error: access denied}``;
any other failure to fetch one (a 401 among them) is an error, as in imgpkg.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from lockresolve.bundle.collect import read_bundle_lock
from lockresolve.bundle.locations import fetch_locations, locations_ref
from lockresolve.bundle.remote import RemoteImage, RemoteIndex, fetch_artifact
from lockresolve.bundle.signatures import signature_tag
from lockresolve.errors import AuthError, BundleError, LockresolveError, NotFoundError
from lockresolve.goyaml import marshal
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = ["describe_bundle", "description_text", "description_yaml"]

Description = dict[str, Any]


def _layers(artifact: RemoteImage | RemoteIndex) -> list[dict[str, str]] | None:
    if isinstance(artifact, RemoteImage):
        return [{"digest": d.digest} for d in artifact.layers] or None
    return None  # an index: see _index_layers


async def _index_layers(client: RegistryClient, index: RemoteIndex) -> list[dict[str, str]] | None:
    """go-containerregistry's ``remote.Image`` on an index: the linux/amd64 child."""
    try:
        doc = json.loads(index.manifest.data)
    except ValueError:
        return None
    for child in doc.get("manifests") or []:
        platform = child.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            got = await fetch_artifact(client, index.ref.with_digest(child["digest"]))
            return _layers(got)
    return None


@dataclass
class _Walk:
    client: RegistryClient
    layers: bool
    cosign: bool = True
    sub_bundles: bool = True
    done: dict[str, Description] = field(default_factory=dict)

    async def signatures(self, primaries: list[str], images: dict[str, Description]) -> None:
        """imgpkg's cosign lookup: each ``sha256-<hex>.sig`` found is an image of type
        ``Signature`` with the annotation ``tag``; an absent one (404) is left out, a denied
        one (403) listed with its error; any other failure (a 401 among them) stops the
        describe as imgpkg's does: ``Retrieving Images from bundle: Fetching signature for
        image '<ref>': <the registry's error>``."""
        failures: dict[str, LockresolveError] = {}

        async def one(primary: str) -> None:
            ref = Reference.parse(primary)
            repo = Reference(ref.registry, ref.repository)
            tag = signature_tag(str(ref.digest))
            try:
                found = await fetch_artifact(self.client, repo.with_tag(tag))
            except NotFoundError:
                return
            except AuthError as exc:
                if exc.status != 403:  # a 401: imgpkg stops (only 403 is AccessDeniedErr)
                    failures[primary] = exc
                    return
                images[f"{repo.context}:{tag}"] = {
                    "imageType": "Signature",
                    "error": "access denied",
                }
                return
            except LockresolveError as exc:
                failures[primary] = exc
                return
            digest = str(found.ref.digest)
            info: Description = {
                "image": f"{repo.context}@{digest}",
                "origin": f"{repo.context}@{digest}",
                "annotations": {"tag": tag},
                "imageType": "Signature",
            }
            if (layers := await self.layer_list(found)) is not None:
                info["layers"] = layers
            images[digest] = info

        async with anyio.create_task_group() as tg:
            for primary in primaries:
                tg.start_soon(one, primary)
        if failures:
            primary = min(failures)
            raise BundleError(
                "Retrieving Images from bundle: Fetching signature for image "
                f"'{primary}': {failures[primary]}"
            )

    async def layer_list(self, artifact: RemoteImage | RemoteIndex) -> list[dict[str, str]] | None:
        if not self.layers:
            return None
        if isinstance(artifact, RemoteIndex):
            return await _index_layers(self.client, artifact)
        return _layers(artifact)

    async def bundle(
        self,
        bundle: RemoteImage,
        origin: str,
        annotations: Mapping[str, str],
        nested: bool = False,
    ) -> Description:
        primary = f"{bundle.ref.context}@{bundle.manifest.digest}"
        if primary in self.done:
            return self.done[primary]
        if nested and not self.sub_bundles:
            return await self._unexpanded(bundle, primary, origin, annotations)
        lock = await read_bundle_lock(self.client, bundle)
        locations = await fetch_locations(self.client, bundle.ref, bundle.manifest.digest)
        flags = {loc.image: loc.is_bundle for loc in locations.images} if locations else {}
        seen: set[str] = set()
        entries = []
        for entry in lock.images:
            digest = str(entry.reference.digest)
            if digest not in seen:
                seen.add(digest)
                entries.append(entry)
        bundles: dict[str, Description] = {}
        images: dict[str, Description] = {}
        failures: list[LockresolveError] = []
        in_repo = Reference(bundle.ref.registry, bundle.ref.repository)
        primaries = [primary]

        async def one(image: str, notes: Mapping[str, str], digest: str) -> None:
            try:
                local = in_repo.with_digest(digest)
                if flags.get(image) is False:
                    artifact: RemoteImage | RemoteIndex = await fetch_artifact(self.client, local)
                else:
                    artifact = await self._first(local, Reference.parse(image))
                primaries.append(f"{artifact.ref.context}@{digest}")
                if isinstance(artifact, RemoteImage) and artifact.is_bundle:
                    bundles[digest] = await self.bundle(artifact, image, notes, nested=True)
                    return
                info: Description = {
                    "image": f"{artifact.ref.context}@{digest}",
                    "origin": image,
                    "imageType": "Image",
                }
                if notes:
                    info["annotations"] = dict(notes)
                if (layers := await self.layer_list(artifact)) is not None:
                    info["layers"] = layers
                images[digest] = info
            except LockresolveError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for entry in entries:
                tg.start_soon(one, entry.image, entry.annotations, str(entry.reference.digest))
        if failures:
            raise failures[0]
        if self.cosign:
            await self.signatures(primaries, images)
        internal = await self._locations_image(bundle)
        if internal is not None:
            images[internal.manifest.digest] = {
                "image": f"{in_repo.context}@{internal.manifest.digest}",
                "origin": f"{in_repo.context}@{internal.manifest.digest}",
                "imageType": "Internal",
                **({"layers": layers} if (layers := await self.layer_list(internal)) else {}),
            }
        content: Description = {}
        if bundles:
            content["bundles"] = bundles
        if images:
            content["images"] = images
        desc: Description = {"image": primary, "origin": origin}
        if annotations:
            desc["annotations"] = dict(annotations)
        desc["metadata"] = {}
        desc["content"] = content
        if (layers := await self.layer_list(bundle)) is not None:
            desc["layers"] = layers
        self.done[primary] = desc
        return desc

    async def _unexpanded(
        self, bundle: RemoteImage, primary: str, origin: str, annotations: Mapping[str, str]
    ) -> Description:
        """``--sub-bundles=false``: a nested bundle as its parent lists it (image, origin,
        annotations, layers), its own ``images.yml`` not read (``content: {}``)."""
        desc: Description = {"image": primary, "origin": origin}
        if annotations:
            desc["annotations"] = dict(annotations)
        desc["metadata"] = {}
        desc["content"] = {}
        if (layers := await self.layer_list(bundle)) is not None:
            desc["layers"] = layers
        return desc

    async def _locations_image(self, bundle: RemoteImage) -> RemoteImage | None:
        """The bundle's locations image (imgpkg lists it as an image of type ``Internal``)."""
        ref = locations_ref(
            Reference(bundle.ref.registry, bundle.ref.repository), bundle.manifest.digest
        )
        try:
            found = await fetch_artifact(self.client, ref)
        except (NotFoundError, AuthError):
            return None
        return found if isinstance(found, RemoteImage) else None

    async def _first(self, *candidates: Reference) -> RemoteImage | RemoteIndex:
        last: LockresolveError | None = None
        for ref in candidates:
            try:
                return await fetch_artifact(self.client, ref)
            except (NotFoundError, AuthError) as exc:
                last = exc
        assert last is not None
        raise last


async def describe_bundle(
    client: RegistryClient,
    source: str,
    *,
    layers: bool = True,
    cosign_artifacts: bool = True,
    sub_bundles: bool = True,
) -> Description:
    """imgpkg's ``Description`` of the bundle at ``source``; ``sub_bundles=False`` lists
    nested bundles without describing their contents (imgpkg always describes them)."""
    ref = Reference.parse(source)
    artifact = await fetch_artifact(client, ref)
    if not isinstance(artifact, RemoteImage) or not artifact.is_bundle:
        raise BundleError(f"Only bundles can be described, and {source} is not a bundle")
    top = f"{artifact.ref.context}@{artifact.manifest.digest}"
    walk = _Walk(client, layers, cosign_artifacts, sub_bundles)
    return await walk.bundle(artifact, top, {})


def description_yaml(desc: Description) -> str:
    """``imgpkg describe --output-type yaml``: ``sha: <digest>``, then the description."""
    sha = str(desc["image"]).rpartition("@")[2]
    return f"sha: {sha}\n" + marshal(desc)


def description_text(desc: Description) -> str:
    """``imgpkg describe``'s text form; entries in digest order (imgpkg: Go's map order)."""
    out = [f"Bundle SHA: {str(desc['image']).rpartition('@')[2]}", ""]
    _text(desc, out, header=0, entries=2)
    return "".join(line + "\n" for line in out)


def _entry(item: Description, kind: str, at: int, out: list[str]) -> None:
    pad = " " * at
    out.append(f"{pad}- Image: {item.get('image', '')}")
    out.append(f"{pad}  Type: {kind}")
    if kind in ("Bundle", "Image"):
        out.append(f"{pad}  Origin: {item['origin']}")
    if item.get("layers"):
        out.append(f"{pad}  Layers:")
        out.extend(f"{pad}    - Digest: {layer['digest']}" for layer in item["layers"])
    notes: Mapping[str, str] = item.get("annotations") or {}
    if notes:
        out.append(f"{pad}  Annotations:")
        out.extend(f"{pad}    {key}: {notes[key]}" for key in sorted(notes))


def _text(desc: Description, out: list[str], *, header: int, entries: int) -> None:
    """imgpkg's ``printerRec``: ``Images:``, then bundles (a blank line between two), then
    images; a nested bundle's list is indented two more, its entries level with its header."""
    content = desc.get("content") or {}
    bundles: Mapping[str, Description] = content.get("bundles") or {}
    images: Mapping[str, Description] = content.get("images") or {}
    if not bundles and not images:
        return
    out.append(" " * header + "Images:")
    for n, key in enumerate(sorted(bundles)):
        if n:
            out.append("")
        _entry(bundles[key], "Bundle", entries, out)
        _text(bundles[key], out, header=entries + 2, entries=entries + 2)
    for key in sorted(images):
        _entry(images[key], str(images[key]["imageType"]), entries, out)
