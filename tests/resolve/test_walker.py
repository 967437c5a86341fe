"""Search rules and the walk: which values are references, and how they are replaced."""

from __future__ import annotations

import pytest

from lockresolve.resolve.configmodel import (
    Config,
    KeyMatcher,
    PathIndex,
    SearchRule,
    UpdateStrategy,
    ValueMatcher,
)
from lockresolve.resolve.documents import Resource, parse_source
from lockresolve.resolve.godata import copy_data
from lockresolve.resolve.rules import key_matches, rule_matches, search_rules, value_matches
from lockresolve.resolve.walker import apply_rules, find_references

DEFAULT = search_rules(Config())


def resource(text: str) -> Resource:
    (res,) = parse_source("in.yml", text).resources
    return res


def refs(text: str, rules: tuple[SearchRule, ...] = DEFAULT) -> list[str]:
    return [o.ref for o in find_references([resource(text)], rules).occurrences]


def replaced(text: str, rules: tuple[SearchRule, ...] = DEFAULT) -> object:
    res = resource(text)
    data = copy_data(res.data)
    apply_rules(data, res, rules, lambda ref, _line: f"R({ref})")
    return data


@pytest.mark.parametrize(
    ("matcher", "path", "ok"),
    [
        (KeyMatcher(name="image"), ("spec", "containers", 0, "image"), True),
        (KeyMatcher(name="image"), ("image", 0), False),
        (KeyMatcher(path=("spec", PathIndex(all_indexes=True), "ref")), ("spec", 3, "ref"), True),
        (KeyMatcher(path=("spec", PathIndex(all_indexes=False), "ref")), ("spec", 3, "ref"), True),
        (KeyMatcher(path=("spec", PathIndex(index=1), "ref")), ("spec", 3, "ref"), False),
        (KeyMatcher(path=("spec", PathIndex(), "ref")), ("spec", 3, "ref"), False),
        (KeyMatcher(path=("spec", "ref")), ("x", "spec", "ref"), False),
        (KeyMatcher(path=("spec", PathIndex(index=0))), ("spec", "0"), False),
    ],
)
def test_key_matchers(matcher: KeyMatcher, path: tuple[str | int, ...], ok: bool) -> None:
    assert key_matches(matcher, path) is ok


@pytest.mark.parametrize(
    ("matcher", "value", "ok"),
    [
        (ValueMatcher(image="nginx:1"), "nginx:1", True),
        (ValueMatcher(image="nginx:1"), "nginx", False),
        (ValueMatcher(image="1"), 1, False),
        (ValueMatcher(image_repo="reg.io/app"), "reg.io/app:1@sha256:abc", True),
        (ValueMatcher(image_repo="reg.io/app"), "reg.io/app", True),
        (ValueMatcher(image_repo="localhost:5000/app"), "localhost:5000/app:v1", True),
        (ValueMatcher(image_repo="app"), "docker.io/library/app", False),
        (ValueMatcher(image_repo="app"), {"a": 1}, False),
    ],
)
def test_value_matchers(matcher: ValueMatcher, value: object, ok: bool) -> None:
    assert value_matches(matcher, value) is ok


def test_key_and_value_matchers_must_both_match() -> None:
    rule = SearchRule(KeyMatcher(name="image"), ValueMatcher(image="x"))
    assert rule_matches(rule, ("image",), "x")
    assert not rule_matches(rule, ("image",), "y")
    assert not rule_matches(rule, ("other",), "x")


def test_default_rule_at_any_depth_in_document_order() -> None:
    text = "kind: Pod\nimage: top\nspec:\n  list:\n  - image: a\n  - {image: b}\n  image: c\nlast:\n  image: a\n"
    assert refs(text) == ["top", "a", "b", "c", "a"]
    found = find_references([resource(text)], DEFAULT)
    assert found.distinct == ("top", "a", "b", "c")
    assert [o.line for o in found.occurrences] == [2, 5, 6, 7, 9]


def test_non_strings_are_walked_into_and_not_taken() -> None:
    text = "kind: X\nimage: {repository: r, image: nested}\nother: {image: 5, tag: {image: [x]}}\n"
    assert refs(text) == ["nested"]


def test_first_rule_wins_and_none_blocks_replacement() -> None:
    rules = (
        SearchRule(KeyMatcher(name="image"), ValueMatcher(image="keep"), UpdateStrategy(none=True)),
        *DEFAULT,
    )
    assert refs("kind: X\na: {image: keep}\nb: {image: take}\n", rules) == ["take"]


