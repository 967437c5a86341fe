"""Values passed between the resolver engine and the pure parts of the resolver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["LockEntry", "ResolvedImage", "lock_entries", "preresolved_image"]


@dataclass(frozen=True)
class ResolvedImage:
    """What one reference (as written) resolved to.

    ``url`` is ``registry/repo@sha256:...``; ``origins`` are kbld's origin
    records, e.g. ``({"resolved": {"tag": "1.0", "url": "..."}},)``,
    ``({"preresolved": {"url": "..."}},)``, or a ``resolved`` followed by a
    ``platformSelected``. A reference already pinned by digest has none.
    """

    url: str
    origins: tuple[Mapping[str, object], ...] = ()


@dataclass(frozen=True)
class LockEntry:
    """One image of a lock file: the reference as written and what it resolved to."""

    id: str
    image: str
    origins: tuple[Mapping[str, object], ...] = ()


def lock_entries(resolved: Mapping[str, ResolvedImage]) -> list[LockEntry]:
    """Lock entries for every resolved reference, sorted by id as kbld does."""
    return [LockEntry(ref, img.url, img.origins) for ref, img in sorted(resolved.items())]


def preresolved_image(url: str, origins: Sequence[Mapping[str, object]] = ()) -> ResolvedImage:
    """A ``preresolved: true`` override's result (kbld ``PreresolvedImage``).

    The override's own origins (from an ImagesLock input) are kept and a
    ``preresolved`` origin for ``url`` is added unless one is already there.
    """
    for origin in origins:
        pre = origin.get("preresolved")
        if isinstance(pre, Mapping) and pre.get("url") == url:
            return ResolvedImage(url, tuple(origins))
    return ResolvedImage(url, (*origins, {"preresolved": {"url": url}}))
