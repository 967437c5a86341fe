"""``lockresolve outdated``: what moved or has newer versions since the lock was written.

For every tagged reference the inputs hold (as ``resolve`` finds them, overrides
applied; ``preresolved`` ones and references without a tag are left out), what is
pinned (the ``--imgpkg-lock-output`` lock's entry, or the digest written beside
the tag, ``app:1.0@sha256:…``) is compared with what the registry says now: one
``HEAD`` per distinct reference and one tag listing per repository, concurrently,
each task catching its own error.

* ``moved``: the tag now points to another digest than the pinned one (for a pin
  chosen by ``--platform`` from an index: another index digest);
* ``newer``: the repository's tags that sort higher by semver than the pinned tag,
  highest first (tags that are no version, and every tag when the pinned tag is
  no version, are left out: never guessed);
* ``selected``: under a ``tagSelection.semver`` override, the tag it would pick now.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import anyio

from lockresolve.errors import InvalidReferenceError, LockresolveError
from lockresolve.reference import Reference
from lockresolve.resolve.engine import ResolveOptions, TextInput, resolve_inputs
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.semver import SemverError, Version, parse_version, select_tag

if TYPE_CHECKING:
    from lockresolve.registry.client import RegistryClient

__all__ = ["OutdatedEntry", "OutdatedReport", "find_outdated", "render_json", "render_table"]


@dataclass(frozen=True)
class OutdatedEntry:
    """One tagged reference: where it is, what is pinned, what the registry says now."""

    reference: str  # as written
    file: str
    line: int
    pinned: str | None  # repo@sha256:… or None when nothing pins it
    current: str | None  # repo@sha256:… the tag points to now (None: nothing to ask)
    moved: bool
    newer: tuple[str, ...]
    selected: str | None = None  # what a tagSelection would pick now

    @property
    def outdated(self) -> bool:
        return self.moved or bool(self.newer)

    def as_json(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "file": self.file,
            "line": self.line,
            "pinned": self.pinned,
            "current": self.current,
            "moved": self.moved,
            "newer": list(self.newer),
            "selected": self.selected,
        }


@dataclass(frozen=True)
class OutdatedReport:
    entries: tuple[OutdatedEntry, ...]
    failures: tuple[str, ...]  # one line each: "Checking image 'REF' (file:line): reason"

    @property
    def outdated(self) -> bool:
        return any(e.outdated for e in self.entries)


@dataclass(frozen=True)
class _Target:
    written: str
    ref: Reference  # the reference resolve would resolve (overrides applied)
    ask: Reference | None  # repo:tag to HEAD now (None: a tag selection never pinned)
    pin: ResolvedImage | None
    semver: tuple[str, tuple[str, ...] | None] | None  # (constraints, prereleases)


def _version(tag: str) -> Version | None:
    try:
        return parse_version(tag[1:] if tag.startswith("v") else tag)
    except SemverError:
        return None


def _newer(tags: Sequence[str], pinned_tag: str) -> tuple[str, ...]:
    base = _version(pinned_tag)
    if base is None:
        return ()
    found = [(v, t) for t in tags if (v := _version(t)) is not None and v.compare(base) > 0]
    ordered: list[tuple[Version, str]] = []
    for v, t in found:  # highest first; equal versions in listing order
        i = 0
        while i < len(ordered) and ordered[i][0].compare(v) >= 0:
            i += 1
        ordered.insert(i, (v, t))
    return tuple(t for _, t in ordered)


def _compare_url(pin: ResolvedImage) -> str:
    """What the tag pointed to when pinned: the index for a platform-selected pin."""
    for origin in pin.origins:
        selected = origin.get("platformSelected")
        if isinstance(selected, Mapping) and isinstance(selected.get("index"), str):
            return str(selected["index"])
    return pin.url


def _pinned_tag(pin: ResolvedImage | None) -> str | None:
    for origin in pin.origins if pin is not None else ():
        resolved = origin.get("resolved")
        if isinstance(resolved, Mapping) and isinstance(resolved.get("url"), str):
            try:
                return Reference.parse(str(resolved["url"])).tag
            except InvalidReferenceError:
                return None
    return None


async def find_outdated(
    inputs: Sequence[str | TextInput],
    options: ResolveOptions,
    *,
    client: RegistryClient | None = None,
) -> OutdatedReport:
    """Compare the pins of ``inputs`` (``options.pins``: the lock) with the registry now."""
    # The inputs, configuration and pins exactly as resolve reads them, without a request.
    local = await resolve_inputs(
        inputs, replace(options, offline=True, render=False, verify_digests=False)
    )
    first: dict[str, tuple[str, int]] = {}
    for occ in local.occurrences:
        first.setdefault(occ.ref, (occ.source, occ.line))
    targets: list[_Target] = []
    for written in first:
        override = local.config.override_for(written)
        if override is not None and override.preresolved:
            continue
        url = override.new_image if override is not None and override.new_image else written
        pin = local.resolved.get(written)
        semver = None
        if override is not None and override.tag_selection and override.tag_selection.semver:
            sel = override.tag_selection.semver
            semver = (sel.constraints, sel.prerelease_identifiers)
            tag = _pinned_tag(pin)  # the tag it selected when pinned
        else:
            tag = None
        try:
            ref = Reference.parse(url)
            tag = tag or ref.tag or (None if ref.digest is not None or semver else "latest")
            ask = Reference.parse(f"{ref.context}:{tag}") if tag else None
        except InvalidReferenceError:
            continue  # resolve reports it; nothing to compare
        if ask is None and semver is None:
            continue  # app@sha256:… without a tag: nothing can move
        targets.append(_Target(written, ref, ask, pin, semver))

    session = client or options.registry.client()
    heads: dict[str, str | BaseException] = {}
    listings: dict[str, list[str] | BaseException] = {}

    async def head(ref: Reference) -> None:
        try:
            heads[str(ref)] = f"{ref.context}@{(await session.resolve(ref)).digest}"
        except LockresolveError as exc:
            heads[str(ref)] = exc

    async def listing(ref: Reference) -> None:
        try:
            listings[ref.context] = await session.list_tags(ref.registry, ref.repository)
        except LockresolveError as exc:
            listings[ref.context] = exc

    try:
        async with anyio.create_task_group() as tg:
            for ref in {str(t.ask): t.ask for t in targets if t.ask is not None}.values():
                tg.start_soon(head, ref)
            for ref in {t.ref.context: t.ref for t in targets}.values():
                tg.start_soon(listing, ref)
    finally:
        if client is None:
            await session.aclose()

    entries: list[OutdatedEntry] = []
    failures: list[str] = []
    for t in targets:
        source, line = first[t.written]
        tags = listings.get(t.ref.context)
        current = heads.get(str(t.ask)) if t.ask is not None else None
        problem = next((x for x in (tags, current) if isinstance(x, BaseException)), None)
        if problem is not None:
            failures.append(f"Checking image '{t.written}' ({source}:{line}): {problem}")
            continue
        assert isinstance(tags, list) and not isinstance(current, BaseException)
        entries.append(
            OutdatedEntry(
                reference=t.written,
                file=source,
                line=line,
                pinned=t.pin.url if t.pin is not None else None,
                current=current,
                moved=t.pin is not None and current is not None and _compare_url(t.pin) != current,
                newer=_newer(tags, t.ask.tag or "") if t.ask is not None else (),
                selected=select_tag(tags, *t.semver) if t.semver is not None else None,
            )
        )
    return OutdatedReport(tuple(entries), tuple(failures))


def render_json(report: OutdatedReport) -> str:
    return json.dumps([e.as_json() for e in report.entries], indent=2) + "\n"


def _short(url: str | None) -> str:
    if not url:
        return "-"
    _, _, digest = url.partition("@")
    return digest[: len("sha256:") + 12] if digest else url


def render_table(report: OutdatedReport) -> str:
    """One aligned row per reference that moved or has newer tags; "" when all is current."""
    rows = [
        (
            e.reference,
            f"{e.file}:{e.line}",
            _short(e.pinned),
            _short(e.current),
            "moved" if e.moved else "",
            ", ".join(e.newer) + (f" (tagSelection picks {e.selected})" if e.selected else ""),
        )
        for e in report.entries
        if e.outdated
    ]
    if not rows:
        return ""
    header = ("REFERENCE", "WHERE", "PINNED", "CURRENT", "MOVED", "NEWER")
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n"
        for r in table
    )


def run_outdated_command(
    *,
    settings: object,
    files: Sequence[str],
    imgpkg_lock_output: str | None,
    output: str,
    exit_code: bool,
) -> int:
    """``lockresolve outdated`` as the CLI runs it; returns the exit status."""
    import sys

    from lockresolve.registry.settings import RegistrySettings
    from lockresolve.resolve.engine import load_pins

    assert isinstance(settings, RegistrySettings)
    options = ResolveOptions(
        registry=settings,
        pins=load_pins(imgpkg_lock_output),
        own_lock=imgpkg_lock_output,
    )
    report: OutdatedReport = anyio.run(find_outdated, list(files), options)
    if report.failures:
        lines = [f"lockresolve: error: {len(report.failures)} image reference(s) failed to check:"]
        lines += [f"- {f}" for f in report.failures]
        print("\n".join(lines), file=sys.stderr)
        return 1
    sys.stdout.write(render_json(report) if output == "json" else render_table(report))
    sys.stdout.flush()
    return 1 if exit_code and report.outdated else 0
