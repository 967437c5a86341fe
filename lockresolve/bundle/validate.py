"""imgpkg's rules for what the ``-f`` paths of a push may hold.

A bundle (``push -b``) has exactly one ``.imgpkg`` directory, a direct child of
one of the ``-f`` directories, holding ``images.yml``; a plain image
(``push -i``) must not look like a bundle. The messages are imgpkg's
(``pkg/imgpkg/bundle/contents.go``, ``pkg/imgpkg/cmd/push.go``). As in imgpkg,
``--file-exclusion`` does not apply here: every ``.imgpkg`` found counts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

from lockresolve.bundle.formats.tar import walk_tree
from lockresolve.errors import BundleError

__all__ = [
    "IMAGES_LOCK_FILE",
    "IMGPKG_DIR",
    "BundleValidationError",
    "find_imgpkg_dirs",
    "presents_as_bundle",
    "refuse_bundle_as_image",
    "validate_bundle",
]

IMGPKG_DIR: Final = ".imgpkg"
IMAGES_LOCK_FILE: Final = "images.yml"


class BundleValidationError(BundleError):
    """The ``-f`` paths do not make a bundle (imgpkg's ``bundleValidationError``)."""


def find_imgpkg_dirs(paths: Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    """Absolute paths of every entry named ``.imgpkg`` under the ``-f`` paths, in walk order."""
    found: list[str] = []
    for raw in paths:
        root = os.fspath(raw)
        for path, _rel, _st in walk_tree(root):
            if os.path.basename(path.rstrip("/")) == IMGPKG_DIR:
                found.append(os.path.abspath(path))
    return tuple(found)


def validate_bundle(paths: Sequence[str | os.PathLike[str]]) -> str:
    """Check that ``paths`` make a bundle; return the absolute ``.imgpkg`` path.

    Raises :class:`BundleValidationError` with imgpkg's message when there is
    no ``.imgpkg``, more than one, one that is not a direct child of a ``-f``
    directory, or one without ``images.yml``; :class:`InputError` when a path
    cannot be walked.
    """
    imgpkg_dirs = find_imgpkg_dirs(paths)
    lock_path = os.path.join(IMGPKG_DIR, IMAGES_LOCK_FILE)
    if not imgpkg_dirs:
        raise BundleValidationError(f"This directory is not a bundle. It is missing {lock_path}")
    if len(imgpkg_dirs) > 1:
        raise BundleValidationError(
            "This directory contains multiple bundle definitions. "
            f"Only a single instance of {lock_path} can be provided and instead these were "
            f"provided {', '.join(imgpkg_dirs)}"
        )
    imgpkg_dir = imgpkg_dirs[0]
    for raw in paths:
        if os.path.dirname(imgpkg_dir) == os.path.abspath(os.fspath(raw)):
            images_yml = os.path.join(imgpkg_dir, IMAGES_LOCK_FILE)
            if not _exists(images_yml):
                raise BundleValidationError(
                    "The bundle expected .imgpkg/images.yml to exist, "
                    f"but it wasn't found in the path {images_yml}"
                )
            return imgpkg_dir
    given = ", ".join(os.fspath(p) for p in paths)
    raise BundleValidationError(
        f"Expected '{IMGPKG_DIR}' directory, to be a direct child of one of: {given}; "
        f"was {imgpkg_dir}"
    )


def _exists(path: str) -> bool:
    # Like Go's os.Stat + os.IsNotExist: only "no such file" counts as missing.
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def presents_as_bundle(paths: Sequence[str | os.PathLike[str]]) -> bool:
    """True when ``paths`` pass :func:`validate_bundle`."""
    try:
        validate_bundle(paths)
    except BundleValidationError:
        return False
    return True


def refuse_bundle_as_image(paths: Sequence[str | os.PathLike[str]]) -> None:
    """For ``push -i``: refuse paths that make a valid bundle, as imgpkg does."""
    if presents_as_bundle(paths):
        raise BundleError(
            "Images cannot be pushed with '.imgpkg' directories, "
            "consider using --bundle (-b) option"
        )
