"""Rendering without the re-parse gives exactly the text of rendering with it.

``render_resource`` skips parsing its result again when every edit is of a kind
known to decode as intended (see the module doc of ``lockresolve.resolve.render``).
Here every resource of the conformance inputs and of the real-world corpus is
rendered both ways: the texts (and whether they were spliced) must be the same,
which also means the re-parse accepted every result the fast path let through.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import pytest

from lockresolve.resolve import render
from lockresolve.resolve.configmodel import Config, SearchRule
from lockresolve.resolve.documents import Resource
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.rules import search_rules
from lockresolve.resolve.walker import find_references
from tests.resolve.pipeline import (
    UNPARSABLE,
    cases,
    corpus_files,
    mapping_from_images_lock,
    mapping_from_kbld_lock,
    parse_inputs,
    parsed_file,
    unique_urls,
)


@contextmanager
def counting_reparses() -> Iterator[list[int]]:
    calls = [0]
    original = render._reparse

    def counted(body: str, res: Resource) -> object:
        calls[0] += 1
        return original(body, res)

    render._reparse = counted
    try:
        yield calls
    finally:
        render._reparse = original


def both_ways(
    resources: Sequence[Resource],
    rules: Sequence[SearchRule],
    mapping: Mapping[str, ResolvedImage],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, int]:
    """Render each resource with and without the fast path, annotated or not.

    Returns (renders, renders that skipped the re-parse).
    """
    skipped = 0
    for res in resources:
        for annotate in (True, False):
            monkeypatch.setattr(render, "_ALWAYS_CHECK", False)
            with counting_reparses() as calls:
                fast = render.render_resource(res, rules, mapping, annotate=annotate)
            monkeypatch.setattr(render, "_ALWAYS_CHECK", True)
            checked = render.render_resource(res, rules, mapping, annotate=annotate)
            assert fast == checked, f"{res.source}:{res.line} (annotate={annotate})"
            if fast.spliced and not calls[0]:
                skipped += 1
    return 2 * len(resources), skipped


def test_conformance_inputs_render_the_same_without_the_reparse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    total = skipped = 0
    for case in cases(0):
        run = parse_inputs(case.inputs)
        images = case.expected("images.yml")
        if images is not None:
            mapping = mapping_from_images_lock(images)
        else:
            lock = case.expected("lock.yml")
            assert lock is not None
            mapping = mapping_from_kbld_lock(lock)
        n, s = both_ways(run.resources, run.rules, mapping, monkeypatch)
        total, skipped = total + n, skipped + s
    assert total > 40
    assert skipped > total // 2, (skipped, total)


def test_corpus_renders_the_same_without_the_reparse(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = search_rules(Config())
    total = skipped = 0
    for path in corpus_files():
        if path.name in UNPARSABLE:
            continue
        parsed = parsed_file(path)
        mapping = unique_urls(find_references(parsed.resources, rules).distinct)
        n, s = both_ways(parsed.resources, rules, mapping, monkeypatch)
        total, skipped = total + n, skipped + s
    assert total > 1200
    # most corpus resources take the fast path; the rest are the re-parse's job
    assert skipped > total * 3 // 4, (skipped, total)
