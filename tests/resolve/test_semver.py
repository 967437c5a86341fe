"""``tagSelection.semver``: vendir's relaxed versions over carvel-dev/semver ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockresolve.resolve.semver import SemverError, parse_range, parse_version, select_tag
from tests.resolve.pipeline import CONFORMANCE
from tests.support.cli import run_cli

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


# --- refusing what kbld refuses (issue 14) ----------------------------------------------
#
# Each message after "kbld:" was printed by the real kbld v0.42.0 (after its "Selecting
# versions: " prefix) for the same constraint over a registry holding 0.5.0, 1.0.0, 1.5.0,
# 2.0.0, v3.1.0 and 10.0.0; lockresolve gives the same text, refusing while it reads the
# configuration instead of after listing tags. A constraint shown with control characters
# has them escaped, so the message stays one line.

KBLD_REFUSES: dict[str, str] = {
    # Atoi: other scripts' digits are digits to unicode.IsDigit, not to Atoi
    ">\u0661.x": "Parsing version constraint '>\u0661.x': Could not get version from string: \">=\"",
    ">\u0662.x": "Parsing version constraint '>\u0662.x': Could not get version from string: \">=\"",
    # Atoi: no underscores, no whitespace, int64 only
    ">1_0.x": "Parsing version constraint '>1_0.x': Could not get version from string: \">=\"",
    ">1.\t5.x": "Parsing version constraint '>1.\\t5.x': Could not get version from string: \">=\"",
    ">9223372036854775808.x": "Parsing version constraint '>9223372036854775808.x': "
    'Could not get version from string: ">="',
    # int64 max + 1 wraps: the operator swallows the minus sign
    ">9223372036854775807.x": "Parsing version constraint '>9223372036854775807.x': "
    'Could not parse Range ">=-9223372036854775808.0.0": '
    'Could not parse comparator ">=-" in ">=-9223372036854775808.0.0"',
    # TrimSpace is Go's: U+001C is no space to Go (Python's strip removes it)
    "\x1c>=1.0.0": "Parsing version constraint '\\x1c>=1.0.0': "
    'Could not parse Range "\\x1c>=1.0.0": Could not parse comparator "\\x1c>=" in "\\x1c>=1.0.0"',
    "\u200b>=1.0.0": "Parsing version constraint '\\u200b>=1.0.0': "
    'Could not parse Range "\\u200b>=1.0.0": '
    'Could not parse comparator "\\u200b>=" in "\\u200b>=1.0.0"',
    # only a space splits: a tab stays inside the version
    ">=1.0.0\t<2.0.0": "Parsing version constraint '>=1.0.0\\t<2.0.0': "
    'Could not parse Range ">=1.0.0\\t<2.0.0": Could not parse version "1.0.0\\t<2.0.0" in '
    '">=1.0.0\\t<2.0.0": Invalid character(s) found in patch number "0\\t<2.0.0"',
    # splitting is byte-wise: a two-byte character is a part of its own
    ">=1.0.0 \u00e9": "Parsing version constraint '>=1.0.0 \u00e9': "
    'Could not get version from string: "\u00e9"',
    "\u0661.0.0": "Parsing version constraint '\u0661.0.0': "
    'Could not parse Range "\u0661.0.0": Could not parse version "\u0661.0.0" in "\u0661.0.0": '
    'Invalid character(s) found in major number "\u0661"',
    ">=18446744073709551616.0.0": "Parsing version constraint '>=18446744073709551616.0.0': "
    'Could not parse Range ">=18446744073709551616.0.0": Could not parse version '
    '"18446744073709551616.0.0" in ">=18446744073709551616.0.0": '
    'strconv.ParseUint: parsing "18446744073709551616": value out of range',
    "~1.0.0": "Parsing version constraint '~1.0.0': "
    'Could not parse Range "~1.0.0": Could not parse comparator "~" in "~1.0.0"',
    ">=01.0.0": "Parsing version constraint '>=01.0.0': Could not parse Range \">=01.0.0\": "
    'Could not parse version "01.0.0" in ">=01.0.0": '
    'Major number must not contain leading zeroes "01"',
    " ": "Parsing version constraint ' ': Last element in range is '||'",
    "1.0.0 || || ||": "Parsing version constraint '1.0.0 || || ||': Last element in range is '||'",
}

#: Where kbld does not refuse cleanly, lockresolve still refuses (one line each).
STRICTER_THAN_KBLD: dict[str, str] = {
    # kbld: an empty alternative is a nil range, a panic once a version below 1.0.0 reaches it
    ">=1.0.0 || || <2.0.0": "Empty alternative in range: '||' follows '||'",
    "1.0.0 || || <2.0.0 || || >3.0.0": "Empty alternative in range: '||' follows '||'",
    # kbld drops a one-byte part without a word: a lone "|" silently means AND
    ">=1.0.0 | <2.0.0": '"|" is not a comparator',
    ">=1.0.0 a": '"a" is not a comparator',
    "x >=1.0.0": '"x" is not a comparator',
    ">=1.0.0 <": '"<" is not a comparator',
}

KBLD_ACCEPTS: dict[str, str | None] = {
    "\t>=1.0.0": "10.0.0",  # TrimSpace removes Go's spaces before the operator
    "\xa0>=1.0.0": "10.0.0",
    "\x85>=1.0.0": "10.0.0",
    "\u2003>=1.0.0": "10.0.0",
    ">= 1.0.0": "10.0.0",
    "> 1.x": "10.0.0",
    ">1.+5.x": "10.0.0",  # Atoi takes a sign: >=1.6.0
    "<=1.x": "1.5.0",
    "<=1.x || >=2.x": "10.0.0",
}

SEEDED = ["1.0.0", "2.0.0", "1.5.0", "10.0.0", "v3.1.0", "latest", "0.5.0"]


@pytest.mark.parametrize("constraints", sorted(KBLD_REFUSES))
def test_refuses_what_kbld_refuses_with_its_message(constraints: str) -> None:
    with pytest.raises(SemverError) as caught:
        select_tag(SEEDED, constraints)
    assert str(caught.value) == KBLD_REFUSES[constraints]
    assert "\n" not in str(caught.value) and "\t" not in str(caught.value)


@pytest.mark.parametrize("constraints", sorted(STRICTER_THAN_KBLD))
def test_refuses_what_kbld_would_ignore_or_panic_on(constraints: str) -> None:
    with pytest.raises(SemverError) as caught:
        select_tag(SEEDED, constraints)
    assert str(caught.value) == (
        f"Parsing version constraint '{constraints}': {STRICTER_THAN_KBLD[constraints]}"
    )


@pytest.mark.parametrize("constraints", sorted(KBLD_ACCEPTS))
def test_selects_what_kbld_selects(constraints: str) -> None:
    assert select_tag(SEEDED, constraints) == KBLD_ACCEPTS[constraints]


@pytest.mark.parametrize(
    "constraints", [">=1.0.0 || || <2.0.0", ">\u0661.x", ">=1.0.0 \u00e9", "\x1c>=1.0.0"]
)
def test_cli_names_the_constraint_file_and_line(
    constraints: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Refused while reading the configuration: no registry is asked (none is running)."""
    path = tmp_path / "kbld.yml"
    path.write_text(
        "kind: Pod\nimage: app\n---\napiVersion: kbld.k14s.io/v1alpha1\nkind: Config\n"
        "overrides:\n- image: app\n  newImage: 127.0.0.1:9/app\n  tagSelection:\n"
        f"    semver:\n      constraints: {json.dumps(constraints)}\n",
        encoding="utf-8",
    )
    lock = tmp_path / "images.yml"
    code, out, err = run_cli(["-f", str(path), "--imgpkg-lock-output", str(lock)], capfd)
    assert code == 1
    assert out == ""
    assert not lock.exists()
    shown = constraints.replace("\x1c", "\\x1c")
    assert err == (
        f"lockresolve: error: {path}:11: Config overrides[0].tagSelection.semver.constraints: "
        f"Parsing version constraint '{shown}': "
        + (STRICTER_THAN_KBLD.get(constraints) or KBLD_REFUSES[constraints].split("': ", 1)[1])
        + "\n"
    )
