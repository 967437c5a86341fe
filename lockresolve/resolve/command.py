"""``lockresolve resolve``: the flags in, one library call, output and lock files out.

Lock files are the one thing this layer adds to the library: it reads the
existing ``--imgpkg-lock-output`` file as pins (unless ``--update``), writes
the new locks atomically (temporary name, then rename, mode 0600) when their
bytes change (``--fail-on-change``: and then exits 1, for pre-commit), or with
``--check`` compares instead of writing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import anyio

from lockresolve.errors import InputError, UsageError
from lockresolve.fsutil import atomic_write
from lockresolve.interrupts import mark_committed
from lockresolve.resolve.engine import (
    ResolveOptions,
    ResolveResult,
    load_image_map,
    load_pins,
    pins_from_images_lock,
    read_lock_text,
    resolve_inputs,
)

if TYPE_CHECKING:
    from lockresolve.registry.settings import RegistrySettings

__all__ = ["LockPlan", "lock_diff", "lock_references", "run_resolve_command"]

LockKind = Literal["imgpkg", "kbld"]


@dataclass(frozen=True)
class LockPlan:
    """A lock file to write (or check): where, which format, and its new bytes."""

    path: Path
    text: str
    kind: LockKind = "imgpkg"


def lock_references(text: str | None, kind: LockKind, source: str) -> dict[str, str]:
    """Reference as written -> pinned image, as a lock file of ``kind`` records them."""
    if not text:
        return {}
    if kind == "imgpkg":
        return {ref: pin.url for ref, pin in pins_from_images_lock(text, source).items()}
    from lockresolve.resolve.config import load_config
    from lockresolve.resolve.documents import parse_source

    config = load_config(parse_source(source, text).configs)
    return {o.image: o.new_image for o in config.overrides if o.image and o.preresolved}


def lock_diff(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What changed between two locks: ``+`` added, ``-`` removed, ``~`` moved references."""
    lines = []
    for ref in sorted(set(before) | set(after)):
        if ref not in before:
            lines.append(f"+ {ref} -> {after[ref]}")
        elif ref not in after:
            lines.append(f"- {ref} (was {before[ref]})")
        elif before[ref] != after[ref]:
            lines.append(f"~ {ref}: {before[ref]} -> {after[ref]}")
    return lines


def run_resolve_command(
    *,
    settings: RegistrySettings,
    files: Sequence[str],
    imgpkg_lock_output: Path | None = None,
    lock_output: Path | None = None,
    images_annotation: bool = True,
    origins_annotation: bool = True,
    image_map_file: Path | None = None,
    platform: str | None = None,
    split_kinds: frozenset[str] = frozenset(),
    unresolved_inspect: bool = False,
    check: bool = False,
    update: bool = False,
    update_refs: Sequence[str] = (),
    quiet: bool = False,
    fail_on_change: bool = False,
    keep_tag: bool = False,
    offline: bool = False,
    excludes: Sequence[str] = (),
    verify_digests: bool = False,
) -> int:
    """Run one resolve as the CLI does; returns the exit status (errors raise)."""
    del unresolved_inspect  # accepted for kbld compatibility
    if imgpkg_lock_output is not None and lock_output is not None:
        raise UsageError("--imgpkg-lock-output and --lock-output cannot be used together")
    if check and imgpkg_lock_output is None and lock_output is None:
        raise UsageError("--check needs --imgpkg-lock-output or --lock-output to compare")
    options = ResolveOptions(
        platform=platform,
        images_annotation=images_annotation,
        origins_annotation=origins_annotation,
        image_map=load_image_map(image_map_file) if image_map_file else {},
        pins=load_pins(imgpkg_lock_output, update=update, update_refs=update_refs),
        own_lock=imgpkg_lock_output,
        registry=settings,
        # --check and --quiet never print the documents: skip writing them
        render=not (check or quiet),
        split_kinds=split_kinds,
        digest_fields=not (update or update_refs),
        keep_tag=keep_tag,
        offline=offline,
        excludes=tuple(excludes),
        verify_digests=verify_digests,
    )
    result: ResolveResult = anyio.run(resolve_inputs, list(files), options)
    _log_stats(result)
    if result.failures:
        lines = [
            f"lockresolve: error: {len(result.failures)} image reference(s) failed to resolve:"
        ]
        lines += [f"- {failure}" for failure in result.failures]
        print("\n".join(lines), file=sys.stderr)
        return 1
    unknown = [ref for ref in update_refs if ref not in result.resolved]
    if unknown:
        raise UsageError(
            f"--update-ref {unknown[0]}: no input has this image reference "
            "(give it as written in the YAML)"
        )

    plans: list[LockPlan] = []
    if imgpkg_lock_output is not None:
        plans.append(LockPlan(imgpkg_lock_output, result.images_lock_text(), "imgpkg"))
    if lock_output is not None:
        plans.append(LockPlan(lock_output, result.kbld_lock_text(), "kbld"))
    after = {ref: image.url for ref, image in result.resolved.items()}

    if check:
        return _check(plans, after)

    if not quiet:
        for line in result.final_lines():
            print(line, file=sys.stderr)
        sys.stdout.write(result.output)
        sys.stdout.flush()
    olds = [read_lock_text(plan.path) for plan in plans]
    written: list[Path] = []
    for plan, old in zip(plans, olds, strict=True):
        if old != plan.text:
            atomic_write(plan.path, plan.text.encode("utf-8"), mode=0o600)
            written.append(plan.path)
    mark_committed()  # every lock is in place: a Ctrl-C from now on undoes nothing
    for plan, old in zip(plans, olds, strict=True):
        if (quiet or fail_on_change) and old != plan.text:
            _report(plan, old, after, "was updated" if old is not None else "was created")
    if fail_on_change and written:
        for path in written:
            print(f"lockresolve: stage {path} (git add {path}) and commit again", file=sys.stderr)
        return 1
    return 0


def _check(plans: Sequence[LockPlan], after: Mapping[str, str]) -> int:
    stale = 0
    for plan in plans:
        old = read_lock_text(plan.path)
        if old == plan.text:
            print(f"lockresolve: {plan.path} is up to date", file=sys.stderr)
            continue
        stale += 1
        _report(plan, old, after, "is missing" if old is None else "is out of date")
    return 1 if stale else 0


def _report(plan: LockPlan, old: str | None, after: Mapping[str, str], state: str) -> None:
    print(f"lockresolve: {plan.path} {state}:", file=sys.stderr)
    try:
        changes = lock_diff(lock_references(old, plan.kind, str(plan.path)), after)
    except InputError:
        changes = ["(the existing file is not a lock lockresolve can read)"]
    for line in changes or ["(same references and digests; origins or formatting differ)"]:
        print(f"  {line}", file=sys.stderr)


def _log_stats(result: ResolveResult) -> None:
    import logging

    # A run that opened a registry client logged its count when the client closed.
    if result.stats.total == 0:
        logging.getLogger("lockresolve.http").debug("%s", result.stats.summary())
