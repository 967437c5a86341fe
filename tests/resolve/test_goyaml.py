"""Go yaml.v2 compatibility: YAML 1.1 resolution and ``sigs.k8s.io/yaml.Marshal`` bytes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockresolve.goyaml import (
    ScalarKind,
    format_float,
    is_plain_safe,
    json_number_text,
    marshal,
    quote_double,
    resolve_plain,
    sort_keys,
)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("y", ScalarKind.BOOL, True),
        ("Yes", ScalarKind.BOOL, True),
        ("on", ScalarKind.BOOL, True),
        ("N", ScalarKind.BOOL, False),
        ("off", ScalarKind.BOOL, False),
        ("tRue", ScalarKind.STR, "tRue"),
        ("", ScalarKind.NULL, None),
        ("~", ScalarKind.NULL, None),
        ("Null", ScalarKind.NULL, None),
        ("12", ScalarKind.INT, 12),
        ("-12", ScalarKind.INT, -12),
        ("+12", ScalarKind.INT, 12),
        ("0x1F", ScalarKind.INT, 31),
        ("0o17", ScalarKind.INT, 15),
        ("017", ScalarKind.INT, 15),
        ("0b101", ScalarKind.INT, 5),
        ("1_000", ScalarKind.INT, 1000),
        ("08", ScalarKind.FLOAT, 8.0),
        ("18446744073709551615", ScalarKind.INT, 18446744073709551615),
        ("1.0", ScalarKind.FLOAT, 1.0),
        (".5", ScalarKind.FLOAT, 0.5),
        ("1e3", ScalarKind.FLOAT, 1000.0),
        ("1e400", ScalarKind.STR, "1e400"),
        ("-.inf", ScalarKind.FLOAT, -math.inf),
        ("2.1.0", ScalarKind.STR, "2.1.0"),
        ("2020-01-02", ScalarKind.TIMESTAMP, "2020-01-02"),
        ("2020-13-02", ScalarKind.STR, "2020-13-02"),
        ("2001-12-14t21:59:43.10-05:00", ScalarKind.TIMESTAMP, "2001-12-14t21:59:43.10-05:00"),
        ("<<", ScalarKind.STR, "<<"),  # '<' is no resolve hint: merge keys are found by value
        ("v3", ScalarKind.STR, "v3"),
        (".", ScalarKind.STR, "."),
    ],
)
def test_resolve_plain(text: str, kind: ScalarKind, value: object) -> None:
    assert resolve_plain(text) == (kind, value)


@pytest.mark.parametrize(
    ("value", "yaml"),
    [
        ("2.1.0", "2.1.0"),
        ("v3", "v3"),
        ("latest", "latest"),
        ("1.0", '"1.0"'),
        ("1", '"1"'),
        ("yes", '"yes"'),
        ("y", '"y"'),
        ("null", '"null"'),
        ("", '""'),
        ("2020-01-02", '"2020-01-02"'),
        ("1:20", '"1:20"'),
        ("<<", "<<"),
        ("-", "'-'"),
        (":x", ":x"),
        (": x", "': x'"),
        ("a: b", "'a: b'"),
        ("a #b", "'a #b'"),
        ("a#b", "a#b"),
        ("@x", "'@x'"),
        (" lead", "' lead'"),
        ("it's", "it's"),
        ("'q", "'''q'"),
        ("x\ty", '"x\\ty"'),
        ("café", "café"),
        ("😀", '"\\U0001F600"'),
        ("reg.io:5000/a/b@sha256:00ff", "reg.io:5000/a/b@sha256:00ff"),
        ("multi\nline", "|-\n  multi\n  line"),
        ("line\n", "|\n  line"),
        ("keep\n\n", "|+\n  keep\n"),
        (" indented\n", "|2\n   indented"),
    ],
)
def test_marshal_string_quoting(value: str, yaml: str) -> None:
    assert marshal({"k": value}) == f"k: {yaml}\n"


def test_marshal_structure() -> None:
    data: dict[str, object] = {
        "b": [1, 2.5, True, None, [], {}],
        "a": {"x": [{"p": 1, "q": [3]}, ["s"]]},
    }
    assert marshal(data) == (
        "a:\n  x:\n  - p: 1\n    q:\n    - 3\n  - - s\nb:\n- 1\n- 2.5\n- true\n- null\n- []\n- {}\n"
    )
    assert marshal(None) == "null\n"
    assert marshal([]) == "[]\n"


def test_numbers_go_through_float64_like_kbld() -> None:
    assert marshal([2.0, 1e21, 1e20, 0.1, 1e-7]) == "- 2\n- 1e+21\n- 1e+20\n- 0.1\n- 1e-07\n"


def test_key_order_is_yaml_v2_natural_order() -> None:
    assert sort_keys(["b", "a10", "a9", "A", "_x", "1"]) == ["_x", "1", "A", "a9", "a10", "b"]


def test_long_lines_fold_at_80_columns() -> None:
    out = marshal({"k": "word " * 20 + "end"})
    first, second = out.splitlines()
    assert len(first) <= 82 and second.startswith("  word")


def test_long_keys_become_complex_keys() -> None:
    assert marshal({"k" * 130: "v"}) == "? " + "k" * 130 + "\n: v\n"


@pytest.mark.parametrize(
    ("value", "g", "g32", "json"),
    [
        (0.0, "0", "0", "0"),
        (1.0, "1", "1", "1"),
        (1e6, "1e+06", "1e+06", "1000000"),
        (123456.0, "123456", "123456", "123456"),
        (1e21, "1e+21", "1e+21", "1e+21"),
        (1.5e-7, "1.5e-07", "1.5e-07", "1.5e-7"),
        (0.1, "0.1", "0.1", "0.1"),
        (1.1, "1.1", "1.1", "1.1"),
        (1e100, "1e+100", "+Inf", "1e+100"),
    ],
)
def test_go_float_formatting(value: float, g: str, g32: str, json: str) -> None:
    assert format_float(value) == g
    assert format_float(value, "g", 32) == g32
    assert json_number_text(value) == json


def test_plain_safety_for_splicing() -> None:
    digest_ref = "reg.io/a@sha256:" + "0" * 64
    assert is_plain_safe(digest_ref, flow=False)
    assert not is_plain_safe(digest_ref, flow=True), "libyaml: any ':' is a flow indicator"
    assert not is_plain_safe("1.0", flow=False)
    assert not is_plain_safe("a, b", flow=True) and is_plain_safe("a, b", flow=False)
    assert not is_plain_safe("", flow=False)
    assert quote_double('a"b\\c\n') == '"a\\"b\\\\c\\n"'


_TOKEN_CHARS = "abcXYZ019_./@:+=~-"


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "0",
        "-",
        "a:",
        ":a",
        "a:b",
        "a: b",
        "@a",
        "---a",
        "...",
        "registry.example.com:5000/team/app@sha256:" + "ab" * 32,
        "docker.io/library/nginx:1.25",
        "nginx",
        "a b",
        "a#b",
        "a,b",
        "a\u00e9",
        "",
    ],
)
def test_analyze_scalar_fast_path_matches_full_analysis(value: str) -> None:
    from lockresolve.goyaml.scalar import _analyze, analyze_scalar

    assert analyze_scalar(value) == _analyze(value)


@given(st.text(alphabet=st.sampled_from(_TOKEN_CHARS), max_size=12))
def test_analyze_scalar_fast_path_matches_full_analysis_generated(value: str) -> None:
    from lockresolve.goyaml.scalar import _analyze, analyze_scalar

    assert analyze_scalar(value) == _analyze(value)
