"""``tagSelection.semver``: vendir's relaxed versions over carvel-dev/semver ranges."""

from __future__ import annotations

import json

import pytest

from lockresolve.resolve.semver import SemverError, parse_range, parse_version, select_tag
from tests.resolve.pipeline import CONFORMANCE

TAGS = [
    "latest",
    "1.0.0",
    "1.9.0",
    "1.10.1",
    "2.0.0",
    "v2.1.0",
    "3.1.0-rc.1",
    "1.2",
    "01.2.3",
    "sha-abc",
]


@pytest.mark.parametrize(
    ("constraints", "prereleases", "expected"),
    [
        (">=1.0.0 <2.0.0", None, "1.10.1"),  # numeric, not lexical, order (r08)
        ("", None, "v2.1.0"),  # no constraint: the highest; the tag is returned as written
        (">= 1.0.0 < 2.0.0", None, "1.10.1"),  # spaces after an operator are allowed
        ("<2.0.0 || >=2.1.0", None, "v2.1.0"),
        (">=1.0.0 <2.0.0 || 3.x", None, "1.10.1"),
        (">=1.0.0 <2.0.0 || 3.x", (), "3.1.0-rc.1"),  # prereleases allowed: all of them
        ("3.x", None, None),  # the only 3.x is a prerelease
        ("3.x", ("beta",), None),  # identifier filter
        ("3.x", ("rc",), "3.1.0-rc.1"),
        ("3.0.x", ("rc",), "3.1.0-rc.1"),  # "<3.1.0" admits 3.1.0's prereleases
        ("1.x", None, "1.10.1"),
        ("1.9.x", None, "1.9.0"),
        ("<=1.9.x", None, "1.9.0"),
        (">1.x", None, "v2.1.0"),
        ("<1.x", None, None),
        ("!=2.x", None, None),  # blang/semver puts "<2.0.0" and ">=3.0.0" in one AND group
        ("=1.0.0", None, "1.0.0"),
        ("==1.0.0", None, "1.0.0"),
        ("1.0.0", None, "1.0.0"),
        ("!1.10.1 <2.0.0", None, "1.9.0"),
        ("!=1.10.1 <2.0.0", None, "1.9.0"),
        (">2.1.0", None, None),
        (">=2.1.0", None, "v2.1.0"),  # the leading v is dropped for comparison
    ],
)
def test_select_tag(
    constraints: str, prereleases: tuple[str, ...] | None, expected: str | None
) -> None:
    assert select_tag(TAGS, constraints, prereleases) == expected


def test_unparsable_tags_are_ignored() -> None:
    assert select_tag(["1.2", "01.2.3", "1.2.3.4", "v", "vv1.0.0", "1.0.0-01"], "") is None


def test_build_metadata_takes_part_in_the_order() -> None:
    assert select_tag(["1.0.0+b", "1.0.0+a", "1.0.0"], "") == "1.0.0+b"


def test_equal_versions_the_last_listed_wins() -> None:
    assert select_tag(["v1.0.0", "1.0.0"], "") == "1.0.0"
    assert select_tag(["1.0.0", "v1.0.0"], "") == "v1.0.0"


def test_prerelease_order() -> None:
    tags = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1"]
    assert select_tag(tags, "", ()) == "1.0.0-rc.1"
    assert select_tag(tags, "", ("beta",)) == "1.0.0-beta.11"
    assert select_tag([*tags, "1.0.0"], "", ()) == "1.0.0"


@pytest.mark.parametrize(
    "constraints", ["foo", "~1.2.3", "^1.0.0", "1.2", ">=1.0.0 ||", "|| 1.0.0", ">>1.0.0"]
)
def test_bad_constraints_raise(constraints: str) -> None:
    with pytest.raises(SemverError, match="Parsing version constraint"):
        select_tag(["1.0.0"], constraints)


def test_parse_version_is_strict() -> None:
    v = parse_version("1.2.3-rc.1+build.5")
    assert (v.major, v.minor, v.patch) == (1, 2, 3)
    assert [p.text for p in v.pre] == ["rc", "1"]
    for bad in ["1.2", "v1.2.3", "1.02.3", "1.2.3-01", "1.2.3-", "1.2.3+", "1.2.3-a_b"]:
        with pytest.raises(SemverError):
            parse_version(bad)


def test_range_predicate() -> None:
    check = parse_range(">1.0.0 <3.0.0 !2.0.3-beta.2")
    assert check(parse_version("2.0.3-beta.1"))
    assert not check(parse_version("2.0.3-beta.2"))
    assert not check(parse_version("1.0.0"))


def test_r08_seeded_tags() -> None:
    """The tags r08 seeds into the registry, and r08's constraint: kbld picked 1.10.1."""
    seed = json.loads((CONFORMANCE / "r08-tag-selection" / "seed.json").read_text())
    tags = [i["reference"] for i in seed if i["put"] == "manifest" and i["repo"] == "conf/r08/app"]
    assert select_tag(tags, ">=1.0.0 <2.0.0") == "1.10.1"
    assert select_tag(tags, "") == "2.0.0"
    assert select_tag(tags, "", ()) == "2.1.0-rc.1"
