"""The resolver's library entry point: inputs in, resolved documents, locks and failures out.

::

    result = await lockresolve.resolve.engine.resolve_inputs(["packages/"], ResolveOptions())
    result.output                  # the documents, formatting kept, images pinned
    result.images_lock_text()      # .imgpkg/images.yml, byte for byte as kbld writes it
    result.failures                # every reference that failed, with where it was found

The work is staged so that resolution starts while files are still being
parsed: every input is read first (cheap), the inputs that may hold kbld or
imgpkg configuration are parsed next (their overrides and search rules apply
to every file), then the other inputs are parsed one by one in a worker
thread while the references found so far are resolved concurrently, each
distinct normalised reference by one request at most. Every task catches its
own error, so one failing reference does not cancel the others; failures are
returned as data.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from lockresolve.errors import (
    InputError,
    InvalidReferenceError,
    LockresolveError,
    ResolveFailed,
    UsageError,
)
from lockresolve.lock import (
    images_lock_text,
    kbld_lock_text,
)
from lockresolve.reference import Reference
from lockresolve.registry.model import RequestStats
from lockresolve.registry.settings import RegistrySettings
from lockresolve.registry.transport import RESOLVE_CONCURRENCY
from lockresolve.resolve.config import load_config
from lockresolve.resolve.configmodel import Config, Override, PlatformSelection, SearchRule
from lockresolve.resolve.documents import (
    IMAGES_LOCK_API_VERSION,
    ConfigDocument,
    ParsedSource,
    Resource,
    parse_source,
)
from lockresolve.resolve.exclude import Exclusions
from lockresolve.resolve.keeptag import tagged_image
from lockresolve.resolve.matchers import rules_for
from lockresolve.resolve.model import LockEntry, ResolvedImage, lock_entries
from lockresolve.resolve.pins import load_pins, pins_from_images_lock, read_lock_text
from lockresolve.resolve.render import render_resource
from lockresolve.resolve.resolver import ImageResolveError, Resolver, parse_platform
from lockresolve.resolve.rules import search_rules, search_rules_without_defaults
from lockresolve.resolve.sources import SourceKind, SourceSpec, decode_source, expand_paths
from lockresolve.resolve.splitimages import (
    SplitImage,
    field_pins,
    find_split_images,
    pin_split_images,
)
from lockresolve.resolve.walker import Occurrence, find_references

if TYPE_CHECKING:
    import httpx

    from lockresolve.registry.client import RegistryClient

__all__ = [
    "Failure",
    "ResolveOptions",
    "ResolveResult",
    "TextInput",
    "load_image_map",
    "load_pins",
    "pins_from_images_lock",
    "read_lock_text",
    "resolve_inputs",
    "resolve_inputs_sync",
]

_CONFIG_MARKERS = ("kbld.k14s.io/v1alpha1", "imgpkg.carvel.dev/v1alpha1")


@dataclass(frozen=True)
class TextInput:
    """YAML given as text rather than a path (library use); ``name`` is used in messages."""

    name: str
    text: str


def _resolve_settings() -> RegistrySettings:
    return RegistrySettings(concurrency=RESOLVE_CONCURRENCY)


@dataclass(frozen=True)
class ResolveOptions:
    """What kbld's flags say, as plain values."""

    platform: str | None = None
    images_annotation: bool = True
    origins_annotation: bool = True
    image_map: Mapping[str, str] = field(default_factory=dict)
    #: earlier results to keep (an existing lock), by reference as written
    pins: Mapping[str, ResolvedImage] = field(default_factory=dict)
    #: the ImagesLock file this run rewrites (its entries are the ``pins``). When it
    #: is also an input, it is not read as kbld configuration (preresolved
    #: overrides, which would add a ``preresolved`` origin to every entry), so a
    #: re-run gives the same bytes and ``--update`` can re-resolve its references.
    own_lock: str | os.PathLike[str] | None = None
    #: the registry flags; ``RESOLVE_CONCURRENCY`` (32) requests per host unless set
    registry: RegistrySettings = field(default_factory=_resolve_settings)
    #: write the resolved documents (``ResolveResult.output``); False leaves ``output``
    #: empty, for callers that only want the locks (``--check``, ``--quiet``)
    render: bool = True
    #: also images written as map fields: ``"kustomize"`` (``--kustomize``),
    #: ``"helm-values"`` (``--helm-values``); see :mod:`lockresolve.resolve.splitimages`
    split_kinds: frozenset[str] = frozenset()
    #: a written ``digest`` field pins its reference (False: ``--update``, re-resolve them)
    digest_fields: bool = True
    #: ``--keep-tag``: ``repo:tag@sha256:…`` in the documents (the locks are unchanged)
    keep_tag: bool = False
    #: ``--offline``: send no request; a reference that would need one is a failure
    offline: bool = False
    #: ``--exclude``: shell-style patterns of references to leave as written (and the
    #: ``excludes:`` of the configuration, added to these)
    excludes: tuple[str, ...] = ()
    #: ``--verify-digests``: one HEAD per digest the results hold (pins included)
    verify_digests: bool = False


