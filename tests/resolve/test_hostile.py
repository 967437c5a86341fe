"""Hostile and broken inputs: one-line errors naming the file (and line), quickly."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from lockresolve.errors import InputError, YAMLInputError
from lockresolve.resolve.documents import parse_source
from lockresolve.resolve.sources import decode_source


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\nimage: x\n"


def merge_bomb(levels: int = 9) -> str:
    lines = ["m0: &m0 {image: a}"]
    for i in range(1, levels + 1):
        lines.append(
            f"m{i}: &m{i} [" + ", ".join([f"{{<<: *m{i - 1}, k{j}: v}}" for j in range(9)]) + "]"
        )
    return "\n".join(lines) + "\n"


def parse_bytes(name: str, data: bytes) -> None:
    parse_source(name, decode_source(name, data))


HOSTILE: dict[str, tuple[bytes, type[InputError], int | None]] = {
    "malformed.yml": (b"kind: Pod\nspec: [1, 2\nmetadata: x\n", YAMLInputError, 3),
    "tab-indent.yml": (b"a:\n\tb: c\n", YAMLInputError, 2),
    "latin1.yml": (b"a: b\nname: caf\xe9\n", YAMLInputError, 2),
    "binary.yml": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", YAMLInputError, 3),
    "utf16.yml": ("a: b\n".encode("utf-16"), YAMLInputError, 1),
    "control.yml": (b"a: b\nc: \x07\n", YAMLInputError, 2),
    "bomb.yml": (billion_laughs().encode(), YAMLInputError, None),
    "merge-bomb.yml": (merge_bomb().encode(), YAMLInputError, None),
    "deep-flow.yml": (b"a: " + b"[" * 10_000 + b"]" * 10_000 + b"\n", YAMLInputError, 1),
    "deep-block.yml": (
        "".join(" " * i + "k:\n" for i in range(10_000)).encode(),
        YAMLInputError,
        1001,
    ),
    "separator.yml": (b"a: 1\n--- {b: 2}\n", YAMLInputError, 2),
    "scalar-doc.yml": (b"just a string\n", InputError, 1),
    "list-doc.yml": (b"kind: Pod\n---\n- a\n- b\n", InputError, 3),
    "undefined-alias.yml": (b"image: *nope\n", YAMLInputError, 1),
    "list-without-kind.yml": (b"items:\n- kind: Pod\n", InputError, 1),
    "list-item-not-map.yml": (b"kind: List\nitems:\n- kind: Pod\n- text\n", InputError, 4),
    "map-key.yml": (b"stringData:\n  token: {{HF_TOKEN}}\n", YAMLInputError, 2),
    "bad-tag.yml": (b"replicas: !!int three\n", YAMLInputError, 1),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_a_one_line_error(name: str) -> None:
    data, error, line = HOSTILE[name]
    # CPU seconds, not wall time: the bound catches a parser that runs away on the input,
    # and must not trip because other work shares the machine.
    start = time.process_time()
    with pytest.raises(error) as caught:
        parse_bytes(name, data)
    assert time.process_time() - start < 3
    exc = caught.value
    assert exc.source == name
    if line is not None:
        assert exc.line == line
    else:
        assert exc.line is not None
    text = str(exc)
    assert "\n" not in text and text.startswith(f"{name}:")
    assert "Traceback" not in text


def test_alias_bomb_message() -> None:
    with pytest.raises(YAMLInputError, match="excessive aliasing"):
        parse_bytes("bomb.yml", billion_laughs().encode())


def test_deep_nesting_message() -> None:
    with pytest.raises(YAMLInputError, match="nesting exceeds 1000 levels"):
        parse_bytes("deep.yml", b"a: " + b"{x: " * 2000 + b"1" + b"}" * 2000 + b"\n")


def test_nesting_below_the_cap_is_fine() -> None:
    text = "".join(" " * i + "k:\n" for i in range(900)) + " " * 900 + "image: deep:1\n"
    (res,) = parse_source("deep.yml", text).resources
    assert res.data["k"] is not None


def test_a_one_megabyte_line_is_fine() -> None:
    value = "x" * 1_000_000
    start = time.monotonic()
    (res,) = parse_source("long.yml", f"kind: ConfigMap\ndata:\n  blob: {value}\n").resources
    assert time.monotonic() - start < 5
    data = res.data["data"]
    assert isinstance(data, dict) and data["blob"] == value


def test_moderate_aliasing_is_accepted() -> None:
    text = "base: &b {image: a:1, name: web}\n" + "".join(f"c{i}: *b\n" for i in range(200))
    (res,) = parse_source("anchors.yml", text).resources
    assert res.data["c199"] == {"image": "a:1", "name": "web"}


@pytest.mark.parametrize(
    ("data", "check"),
    [
        (b"", lambda r: r == ([], [])),
        (b"\n\n# only a comment\n", lambda r: r == ([], [])),
        (b"---\n---\n", lambda r: r == ([], [])),
        (b"null\n---\n~\n---\n{}\n", lambda r: r == ([], [])),
        (b"\xef\xbb\xbfkind: Pod\n", lambda r: len(r[0]) == 1),
    ],
)
def test_empty_inputs_have_no_documents(
    data: bytes, check: Callable[[tuple[list[object], list[object]]], bool]
) -> None:
    parsed = parse_source("empty.yml", decode_source("empty.yml", data))
    assert check((list(parsed.resources), list(parsed.configs)))
