"""kbld's ``tagSelection.semver``: vendir's relaxed semver over ``carvel-dev/semver``.

Exactly the vendored code paths of kbld v0.42.0:

* a tag is a version if, after dropping one leading ``v``, it parses as
  strict ``MAJOR.MINOR.PATCH[-pre][+build]`` (no leading zeros, ``1.2`` is not
  a version); other tags are ignored;
* prereleases are dropped unless ``prereleases`` is configured; with
  ``identifiers`` only prereleases with one of those parts are kept;
* constraints use blang/semver's range syntax: space-separated comparators
  (``>=1.0.0 <2.0.0``), ``||`` alternatives, ``1.x`` / ``1.2.x`` wildcards,
  operators ``= == != ! > >= < <=``;
* the highest version wins (build metadata takes part in the ordering, as in
  the carvel-dev fork); among equal versions the last tag listed wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lockresolve.resolve.gostr import GoSyntaxError, atoi, increment_int, quote, trim_space

__all__ = [
    "SemverError",
    "Version",
    "check_constraints",
    "parse_range",
    "parse_version",
    "select_tag",
    "tag_satisfies",
]

_NUMBERS = frozenset("0123456789")
_ALPHANUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789")
_UINT64_MAX = (1 << 64) - 1


class SemverError(ValueError):
    """A version or constraint that does not parse."""


@dataclass(frozen=True)
class _Part:
    text: str
    number: int
    is_num: bool

    def compare(self, other: _Part) -> int:
        if self.is_num and not other.is_num:
            return -1
        if not self.is_num and other.is_num:
            return 1
        if self.is_num:
            return (self.number > other.number) - (self.number < other.number)
        return (self.text > other.text) - (self.text < other.text)


def _parts_compare(a: tuple[_Part, ...], b: tuple[_Part, ...], empty_is_greater: bool) -> int:
    if not a and not b:
        return 0
    if not a:
        return 1 if empty_is_greater else -1
    if not b:
        return -1 if empty_is_greater else 1
    for x, y in zip(a, b, strict=False):
        c = x.compare(y)
        if c:
            return c
    return (len(a) > len(b)) - (len(a) < len(b))


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[_Part, ...] = ()
    build: tuple[_Part, ...] = ()

    def compare(self, other: Version) -> int:
        for x, y in (
            (self.major, other.major),
            (self.minor, other.minor),
            (self.patch, other.patch),
        ):
            if x != y:
                return 1 if x > y else -1
        c = _parts_compare(self.pre, other.pre, empty_is_greater=True)
        if c:
            return c
        return _parts_compare(self.build, other.build, empty_is_greater=False)


def _only(s: str, charset: frozenset[str]) -> bool:
    return all(c in charset for c in s)


def _parse_uint(s: str) -> int:
    """``strconv.ParseUint(s, 10, 64)`` on text already known to be ASCII digits."""
    if not s:
        raise SemverError('strconv.ParseUint: parsing "": invalid syntax')
    value = int(s)
    if value > _UINT64_MAX:
        raise SemverError(f"strconv.ParseUint: parsing {quote(s)}: value out of range")
    return value


def _uint(s: str, what: str) -> int:
    if not _only(s, _NUMBERS):
        raise SemverError(f"Invalid character(s) found in {what} {quote(s)}")
    if len(s) > 1 and s[0] == "0":
        raise SemverError(f"{what.capitalize()} must not contain leading zeroes {quote(s)}")
    return _parse_uint(s)


def _extension(s: str, what: str, check_leading_zero: bool) -> _Part:
    if not s:
        raise SemverError(f"{what} is empty")
    if _only(s, _NUMBERS):
        value = _parse_uint(s)
        if check_leading_zero and len(s) > 1 and s[0] == "0":
            raise SemverError(
                f"Numeric PreRelease version must not contain leading zeroes {quote(s)}"
            )
        return _Part(s, value, True)
    if _only(s, _ALPHANUM):
        return _Part(s, 0, False)
    raise SemverError(f"Invalid character(s) found in {what} {quote(s)}")


def parse_version(s: str) -> Version:
    """Strict semver, as ``semver.Parse`` of carvel-dev/semver v4."""
    if not s:
        raise SemverError("Version string empty")
    parts = s.split(".", 2)
    if len(parts) != 3:
        raise SemverError("No Major.Minor.Patch elements found")
    major = _uint(parts[0], "major number")
    minor = _uint(parts[1], "minor number")
    patch_str = parts[2]
    build: list[str] = []
    pre: list[str] = []
    if "+" in patch_str:
        patch_str, build_str = patch_str.split("+", 1)
        build = build_str.split(".")
    if "-" in patch_str:
        patch_str, pre_str = patch_str.split("-", 1)
        pre = pre_str.split(".")
    patch = _uint(patch_str, "patch number")
    return Version(
        major,
        minor,
        patch,
        tuple(_extension(p, "PreRelease", True) for p in pre),
        tuple(_extension(b, "BuildMeta", False) for b in build),
    )


def _relaxed(tag: str) -> Version | None:
    try:
        return parse_version(tag[1:] if tag.startswith("v") else tag)
    except SemverError:
        return None


# --- ranges (blang/semver range.go) ------------------------------------------

Range = Callable[[Version], bool]

_COMPARATORS: dict[str, Callable[[int], bool]] = {
    "": lambda c: c == 0,
    "=": lambda c: c == 0,
    "==": lambda c: c == 0,
    "!": lambda c: c != 0,
    "!=": lambda c: c != 0,
    ">": lambda c: c == 1,
    ">=": lambda c: c >= 0,
    "<": lambda c: c == -1,
    "<=": lambda c: c <= 0,
}


def _split_and_trim(s: str) -> list[str]:
    """``splitAndTrim``, byte for byte: split on spaces not after ``>``, ``<`` or ``=``,
    then remove the spaces left inside each part.

    kbld drops a part of one byte without a word (``>=1.0.0 a``, a lone ``|``); no
    one-byte part is a comparator, so it is refused here instead.
    """
    data = s.encode("utf-8")
    result: list[bytes] = []
    last = 0
    last_char = 0

    def keep(part: bytes) -> None:
        if len(part) > 1:
            result.append(part)
        elif part and part != b" ":
            raise SemverError(f"{quote(part.decode())} is not a comparator")

    for i, c in enumerate(data):
        if c == 0x20 and last_char not in b"><=":
            keep(data[last:i])
            last = i + 1
        elif c != 0x20:
            last_char = c
    keep(data[last:])
    return [r.decode("utf-8").replace(" ", "") for r in result]


def _split_or(parts: list[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    last = 0
    for i, p in enumerate(parts):
        if p == "||":
            if i == 0:
                raise SemverError("First element in range is '||'")
            groups.append(parts[last:i])
            last = i + 1
    if last == len(parts):
        raise SemverError("Last element in range is '||'")
    if any(not g for g in groups):
        # kbld keeps a nil range here: a panic once a version reaches it
        raise SemverError("Empty alternative in range: '||' follows '||'")
    groups.append(parts[last:])
    return groups


def _split_comparator(s: str) -> tuple[str, str]:
    """``splitComparatorVersion``: the operator (Go-trimmed) before the first digit
    of any script (``unicode.IsDigit``), and the rest."""
    for i, c in enumerate(s):
        if c.isdecimal():
            return trim_space(s[:i]), s[i:]
    raise SemverError(f"Could not get version from string: {quote(s)}")


def _increment(v: str, index: int) -> str:
    """``incrementMajorVersion`` / ``incrementMinorVersion``; "" on an Atoi error
    (kbld ignores it and the empty version fails to parse next)."""
    parts = v.split(".")
    try:
        parts[index] = str(increment_int(atoi(parts[index])))
    except (GoSyntaxError, IndexError):
        return ""
    return ".".join(parts)


def _expand_wildcards(groups: list[list[str]]) -> list[list[str]]:
    expanded: list[list[str]] = []
    for group in groups:
        new: list[str] = []
        for ap in group:
            if "x" in ap:
                op, v = _split_comparator(ap)
                pieces = v.split(".")
                wildcard = (
                    {2: "minor", 3: "patch"}.get(len(pieces), "none")
                    if pieces[-1] == "x"
                    else "none"
                )
                flat = v.replace(".x.x", ".x", 1).replace(".x", ".0", 1)
                if len(flat.split(".")) == 2:
                    flat += ".0"
                result_op = ""
                increment = False
                if op == ">":
                    result_op, increment = ">=", True
                elif op == ">=":
                    result_op = ">="
                elif op == "<":
                    result_op = "<"
                elif op == "<=":
                    result_op, increment = "<", True
                elif op in ("", "=", "=="):
                    new.append(">=" + flat)
                    result_op, increment = "<", True
                elif op in ("!=", "!"):
                    new.append("<" + flat)
                    result_op, increment = ">=", True
                if increment:
                    if wildcard == "patch":
                        result_v = _increment(flat, 1)
                    elif wildcard == "minor":
                        result_v = _increment(flat, 0)
                    else:
                        result_v = ""
                else:
                    result_v = flat
                ap = result_op + result_v
            new.append(ap)
        expanded.append(new)
    return expanded


def parse_range(s: str) -> Range:
    """``semver.ParseRange``: a predicate over versions (messages as kbld's)."""
    groups = _expand_wildcards(_split_or(_split_and_trim(s)))
    alternatives: list[list[tuple[Callable[[int], bool], Version]]] = []
    for group in groups:
        checks: list[tuple[Callable[[int], bool], Version]] = []
        for ap in group:
            op, v = _split_comparator(ap)
            cmp = _COMPARATORS.get(op)
            if cmp is None:
                raise SemverError(
                    f"Could not parse Range {quote(ap)}: "
                    f"Could not parse comparator {quote(op)} in {quote(op + v)}"
                )
            try:
                version = parse_version(v)
            except SemverError as exc:
                raise SemverError(
                    f"Could not parse Range {quote(ap)}: "
                    f"Could not parse version {quote(v)} in {quote(op + v)}: {exc}"
                ) from None
            checks.append((cmp, version))
        alternatives.append(checks)

    def matches(version: Version) -> bool:
        return any(all(cmp(version.compare(v)) for cmp, v in checks) for checks in alternatives)

    return matches


def check_constraints(constraints: str) -> Range:
    """:func:`parse_range` with kbld's ``Parsing version constraint '…': `` prefix
    on its error (control characters escaped, so the message stays one line)."""
    try:
        return parse_range(constraints)
    except SemverError as exc:
        shown = constraints if constraints.isprintable() else quote(constraints)[1:-1]
        raise SemverError(f"Parsing version constraint '{shown}': {exc}") from None


def _keep_prerelease(version: Version, identifiers: Sequence[str] | None) -> bool:
    if not version.pre:
        return True
    if identifiers is None:
        return False
    if not identifiers:
        return True
    wanted = set(identifiers)
    return any(p.text in wanted for p in version.pre if p.text)


def select_tag(
    tags: Sequence[str],
    constraints: str = "",
    prereleases: Sequence[str] | None = None,
) -> str | None:
    """The tag of the highest version satisfying ``constraints``, or None.

    ``prereleases`` is None when prereleases are not configured (all are
    excluded), otherwise the configured ``identifiers`` (empty: keep all).
    Raises :class:`SemverError` when ``constraints`` does not parse.
    """
    candidates = [(tag, v) for tag in tags if (v := _relaxed(tag)) is not None]
    candidates = [(t, v) for t, v in candidates if _keep_prerelease(v, prereleases)]
    if constraints:
        check = check_constraints(constraints)
        candidates = [(t, v) for t, v in candidates if check(v)]
    best: tuple[str, Version] | None = None
    for tag, version in candidates:
        if best is None or version.compare(best[1]) >= 0:
            best = (tag, version)
    return None if best is None else best[0]


def tag_satisfies(
    tag: str, constraints: str = "", prereleases: Sequence[str] | None = None
) -> bool:
    """Whether :func:`select_tag` could pick ``tag`` under these settings (a pin's check).

    False for a tag that is no version, a prerelease that is not allowed, a
    version outside ``constraints``, or ``constraints`` that do not parse.
    """
    version = _relaxed(tag)
    if version is None or not _keep_prerelease(version, prereleases):
        return False
    if not constraints:
        return True
    try:
        return parse_range(constraints)(version)
    except SemverError:
        return False