@dataclass(frozen=True)
class Failure:
    """A reference that could not be resolved, where it appears, and why."""

    reference: str
    reason: str
    occurrences: tuple[Occurrence, ...]

    @property
    def locations(self) -> str:
        seen: dict[str, None] = {}
        for occ in self.occurrences:
            seen.setdefault(f"{occ.source}:{occ.line}", None)
        return ", ".join(seen)

    def __str__(self) -> str:
        where = f" ({self.locations})" if self.occurrences else ""
        return f"Resolving image '{self.reference}'{where}: {self.reason}"


@dataclass(frozen=True)
class ResolveResult:
    """Everything a run produced. Nothing is written anywhere by the library."""

    resources: tuple[Resource, ...]
    config: Config
    resolved: Mapping[str, ResolvedImage]
    failures: tuple[Failure, ...]
    occurrences: tuple[Occurrence, ...]
    stats: RequestStats
    output: str = ""
    options: ResolveOptions = field(default_factory=ResolveOptions)

    def __repr__(self) -> str:
        # Short: a full repr walks every resource's data (asyncio builds one when
        # anyio.run restores the SIGINT handler, which showed as 30-90 ms a run).
        return (
            f"<ResolveResult {len(self.resources)} resources, {len(self.resolved)} resolved, "
            f"{len(self.failures)} failures, {self.stats.total} requests>"
        )

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def lock_entries(self) -> list[LockEntry]:
        return lock_entries(self.resolved)

    def raise_for_failures(self) -> None:
        """Raise :class:`~lockresolve.errors.ResolveFailed` (listing every failure) if
        any reference failed; a lock written then would silently lack those images."""
        if self.failures:
            raise ResolveFailed(self.failures)

    def images_lock_text(self) -> str:
        """The ImagesLock; raises :class:`~lockresolve.errors.ResolveFailed` when
        ``failures`` is not empty (see :meth:`raise_for_failures`)."""
        self.raise_for_failures()
        return images_lock_text(self.lock_entries, origins=self.options.origins_annotation)

    def kbld_lock_text(self) -> str:
        """The kbld Config lock; raises as :meth:`images_lock_text` does."""
        self.raise_for_failures()
        return kbld_lock_text(self.lock_entries, search_rules_without_defaults(self.config))

    def final_lines(self) -> list[str]:
        """kbld's ``resolve | final: A -> B`` lines, sorted."""
        return [
            f"resolve | final: {ref} -> {img.url}" for ref, img in sorted(self.resolved.items())
        ]


def _may_hold_config(text: str) -> bool:
    return any(marker in text for marker in _CONFIG_MARKERS)


async def _read(spec: SourceSpec | TextInput, http: httpx.AsyncClient | None) -> tuple[str, str]:
    if isinstance(spec, TextInput):
        return spec.name, spec.text
    if spec.kind is SourceKind.STDIN:
        data = await anyio.to_thread.run_sync(sys.stdin.buffer.read)
    elif spec.kind is SourceKind.URL:
        from lockresolve.resolve.urlinput import read_url

        assert http is not None
        data = await read_url(http, spec)
    else:
        try:
            data = await anyio.Path(spec.location).read_bytes()
        except OSError as exc:
            raise InputError(exc.strerror or str(exc), source=spec.name) from None
    return spec.name, await anyio.to_thread.run_sync(decode_source, spec.name, data)


