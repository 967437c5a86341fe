"""``--keep-tag``: write ``repo:tag@sha256:…`` in the documents instead of ``repo@sha256:…``.

A lockresolve extension (kbld #309; kustomize and kpt ask for the same): the
digest still decides what is pulled, and a reader sees which tag it came from.
Only the documents change (the image values and the ``kbld.k14s.io/images``
annotation's ``url``, which records the value written); the locks keep kbld's
``repo@sha256:…`` bytes.

The tag is the one that was resolved: the ``resolved`` origin's tag (the tag as
written, ``latest`` for a reference without one, or the tag a
``tagSelection`` picked), else the tag written beside a digest in the
reference itself (``app:1.0@sha256:…``). An image with neither (a
``preresolved`` override, ``app@sha256:…``) is written as it is.
"""

from __future__ import annotations

from collections.abc import Mapping

from lockresolve.errors import InvalidReferenceError
from lockresolve.reference import Reference
from lockresolve.resolve.model import ResolvedImage

__all__ = ["tagged_image"]


def _resolved_tag(image: ResolvedImage) -> str | None:
    for origin in image.origins:
        resolved = origin.get("resolved")
        if isinstance(resolved, Mapping):
            tag = resolved.get("tag")
            if isinstance(tag, str) and tag:
                return tag
    return None


def tagged_image(written: str, image: ResolvedImage) -> ResolvedImage:
    """``image`` with its tag written beside the digest, when it has one to keep."""
    try:
        pinned = Reference.parse(image.url)
    except InvalidReferenceError:
        return image
    if pinned.digest is None or pinned.tag is not None:
        return image
    tag = _resolved_tag(image)
    if tag is None:
        try:
            ref = Reference.parse(written)
        except InvalidReferenceError:
            return image
        if ref.tag is None or ref.digest != pinned.digest or ref.context != pinned.context:
            return image
        tag = ref.tag
    base, _, digest = image.url.partition("@")
    return ResolvedImage(f"{base}:{tag}@{digest}", image.origins)
