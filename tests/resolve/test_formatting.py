"""The output is the input with only image values and the images annotation changed.

For each resource the rendered text is turned back (every resolved URL
replaced by the reference it came from) and both texts are stripped of the
``kbld.k14s.io/images`` annotation block (and of ``annotations:`` /
``metadata:`` parents left empty by that); what remains must be identical,
byte for byte: comments, quoting, key order, blank lines and CRLF.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lockresolve.resolve.documents import Resource
from lockresolve.resolve.render import render_resource
from tests.resolve.pipeline import (
    CORPUS,
    UNPARSABLE,
    cases,
    corpus_file,
    corpus_files,
    mapping_from_images_lock,
    parse_inputs,
    unique_urls,
)

_ANNOTATION = re.compile(r"^( *)kbld\.k14s\.io/images:")
_PARENT = re.compile(r"^( *)(metadata|annotations):[ \t]*\r?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def strip_annotation(text: str) -> str:
    """Drop the images annotation (key line and its deeper lines) and emptied parents."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _ANNOTATION.match(lines[i])
        if m is None:
            out.append(lines[i])
            i += 1
            continue
        col = len(m.group(1))
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > col):
            i += 1
    changed = True
    while changed:
        changed = False
        for j, line in enumerate(out):
            m = _PARENT.match(line)
            if m is None:
                continue
            nxt = out[j + 1] if j + 1 < len(out) else ""
            if not nxt.strip() or _indent(nxt) <= len(m.group(1)):
                del out[j]
                changed = True
                break
    return "".join(out)


def resource_text(res: Resource) -> str:
    start, end = res.span
    text = res.text[start:end]
    if res.item:
        lines = text.splitlines(keepends=True)
        col = res.node.column
        text = lines[0] + "".join(
            line[col:] if _indent(line) >= col else line.lstrip(" ") for line in lines[1:]
        )
    return text if text.endswith("\n") else text + res.newline


def assert_only_images_changed(res: Resource, rendered: str, urls: dict[str, str]) -> None:
    nl = res.newline
    assert rendered.startswith("---" + nl)
    body = rendered[len("---" + nl) :]
    for url, ref in sorted(urls.items(), key=lambda kv: -len(kv[0])):
        body = body.replace(url, ref)
    assert strip_annotation(body) == strip_annotation(resource_text(res))


@pytest.mark.parametrize("case", [c for c in cases(0) if "r13" not in c.name], ids=lambda c: c.name)
def test_conformance_inputs_keep_their_formatting(case: object) -> None:
    run = parse_inputs(case.inputs)  # type: ignore[attr-defined]
    expected = case.expected("images.yml")  # type: ignore[attr-defined]
    mapping = (
        mapping_from_images_lock(expected) if expected else unique_urls(run.references.distinct)
    )
    urls = {img.url: ref for ref, img in mapping.items()}
    if len(urls) != len(mapping):  # several spellings share a digest: use unique URLs instead
        mapping = unique_urls(run.references.distinct)
        urls = {img.url: ref for ref, img in mapping.items()}
    for res in run.resources:
        out = render_resource(res, run.rules, mapping)
        assert out.spliced
        assert_only_images_changed(res, out.text, urls)


def test_comments_and_quoting_survive() -> None:
    (case,) = [c for c in cases(0) if c.name.startswith("r02")]
    run = parse_inputs(case.inputs)
    mapping = unique_urls(run.references.distinct)
    text = "".join(render_resource(r, run.rules, mapping).text for r in run.resources)
    assert "name: api   # trailing comment\n" in text
    assert 'image: "example.test/lockresolve/' in text
    assert "image: 'example.test/lockresolve/" in text


@pytest.mark.parametrize(
    "path",
    sorted((CORPUS / "k8s-examples-crlf").rglob("*.yaml"))
    + sorted((CORPUS / "gke-crlf-envsubst").rglob("*.yaml")),
    ids=lambda p: p.name,
)
def test_crlf_files_stay_crlf(path: Path) -> None:
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n"), "the corpus file is CRLF throughout"
    result = corpus_file(path)
    for res, out in result.rendered:
        assert out.text.count("\r\n") == out.text.count("\n"), "every output line ends in CRLF"
        assert_only_images_changed(res, out.text, result.urls)


def test_whole_corpus_keeps_formatting() -> None:
    """Every resource of the real-world corpus is spliced, never re-serialised."""
    checked = 0
    for path in corpus_files():
        if path.name in UNPARSABLE:
            continue
        result = corpus_file(path)
        for res, out in result.rendered:
            assert out.spliced, f"{path}:{res.line}"
            assert_only_images_changed(res, out.text, result.urls)
            checked += 1
    assert checked > 600