async def _read_all(
    inputs: Sequence[str | TextInput],
    own_lock: str | os.PathLike[str] | None = None,
    *,
    offline: bool = False,
) -> tuple[list[tuple[str, str]], set[int]]:
    """The text of every input, and which of them are the file ``own_lock``."""
    specs: list[SourceSpec | TextInput] = []
    for item in inputs:
        if isinstance(item, TextInput):
            specs.append(item)
        else:
            specs.extend(await anyio.to_thread.run_sync(expand_paths, [item]))
    own = {
        i
        for i, spec in enumerate(specs)
        if own_lock is not None
        and isinstance(spec, SourceSpec)
        and spec.kind is SourceKind.FILE
        and _same_file(spec.location, own_lock)
    }
    needs_http = any(isinstance(s, SourceSpec) and s.kind is SourceKind.URL for s in specs)
    if needs_http and offline:
        url = next(s.name for s in specs if isinstance(s, SourceSpec) and s.kind is SourceKind.URL)
        raise UsageError(f"--offline: -f {url} would be fetched over the network")
    http: httpx.AsyncClient | None = None
    if needs_http:
        import httpx

        http = httpx.AsyncClient(timeout=30.0)
    try:
        return [await _read(spec, http) for spec in specs], own
    finally:
        if http is not None:
            await http.aclose()


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _image_map_overrides(image_map: Mapping[str, str]) -> Config:
    return Config(
        overrides=tuple(
            Override(image=k, new_image=v, preresolved=True) for k, v in image_map.items()
        )
    )


