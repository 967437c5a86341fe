"""Reading an existing ImagesLock as pins: the results a run may keep without a request.

:func:`load_pins` is what ``--imgpkg-lock-output`` reads before a run (the
pinning rule itself is :func:`lockresolve.resolve.resolver.Resolver`'s);
:func:`pins_from_images_lock` reads a lock written by lockresolve or kbld, by
its layout when it is in exactly the form lockresolve writes, else strictly.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lockresolve.errors import InputError, LockresolveError
from lockresolve.lock import ID_ANNOTATION, ORIGINS_ANNOTATION, images_lock_text, read_images_lock
from lockresolve.reference import Reference
from lockresolve.resolve.documents import IMAGES_LOCK_API_VERSION
from lockresolve.resolve.model import LockEntry, ResolvedImage
from lockresolve.resolve.origins import origins_data, parse_origins

__all__ = ["load_pins", "pins_from_images_lock", "read_lock_text"]


def read_lock_text(path: str | os.PathLike[str] | None) -> str | None:
    """The text of an existing lock file, or None when there is none."""
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the existing lock: {exc}", source=str(path)) from None


def load_pins(
    path: str | os.PathLike[str] | None,
    *,
    update: bool = False,
    update_refs: Sequence[str] = (),
) -> dict[str, ResolvedImage]:
    """The pins an existing ImagesLock at ``path`` gives (for :attr:`ResolveOptions.pins`).

    None when the file does not exist or with ``update``; the references in
    ``update_refs`` (as written) are left out, so they are resolved again.
    """
    text = None if update else read_lock_text(path)
    if text is None:
        return {}
    pins = pins_from_images_lock(text, str(path))
    for ref in update_refs:
        pins.pop(ref, None)
    return pins


def pins_from_images_lock(text: str, source: str) -> dict[str, ResolvedImage]:
    """The results recorded in an ImagesLock written by lockresolve or kbld."""
    fast = _pins_from_written_lock(text)
    if fast is not None:
        return fast
    lock = read_images_lock(text, source)
    pins: dict[str, ResolvedImage] = {}
    for entry in lock.images:
        ref = entry.annotations.get(ID_ANNOTATION)
        if not ref:
            continue

        def fail(message: str) -> InputError:
            return InputError(message, source=source)

        origins = _parse_origins_cached(entry.annotations.get(ORIGINS_ANNOTATION, ""), fail)
        pins[ref] = ResolvedImage(entry.image, origins)
    return pins


# --- reading a lock in the form lockresolve and kbld write ----------------------------
#
# Reading a lock strictly (a YAML parse of the file, then of every origins annotation)
# costs more than writing it. A lock in the exact form images_lock_text writes is read
# here by its layout instead, and the result is kept only if writing it back gives the
# file byte for byte: then the strict reader would have read that same written text, so
# it would have found these very entries. Anything else (hand edits, other layouts,
# errors to report) goes to the strict reader.

_LOCK_HEAD = f"---\napiVersion: {IMAGES_LOCK_API_VERSION}\nimages:\n"
_LOCK_TAIL = "kind: ImagesLock\n"
_LOCK_ENTRY = re.compile(
    rf"- annotations:\n    {re.escape(ID_ANNOTATION)}: (?P<id>[^\s\"'][^\n]*)\n"
    rf"(?:    {re.escape(ORIGINS_ANNOTATION)}: \|\n(?P<origins>(?:      [^\n]*\n)+))?"
    r"  image: (?P<image>[^\s\"'][^\n]*)\n"
)
# The origins lockresolve writes for a resolved tag or a preresolved image, with plain
# values (or a tag in double quotes without escapes, like "1.0"); any other origins
# text is parsed as YAML (once per distinct text).
_ORIGIN_RESOLVED = re.compile(
    r"- resolved:\n(?:    tag: (?:([^\s\"'][^\n]*)|\"([^\"\\\n]*)\")\n)?"
    r"    url: ([^\s\"'][^\n]*)\n"
)
_ORIGIN_PRERESOLVED = re.compile(r"- preresolved:\n    url: ([^\s\"'][^\n]*)\n")


def _pins_from_written_lock(text: str) -> dict[str, ResolvedImage] | None:
    """The pins of a lock in exactly the form it would be written in, else None."""
    if not text.startswith(_LOCK_HEAD) or not text.endswith(_LOCK_TAIL):
        return None
    pos, end = len(_LOCK_HEAD), len(text) - len(_LOCK_TAIL)
    entries: list[LockEntry] = []
    try:
        while pos < end:
            m = _LOCK_ENTRY.match(text, pos, end)
            if m is None:
                return None
            pos = m.end()
            ref = Reference.parse(m["image"])
            if ref.digest is None:
                return None
            image = str(ref)
            raw = m["origins"]
            origins = _written_origins(raw.replace("\n      ", "\n")[6:]) if raw else ()
            entries.append(LockEntry(m["id"], image, origins))
    except LockresolveError:
        return None  # the strict reader says what is wrong
    if not entries or images_lock_text(entries) != text:
        return None
    return {e.id: ResolvedImage(e.image, e.origins) for e in entries}


def _written_origins(text: str) -> tuple[Mapping[str, object], ...]:
    """Origins from an annotation's text (as marshal writes them when the lock is checked)."""
    m = _ORIGIN_RESOLVED.fullmatch(text)
    if m is not None:
        plain, quoted, url = m.group(1, 2, 3)
        tag = plain if plain is not None else quoted  # "1.0": no escapes in it
        fields = {"url": url, "tag": tag} if tag is not None else {"url": url}
        origins: tuple[Mapping[str, object], ...] = ({"resolved": fields},)
    else:
        m = _ORIGIN_PRERESOLVED.fullmatch(text)
        if m is not None:
            origins = ({"preresolved": {"url": m.group(1)}},)
        else:
            origins = _parse_origins_cached(text, InputError)
    # No need to check here that marshal gives ``text`` back for these origins: the
    # caller's check that the whole lock is written back byte for byte covers it.
    return origins


@functools.lru_cache(maxsize=1024)
def _parse_origins_text(text: str) -> tuple[Mapping[str, object], ...] | str:
    """parse_origins, or its error message (cached: many entries share one text)."""
    try:
        return parse_origins(text, InputError)
    except InputError as exc:
        return exc.message


def _parse_origins_cached(
    text: str, fail: Callable[[str], Exception]
) -> tuple[Mapping[str, object], ...]:
    parsed = _parse_origins_text(text)
    if isinstance(parsed, str):
        raise fail(parsed)
    # copies: the cached records are shared, the caller's may be changed
    return tuple(origins_data(parsed))  # type: ignore[arg-type]
