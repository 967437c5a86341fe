"""Resolve one image reference as written to a digest reference, as kbld v0.42.0 does.

The order, per reference: the first matching override (its ``newImage``
replaces the reference; ``preresolved`` returns it with no network call;
``tagSelection.semver`` lists tags and picks one); a reference with ``@`` is
already pinned (no network call); anything else costs one manifest HEAD. Then
platform selection, when asked for, picks a child of an index.

Registry work is shared: each distinct normalised reference is resolved once,
however many spellings point at it, and concurrent callers wait for the one
request in flight.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from lockresolve.errors import InvalidReferenceError, LockresolveError, UsageError
from lockresolve.mediatypes import DOCKER_MANIFEST_LIST, OCI_INDEX
from lockresolve.reference import Reference
from lockresolve.registry.model import Descriptor, Manifest
from lockresolve.registry.protocol import is_sha256_digest, load_json
from lockresolve.resolve.configmodel import Config, Override, PlatformSelection
from lockresolve.resolve.model import ResolvedImage, preresolved_image
from lockresolve.resolve.semver import SemverError, select_tag

if TYPE_CHECKING:
    from lockresolve.registry.client import RegistryClient

__all__ = ["ImageResolveError", "Resolver", "parse_platform"]

_INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})


class ImageResolveError(LockresolveError):
    """One reference could not be resolved; the message is kbld-style, without the ref."""


def parse_platform(value: str) -> PlatformSelection:
    """``os/arch[/variant]`` as ``--platform`` takes it."""
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"--platform {value!r}: expected os/arch or os/arch/variant")
    return PlatformSelection(
        os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else ""
    )


@dataclass
class _Pending:
    done: anyio.Event
    result: Descriptor | Manifest | BaseException | None = None


def _origin_resolved(tag: str, url: str) -> Mapping[str, object]:
    return {"resolved": {"tag": tag, "url": url}}


class Resolver:
    """Turns references as written into :class:`ResolvedImage` values."""

    def __init__(
        self,
        client: Callable[[], RegistryClient],
        config: Config,
        *,
        platform: PlatformSelection | None = None,
        pins: Mapping[str, ResolvedImage] | None = None,
    ) -> None:
        """``client`` gives the registry client on first need, so a run that needs
        no request opens no session. ``pins`` are earlier results by reference as
        written (an existing lock): a pin is reused while it still describes the
        reference the configuration points at."""
        self._client = client
        self._pins = pins or {}
        self._config = config
        self._platform = platform
        self._pending: dict[tuple[str, str], _Pending] = {}

    async def resolve(self, written: str) -> ResolvedImage:
        url = written
        platform = self._platform
        override = self._config.override_for(written)
        if override is not None:
            if override.new_image:
                url = override.new_image
            if override.platform_selection is not None:
                platform = override.platform_selection
            if override.preresolved:
                return preresolved_image(url, override.origins)
        pin = self._pins.get(written)
        if pin is not None and "@" not in url and _pin_describes(pin, url, platform):
            return pin
        if (
            override is not None
            and override.tag_selection is not None
            and override.tag_selection.semver is not None
        ):
            url = await self._select_tag(url, override)
        if self._config.source_for(url) is not None:
            raise ImageResolveError(
                f"lockresolve does not build images, but a kbld Sources entry matches "
                f"'{url}' (resolve it with kbld, or pin it with an override)"
            )
        ref = _parse(url)
        if ref.digest is not None:
            resolved = ResolvedImage(url=f"{ref.context}@{ref.digest}", origins=())
        else:
            descriptor = await self._descriptor(ref)
            resolved = ResolvedImage(
                url=f"{ref.context}@{descriptor.digest}",
                origins=(_origin_resolved(ref.effective_tag or "latest", url),),
            )
        if platform is not None:
            resolved = await self._select_platform(resolved, platform)
        return resolved

    async def _select_tag(self, url: str, override: Override) -> str:
        """kbld's ``TagSelectedImage``: list the repository's tags, pick one, ``url:tag``."""
        assert override.tag_selection is not None and override.tag_selection.semver is not None
        semver = override.tag_selection.semver
        ref = _parse(url)
        if ref.tag_written or ref.digest is not None:
            raise ImageResolveError(f"tag selection needs a repository without a tag: '{url}'")
        tags = await self._client_or_fail().list_tags(ref.registry, ref.repository)
        try:
            tag = select_tag(tags, semver.constraints, semver.prerelease_identifiers)
        except SemverError as exc:
            raise ImageResolveError(f"Selecting versions: {exc}") from None
        if tag is None:
            raise ImageResolveError("Expected to find at least one version, but did not")
        return f"{url}:{tag}"

    def _client_or_fail(self) -> RegistryClient:
        return self._client()

    async def _shared(
        self, key: tuple[str, str], work: Callable[[], Awaitable[Descriptor | Manifest]]
    ) -> Descriptor | Manifest:
        """Run ``work`` once per key; concurrent callers wait for the one in flight."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(done=anyio.Event())
            try:
                pending.result = await work()
            except Exception as exc:
                pending.result = exc
            finally:
                pending.done.set()
        else:
            await pending.done.wait()
        if isinstance(pending.result, BaseException):
            raise pending.result
        assert pending.result is not None
        return pending.result

    async def _descriptor(self, ref: Reference) -> Descriptor:
        client = self._client_or_fail()
        result = await self._shared(("head", str(ref)), lambda: client.resolve(ref))
        assert isinstance(result, Descriptor)
        return result

    async def _manifest(self, ref: Reference) -> Manifest:
        client = self._client_or_fail()
        result = await self._shared(("get", str(ref)), lambda: client.get_manifest(ref))
        assert isinstance(result, Manifest)
        return result

    async def _select_platform(
        self, resolved: ResolvedImage, platform: PlatformSelection
    ) -> ResolvedImage:
        ref = _parse(resolved.url)
        manifest = await self._manifest(ref)
        media_type = manifest.media_type
        try:
            body = load_json(manifest.data)
        except ValueError:
            raise ImageResolveError(f"manifest of '{resolved.url}' is not JSON") from None
        if not isinstance(body, dict):
            raise ImageResolveError(f"manifest of '{resolved.url}' is not a JSON object")
        if media_type not in _INDEX_TYPES and body.get("mediaType") not in _INDEX_TYPES:
            return resolved
        children = body.get("manifests") or []
        if not isinstance(children, list):
            raise ImageResolveError(f"index '{resolved.url}': 'manifests' is not a list")
        matches = [
            m
            for m in children
            if isinstance(m, dict)
            and isinstance(m.get("platform") or {}, dict)
            and _platform_matches(m.get("platform") or {}, platform)
        ]
        wanted = "/".join(p for p in (platform.os, platform.architecture, platform.variant) if p)
        if not matches:
            raise ImageResolveError(
                f"Expected to find image for platform '{wanted}' in index '{resolved.url}', "
                "but did not"
            )
        if len(matches) > 1:
            raise ImageResolveError(
                f"Expected to find exactly one image for platform '{wanted}' in index "
                f"'{resolved.url}', but found {len(matches)}"
            )
        child = matches[0]
        digest = child.get("digest")
        if not isinstance(digest, str) or not is_sha256_digest(digest):
            raise ImageResolveError(
                f"index '{resolved.url}': the entry for platform '{wanted}' has no valid "
                f"sha256 digest ({json.dumps(digest)[:80]})"
            )
        chosen = child.get("platform") or {}
        origin: dict[str, object] = {
            "architecture": chosen.get("architecture", ""),
            "index": resolved.url,
            "os": chosen.get("os", ""),
        }
        if chosen.get("variant"):
            origin["variant"] = chosen["variant"]
        return ResolvedImage(
            url=f"{ref.context}@{digest}",
            origins=(*resolved.origins, {"platformSelected": origin}),
        )