async def resolve_inputs(
    inputs: Sequence[str | TextInput],
    options: ResolveOptions | None = None,
    *,
    client: RegistryClient | None = None,
) -> ResolveResult:
    """Resolve every image reference in ``inputs`` (``-f`` values or :class:`TextInput`).

    Raises :class:`~lockresolve.errors.InputError` (and subclasses) for inputs
    that cannot be read or parsed; registry failures are returned in
    ``failures``, never raised. ``client`` lets a caller share one registry
    session (for example with a push that follows).
    """
    options = options or ResolveOptions()
    if options.offline and options.verify_digests:
        raise UsageError("--verify-digests asks the registry; it cannot be used with --offline")
    platform: PlatformSelection | None = (
        parse_platform(options.platform) if options.platform else None
    )
    texts, own_lock = await _read_all(inputs, options.own_lock, offline=options.offline)
    if not texts:
        raise UsageError("no input files (give -f with a file, directory, '-' or URL)")

    parsed: list[ParsedSource | None] = [None] * len(texts)
    for i, (name, text) in enumerate(texts):
        if _may_hold_config(text):
            parsed[i] = await anyio.to_thread.run_sync(parse_source, name, text)
    configs: list[ConfigDocument] = [
        doc
        for i, p in enumerate(parsed)
        if p is not None
        for doc in p.configs
        if not (i in own_lock and doc.api_version == IMAGES_LOCK_API_VERSION)
    ]
    config = _image_map_overrides(options.image_map).merge(load_config(configs))
    rules = search_rules(config)
    exclusions = Exclusions((*options.excludes, *config.excludes))
    skip = exclusions.match if exclusions else None

    own_client = client is None
    session: RegistryClient | None = client

    def open_client() -> RegistryClient:
        nonlocal session
        if options.offline:
            raise ImageResolveError(_OFFLINE_REASON)
        if session is None:
            session = options.registry.client()
        return session

    resolver = Resolver(open_client, config, platform=platform, pins=options.pins)
    resolved: dict[str, ResolvedImage] = {}
    errors: dict[str, str] = {}
    occurrences: list[Occurrence] = []
    started: set[str] = set()
    resources: list[Resource] = []
    resource_rules: list[Sequence[SearchRule]] = []  # per resource (resourceMatchers)
    # Each resource is rendered as soon as its last reference is resolved, while
    # other lookups are still waiting on the network, not all at the end.
    rendered: dict[int, str] = {}
    unresolved: list[int] = []  # per resource, its references still being looked up
    waiting: dict[str, list[int]] = {}  # reference -> resources that wait for it
    splits: dict[int, tuple[SplitImage, ...]] = {}  # resource -> its images written as fields
    render_errors: list[LockresolveError] = []
    pinned_fields: dict[str, ResolvedImage] = {}  # joined reference -> its digest field's pin

    # what the documents show: the results, or with --keep-tag their tagged form
    shown: dict[str, ResolvedImage] = {} if options.keep_tag else resolved

    def render(index: int) -> None:
        if options.render and not errors:
            resource = resources[index]
            if index in splits:
                try:
                    resource = pin_split_images(resource, splits[index], resolved)
                except LockresolveError as exc:
                    render_errors.append(exc)
                    return
            rendered[index] = render_resource(
                resource,
                resource_rules[index],
                shown,
                annotate=options.images_annotation,
                skip=skip,
            ).text

    async def resolve_one(ref: str) -> None:
        try:
            resolved[ref] = pinned_fields.get(ref) or await resolver.resolve(ref)
            if options.keep_tag:
                shown[ref] = tagged_image(ref, resolved[ref])
        except LockresolveError as exc:
            message = exc.reason if isinstance(exc, InvalidReferenceError) else str(exc)
            # A value that is no image reference at all may be one on purpose: say how.
            errors[ref] = message if _parses(ref) else message + _EXCLUDE_HINT
        for index in waiting.pop(ref, ()):
            unresolved[index] -= 1
            if not unresolved[index]:
                render(index)

    input_error: LockresolveError | None = None
    try:
        async with anyio.create_task_group() as tg:
            try:
                for i, (name, text) in enumerate(texts):
                    source = parsed[i]
                    if source is None:
                        source = await anyio.to_thread.run_sync(parse_source, name, text)
                    for resource in source.resources:
                        index = len(resources)
                        resources.append(resource)
                        here = rules_for(rules, resource.data)
                        resource_rules.append(here)
                        found = find_references((resource,), here)
                        occurrences.extend(
                            o for o in found.occurrences if skip is None or not skip(o.ref)
                        )
                        distinct = found.distinct
                        split = tuple(
                            image
                            for image in find_split_images(resource, options.split_kinds)
                            if skip is None or not skip(image.reference)
                        )
                        if split:
                            splits[index] = split
                            if options.digest_fields and platform is None:
                                for ref, pin in field_pins(split, config, options.pins).items():
                                    pinned_fields.setdefault(ref, pin)
                            occurrences.extend(image.occurrence for image in split)
                            distinct = tuple(
                                dict.fromkeys((*distinct, *(i.reference for i in split)))
                            )
                        unresolved.append(0)
                        for ref in distinct:
                            if skip is not None and skip(ref):
                                continue
                            if ref not in started:
                                started.add(ref)
                                tg.start_soon(resolve_one, ref)
                            if ref not in resolved and ref not in errors:
                                waiting.setdefault(ref, []).append(index)
                                unresolved[index] += 1
                        if not unresolved[index]:
                            render(index)
            except LockresolveError as exc:
                # A file that does not parse: stop the lookups already under way.
                input_error = exc
                tg.cancel_scope.cancel()
        if options.verify_digests and resolved and input_error is None and not errors:
            from lockresolve.resolve.verify import verify_digests

            errors.update(await verify_digests(open_client(), resolved))
    finally:
        if own_client and session is not None:
            await session.aclose()
    if input_error is not None:
        raise input_error
    if render_errors:
        raise render_errors[0]

    by_ref: dict[str, list[Occurrence]] = {}
    for occ in occurrences:
        by_ref.setdefault(occ.ref, []).append(occ)
    failures = tuple(
        Failure(ref, errors[ref], tuple(by_ref.get(ref, ()))) for ref in started if ref in errors
    )
    stats = session.stats if session is not None else RequestStats()
    result = ResolveResult(
        resources=tuple(resources),
        config=config,
        resolved=resolved,
        failures=failures,
        occurrences=tuple(occurrences),
        stats=stats,
        options=options,
    )
    if failures or not options.render:
        return result
    # Every resource was rendered when its last reference resolved (none failed).
    return dataclasses.replace(result, output="".join(rendered[i] for i in range(len(resources))))


def _parses(ref: str) -> bool:
    """Whether ``ref``, as written, is a valid image reference (else the hint applies)."""
    try:
        Reference.parse(ref)
    except InvalidReferenceError:
        return False
    return True


_OFFLINE_REASON = (
    "not pinned, and --offline sends no request (pin it by digest, by an ImagesLock or a "
    "preresolved override given with -f, or by the --imgpkg-lock-output lock)"
)

_EXCLUDE_HINT = (
    " (if this value is not an image on purpose, exclude it with a search rule whose "
    "updateStrategy is none)"
)


def resolve_inputs_sync(
    inputs: Sequence[str | TextInput], options: ResolveOptions | None = None
) -> ResolveResult:
    """:func:`resolve_inputs` for callers without an event loop."""
    return anyio.run(resolve_inputs, inputs, options)


def load_image_map(path: str | Path) -> dict[str, str]:
    """``--image-map-file``: a JSON object of image -> new image (CNAB relocation mapping)."""
    try:
        data = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), source=str(path)) from None
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", source=str(path)) from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise InputError("expected a JSON object of strings", source=str(path))
    return data
