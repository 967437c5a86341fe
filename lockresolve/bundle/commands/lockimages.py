"""``push -b --lock-images``: resolve a bundle's images into ``.imgpkg/images.yml``, then push.

One command instead of ``lockresolve -f DIR/config --imgpkg-lock-output
DIR/.imgpkg/images.yml`` followed by ``lockresolve push -b REF -f DIR``, and
one registry session for both: the resolver's ``HEAD`` requests and the
push's uploads share the caller's :class:`RegistryClient` (its connections
and tokens).

The inputs are the YAML and JSON files (``.yml``, ``.yaml``, ``.json``) the
bundle will contain (the ``-f`` paths less ``--file-exclusion``), except
those under ``.imgpkg/``, under any other dot-file or dot-folder, and those
matching a ``--lock-images-exclude`` glob (templates: kept in the bundle, not
resolved). A file that does not parse is named with that way out. The existing ``images.yml`` pins references as it
does for ``lockresolve resolve`` (see docs/resolve.md, "Pinning"); it is
rewritten (atomically, mode 0600) only when its bytes change, so an
unchanged lock keeps its file and the bundle its digest.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lockresolve.bundle.commands.push import PushResult, parse_push_target, push
from lockresolve.bundle.formats.image import check_user_labels
from lockresolve.bundle.formats.tar import DEFAULT_EXCLUSIONS, EntryKind, plan_layer
from lockresolve.bundle.layer import GzipKind
from lockresolve.bundle.progress import Progress
from lockresolve.bundle.validate import (
    IMAGES_LOCK_FILE,
    IMGPKG_DIR,
    BundleValidationError,
    find_imgpkg_dirs,
    validate_bundle,
)
from lockresolve.errors import ConfigError, InputError, ResolveFailed, YAMLInputError
from lockresolve.fsutil import atomic_write
from lockresolve.lock import images_lock_text
from lockresolve.registry.client import RegistryClient
from lockresolve.resolve.engine import (
    ResolveOptions,
    ResolveResult,
    load_pins,
    read_lock_text,
    resolve_inputs,
)

__all__ = ["LockedPush", "bundle_config_files", "bundle_imgpkg_dir", "push_with_locked_images"]

_CONFIG_EXTENSIONS = (".yml", ".yaml", ".json")


@dataclass(frozen=True)
class LockedPush:
    """What ``push --lock-images`` did: the lock it wrote (or kept), and the push."""

    lock_path: Path
    lock_changed: bool
    resolve: ResolveResult | None  # None when the bundle has no YAML to resolve
    push: PushResult


def bundle_imgpkg_dir(paths: Sequence[str | os.PathLike[str]]) -> Path:
    """The ``.imgpkg`` directory whose ``images.yml`` a bundle of ``paths`` uses.

    It is the ``.imgpkg`` directly inside one ``-f`` directory (it may not hold
    ``images.yml`` yet); when there is none and exactly one ``-f`` path is a
    directory, ``<that directory>/.imgpkg`` (created when the lock is written).
    Anything else raises imgpkg's :class:`BundleValidationError`.
    """
    found = find_imgpkg_dirs(paths)
    roots = [os.path.abspath(os.fspath(p)) for p in paths if os.path.isdir(p)]
    if len(found) == 1 and os.path.dirname(found[0]) in roots and os.path.isdir(found[0]):
        return Path(found[0])
    if not found and len(roots) == 1:
        return Path(roots[0]) / IMGPKG_DIR
    validate_bundle(paths)  # raises with imgpkg's message
    given = ", ".join(os.fspath(p) for p in paths)  # pragma: no cover - raised already
    raise BundleValidationError(f"Expected exactly one '{IMGPKG_DIR}' directory in {given}")


def _matches(name: str, globs: Sequence[str]) -> bool:
    """``name`` (an archive path) or one of its parent folders matches one of ``globs``."""
    parts = name.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(fnmatch.fnmatchcase(prefix, glob) for glob in globs for prefix in prefixes)


def bundle_config_files(
    paths: Sequence[str | os.PathLike[str]],
    imgpkg_dir: str | os.PathLike[str],
    exclusions: Sequence[str] = DEFAULT_EXCLUSIONS,
    lock_exclusions: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """The YAML/JSON files to resolve, in archive order: ``(source path, archive path)``.

    Every such file the bundle will hold, except those inside ``imgpkg_dir``,
    those under a dot-file or dot-folder (``.pre-commit-config.yaml``,
    ``.github/``), and those matching a ``lock_exclusions`` glob (matched with
    :func:`fnmatch.fnmatchcase` against the path in the bundle and each of its
    parent folders, so ``chart`` or ``chart/templates/*`` leave out a subtree).
    """
    inside = os.path.abspath(imgpkg_dir) + os.sep
    found = []
    for entry in plan_layer(paths, exclusions).entries:
        if (
            entry.kind is not EntryKind.FILE
            or os.path.splitext(entry.source)[1] not in _CONFIG_EXTENSIONS
            or os.path.abspath(entry.source).startswith(inside)
        ):
            continue
        if any(part.startswith(".") for part in entry.name.split("/")):
            continue
        if _matches(entry.name, lock_exclusions):
            continue
        found.append((entry.source, entry.name))
    return found


def _with_way_out(exc: InputError, names: Mapping[str, str]) -> InputError:
    """``exc`` naming a bundle file, with how to keep that file out of resolution."""
    name = names.get(exc.source or "")
    if name is None:
        return exc
    folder = posixpath.dirname(name)
    glob = f"{folder}/*" if folder else name
    hint = (
        f" (if {name} is a template, keep it in the bundle without resolving it: "
        f"--lock-images-exclude '{glob}')"
    )
    return type(exc)(exc.message + hint, exc.source, exc.line)


async def push_with_locked_images(
    client: RegistryClient,
    target: str,
    paths: Sequence[str | os.PathLike[str]],
    *,
    exclusions: Sequence[str] | None = None,
    lock_exclusions: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    lock_output: str | os.PathLike[str] | None = None,
    gzip: GzipKind = "go",
    options: ResolveOptions | None = None,
    on_line: Callable[[str], None] | None = None,
    on_resolved: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> LockedPush:
    """Resolve the bundle's images into ``.imgpkg/images.yml``, then push the bundle.

    ``options`` carries the resolver's settings (platform, annotations); its
    ``pins`` come from the existing ``images.yml``. ``on_resolved`` receives
    the ``resolve | final: ...`` lines, ``on_line`` imgpkg's ``dir:``/``file:``
    lines. Raises :class:`ResolveFailed` (listing every failing reference,
    nothing written or pushed) and whatever :func:`push` raises.
    """
    check_user_labels(dict(labels or {}))
    parse_push_target(target)  # a bad target fails before anything is written
    excluded = DEFAULT_EXCLUSIONS if exclusions is None else tuple(exclusions)
    imgpkg_dir = bundle_imgpkg_dir(paths)
    lock_path = imgpkg_dir / IMAGES_LOCK_FILE
    files = bundle_config_files(paths, imgpkg_dir, excluded, lock_exclusions)
    inputs = [source for source, _ in files]
    base = options or ResolveOptions()
    result: ResolveResult | None = None
    if inputs:
        opts = replace(base, pins=load_pins(lock_path), own_lock=lock_path)
        try:
            result = await resolve_inputs(inputs, opts, client=client)
        except (YAMLInputError, ConfigError) as exc:
            raise _with_way_out(exc, dict(files)) from None
        if result.failures:
            raise ResolveFailed(result.failures)
        if on_resolved is not None:
            for line in result.final_lines():
                on_resolved(line)
        text = result.images_lock_text()
    else:
        text = images_lock_text([], origins=base.origins_annotation)
    changed = read_lock_text(lock_path) != text
    if changed:
        atomic_write(lock_path, text.encode("utf-8"), mode=0o600)
    pushed = await push(
        client,
        target,
        paths,
        bundle=True,
        exclusions=excluded,
        labels=labels,
        lock_output=lock_output,
        gzip=gzip,
        on_line=on_line,
        progress=progress,
    )
    return LockedPush(lock_path=lock_path, lock_changed=changed, resolve=result, push=pushed)
