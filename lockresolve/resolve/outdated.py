"""``lockresolve outdated``: what the registry says now about every pinned tag.

For every tagged reference in the inputs (found by the same search rules as
``resolve``), the pinned digest (the one written beside the tag,
``repo:tag@sha256:…``, else the entry of the existing ImagesLock, else a
``preresolved`` override such as an ImagesLock given with ``-f``) is compared
with what the tag points to now. Registry work: one manifest ``HEAD`` per
distinct tag and one tag listing per repository, all concurrent.

* ``moved``: the tag now points to another digest than the pinned one;
* ``newer``: the repository's tags that are higher versions than the tag in
  use (kbld's relaxed semver: one leading ``v`` dropped, then strict
  ``MAJOR.MINOR.PATCH``), highest first. Tags that are not versions are left
  out; prereleases only when the tag in use is one;
* ``selected``: where an override's ``tagSelection.semver`` applies, the tag
  it would pick now.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from lockresolve.errors import InvalidReferenceError, LockresolveError, UsageError
from lockresolve.reference import Reference
from lockresolve.registry.model import RequestStats
from lockresolve.registry.settings import RegistrySettings
from lockresolve.registry.transport import RESOLVE_CONCURRENCY
from lockresolve.resolve.configmodel import Config, SemverSelection
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.scan import scan_inputs
from lockresolve.resolve.semver import SemverError, Version, parse_version, select_tag
from lockresolve.resolve.walker import Occurrence

if TYPE_CHECKING:
    from lockresolve.registry.client import RegistryClient
    from lockresolve.resolve.engine import TextInput

__all__ = [
    "OutdatedOptions",
    "OutdatedReport",
    "Status",
    "Target",
    "check_outdated",
    "newer_tags",
    "plan_targets",
    "version_of",
]


def _settings() -> RegistrySettings:
    return RegistrySettings(concurrency=RESOLVE_CONCURRENCY)


@dataclass(frozen=True)
class OutdatedOptions:
    #: pins by reference as written (the existing ``--imgpkg-lock-output`` file)
    pins: Mapping[str, ResolvedImage] = field(default_factory=dict)
    #: that lock file, when it is also an input (read as pins, not as overrides)
    own_lock: str | os.PathLike[str] | None = None
    registry: RegistrySettings = field(default_factory=_settings)
    #: ``"kustomize"``, ``"helm-values"``: also look at images split into fields
    split_kinds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Target:
    """One reference to check: where it is, which tag to ask about, what is pinned."""

    reference: str  # as written
    file: str
    line: int
    registry: str
    repository: str
    tag: str | None  # None: tag selection with nothing pinned yet (the selection decides)
    pinned: str | None  # ``registry/repo@sha256:…``
    selection: SemverSelection | None = None

    @property
    def context(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class Status:
    """What the registry says now about one :class:`Target`."""

    reference: str
    file: str
    line: int
    tag: str
    pinned: str | None
    current: str
    moved: bool
    newer: tuple[str, ...]
    selected: str | None = None

    @property
    def outdated(self) -> bool:
        return self.moved or bool(self.newer)

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "reference": self.reference,
            "file": self.file,
            "line": self.line,
            "tag": self.tag,
            "pinned": self.pinned,
            "current": self.current,
            "moved": self.moved,
            "newer": list(self.newer),
        }
        if self.selected is not None:
            data["selected"] = self.selected
        return data


@dataclass(frozen=True)
class Problem:
    """A reference the registry could not answer for."""

    reference: str
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.reference} ({self.file}:{self.line}): {self.reason}"


@dataclass(frozen=True)
class OutdatedReport:
    statuses: tuple[Status, ...]
    problems: tuple[Problem, ...]
    stats: RequestStats

    @property
    def outdated(self) -> tuple[Status, ...]:
        return tuple(s for s in self.statuses if s.outdated)


# --- pure parts ------------------------------------------------------------------------


def version_of(tag: str) -> Version | None:
    """The tag as a version (one leading ``v`` dropped, strict semver), or None."""
    try:
        return parse_version(tag[1:] if tag.startswith("v") else tag)
    except SemverError:
        return None


def newer_tags(tags: Sequence[str], tag: str) -> tuple[str, ...]:
    """Tags that are higher versions than ``tag``, highest first; () when ``tag`` is none."""
    base = version_of(tag)
    if base is None:
        return ()
    found: list[tuple[Version, str]] = []
    for t in dict.fromkeys(tags):
        v = version_of(t)
        if v is None or v.compare(base) <= 0 or (v.pre and not base.pre):
            continue
        found.append((v, t))
    ordered: list[tuple[Version, str]] = []
    for item in found:  # insertion sort by Version.compare, highest first (few tags)
        pos = 0
        while pos < len(ordered) and _before(ordered[pos], item):
            pos += 1
        ordered.insert(pos, item)
    return tuple(t for _, t in ordered)


def _before(a: tuple[Version, str], b: tuple[Version, str]) -> bool:
    c = a[0].compare(b[0])
    return c > 0 or (c == 0 and a[1] < b[1])


def _pinned_of(pin: ResolvedImage) -> tuple[str, str | None]:
    """The digest reference a lock entry pins the tag to, and the tag it recorded.

    An entry chosen from an index by platform is compared as its index (the
    tag points to the index, not to the child).
    """
    url, tag = pin.url, None
    for origin in pin.origins:
        resolved = origin.get("resolved")
        if isinstance(resolved, Mapping) and isinstance(resolved.get("tag"), str):
            tag = str(resolved["tag"])
        selected = origin.get("platformSelected")
        if isinstance(selected, Mapping) and isinstance(selected.get("index"), str):
            url = str(selected["index"])
    return url, tag


def plan_targets(
    occurrences: Sequence[Occurrence], config: Config, pins: Mapping[str, ResolvedImage]
) -> tuple[list[Target], list[Problem]]:
    """One :class:`Target` per distinct reference as written (its first place).

    References pinned by digest alone have no tag to compare and are left out.
    """
    targets: list[Target] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for occ in occurrences:
        if occ.ref in seen:
            continue
        seen.add(occ.ref)
        written = occ.ref
        pinned: str | None = None
        recorded_tag: str | None = None
        url = written
        override = config.override_for(written)
        selection = None
        if override is not None:
            if override.preresolved:
                if "@" in override.new_image:
                    pinned = override.new_image
            elif override.new_image:
                url = override.new_image
            if override.tag_selection is not None:
                selection = override.tag_selection.semver
        pin = pins.get(written)
        if pin is not None:
            pinned, recorded_tag = _pinned_of(pin)
        try:
            ref = Reference.parse(url)
        except InvalidReferenceError as exc:
            problems.append(Problem(written, occ.source, occ.line, exc.reason))
            continue
        if ref.digest is not None:
            if not ref.tag_written:
                continue  # pinned by digest only: no tag to follow
            pinned = f"{ref.context}@{ref.digest}"
        # Under tag selection the tag in use is the one the lock recorded (if any).
        tag = recorded_tag if selection is not None and not ref.tag_written else ref.effective_tag
        if pinned is not None:
            try:
                pinned = str(Reference.parse(pinned))
            except InvalidReferenceError as exc:
                problems.append(Problem(written, occ.source, occ.line, exc.reason))
                continue
        targets.append(
            Target(
                written, occ.source, occ.line, ref.registry, ref.repository, tag, pinned, selection
            )
        )
    return targets, problems


# --- the registry ----------------------------------------------------------------------


async def _check(
    targets: Sequence[Target], client: RegistryClient
) -> tuple[list[Status], list[Problem]]:
    tags: dict[tuple[str, str], list[str] | str] = {}  # repository -> tags, or the error
    heads: dict[tuple[str, str, str], str] = {}  # (registry, repository, tag) -> @digest/error
    chosen: dict[str, str | None] = {}  # reference -> the tag its selection picks now
    problems: list[Problem] = []
    head_keys = list(
        dict.fromkeys((t.registry, t.repository, t.tag) for t in targets if t.tag is not None)
    )
    started = set(head_keys)

    async def head_one(key: tuple[str, str, str]) -> None:
        registry, repository, tag = key
        try:
            # The tag may come from the registry's listing (a selection): it may not parse.
            ref = Reference.parse(f"{registry}/{repository}:{tag}")
            heads[key] = "@" + (await client.resolve(ref)).digest
        except LockresolveError as exc:
            heads[key] = str(exc)

    async def list_one(key: tuple[str, str], tg: anyio.abc.TaskGroup) -> None:
        try:
            listing = tags[key] = await client.list_tags(*key)
        except LockresolveError as exc:
            tags[key] = f"listing tags: {exc}"
            return
        for t in targets:
            if t.selection is None or (t.registry, t.repository) != key:
                continue
            try:
                tag = select_tag(
                    listing, t.selection.constraints, t.selection.prerelease_identifiers
                )
            except SemverError as exc:
                problems.append(Problem(t.reference, t.file, t.line, f"Selecting versions: {exc}"))
                continue
            chosen[t.reference] = tag
            # With nothing pinned yet, the tag in use is the one the selection picks now.
            if t.tag is None and tag is not None and (*key, tag) not in started:
                started.add((*key, tag))
                tg.start_soon(head_one, (*key, tag))

    # A listing only where it can tell something: a version tag, or a tag selection.
    list_keys = dict.fromkeys(
        (t.registry, t.repository)
        for t in targets
        if t.selection is not None or (t.tag is not None and version_of(t.tag) is not None)
    )
    async with anyio.create_task_group() as tg:
        for repo_key in list_keys:
            tg.start_soon(list_one, repo_key, tg)
        for head_key in head_keys:
            tg.start_soon(head_one, head_key)

    statuses: list[Status] = []
    for t in targets:
        listing = tags.get((t.registry, t.repository), [])
        if isinstance(listing, str):
            problems.append(Problem(t.reference, t.file, t.line, listing))
            continue
        tag = t.tag if t.tag is not None else chosen.get(t.reference)
        if tag is None:
            if t.selection is not None and t.reference not in chosen:
                continue  # the constraint did not parse: already a problem
            problems.append(Problem(t.reference, t.file, t.line, "no tag matches the selection"))
            continue
        head = heads[(t.registry, t.repository, tag)]
        if not head.startswith("@"):
            problems.append(Problem(t.reference, t.file, t.line, head))
            continue
        current = t.context + head
        statuses.append(
            Status(
                reference=t.reference,
                file=t.file,
                line=t.line,
                tag=tag,
                pinned=t.pinned,
                current=current,
                moved=t.pinned is not None and t.pinned != current,
                newer=newer_tags(listing, tag),
                selected=chosen.get(t.reference),
            )
        )
    return statuses, problems


async def check_outdated(
    inputs: Sequence[str | TextInput],
    options: OutdatedOptions | None = None,
    *,
    client: RegistryClient | None = None,
) -> OutdatedReport:
    """Compare every tagged reference in ``inputs`` with the registry (see the module)."""
    options = options or OutdatedOptions()
    scanned = await scan_inputs(inputs, options.own_lock, options.split_kinds)
    if not scanned.sources:
        raise UsageError("no input files (give -f with a file, directory, '-' or URL)")
    # A digest written in a field is "the digest beside the tag": it comes first.
    pins = {**options.pins, **scanned.field_pins}
    targets, problems = plan_targets(scanned.occurrences, scanned.config, pins)
    if not targets:
        return OutdatedReport((), tuple(problems), RequestStats())
    session = client or options.registry.client()
    try:
        statuses, more = await _check(targets, session)
    finally:
        if client is None:
            await session.aclose()
    return OutdatedReport(tuple(statuses), (*problems, *more), session.stats)
