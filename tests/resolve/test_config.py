"""kbld config documents: parsing, kbld's coercions and validation errors with file:line."""

from __future__ import annotations

import pytest

from lockresolve.errors import ConfigError
from lockresolve.resolve.config import load_config
from lockresolve.resolve.configmodel import (
    Config,
    KeyMatcher,
    Override,
    PathIndex,
    SearchRule,
    UpdateStrategy,
    ValueMatcher,
)
from lockresolve.resolve.documents import parse_source
from lockresolve.resolve.rules import search_rules, search_rules_without_defaults

HEAD = "apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\n"


def config(text: str) -> Config:
    return load_config(parse_source("kbld.yml", text).configs)


def test_overrides() -> None:
    c = config(
        HEAD
        + "overrides:\n"
        + "- image: app\n  newImage: reg.io/app\n  tagSelection:\n    semver:\n"
        + "      constraints: '>=1.0.0'\n      prereleases: {identifiers: [rc]}\n"
        + "- imageRepo: docker.io/x\n  newImage: reg.io/x@sha256:"
        + "a" * 64
        + "\n  preresolved: true\n"
        + "- image: multi\n  newImage: reg.io/m\n  platformSelection: {os: linux, architecture: arm64, variant: v8}\n"
    )
    first, second, third = c.overrides
    assert first.tag_selection is not None and first.tag_selection.semver is not None
    assert first.tag_selection.semver.constraints == ">=1.0.0"
    assert first.tag_selection.semver.prerelease_identifiers == ("rc",)
    assert second.preresolved and second.image_repo == "docker.io/x"
    assert third.platform_selection is not None and third.platform_selection.variant == "v8"
    assert c.override_for("docker.io/x:1") is second, "imageRepo matches the written repository"
    assert c.override_for("x:1") is None, "no normalisation for imageRepo"
    assert c.override_for("app") is first


def test_prereleases_without_identifiers_allow_all() -> None:
    c = config(
        HEAD + "overrides:\n- {image: a, newImage: b, tagSelection: {semver: {prereleases: {}}}}\n"
    )
    sel = c.overrides[0].tag_selection
    assert sel is not None and sel.semver is not None and sel.semver.prerelease_identifiers == ()


def test_search_rules_and_keys_order() -> None:
    c = config(
        "apiVersion: kbld.k14s.io/v1alpha1\nkind: ImageKeys\nkeys: [sidecarImage]\n---\n"
        + HEAD
        + "keys: [other]\n"
        + "searchRules:\n"
        + "- keyMatcher: {path: [spec, {allIndexes: true}, {index: 0}, ref]}\n"
        + "- valueMatcher: {imageRepo: reg.io/d}\n  updateStrategy: {none: {}}\n"
        + "- keyMatcher: {name: cfg}\n  updateStrategy: {json: {searchRules: [{keyMatcher: {name: img}}]}}\n"
        + "- keyMatcher: {name: sidecarImage}\n"
    )
    rules = search_rules(c)
    assert rules[0] == SearchRule(KeyMatcher(name="sidecarImage"))
    assert rules[1] == SearchRule(KeyMatcher(name="other"))
    assert rules[2].key_matcher == KeyMatcher(
        path=("spec", PathIndex(all_indexes=True), PathIndex(index=0), "ref")
    )
    assert rules[3].value_matcher == ValueMatcher(image_repo="reg.io/d")
    assert rules[3].strategy == UpdateStrategy(none=True)
    assert rules[4].strategy.kind == "json"
    assert rules[4].strategy.nested_rules == (SearchRule(KeyMatcher(name="img")),)
    assert rules[-1] == SearchRule(KeyMatcher(name="image")), "the default comes last"
    assert len(rules) == 6, "the repeated sidecarImage rule is deduplicated"
    assert len(search_rules_without_defaults(c)) == 5


def test_go_string_coercions() -> None:
    c = config(HEAD + "overrides:\n- {image: 1.10, newImage: 2, preresolved: yes}\nkeys: [true]\n")
    assert c.overrides[0] == Override(image="1.1", new_image="2", preresolved=True)
    assert c.keys == ("true",)


def test_case_insensitive_field_names() -> None:
    c = config(HEAD + "overrides:\n- {Image: a, NEWIMAGE: b}\n")
    assert c.overrides[0].new_image == "b"


