"""Images written as fields of a map: kustomize ``images:`` and Helm values.

kbld's search rules find references written as one string. Two common
conventions split them into fields instead, and pin them with a ``digest``
field of their own:

* ``--kustomize``: each ``images:`` entry of a ``Kustomization`` or
  ``Component`` (``kustomize.config.k8s.io``) with a ``newTag`` is the
  reference ``(newName or name):newTag``; its ``digest`` field is the pin.
  Entries without ``newTag`` take their tag from the resources and are left
  alone.
* ``--helm-values``: any map with ``repository`` and ``tag`` keys whose
  values are scalars (``registry`` optional) is the reference
  ``[registry/]repository:tag``; the pin is a ``digest`` key written beside
  the tag. A map whose fields do not join into a valid reference (an empty or
  numeric tag, say) is an error naming the file and line. Maps whose
  ``repository`` or ``tag`` is itself a map or list (a JSON schema's
  ``properties``) are not images.

The reference is ``name:tag``; a digest already in the ``digest`` field is
its pin (:func:`field_pins`), so a pinned file costs no request and gives the
lock the same entry as the run that wrote the digest. Writing a digest edits
the original text (a new ``digest:`` line under the tag at its column, or the
existing value replaced in its quoting), and the result is parsed again: it
must read as the same data with only the ``digest`` fields set, else the run
fails instead of writing something else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from lockresolve.errors import InputError, InvalidReferenceError
from lockresolve.reference import Reference
from lockresolve.resolve.configmodel import Config
from lockresolve.resolve.documents import Resource
from lockresolve.resolve.godata import GoList, GoMap, copy_data, go_equal, to_data
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.walker import Occurrence
from lockresolve.resolve.yamlnodes import MappingNode, ScalarNode, compose

__all__ = [
    "HELM_VALUES",
    "KUSTOMIZE",
    "SplitImage",
    "field_pins",
    "find_split_images",
    "pin_split_images",
]

KUSTOMIZE = "kustomize"
HELM_VALUES = "helm-values"
_KUSTOMIZE_KINDS = frozenset({"Kustomization", "Component"})
_KUSTOMIZE_GROUP = "kustomize.config.k8s.io/"


@dataclass(frozen=True, eq=False)
class SplitImage:
    """One map that spells an image reference in fields."""

    reference: str  # the joined reference, ``name:tag`` (the digest field is not part of it)
    source: str
    line: int  # 1-based line of the map's tag field
    fields: GoMap  # the map, as decoded
    tag_key: str  # "newTag" or "tag": the digest is written under it
    written_digest: str | None  # the ``digest`` field, when set
    fixed: bool = False  # a digest inside the tag field: never rewritten

    @property
    def where(self) -> tuple[str, int]:
        return self.source, self.line

    @property
    def occurrence(self) -> Occurrence:
        return Occurrence(self.reference, self.source, self.line)


def _line(res: Resource, fields: GoMap, key: str) -> int:
    node = fields.key_nodes.get(key) or fields.node
    return res.line if node is None else res.line_offset + node.line + 1


def _string(fields: GoMap, key: str) -> str | None:
    value = fields.get(key)
    return value if isinstance(value, str) else None


def _is_kustomization(data: GoMap) -> bool:
    api = data.get("apiVersion")
    return (
        data.get("kind") in _KUSTOMIZE_KINDS
        and isinstance(api, str)
        and api.startswith(_KUSTOMIZE_GROUP)
    )


def _join(
    res: Resource,
    fields: GoMap,
    name: str,
    keys: tuple[str, str],
    registry: str | None = None,
) -> SplitImage:
    """The reference the fields spell; InputError when they do not spell one."""
    name_key, tag_key = keys
    line = _line(res, fields, tag_key)
    tag = fields.get(tag_key)
    if not isinstance(tag, str):
        raise InputError(
            f"the image's '{tag_key}' is not a string (quote it: a number would be read "
            f"as {tag!r})",
            res.source,
            line,
        )
    digest = fields.get("digest")
    if digest is not None and not isinstance(digest, str):
        raise InputError("the image's 'digest' is not a string", res.source, line)
    if not name or not tag:
        empty = name_key if not name else tag_key
        raise InputError(
            f"the image's '{empty}' is empty: cannot tell which image it is (left for "
            "the chart to fill in?)",
            res.source,
            line,
        )
    joined = f"{registry.rstrip('/')}/{name}" if registry else name
    joined += f":{tag}"
    try:
        ref = Reference.parse(joined + (f"@{digest}" if digest else ""))
    except InvalidReferenceError as exc:
        raise InputError(
            f"the image's fields do not join into a valid reference: {exc.reason}",
            res.source,
            line,
        ) from None
    if "@" in tag:  # ``tag: 1.2@sha256:…``: pinned inside the tag, nothing to write
        return SplitImage(joined, res.source, line, fields, tag_key, None, fixed=True)
    written = str(ref.digest) if ref.digest is not None else None
    return SplitImage(joined, res.source, line, fields, tag_key, written)


def _kustomize_images(res: Resource) -> Iterator[SplitImage]:
    if not _is_kustomization(res.data):
        return
    images = res.data.get("images")
    if not isinstance(images, GoList):
        return
    for entry in images:
        if not isinstance(entry, GoMap) or "newTag" not in entry:
            continue  # no tag of its own: kustomize takes the resource's
        key = "newName" if "newName" in entry else "name"
        name = entry.get(key)
        if not isinstance(name, str):
            raise InputError(
                f"the image's '{key}' is not a string", res.source, _line(res, entry, key)
            )
        yield _join(res, entry, name, (key, "newTag"))


def _maps(data: object) -> Iterator[GoMap]:
    """Every map in ``data``, in document order (explicit stack)."""
    work: list[object] = [data]
    seen: set[int] = set()
    while work:
        value = work.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, GoMap):
            yield value
            work.extend(reversed(list(value.values())))
        elif isinstance(value, GoList):
            work.extend(reversed(value))


def _helm_images(res: Resource) -> Iterator[SplitImage]:
    for fields in _maps(res.data):
        if "repository" not in fields or "tag" not in fields:
            continue
        if any(isinstance(fields.get(k), GoMap | GoList) for k in ("repository", "tag")):
            continue  # not the convention (a JSON schema's ``properties``, say)
        repository = fields.get("repository")
        registry = fields.get("registry")
        if not isinstance(repository, str) or not (registry is None or isinstance(registry, str)):
            which = "repository" if not isinstance(repository, str) else "registry"
            raise InputError(
                f"the image's '{which}' is not a string", res.source, _line(res, fields, which)
            )
        yield _join(res, fields, repository, ("repository", "tag"), registry or None)


def find_split_images(res: Resource, kinds: frozenset[str]) -> tuple[SplitImage, ...]:
    """The split images of one resource (whole documents only, not ``List`` items)."""
    if res.item or not kinds:
        return ()
    found: list[SplitImage] = []
    if KUSTOMIZE in kinds:
        found.extend(_kustomize_images(res))
    if HELM_VALUES in kinds and not (KUSTOMIZE in kinds and _is_kustomization(res.data)):
        found.extend(_helm_images(res))
    return tuple(found)


# --- writing the digest ------------------------------------------------------------------


def _digest_of(url: str) -> str:
    return url.rsplit("@", 1)[1]


def _line_end(text: str, pos: int) -> int:
    cut = text.find("\n", pos)
    return len(text) if cut < 0 else cut + 1


def _edit(res: Resource, image: SplitImage, digest: str) -> tuple[int, int, str]:
    """Where and what to write for ``digest``: (start, end, text)."""
    text = res.text
    nl = res.newline
    fields = image.fields
    where = (res.source, image.line)
    if "digest" in fields:
        node = fields.value_nodes["digest"]
        if not isinstance(node, ScalarNode) or node.anchor or node.tag or node.style in ("|", ">"):
            raise InputError("cannot rewrite this 'digest' value in place", *where)
        if node.start == node.end:  # ``digest:`` with no value
            return node.start, node.end, " " + digest if text[node.start - 1] == ":" else digest
        quote = node.style or ('"' if fields.node is not None and fields.node.flow else "")
        return node.start, node.end, f"{quote}{digest}{quote}"
    mapping = fields.node
    value = fields.value_nodes.get(image.tag_key)
    key = fields.key_nodes.get(image.tag_key)
    if mapping is None or value is None or key is None:
        raise InputError("cannot find where the tag is written", *where)
    if value.start < key.end:  # an alias: the value node is the anchored one, elsewhere
        raise InputError("cannot write 'digest:' beside a tag given by an alias", *where)
    if mapping.flow:
        return value.end, value.end, f', digest: "{digest}"'
    if "\n" in text[value.start : value.end] or not _starts_line(text, key.start):
        raise InputError("cannot write 'digest:' beside this tag (a multi-line tag?)", *where)
    pos = _line_end(text, value.end)
    line = " " * key.column + f"digest: {digest}" + nl
    if pos == len(text) and not text.endswith("\n"):
        line = nl + line.removesuffix(nl)
    return pos, pos, line


def _starts_line(text: str, start: int) -> bool:
    """Only indentation (or sequence dashes: ``- tag: 1``) before ``start`` on its line."""
    return not text[text.rfind("\n", 0, start) + 1 : start].strip(" -")


def pin_split_images(
    res: Resource, images: Sequence[SplitImage], resolved: Mapping[str, ResolvedImage]
) -> Resource:
    """``res`` with the digest of each image written; the same resource when none changes."""
    edits: dict[tuple[int, int], str] = {}
    expected = copy_data(res.data)
    for image in images:
        digest = _digest_of(resolved[image.reference].url)
        if image.fixed or image.written_digest == digest:
            continue  # the text says so already
        start, end, new = _edit(res, image, digest)
        # A map reached through an alias too is written once, in its anchored text.
        if edits.setdefault((start, end), new) != new:  # pragma: no cover - same map, same ref
            raise InputError("two images would write one place differently", *image.where)
        _set_digest(expected, res.data, image.fields, digest)
    if not edits:
        return res
    out: list[str] = []
    pos = 0
    for (start, end), new in sorted(edits.items()):
        out += [res.text[pos:start], new]
        pos = end
    out.append(res.text[pos:])
    text = "".join(out)
    try:
        root = compose(text, res.source, res.line_offset)
        data = to_data(root, res.source, res.line_offset) if root is not None else None
    except InputError:
        # The edited text, not the input, fails to parse: say so, not the parser's words.
        root = data = None
    if not isinstance(root, MappingNode) or not isinstance(data, GoMap):
        raise InputError("writing the digests broke the document", res.source, res.line)
    if not go_equal(data, expected):
        raise InputError(
            "writing the digests would change more than the 'digest' fields "
            "(an anchor or alias shared with other places?)",
            res.source,
            images[0].line,
        )
    return dataclasses.replace(res, text=text, span=(0, len(text)), node=root, data=data)


def _set_digest(copy: object, original: object, target: GoMap, digest: str) -> None:
    """Set ``digest`` in the copy of ``target`` inside ``copy`` (a copy of ``original``)."""
    work: list[tuple[object, object]] = [(copy, original)]
    while work:
        c, o = work.pop()
        if o is target and isinstance(c, dict):
            c["digest"] = digest
            return
        if isinstance(o, dict) and isinstance(c, dict):
            work.extend((c[k], v) for k, v in o.items() if k in c)
        elif isinstance(o, list) and isinstance(c, list):
            work.extend(zip(c, o, strict=False))


def field_pins(
    images: Sequence[SplitImage], config: Config, lock_pins: Mapping[str, ResolvedImage]
) -> dict[str, ResolvedImage]:
    """The pins the ``digest`` fields give, by joined reference.

    A written digest pins its reference as an entry of the existing lock would
    (``{resolved: {tag, url}}``, the url after any override), with these
    exceptions: a reference the lock pins is left to the lock (its digest is
    then written into the field); when a lock was read (``lock_pins`` not
    empty) a reference it does not know is resolved again (a tag edited by hand
    next to an old digest); and a ``preresolved`` override decides for itself.
    """
    pins: dict[str, ResolvedImage] = {}
    for image in images:
        ref = image.reference
        if image.written_digest is None or lock_pins or ref in pins:
            continue
        override = config.override_for(ref)
        if override is not None and (override.preresolved or override.tag_selection):
            continue  # the override decides (no tag of the field's to record)
        url = override.new_image if override is not None and override.new_image else ref
        try:
            target = Reference.parse(url)
        except InvalidReferenceError:
            continue  # the resolver reports it
        if target.digest is not None:
            continue
        pins[ref] = ResolvedImage(
            f"{target.context}@{image.written_digest}",
            ({"resolved": {"tag": target.effective_tag or "latest", "url": url}},),
        )
    return pins
