"""Rendering: spliced where possible, kbld's re-serialisation otherwise, kbld's data always."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from lockresolve.resolve.configmodel import Config, KeyMatcher, SearchRule, UpdateStrategy
from lockresolve.resolve.documents import parse_source
from lockresolve.resolve.model import ResolvedImage, preresolved_image
from lockresolve.resolve.render import annotation_value, render_resource, render_stream
from lockresolve.resolve.rules import search_rules
from lockresolve.resolve.walker import find_references

RULES = search_rules(Config())
DIGEST = "@sha256:" + "c" * 64


def resolve(ref: str) -> ResolvedImage:
    return ResolvedImage(
        f"reg.io/{ref.split(':')[0]}{DIGEST}", ({"resolved": {"tag": "1.0", "url": ref}},)
    )


def render(
    text: str, rules: tuple[SearchRule, ...] = RULES, annotate: bool = True
) -> tuple[str, bool]:
    parsed = parse_source("in.yml", text)
    refs = find_references(parsed.resources, rules).distinct
    mapping = {r: resolve(r) for r in refs}
    (res,) = parsed.resources
    out = render_resource(res, rules, mapping, annotate=annotate)
    return out.text, out.spliced


def load(text: str) -> dict[str, object]:
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    doc = yaml.load(text.split("\n", 1)[1])
    assert isinstance(doc, dict)
    return doc


def annotation(doc: dict[str, object]) -> object:
    meta = doc["metadata"]
    assert isinstance(meta, dict)
    anns = meta["annotations"]
    assert isinstance(anns, dict)
    return anns["kbld.k14s.io/images"]


EXPECTED_ANNOTATION = (
    '- origins:\n  - resolved:\n      tag: "1.0"\n      url: a:1\n  url: reg.io/a' + DIGEST + "\n"
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("no metadata", "apiVersion: v1\nkind: Pod\nspec:\n  image: a:1\n"),
        ("null metadata", "kind: Pod\nmetadata:\nspec:\n  image: a:1\n"),
        ("null metadata + comment", "kind: Pod\nmetadata: # c\nspec:\n  image: a:1\n"),
        ("tilde metadata", "kind: Pod\nmetadata: ~\nspec: {image: 'a:1'}\n"),
        ("flow metadata", "kind: Pod\nmetadata: {name: x}\nspec:\n  image: a:1\n"),
        (
            "empty flow annotations",
            "kind: Pod\nmetadata:\n  annotations: {}\nspec:\n  image: a:1\n",
        ),
        (
            "existing literal",
            "kind: Pod\nmetadata:\n  annotations:\n    kbld.k14s.io/images: |\n      - old\n    x: z\nspec:\n  image: a:1\n",
        ),
        (
            "existing plain",
            "kind: Pod\nmetadata:\n  annotations:\n    kbld.k14s.io/images: old # c\nspec:\n  image: a:1\n",
        ),
        ("json", '{"kind": "Pod", "metadata": {"name": "x"}, "spec": {"image": "a:1"}}\n'),
        ("json without metadata", '{"kind": "Pod", "spec": {"image": "a:1"}}'),
        ("no final newline", "kind: Pod\nspec:\n  image: a:1"),
        (
            "indent 4",
            "kind: Pod\nmetadata:\n    name: x\nspec:\n    containers:\n    -   image: a:1\n",
        ),
        ("merge key", "kind: Pod\nbase: &b\n  image: a:1\nspec:\n  <<: *b\n"),
        ("anchored map used twice", "kind: Pod\nspec:\n  a: &c {image: 'a:1'}\n  b: *c\n"),
        ("block scalar image", "kind: Pod\nspec:\n  image: |-\n    a:1\n  name: x\n"),
        ("multi-line plain image", "kind: Pod\nspec:\n  image: a:1\n    more\n"),
        ("tagged image", "kind: Pod\nspec:\n  image: !!str a:1\n"),
    ],
)
def test_spliced_cases(name: str, text: str) -> None:
    out, spliced = render(text)
    assert spliced, name
    doc = load(out)
    ref = "a:1" if "more" not in text else "a:1 more"
    value = annotation(doc)
    assert isinstance(value, str) and value.startswith("- origins:\n")
    assert f"url: {ref}\n" in value
    assert f"reg.io/{ref.split(':')[0]}{DIGEST}" in out


def test_block_insertion_looks_like_kbld() -> None:
    out, _ = render("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  image: a:1\n")
    assert out == (
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kbld.k14s.io/images: |\n"
        + "".join("      " + line + "\n" for line in EXPECTED_ANNOTATION.splitlines())
        + "  name: p\nspec:\n  image: reg.io/a"
        + DIGEST
        + "\n"
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("alias used elsewhere unreplaced", "kind: Pod\nx: &i a:1\nspec:\n  image: *i\n"),
        (
            "non-string annotation",
            "kind: Pod\nmetadata:\n  annotations:\n    n: 1\n    s: str\nspec:\n  image: a:1\n",
        ),
    ],
)
def test_fallback_cases_write_kbld_data(name: str, text: str) -> None:
    out, spliced = render(text)
    assert not spliced, name
    doc = load(out)
    assert annotation(doc) == EXPECTED_ANNOTATION


def test_alias_fallback_replaces_only_the_matched_place() -> None:
    out, _ = render("kind: Pod\nx: &i a:1\nspec:\n  image: *i\n")
    doc = load(out)
    assert doc["x"] == "a:1" and doc["spec"] == {"image": "reg.io/a" + DIGEST}


def test_non_string_annotations_are_dropped_like_kbld() -> None:
    doc = load(render("kind: Pod\nmetadata:\n  annotations:\n    n: 1\nspec:\n  image: a:1\n")[0])
    meta = doc["metadata"]
    assert isinstance(meta, dict) and meta["annotations"] == {
        "kbld.k14s.io/images": EXPECTED_ANNOTATION
    }


def test_metadata_that_is_not_a_map_is_left_alone() -> None:
    out, spliced = render("kind: Pod\nmetadata: text\nspec:\n  image: a:1\n")
    assert spliced and load(out)["metadata"] == "text"


def test_images_annotation_off() -> None:
    text = "kind: Pod\n# keep me\nspec:\n  image: a:1\n"
    out, spliced = render(text, annotate=False)
    assert spliced and out == "---\n" + text.replace("a:1", "reg.io/a" + DIGEST)


def test_resources_without_references_are_echoed_unchanged() -> None:
    text = "kind: Service # c\nspec: {ports: [1]}\n"
    assert render(text) == ("---\n" + text, True)


def test_annotation_value() -> None:
    a = ResolvedImage("reg.io/b" + DIGEST, ({"resolved": {"url": "b", "tag": "latest"}},))
    b = ResolvedImage("reg.io/a" + DIGEST, ({"resolved": {"url": "a:1.0", "tag": "1.0"}},))
    pinned = ResolvedImage("reg.io/c" + DIGEST)
    value = annotation_value([a, pinned, b, a])
    assert value == (
        '- origins:\n  - resolved:\n      tag: "1.0"\n      url: a:1.0\n  url: reg.io/a'
        + DIGEST
        + "\n"
        "- origins:\n  - resolved:\n      tag: latest\n      url: b\n  url: reg.io/b"
        + DIGEST
        + "\n"
    )
    assert annotation_value([pinned]) == "null\n", "kbld marshals an empty list as null"


def test_digest_only_resource_gets_a_null_annotation() -> None:
    text = "kind: Pod\nspec:\n  image: reg.io/a" + DIGEST + "\n"
    parsed = parse_source("in.yml", text)
    mapping = {"reg.io/a" + DIGEST: ResolvedImage("reg.io/a" + DIGEST)}
    out = render_stream(parsed.resources, RULES, mapping)
    assert annotation(load(out)) == "null\n"


def test_preresolved_image_origins() -> None:
    url = "reg.io/a" + DIGEST
    assert preresolved_image(url) == ResolvedImage(url, ({"preresolved": {"url": url}},))
    own = ({"resolved": {"tag": "1", "url": "a:1"}},)
    assert preresolved_image(url, own).origins == (*own, {"preresolved": {"url": url}})
    already = ({"preresolved": {"url": url}},)
    assert preresolved_image(url, already).origins == already


def test_missing_resolution_is_a_lookup_error() -> None:
    (res,) = parse_source("in.yml", "kind: Pod\nimage: a:1\n").resources
    with pytest.raises(LookupError, match="Expected to find image for 'a:1'"):
        render_resource(res, RULES, {})


def test_yaml_strategy_in_a_literal_block_stays_a_literal_block() -> None:
    rules = (
        SearchRule(
            KeyMatcher(name="values.yaml"),
            None,
            UpdateStrategy(yaml=(SearchRule(KeyMatcher(name="image")),)),
        ),
    )
    text = "kind: ConfigMap\ndata:\n  values.yaml: |\n    image: a:1 # comment\n    num: 2\n  other: x\n"
    out, spliced = render(text, rules)
    assert spliced
    assert (
        "  values.yaml: |\n    ---\n    image: reg.io/a" + DIGEST + "\n    num: 2\n  other: x\n"
        in out
    )


def test_crlf_output() -> None:
    out, spliced = render("kind: Pod\r\nmetadata:\r\n  name: x\r\nspec:\r\n  image: a:1\r\n")
    assert spliced and out.startswith("---\r\n")
    assert out.count("\r\n") == out.count("\n")


def test_crlf_fallback_output() -> None:
    out, spliced = render("kind: Pod\r\nx: &i a:1\r\nspec:\r\n  image: *i\r\n")
    assert not spliced and out.count("\r\n") == out.count("\n")


def test_list_items_are_dedented_and_get_implied_keys() -> None:
    text = (
        "# wrapper comment\napiVersion: v1\nkind: PodList\nitems:\n"
        "- metadata:\n    name: a   # c\n  spec:\n    image: a:1\n"
        "- kind: Service\n  spec: {}\n"
    )
    parsed = parse_source("in.yml", text)
    mapping = {"a:1": resolve("a:1")}
    first, second = (render_resource(r, RULES, mapping) for r in parsed.resources)
    assert first.spliced and second.spliced
    assert first.text.startswith("---\nmetadata:\n  annotations:\n")
    assert "  name: a   # c\napiVersion: v1\nkind: Pod\nspec:\n  image: reg.io/a" in first.text
    assert second.text == "---\nkind: Service\nspec: {}\n"
    assert "wrapper" not in first.text + second.text


def _block_annotation(indent: int, step: int = 2) -> str:
    pad = " " * indent
    return f"{pad}kbld.k14s.io/images: |\n" + "".join(
        f"{pad}{' ' * step}{line}\n" for line in EXPECTED_ANNOTATION.splitlines()
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # issue 15: the annotation as a person writes it, the line's comment kept
            "kind: ConfigMap\nmetadata: {name: web-cfg, labels: {app: web}}  # keep\n"
            "data:\n  image: a:1\n",
            "kind: ConfigMap\nmetadata:  # keep\n  annotations:\n"
            + _block_annotation(4)
            + "  name: web-cfg\n  labels: {app: web}\ndata:\n  image: reg.io/a"
            + DIGEST
            + "\n",
        ),
        (
            "kind: Pod\nmetadata: {}\nspec:\n  image: a:1\n",
            "kind: Pod\nmetadata:\n  annotations:\n"
            + _block_annotation(4)
            + "spec:\n  image: reg.io/a"
            + DIGEST
            + "\n",
        ),
        (  # flow annotations inside block metadata; quotes and order kept
            "kind: Pod\nmetadata:\n  name: x\n  annotations: {a: \"b\", 'c': d}\n"
            "spec:\n  image: a:1\n",
            "kind: Pod\nmetadata:\n  name: x\n  annotations:\n"
            + _block_annotation(4)
            + "    a: \"b\"\n    'c': d\nspec:\n  image: reg.io/a"
            + DIGEST
            + "\n",
        ),
        (  # CRLF, wider indentation, no final line break
            "kind: Pod\r\nspec:\r\n    image: a:1\r\nmetadata: {name: x}",
            "kind: Pod\r\nspec:\r\n    image: reg.io/a"
            + DIGEST
            + "\r\nmetadata:\r\n    annotations:\r\n"
            + _block_annotation(8, 4).replace("\n", "\r\n")
            + "    name: x\r\n",
        ),
    ],
)
def test_flow_metadata_gets_a_block_annotation(text: str, expected: str) -> None:
    out, spliced = render(text)
    assert spliced
    nl = "\r\n" if "\r\n" in text else "\n"
    assert out == "---" + nl + expected
    assert '"kbld.k14s.io/images"' not in out