def test_sources_and_destinations_are_kept() -> None:
    c = config(
        HEAD
        + "sources:\n- image: app\n  path: src\n  docker: {buildx: {pull: true}}\n"
        + "destinations:\n- image: app\n- imageRepo: r\n  newImage: reg.io/r\n  tags: [latest]\n"
    )
    assert c.sources[0].path == "src" and c.sources[0].builder == {
        "docker": {"buildx": {"pull": True}}
    }
    assert c.source_for("app") is c.sources[0]
    assert c.destinations[0].new_image == "app", "newImage defaults to image"
    assert c.destinations[1].tags == ("latest",)


def test_images_lock_becomes_preresolved_overrides() -> None:
    digest = "reg.io/app@sha256:" + "b" * 64
    c = config(
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n"
        f"- image: {digest}\n  annotations:\n    kbld.carvel.dev/id: a:1\n"
        '    kbld.carvel.dev/origins: |\n      - resolved:\n          tag: "1"\n          url: a:1\n'
        "- image: ubuntu@sha256:" + "c" * 64 + "\n  annotations: {kbld.carvel.dev/id: ubuntu}\n"
    )
    first, second = c.overrides
    assert first == Override(
        image="a:1",
        new_image=digest,
        preresolved=True,
        origins=({"resolved": {"url": "a:1", "tag": "1"}},),
    )
    assert second.new_image == "index.docker.io/library/ubuntu@sha256:" + "c" * 64, (
        "normalised as imgpkg does"
    )


BAD = [
    ("overrides:\n- image: a\n", 4, "Expected NewImage to be non-empty"),
    ("overrides:\n- newImage: a\n", 4, "Expected Image or ImageRepo to be non-empty"),
    (
        "overrides:\n- image: a\n  newImage: b\n  preresolve: true\n",
        6,
        "unknown field 'preresolve'",
    ),
    ("overrides:\n- image: a\n  newImage: [b]\n", 5, "expected a string, got a list"),
    ("overrides:\n- image: a\n  newImage: b\n  preresolved: 'true'\n", 6, "expected true or false"),
    ("overrides: {}\n", 3, "expected a list, got a map"),
    ("keys: sidecar\n", 3, "expected a list, got a string"),
    ("keys: ['']\n", 3, "Expected to be non-empty"),
    ("searchRules:\n- updateStrategy: {none: {}}\n", 4, "Expected KeyMatcher or ValueMatcher"),
    ("searchRules:\n- keyMatcher: {}\n", 4, "Expected KeyMatcher.Name or KeyMatcher.Path"),
    (
        "searchRules:\n- valueMatcher: {}\n",
        4,
        "Expected ValueMatcher.Image or ValueMatcher.ImageRepo",
    ),
    ("searchRules:\n- keyMatcher: {name: a}\n  updateStrategy: {}\n", 5, "expected one of none"),
    ("searchRules:\n- keyMatcher:\n    path: [a, 0]\n", 5, "Unknown path part"),
    ("searchRules:\n- keyMatcher: {path: [{index: x}]}\n", 4, "expected an integer"),
    ("minimumRequiredVersion: v0.1.0\n", 3, "Must not have prefix 'v'"),
    ("minimumRequiredVersion: 0.43.0\n", 3, "does not meet the minimum required version '0.43.0'"),
    ("minimumRequiredVersion: junk\n", 3, "Malformed constraint"),
    ("sources:\n- image: a\n", 4, "Expected Path to be non-empty"),
    ("extra: 1\n", 3, "unknown field 'extra'"),
]


@pytest.mark.parametrize(("body", "line", "message"), BAD)
def test_invalid_configs(body: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(HEAD + body)
    exc = caught.value
    assert exc.source == "kbld.yml" and exc.line == line
    assert message in str(exc) and "\n" not in str(exc)


def test_minimum_version_accepts_older_and_equal() -> None:
    assert config(HEAD + "minimumRequiredVersion: 0.15.0\n").minimum_required_version == "0.15.0"
    assert config(HEAD + "minimumRequiredVersion: 0.42.0\n").minimum_required_version == "0.42.0"


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        (
            "images:\n- image: reg.io/a:1\n  annotations: {kbld.carvel.dev/id: a}\n",
            "Expected ref to be in digest form",
        ),
        (
            "images:\n- image: reg.io/app@sha256:" + "a" * 64 + "\n",
            "no kbld.carvel.dev/id annotation",
        ),
        ("images: []\nextra: 1\n", 'unknown field "extra"'),
    ],
)
def test_invalid_images_lock_inputs(lock: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config("apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n" + lock)
