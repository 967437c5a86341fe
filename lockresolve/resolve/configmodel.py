"""kbld configuration as frozen values: config kinds, search rules, overrides.

The parser that builds them from documents is :mod:`lockresolve.resolve.config`;
the lock writers in :mod:`lockresolve.lock` use these values without the parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lockresolve.resolve.imageref import url_repo

__all__ = [
    "DEFAULT_RULE",
    "ENTIRE_VALUE",
    "KBLD_VERSION",
    "Config",
    "Destination",
    "KeyMatcher",
    "Override",
    "PathIndex",
    "PathPart",
    "PlatformSelection",
    "SearchRule",
    "SemverSelection",
    "Source",
    "TagSelection",
    "UpdateStrategy",
    "ValueMatcher",
]

KBLD_VERSION = "0.42.0"
"""The kbld version lockresolve behaves as (``minimumRequiredVersion`` checks, lock output)."""


# --- values ------------------------------------------------------------------


@dataclass(frozen=True)
class PathIndex:
    """A sequence position in a ``keyMatcher.path``: ``{index: N}`` or ``{allIndexes: true}``."""

    index: int | None = None
    all_indexes: bool | None = None


PathPart = str | PathIndex


@dataclass(frozen=True)
class KeyMatcher:
    name: str = ""
    path: tuple[PathPart, ...] = ()


@dataclass(frozen=True)
class ValueMatcher:
    image: str = ""
    image_repo: str = ""


@dataclass(frozen=True)
class UpdateStrategy:
    """Which of kbld's strategies are set; :attr:`kind` is the one kbld applies."""

    none: bool = False
    entire_value: bool = False
    json: tuple[SearchRule, ...] | None = None
    yaml: tuple[SearchRule, ...] | None = None

    @property
    def kind(self) -> str:
        if self.none:
            return "none"
        if self.entire_value:
            return "entireValue"
        if self.json is not None:
            return "json"
        return "yaml"

    @property
    def nested_rules(self) -> tuple[SearchRule, ...]:
        if self.kind == "json":
            return self.json or ()
        if self.kind == "yaml":
            return self.yaml or ()
        return ()


ENTIRE_VALUE = UpdateStrategy(entire_value=True)


@dataclass(frozen=True)
class SearchRule:
    key_matcher: KeyMatcher | None = None
    value_matcher: ValueMatcher | None = None
    update_strategy: UpdateStrategy | None = None
    #: lockresolve's ``resourceMatchers`` (``resolve.matchers.ResourceMatcher``); empty:
    #: the rule applies in every resource, as kbld's
    resource_matchers: tuple[Any, ...] = ()

    @property
    def strategy(self) -> UpdateStrategy:
        return self.update_strategy or ENTIRE_VALUE


DEFAULT_RULE = SearchRule(key_matcher=KeyMatcher(name="image"))


@dataclass(frozen=True)
class SemverSelection:
    constraints: str = ""
    prerelease_identifiers: tuple[str, ...] | None = None
    """None: prereleases excluded; a tuple: allowed (empty tuple: every prerelease)."""


@dataclass(frozen=True)
class TagSelection:
    semver: SemverSelection | None = None


@dataclass(frozen=True)
class PlatformSelection:
    architecture: str = ""
    os: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    variant: str = ""
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Override:
    image: str = ""
    image_repo: str = ""
    new_image: str = ""
    preresolved: bool = False
    tag_selection: TagSelection | None = None
    platform_selection: PlatformSelection | None = None
    origins: tuple[Mapping[str, object], ...] = ()

    def matches(self, url: str) -> bool:
        return _matches(self.image, self.image_repo, url)


@dataclass(frozen=True)
class Source:
    """A build source (kept, never built by lockresolve)."""

    image: str = ""
    image_repo: str = ""
    path: str = ""
    builder: Mapping[str, object] = field(default_factory=dict)

    def matches(self, url: str) -> bool:
        return _matches(self.image, self.image_repo, url)


def _matches(image: str, image_repo: str, url: str) -> bool:
    """kbld's ``Matcher``: ``image`` exactly, else ``imageRepo`` against :func:`url_repo`."""
    return image == url if image else image_repo == url_repo(url)[0]


@dataclass(frozen=True)
class Destination:
    """A push destination (kept, never pushed to by lockresolve)."""

    image: str = ""
    image_repo: str = ""
    new_image: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """Everything the config documents of one run say, merged in input order."""

    minimum_required_version: str = ""
    sources: tuple[Source, ...] = ()
    overrides: tuple[Override, ...] = ()
    destinations: tuple[Destination, ...] = ()
    keys: tuple[str, ...] = ()
    search_rules: tuple[SearchRule, ...] = ()
    #: lockresolve's ``excludes:`` (shell-style patterns of references left alone)
    excludes: tuple[str, ...] = ()

    def merge(self, other: Config) -> Config:
        """This config followed by ``other`` (kbld keeps configs in input order)."""
        return Config(
            minimum_required_version=other.minimum_required_version
            or self.minimum_required_version,
            sources=self.sources + other.sources,
            overrides=self.overrides + other.overrides,
            destinations=self.destinations + other.destinations,
            keys=self.keys + other.keys,
            search_rules=self.search_rules + other.search_rules,
            excludes=self.excludes + other.excludes,
        )

    def override_for(self, url: str) -> Override | None:
        """The first override matching ``url`` (kbld ``shouldOverride``)."""
        return next((o for o in self.overrides if o.matches(url)), None)

    def source_for(self, url: str) -> Source | None:
        return next((s for s in self.sources if s.matches(url)), None)
