"""``resourceMatchers`` in ``searchRules`` (a lockresolve extension; kbld #182).

A search rule with ``resourceMatchers`` applies only inside resources that one
of them matches; a rule without applies everywhere, as in kbld. The matcher
vocabulary is kapp's (each entry names exactly one):

* ``allMatcher: {}``: every resource;
* ``anyMatcher: {matchers: [...]}``: one of them; ``andMatcher: {matchers: [...]}``:
  all of them; ``notMatcher: {matcher: {...}}``: not that one;
* ``apiVersionKindMatcher: {apiVersion, kind}``;
* ``kindNamespaceNameMatcher: {kind, namespace, name}`` (``namespace: ""`` for a
  resource without one);
* ``hasAnnotationMatcher: {keys: [...]}``: every key is an annotation.

The parser (with file and line for unknown matchers and fields) is in
:mod:`lockresolve.resolve.config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lockresolve.resolve.configmodel import SearchRule

__all__ = ["MATCHER_KINDS", "ResourceMatcher", "matcher_json", "rules_for"]

MATCHER_KINDS = (
    "allMatcher",
    "anyMatcher",
    "andMatcher",
    "notMatcher",
    "apiVersionKindMatcher",
    "kindNamespaceNameMatcher",
    "hasAnnotationMatcher",
)


@dataclass(frozen=True)
class ResourceMatcher:
    kind: str  # one of MATCHER_KINDS
    fields: tuple[tuple[str, str], ...] = ()  # apiVersion/kind/namespace/name as given
    keys: tuple[str, ...] = ()  # hasAnnotationMatcher
    children: tuple[ResourceMatcher, ...] = ()  # any/and: the list; not: one

    def matches(self, data: Mapping[str, object]) -> bool:
        if self.kind == "allMatcher":
            return True
        if self.kind == "anyMatcher":
            return any(m.matches(data) for m in self.children)
        if self.kind == "andMatcher":
            return all(m.matches(data) for m in self.children)
        if self.kind == "notMatcher":
            return not self.children[0].matches(data)
        meta = data.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        if self.kind == "hasAnnotationMatcher":
            anns = meta.get("annotations")
            return isinstance(anns, Mapping) and all(k in anns for k in self.keys)
        have = {
            "apiVersion": data.get("apiVersion"),
            "kind": data.get("kind"),
            "namespace": meta.get("namespace") or "",
            "name": meta.get("name"),
        }
        return all(have[k] == v for k, v in self.fields)


def matcher_json(m: ResourceMatcher) -> dict[str, object]:
    """A matcher as it is written (for the kbld Config lock's ``searchRules``)."""
    body: dict[str, object] = dict(m.fields)
    if m.kind == "hasAnnotationMatcher":
        body["keys"] = list(m.keys)
    elif m.kind in ("anyMatcher", "andMatcher"):
        body["matchers"] = [matcher_json(c) for c in m.children]
    elif m.kind == "notMatcher":
        body["matcher"] = matcher_json(m.children[0])
    return {m.kind: body}


def rules_for(rules: Sequence[SearchRule], data: object) -> Sequence[SearchRule]:
    """The rules that apply inside a resource with ``data`` (all of them when none has
    ``resourceMatchers``)."""
    if not any(r.resource_matchers for r in rules):
        return rules
    assert isinstance(data, Mapping)
    return tuple(
        r
        for r in rules
        if not r.resource_matchers or any(m.matches(data) for m in r.resource_matchers)
    )
