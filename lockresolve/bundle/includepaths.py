"""``pull --include-path``: keep only some files and folders of a pulled bundle or image.

Each path is relative to the bundle's root (``config/app.yml``, ``config``,
``./config/``); ``.imgpkg/`` is always kept (the lock, nested bundles), so
``images.yml`` is still read and relocated. The layers are extracted whole
into the staging directory first (a layer is one stream: a file's place in it
is not known before reading it), then everything else is removed there, before
the staging directory is moved to ``-o``; a path the bundle does not hold is
an error naming it, and ``-o`` is left as it was.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from lockresolve.errors import BundleError, UsageError

__all__ = ["normalize_include_paths", "prune_to_includes"]

_ALWAYS = ".imgpkg"


def normalize_include_paths(paths: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Each ``--include-path`` as its components; absolute paths and ``..`` are usage errors."""
    found: list[tuple[str, ...]] = []
    for raw in paths:
        text = raw.replace("\\", "/")
        if text.startswith("/"):
            raise UsageError(f"--include-path {raw!r}: expected a path relative to the bundle root")
        parts = tuple(p for p in text.split("/") if p not in ("", "."))
        if ".." in parts:
            raise UsageError(f"--include-path {raw!r}: '..' is not allowed")
        if not parts:
            raise UsageError(f"--include-path {raw!r}: expected a file or folder of the bundle")
        if parts not in found:
            found.append(parts)
    return tuple(found)


def prune_to_includes(root: Path, includes: Sequence[tuple[str, ...]], shown: str) -> None:
    """Remove from ``root`` all but ``includes`` and ``.imgpkg/``; each must exist."""
    for parts in includes:
        path = root.joinpath(*parts)
        if not os.path.lexists(path):
            raise BundleError(
                f"--include-path {'/'.join(parts)!r}: no such file or folder in '{shown}'"
            )
    keep = {(_ALWAYS,), *includes}
    _prune(root, (), keep)


def _prune(directory: Path, rel: tuple[str, ...], keep: set[tuple[str, ...]]) -> None:
    for entry in list(directory.iterdir()):
        here = (*rel, entry.name)
        if here in keep:
            continue  # kept whole
        if entry.is_dir() and not entry.is_symlink() and any(k[: len(here)] == here for k in keep):
            _prune(entry, here, keep)  # an ancestor of something kept
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
