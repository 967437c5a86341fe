"""The ``kbld.k14s.io/images`` annotation: its value, and where kbld puts it in the data."""

from __future__ import annotations

from collections.abc import Iterable

from lockresolve.goyaml import marshal
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.origins import origins_data

__all__ = ["IMAGES_ANNOTATION", "annotate_data", "annotation_value"]

IMAGES_ANNOTATION = "kbld.k14s.io/images"


def annotation_value(images: Iterable[ResolvedImage]) -> str:
    """The ``kbld.k14s.io/images`` value: ``{origins, url}`` sorted by url, as kbld marshals it.

    Images without origins (references already pinned by digest) and exact
    duplicates are left out; when nothing is left kbld writes ``null``.
    """
    structs: list[dict[str, object]] = []
    for image in sorted(images, key=lambda i: i.url):
        if not image.origins:
            continue
        entry: dict[str, object] = {"origins": origins_data(image.origins), "url": image.url}
        if entry not in structs:
            structs.append(entry)
    return marshal(structs if structs else None)


def annotate_data(data: dict[str, object], value: str) -> None:
    """kbld: ``SetAnnotations(GetAnnotations() + images)`` with apimachinery's quirks.

    A ``metadata`` that is not a map is left alone (the setter fails silently);
    ``annotations`` that are not a map of strings are replaced entirely.
    """
    meta = data.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return
    anns = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(anns, dict) and all(isinstance(v, str) for v in anns.values()):
        new: dict[str, object] = dict(anns)
    else:
        new = {}
    new[IMAGES_ANNOTATION] = value
    if not isinstance(meta, dict):
        meta = {}
        data["metadata"] = meta
    meta["annotations"] = new
