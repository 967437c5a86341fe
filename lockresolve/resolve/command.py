"""``lockresolve resolve``: the flags in, one library call, output and lock files out.

Lock files are the one thing this layer adds to the library: it reads the
existing ``--imgpkg-lock-output`` file as pins (unless ``--update``), writes
the new locks atomically (temporary name, then rename, mode 0600), or with
``--check`` compares instead of writing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from lockresolve.errors import InputError, UsageError
from lockresolve.fsutil import atomic_write
from lockresolve.registry.settings import RegistrySettings
from lockresolve.resolve.engine import (
    ResolveOptions,
    ResolveResult,
    load_image_map,
    pins_from_images_lock,
    resolve_inputs,
)
from lockresolve.resolve.model import ResolvedImage

__all__ = ["LockPlan", "lock_diff", "run_resolve_command"]


@dataclass(frozen=True)
class LockPlan:
    """A lock file to write (or check): where, and its new bytes."""

    path: Path
    text: str


def _existing(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the existing lock: {exc}", source=str(path)) from None


def _pins(path: Path | None, update: Sequence[str] | bool) -> dict[str, ResolvedImage]:
    if update is True:
        return {}
    text = _existing(path)
    if text is None or path is None:
        return {}
    pins = pins_from_images_lock(text, str(path))
    for ref in update or ():
        pins.pop(ref, None)
    return pins


def lock_diff(old: str | None, new: str, source: str) -> list[str]:
    """What changed between two ImagesLock texts: added, removed, moved references."""
    before = pins_from_images_lock(old, source) if old else {}
    after = pins_from_images_lock(new, source)
    lines = []
    for ref in sorted(set(before) | set(after)):
        if ref not in before:
            lines.append(f"+ {ref} -> {after[ref].url}")
        elif ref not in after:
            lines.append(f"- {ref} (was {before[ref].url})")
        elif before[ref].url != after[ref].url:
            lines.append(f"~ {ref}: {before[ref].url} -> {after[ref].url}")
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
    unresolved_inspect: bool = False,
    check: bool = False,
    update: bool = False,
    update_refs: Sequence[str] = (),
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
        pins=_pins(imgpkg_lock_output, True if update else tuple(update_refs)),
        registry=settings,
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

    plans: list[LockPlan] = []
    if imgpkg_lock_output is not None:
        plans.append(LockPlan(imgpkg_lock_output, result.images_lock_text()))
    if lock_output is not None:
        plans.append(LockPlan(lock_output, result.kbld_lock_text()))

    if check:
        return _check(plans)

    for line in result.final_lines():
        print(line, file=sys.stderr)
    sys.stdout.write(result.output)
    sys.stdout.flush()
    for plan in plans:
        atomic_write(plan.path, plan.text.encode("utf-8"), mode=0o600)
    return 0


def _check(plans: Sequence[LockPlan]) -> int:
    stale = 0
    for plan in plans:
        old = _existing(plan.path)
        if old == plan.text:
            print(f"lockresolve: {plan.path} is up to date", file=sys.stderr)
            continue
        stale += 1
        state = "missing" if old is None else "out of date"
        print(f"lockresolve: {plan.path} is {state}:", file=sys.stderr)
        try:
            changes = lock_diff(old, plan.text, str(plan.path))
        except InputError:
            changes = []
        for line in changes or ["  (same references; formatting or origins differ)"]:
            print(f"  {line}", file=sys.stderr)
    return 1 if stale else 0


def _log_stats(result: ResolveResult) -> None:
    import logging

    # A run that opened a registry client logged its count when the client closed.
    if result.stats.total == 0:
        logging.getLogger("lockresolve.http").debug("%s", result.stats.summary())
