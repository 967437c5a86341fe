"""Every successful kbld v0.42.0 conformance case, replayed without a registry.

The expected lock file tells what each reference resolved to (that is the
engine's job); from there the references found, the lock bytes and the
rendered resources must be kbld's.

stdout is compared as data. kbld re-serialises with Go yaml.v2, a YAML 1.1
library, so its output says ``name: true`` where the input said ``name: y``
(r11): lockresolve keeps the input's ``y``. Both sides are therefore loaded
with a YAML 1.1 resolver (ruamel, ``version = (1, 1)``), under which ``y``
is ``true`` too; comparing with a YAML 1.2 loader would wrongly see a change.
"""

from __future__ import annotations

import re

import pytest
from ruamel.yaml import YAML

from tests.resolve.pipeline import (
    Case,
    cases,
    lock_texts,
    mapping_from_images_lock,
    mapping_from_kbld_lock,
    parse_inputs,
    render_all,
)


def load_yaml11(text: str) -> list[object]:
    """Documents of a stream under YAML 1.1 rules (each loaded alone: ruamel drops the
    requested version at an explicit ``---``)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    docs = re.split(r"^---[ \t]*\r?\n", text, flags=re.MULTILINE)
    return [d for d in (yaml.load(doc) for doc in docs if doc.strip()) if d is not None]


def expected_mapping(case: Case) -> dict[str, object]:
    images = case.expected("images.yml")
    if images is not None:
        return dict(mapping_from_images_lock(images))
    lock = case.expected("lock.yml")
    assert lock is not None
    return dict(mapping_from_kbld_lock(lock))


@pytest.mark.parametrize("case", cases(0), ids=lambda c: c.name)
def test_references_are_the_lock_ids(case: Case) -> None:
    run = parse_inputs(case.inputs)
    assert set(run.references.distinct) == set(expected_mapping(case))
    assert len(run.references.distinct) == len(set(run.references.distinct))


@pytest.mark.parametrize("case", cases(0), ids=lambda c: c.name)
def test_lock_file_is_byte_identical(case: Case) -> None:
    run = parse_inputs(case.inputs)
    images_lock, kbld_lock = lock_texts(run, expected_mapping(case))  # type: ignore[arg-type]
    if case.expected("images.yml") is not None:
        assert images_lock == case.expected("images.yml")
    if case.expected("lock.yml") is not None:
        assert kbld_lock == case.expected("lock.yml")


@pytest.mark.parametrize("case", cases(0), ids=lambda c: c.name)
def test_stdout_is_kbld_output_as_data(case: Case) -> None:
    run = parse_inputs(case.inputs)
    rendered = render_all(run, expected_mapping(case))  # type: ignore[arg-type]
    stdout = "".join(r.text for r in rendered)
    expected = case.expected("stdout.yml")
    assert expected is not None
    assert load_yaml11(stdout) == load_yaml11(expected)
    assert all(r.spliced for r in rendered), "every conformance resource keeps its formatting"
    assert all(r.text.startswith("---\n") for r in rendered)


def test_r11_differs_from_kbld_only_by_yaml11_booleans() -> None:
    """The reason for the YAML 1.1 comparison: the text keeps ``name: y``."""
    (case,) = [c for c in cases(0) if c.name.startswith("r11")]
    run = parse_inputs(case.inputs)
    stdout = "".join(r.text for r in render_all(run, expected_mapping(case)))  # type: ignore[arg-type]
    assert "  name: y\n" in stdout
    assert "  name: true\n" in (case.expected("stdout.yml") or "")


def test_r12_references_include_the_failing_ones() -> None:
    """The failing case still finds every reference (the engine reports them all)."""
    (case,) = [c for c in cases(1) if c.name.startswith("r12")]
    run = parse_inputs(case.inputs)
    assert [r.split("/conf/")[1] for r in run.references.distinct] == [
        "r12/ok:1.0",
        "r12/ok:9.9",
        "r12/absent:1.0",
    ]