def test_none_still_walks_into_the_value() -> None:
    rules = (SearchRule(KeyMatcher(name="cfg"), None, UpdateStrategy(none=True)), *DEFAULT)
    assert refs("kind: X\ncfg: {image: inner}\n", rules) == ["inner"]


def test_value_matcher_takes_list_elements_and_any_key() -> None:
    rules = (SearchRule(None, ValueMatcher(image_repo="reg.io/d")), *DEFAULT)
    text = "kind: X\nargs: [--flag, reg.io/d:1]\nenv: {IMG: 'reg.io/d@sha256:00'}\n"
    assert refs(text, rules) == ["reg.io/d:1", "reg.io/d@sha256:00"]
    assert replaced(text, rules) == {
        "kind": "X",
        "args": ["--flag", "R(reg.io/d:1)"],
        "env": {"IMG": "R(reg.io/d@sha256:00)"},
    }


def test_replaced_values_are_not_walked_again() -> None:
    """A value matched by two rules is taken once (the first rule)."""
    rules = (SearchRule(KeyMatcher(name="image")), SearchRule(None, ValueMatcher(image="a")))
    assert refs("kind: X\nimage: a\nlist: [a]\n", rules) == ["a", "a"]


def json_rule(*nested: SearchRule) -> SearchRule:
    return SearchRule(KeyMatcher(name="cfg"), None, UpdateStrategy(json=tuple(nested)))


def yaml_rule(*nested: SearchRule) -> SearchRule:
    return SearchRule(KeyMatcher(name="cfg"), None, UpdateStrategy(yaml=tuple(nested)))


IMG = SearchRule(KeyMatcher(name="img"))


def test_json_strategy_writes_back_compact_sorted_go_json() -> None:
    text = """kind: X\ncfg: '{"z": 1, "img": "a<b>&c", "f": 1.5, "big": 1e21, "n": null, "l": [2.0]}'\n"""
    assert refs(text, (json_rule(IMG),)) == ["a<b>&c"]
    data = replaced(text, (json_rule(IMG),))
    assert isinstance(data, dict)
    assert (
        data["cfg"]
        == '{"big":1e+21,"f":1.5,"img":"R(a\\u003cb\\u003e\\u0026c)","l":[2],"n":null,"z":1}'
    )


def test_json_strategy_uses_only_the_nested_rules() -> None:
    text = """kind: X\ncfg: '{"image": "not-default", "img": "yes"}'\n"""
    assert refs(text, (json_rule(IMG), *DEFAULT)) == ["yes"]


def test_json_strategy_rewrites_even_without_images_and_skips_invalid_json() -> None:
    data = replaced('kind: X\ncfg: \'{ "b" : 1 , "a" : [ ] }\'\n', (json_rule(),))
    assert isinstance(data, dict) and data["cfg"] == '{"a":[],"b":1}'
    data = replaced("kind: X\ncfg: 'not json'\n", (json_rule(IMG),))
    assert isinstance(data, dict) and data["cfg"] == "not json"
    data = replaced("kind: X\ncfg: NaN\n", (json_rule(IMG),))
    assert isinstance(data, dict) and data["cfg"] == "NaN"


def test_yaml_strategy_documents() -> None:
    text = (
        "kind: X\ncfg: |\n  img: a:1\n  num: 1.50\n  on: yes\n  ---\n  # empty\n  ---\n  - img: b\n"
    )
    rules = (yaml_rule(SearchRule(KeyMatcher(name="img"))),)
    assert refs(text, rules) == ["a:1", "b"]
    data = replaced(text, rules)
    assert isinstance(data, dict)
    assert data["cfg"] == '---\nimg: R(a:1)\nnum: 1.5\n"true": true\n---\n- img: R(b)\n'


def test_yaml_strategy_prefers_json_and_keeps_invalid_yaml() -> None:
    rules = (yaml_rule(IMG),)
    data = replaced("""kind: X\ncfg: '{"img": "a", "x": 1}'\n""", rules)
    assert isinstance(data, dict) and data["cfg"] == '{"img":"R(a)","x":1}'
    data = replaced("kind: X\ncfg: 'a: [1'\n", rules)
    assert isinstance(data, dict) and data["cfg"] == "a: [1"


def test_embedded_references_report_the_line_of_their_string() -> None:
    text = "kind: X\nother: 1\ncfg: |\n  img: a\n\n  img2: b\n"
    found = find_references([resource(text)], (yaml_rule(IMG),))
    assert [(o.ref, o.line) for o in found.occurrences] == [("a", 3)]