def _platform_matches(candidate: Mapping[str, object], wanted: PlatformSelection) -> bool:
    if wanted.os and candidate.get("os") != wanted.os:
        return False
    if wanted.architecture and candidate.get("architecture") != wanted.architecture:
        return False
    return not (wanted.variant and candidate.get("variant") != wanted.variant)


def _pin_describes(pin: ResolvedImage, url: str, platform: PlatformSelection | None) -> bool:
    """Whether a pin (an entry of the existing lock) still answers for ``url``.

    * With a ``resolved`` origin: it must be the reference resolved now
      (``url``, or ``url:<tag>`` when a tag was selected for it).
    * Without any origin (a lock written with ``--origins-annotation=false``, or
      by hand): the pinned image must be in the repository ``url`` names.
    * Otherwise (only ``preresolved`` origins: the override that made it is
      gone) it is not kept.
    * A ``platformSelected`` origin must name the platform asked for now; a pin
      without one is kept whatever the platform (it was not an index, or the
      platform was added since: ``--update`` re-resolves).
    """
    selected = [o["platformSelected"] for o in pin.origins if "platformSelected" in o]
    if selected and not _same_platform(selected[-1], platform):
        return False
    for origin in pin.origins:
        resolved = origin.get("resolved")
        if isinstance(resolved, Mapping):
            got = resolved.get("url")
            return isinstance(got, str) and (got == url or got.startswith(url + ":"))
    if pin.origins:
        return False
    try:
        return Reference.parse(pin.url).context == Reference.parse(url).context
    except InvalidReferenceError:
        return False


def _same_platform(origin: object, platform: PlatformSelection | None) -> bool:
    if platform is None or not isinstance(origin, Mapping):
        return False
    wanted = (platform.os, platform.architecture, platform.variant)
    return tuple(origin.get(k, "") for k in ("os", "architecture", "variant")) == wanted


def _parse(url: str) -> Reference:
    try:
        return Reference.parse(url)
    except InvalidReferenceError as exc:
        raise ImageResolveError(exc.reason) from None
