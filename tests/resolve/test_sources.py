"""``-f`` expansion and decoding of input bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockresolve.errors import InputError, UsageError, YAMLInputError
from lockresolve.resolve.sources import (
    SourceKind,
    SourceSpec,
    decode_source,
    expand_paths,
    split_file_flag,
)
from tests.resolve.pipeline import CONFORMANCE


def test_r10_directory_walk_order_and_extensions() -> None:
    root = CONFORMANCE / "r10-package-repo" / "input" / "packages"
    specs = expand_paths([str(root) + "/"])
    assert [Path(s.location).relative_to(root).as_posix() for s in specs] == [
        "a.example.com/0.1.0.yml",
        "a.example.com/0.2.0.yml",
        "b.example.com/1.0.0.yaml",
        "b.example.com/metadata.yml",
    ]
    assert all(s.kind is SourceKind.FILE for s in specs)
    assert specs[0].location == str(root / "a.example.com" / "0.1.0.yml"), "paths are cleaned"


def test_walk_is_case_sensitive_and_sorted_bytewise(tmp_path: Path) -> None:
    for name in [
        "b.yml",
        "A.yml",
        "a.YML",
        "c.json",
        "d.yaml",
        "e.txt",
        "sub/z.yml",
        "sub.yml",
        "x.yaml/inner.yml",
    ]:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("a: 1\n")
    names = [
        Path(s.location).relative_to(tmp_path).as_posix() for s in expand_paths([str(tmp_path)])
    ]
    # full paths sorted bytewise: "sub.yml" < "sub/z.yml" because '.' < '/'
    assert names == [
        "A.yml",
        "b.yml",
        "c.json",
        "d.yaml",
        "sub.yml",
        "sub/z.yml",
        "x.yaml/inner.yml",
    ]


def test_a_file_named_directly_is_read_whatever_its_extension(tmp_path: Path) -> None:
    f = tmp_path / "manifest.txt"
    f.write_text("a: 1\n")
    assert expand_paths([str(f)]) == [SourceSpec(SourceKind.FILE, str(f))]


def test_commas_stdin_urls_and_repeats(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yml", tmp_path / "b,c.yml"
    a.write_text("")
    b.write_text("")
    specs = expand_paths([f"{a},-", f'"{b}",https://example.test/x.yml', "http://h/y"])
    assert specs == [
        SourceSpec(SourceKind.FILE, str(a)),
        SourceSpec(SourceKind.STDIN, "-"),
        SourceSpec(SourceKind.FILE, str(b)),
        SourceSpec(SourceKind.URL, "https://example.test/x.yml"),
        SourceSpec(SourceKind.URL, "http://h/y"),
    ]
    assert specs[1].name == "stdin"


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        expand_paths([str(tmp_path / "nope.yml")])
    assert caught.value.source == str(tmp_path / "nope.yml")


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        ("", []),
        ("a", ["a"]),
        ("a,b", ["a", "b"]),
        ("a,", ["a", ""]),
        ('"a,b",c', ["a,b", "c"]),
        ('"say ""hi""",x', ['say "hi"', "x"]),
    ],
)
def test_split_file_flag(value: str, fields: list[str]) -> None:
    assert split_file_flag(value) == fields


@pytest.mark.parametrize("value", ['a"b', '"open', '"a"b'])
def test_split_file_flag_rejects_bad_quotes(value: str) -> None:
    with pytest.raises(UsageError):
        split_file_flag(value)


def test_decode_source() -> None:
    assert decode_source("x", b"\xef\xbb\xbfa: 1\n") == "a: 1\n"
    assert decode_source("x", "name: café\n".encode()) == "name: café\n"
    with pytest.raises(YAMLInputError, match=r"^x:3: not valid UTF-8 \(byte 0xff at column 6\)$"):
        decode_source("x", b"a: 1\nb: 2\nc: ab\xff\n")
    with pytest.raises(YAMLInputError, match=r"^x:2: binary content"):
        decode_source("x", b"a: 1\n\x00")
    with pytest.raises(YAMLInputError, match="UTF-16"):
        decode_source("x", "a: 1".encode("utf-16"))
