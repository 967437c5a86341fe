"""References split into fields: kustomize ``images:`` and Helm-style values maps.

Lockresolve extensions, each behind its flag (without it the output is kbld's):

* ``--kustomize``: every ``images:`` entry of a ``kustomize.config.k8s.io``
  ``Kustomization`` or ``Component`` (``name``, ``newName``, ``newTag``,
  ``digest``) is the reference ``(newName or name):newTag``; it is resolved like
  any reference and pinned by writing the entry's ``digest:`` (renovate #8089).
  An entry with a ``digest`` already is pinned by it (no request); one with
  neither ``newTag`` nor ``digest`` takes its tag from the resources and is left
  alone.
* ``--helm-values``: every map (under any key) with ``repository`` and ``tag``,
  optionally ``registry`` and ``digest``, is ``[registry/]repository:tag``
  (``@digest`` when one is set) and gets ``digest: sha256:…`` beside its tag
  (renovate #10993, #24942). A map that does not join into a valid reference
  (a tag that is not a string, an empty tag) is a failure naming it, never a
  guess.

The digest is spliced into the text (comments, quoting, CRLF kept: a new
``digest:`` line after the map's last entry, or ``, digest: …`` before a flow
map's ``}``); the result is parsed again and must hold exactly the expected
data, or the resource is written as kbld writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lockresolve.errors import InputError, InvalidReferenceError
from lockresolve.goyaml import marshal
from lockresolve.reference import Reference
from lockresolve.resolve.documents import Resource, parse_source
from lockresolve.resolve.godata import GoList, GoMap, copy_data, go_equal
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.yamlnodes import MappingNode, ScalarNode

__all__ = ["FieldRef", "Unjoinable", "add_digests", "field_refs"]

PathKey = str | int


@dataclass(frozen=True)
class FieldRef:
    """A map in a resource that spells a reference in fields."""

    path: tuple[PathKey, ...]  # from the resource's data to the map
    written: str  # the joined reference (what is resolved, and the lock's id)
    line: int


@dataclass(frozen=True)
class Unjoinable:
    """A map shaped like an image that does not join into a reference."""

    name: str  # how the failure names it: where the map is (``image``, ``images[0]``)
    reason: str
    line: int


def _line(res: Resource, m: GoMap) -> int:
    return res.line if m.node is None else res.line_offset + m.node.line + 1


def _kustomize(res: Resource) -> list[FieldRef | Unjoinable]:
    data = res.data
    api = data.get("apiVersion")
    if data.get("kind") not in ("Kustomization", "Component") or not (
        isinstance(api, str) and api.startswith("kustomize.config.k8s.io/")
    ):
        return []
    images = data.get("images")
    if not isinstance(images, GoList):
        return []
    found: list[FieldRef | Unjoinable] = []
    for i, entry in enumerate(images):
        if not isinstance(entry, GoMap):
            continue
        name = entry.get("newName") or entry.get("name")
        tag, digest = entry.get("newTag"), entry.get("digest")
        if not isinstance(name, str) or (tag is None and digest is None):
            continue
        found.append(_join(res, ("images", i), entry, "", name, tag, digest, f"images[{i}]"))
    return found


def _helm(res: Resource) -> list[FieldRef | Unjoinable]:
    found: list[FieldRef | Unjoinable] = []
    work: list[tuple[object, tuple[PathKey, ...]]] = [(res.data, ())]
    while work:
        value, path = work.pop()
        if isinstance(value, GoMap):
            if "repository" in value and "tag" in value:
                where = ".".join(str(p) for p in path) or "(top level)"
                found.append(
                    _join(
                        res,
                        path,
                        value,
                        value.get("registry"),
                        value.get("repository"),
                        value.get("tag"),
                        value.get("digest"),
                        where,
                    )
                )
                continue
            work.extend((v, (*path, k)) for k, v in reversed(list(value.items())))
        elif isinstance(value, GoList):
            work.extend((v, (*path, i)) for i, v in reversed(list(enumerate(value))))
    return found


def _join(
    res: Resource,
    path: tuple[PathKey, ...],
    m: GoMap,
    registry: object,
    repository: object,
    tag: object,
    digest: object,
    where: str,
) -> FieldRef | Unjoinable:
    line = _line(res, m)

    def bad(reason: str) -> Unjoinable:
        return Unjoinable(where, reason, line)

    for field, value in (("registry", registry), ("repository", repository)):
        if value is not None and not isinstance(value, str):
            return bad(f"{field} is not a string")
    if tag is not None and (not isinstance(tag, str) or not tag):
        return bad('tag is not a non-empty string (quote it: tag: "1.10")')
    if digest is not None and not isinstance(digest, str):
        return bad("digest is not a string")
    assert isinstance(repository, str)
    text = f"{registry}/{repository}" if registry else repository
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    try:
        Reference.parse(text)
    except InvalidReferenceError as exc:
        return bad(f"'{text}' is not an image reference: {exc.reason}")
    return FieldRef(path, text, line)


def field_refs(res: Resource, *, kustomize: bool, helm: bool) -> list[FieldRef | Unjoinable]:
    """The split references of ``res`` the flags ask for, in document order."""
    found: list[FieldRef | Unjoinable] = []
    if kustomize:
        found += _kustomize(res)
    if helm:
        found += _helm(res)
    return found


# --- writing the digests -------------------------------------------------------------


def _at(data: object, path: Sequence[PathKey]) -> GoMap:
    for key in path:
        data = data[key]  # type: ignore[index]
    assert isinstance(data, GoMap)
    return data


def _digest_of(image: ResolvedImage) -> str:
    return image.url.partition("@")[2]


def add_digests(
    rendered: str,
    source: str,
    refs: Sequence[FieldRef],
    resolved: Mapping[str, ResolvedImage],
) -> str:
    """``rendered`` (``---`` + a resource's output) with each map's ``digest`` written."""
    nl = "\r\n" if rendered.startswith("---\r\n") else "\n"
    head, body = rendered[: 3 + len(nl)], rendered[3 + len(nl) :]
    (res,) = parse_source(source, body).resources
    expected = copy_data(res.data)
    edits: list[tuple[int, int, str]] = []
    for ref in refs:
        digest = _digest_of(resolved[ref.written])
        target = _at(res.data, ref.path)
        _at(expected, ref.path)["digest"] = digest
        node = target.node
        if node is None:
            return head + _marshal(expected, nl)
        if "digest" in target:
            old = target.value_nodes["digest"]
            if not isinstance(old, ScalarNode) or old.start >= old.end:
                return head + _marshal(expected, nl)
            edits.append((old.start, old.end, digest))
        else:
            edit = _insertion(body, node, digest, nl)
            if edit is None:
                return head + _marshal(expected, nl)
            edits.append(edit)
    out, pos = [], 0
    for start, end, text in sorted(edits):
        if start < pos:
            return head + _marshal(expected, nl)
        out += [body[pos:start], text]
        pos = end
    out.append(body[pos:])
    new = "".join(out)
    try:
        (check,) = parse_source(source, new).resources
    except (InputError, ValueError):
        return head + _marshal(expected, nl)
    return head + (new if go_equal(check.data, expected) else _marshal(expected, nl))


def _insertion(text: str, node: MappingNode, digest: str, nl: str) -> tuple[int, int, str] | None:
    if node.flow:
        close = node.end - 1
        if close < 0 or text[close] != "}":
            return None
        return (close, close, f", digest: {digest}" if node.pairs else f"digest: {digest}")
    if not node.pairs:
        return None
    keys = [k for k, _ in node.pairs]
    col = keys[-1].column
    if any(k.column != col for k in keys):
        return None
    # after the last entry's line (block values end at the next line's start)
    last = node.pairs[-1][1]
    end = last.end
    if end > 0 and text[end - 1] != "\n":
        cut = text.find("\n", end)
        end = len(text) if cut < 0 else cut + 1
    prefix = "" if end == 0 or text[end - 1] == "\n" else nl
    return (end, end, f"{prefix}{' ' * col}digest: {digest}{nl}")


def _marshal(data: object, nl: str) -> str:
    text = marshal(data)
    return text.replace("\n", nl) if nl != "\n" else text
