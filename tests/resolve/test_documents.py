"""Splitting a stream into resources and config documents, by kbld's rules."""

from __future__ import annotations

import pytest

from lockresolve.errors import YAMLInputError
from lockresolve.resolve.documents import parse_source, split_chunks


def kinds(text: str) -> tuple[list[object], list[object]]:
    parsed = parse_source("in.yml", text)
    return [r.data.get("kind") for r in parsed.resources], [c.kind for c in parsed.configs]


def test_separator_lines() -> None:
    text = "a: 1\n--- # comment\nb: 2\n---   \nc: 3\n---\n"
    assert [c.text for c in split_chunks(text, "x")] == ["a: 1\n", "b: 2\n", "c: 3\n"]
    assert [c.line_offset for c in split_chunks(text, "x")] == [0, 2, 4]


def test_separator_inside_a_block_scalar_still_splits() -> None:
    """kbld's reader splits on any line starting with ``---``, block scalar or not."""
    chunks = split_chunks("a: |\n---\nb: 1\n", "x")
    assert [c.text for c in chunks] == ["a: |\n", "b: 1\n"]


@pytest.mark.parametrize("line", ["--- x", "---x", "----", "--- |", "--- {a: 1}"])
def test_invalid_separators(line: str) -> None:
    with pytest.raises(YAMLInputError, match=r"^in\.yml:2: invalid YAML document separator"):
        parse_source("in.yml", f"a: 1\n{line}\nb: 2\n")


def test_only_the_first_yaml_document_of_a_chunk_counts() -> None:
    assert kinds("kind: A\n...\nkind: B\n") == (["A"], [])


def test_empty_null_and_comment_documents_are_dropped() -> None:
    text = "# c\n---\n---\nnull\n---\n~\n---\n{}\n---\nkind: Pod\n---\n# trailing\n"
    assert kinds(text) == (["Pod"], [])


def test_any_items_list_is_split() -> None:
    text = (
        "apiVersion: v1\nkind: Anything\nitems:\n"
        "- {kind: Pod, metadata: {name: a}}\n"
        "- kind: Service\n"
        "- {apiVersion: kbld.k14s.io/v1alpha1, kind: ImageKeys, keys: [x]}\n"
    )
    assert kinds(text) == (["Pod", "Service"], ["ImageKeys"])
    pod = parse_source("in.yml", text).resources[0]
    assert pod.item and pod.line == 4


def test_items_that_is_not_a_list_is_kept() -> None:
    assert kinds("kind: Thing\nitems: {a: 1}\n") == (["Thing"], [])


def test_list_items_without_kind_get_the_list_type() -> None:
    text = "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: a}\n- apiVersion: x/v1\n"
    first, second = parse_source("in.yml", text).resources
    assert first.data["kind"] == "Pod" and first.data["apiVersion"] == "v1"
    assert first.implied == (("apiVersion", "v1"), ("kind", "Pod"))
    assert second.data["apiVersion"] == "x/v1" and "kind" not in second.data


@pytest.mark.parametrize(
    ("api", "kind", "is_config"),
    [
        ("kbld.k14s.io/v1alpha1", "Config", True),
        ("kbld.k14s.io/v1alpha1", "Sources", True),
        ("kbld.k14s.io/v1alpha1", "ImageOverrides", True),
        ("kbld.k14s.io/v1alpha1", "ImageDestinations", True),
        ("kbld.k14s.io/v1alpha1", "ImageKeys", True),
        ("imgpkg.carvel.dev/v1alpha1", "ImagesLock", True),
        ("imgpkg.carvel.dev/v1alpha1", "Bundle", False),
        ("imgpkg.carvel.dev/v1alpha1", "BundleLock", False),
        ("kbld.k14s.io/v1alpha2", "Config", False),
        ("v1", "Config", False),
    ],
)
def test_config_kinds(api: str, kind: str, is_config: bool) -> None:
    resources, configs = kinds(f"apiVersion: {api}\nkind: {kind}\n")
    assert (configs == [kind]) is is_config
    assert (resources == [kind]) is not is_config


def test_yaml11_values_and_merge_keys() -> None:
    text = (
        "kind: Pod\n"
        "flags: [yes, on, n, 0x1F, 017, 1_000, 1.0, .5, 2020-01-02, '1.0', ~]\n"
        "base: &b {image: a, name: base}\n"
        "merged: {<<: *b, name: mine}\n"
        "before: {name: mine, <<: *b}\n"
        "1: int key\n"
        "true: bool key\n"
    )
    (res,) = parse_source("in.yml", text).resources
    data = res.data
    assert data["flags"] == [True, True, False, 31, 15, 1000, 1.0, 0.5, "2020-01-02", "1.0", None]
    assert data["merged"] == {"image": "a", "name": "mine"}
    assert data["before"] == {"name": "base", "image": "a"}, (
        "yaml.v2: a merge overrides earlier keys"
    )
    assert data["1"] == "int key" and data["true"] == "bool key"


def test_duplicate_keys_last_wins() -> None:
    (res,) = parse_source("in.yml", "kind: Pod\nimage: a\nimage: b\n").resources
    assert res.data["image"] == "b"


def test_crlf_text_keeps_its_newline() -> None:
    (res,) = parse_source("in.yml", "kind: Pod\r\nname: x\r\n").resources
    assert res.newline == "\r\n"
    assert res.data["name"] == "x"
