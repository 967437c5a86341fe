"""kbld's search rules: which values are image references.

The rule list is, in order (kbld ``Conf.SearchRules``): one ``keyMatcher.name``
rule per ``keys`` entry of every config, every ``searchRules`` entry of every
config, then the default ``{keyMatcher: {name: image}}``; exact duplicates
are dropped. The first rule whose matchers all match a value wins.

Matchers are small predicates over a value's *path* (map keys as strings,
sequence positions as ints) and the value itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lockresolve.resolve.configmodel import (
    DEFAULT_RULE,
    Config,
    KeyMatcher,
    PathPart,
    SearchRule,
    ValueMatcher,
)
from lockresolve.resolve.imageref import url_repo

__all__ = [
    "Path",
    "first_match",
    "key_matches",
    "path_part_matches",
    "rule_matches",
    "search_rules",
    "search_rules_without_defaults",
    "value_matches",
]

Path = tuple[str | int, ...]
"""Where a value sits: map keys (``str``) and sequence positions (``int``)."""


def _dedup(rules: Iterable[SearchRule]) -> tuple[SearchRule, ...]:
    out: list[SearchRule] = []
    for rule in rules:
        if rule not in out:
            out.append(rule)
    return tuple(out)


def search_rules_without_defaults(config: Config) -> tuple[SearchRule, ...]:
    """``keys`` as name rules, then ``searchRules`` (what ``--lock-output`` records)."""
    keys = (SearchRule(key_matcher=KeyMatcher(name=k)) for k in config.keys)
    return _dedup((*keys, *config.search_rules))


def search_rules(config: Config) -> tuple[SearchRule, ...]:
    """The rules kbld applies, default ``image`` rule last."""
    return _dedup((*search_rules_without_defaults(config), DEFAULT_RULE))


def path_part_matches(rule_part: PathPart, part: str | int) -> bool:
    """kbld ``PathPart.Matches``: ``{allIndexes}`` matches any index, whatever its value."""
    if isinstance(rule_part, str):
        return isinstance(part, str) and rule_part == part
    if not isinstance(part, int):
        return False
    if rule_part.index is not None:
        return rule_part.index == part
    return rule_part.all_indexes is not None


def key_matches(matcher: KeyMatcher, path: Path) -> bool:
    """``name``: the last path part is that map key; else ``path``: the whole path matches."""
    if matcher.name:
        return bool(path) and isinstance(path[-1], str) and path[-1] == matcher.name
    rule_path: Sequence[PathPart] = matcher.path
    return len(rule_path) == len(path) and all(
        path_part_matches(r, p) for r, p in zip(rule_path, path, strict=True)
    )


def value_matches(matcher: ValueMatcher, value: object) -> bool:
    """``image``: the value is that string; else ``imageRepo``: its repository part is."""
    if matcher.image:
        return isinstance(value, str) and value == matcher.image
    if not isinstance(value, str):
        return False
    repo, ok = url_repo(value)
    return ok and repo == matcher.image_repo


def rule_matches(rule: SearchRule, path: Path, value: object) -> bool:
    key_ok = rule.key_matcher is None or key_matches(rule.key_matcher, path)
    return key_ok and (rule.value_matcher is None or value_matches(rule.value_matcher, value))


def first_match(rules: Sequence[SearchRule], path: Path, value: object) -> SearchRule | None:
    return next((r for r in rules if rule_matches(r, path, value)), None)
