"""``--keep-tag`` over every recorded kbld resolve case, against the real registry.

The locks must stay kbld's bytes. In the documents, every value kbld wrote as
``X@sha256:D`` that lockresolve writes differently must be ``X:T@sha256:D`` where
the registry says tag ``T`` of ``X`` is ``D`` (or an index that lists ``D``, for a
platform selection): the tag is checked against the registry, not against our lock.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.support.cli import run_cli
from tests.support.conformance import ConformanceCase, case_params, seed_case
from tests.support.registry import MANIFEST_ACCEPT, Registry
from tests.support.yamldata import load_yaml11

PINNED = re.compile(r"(?P<base>[A-Za-z0-9._:/-]+)@(?P<digest>sha256:[0-9a-f]{64})")
ANNOTATION = "kbld.k14s.io/images"


def _tag_points_to(registry: Registry, base: str, tag: str, digest: str) -> bool:
    host, _, repo = base.partition("/")
    assert host == registry.host, base
    with registry.client() as client:
        answer = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
    if answer.status_code != 200:
        return False
    if answer.headers.get("docker-content-digest") == digest:
        return True
    children = json.loads(answer.content).get("manifests") or []
    return any(c.get("digest") == digest for c in children)


def _pairs(kbld: object, ours: object, found: list[tuple[str, str]]) -> None:
    """Every (kbld's, ours) pair of strings that differ, the structures otherwise equal."""
    if isinstance(kbld, dict):
        assert isinstance(ours, dict) and set(kbld) == set(ours)
        for key in kbld:
            _pairs(kbld[key], ours[key], found)
    elif isinstance(kbld, list):
        assert isinstance(ours, list) and len(kbld) == len(ours)
        for a, b in zip(kbld, ours, strict=True):
            _pairs(a, b, found)
    elif kbld != ours:
        assert isinstance(kbld, str) and isinstance(ours, str), (kbld, ours)
        found.append((kbld, ours))


def _load(text: str) -> object:
    yaml = YAML(typ="safe", pure=True)
    return yaml.load(text)


#: the cases that write documents (a failing case writes none)
SUCCEEDING = [p for p in case_params("resolve") if p.values[0].exit_code == 0]


@pytest.mark.parametrize("case", SUCCEEDING)
def test_keep_tag_case(
    case: ConformanceCase, registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    seed_case(registry, case)
    inputs = tmp_path / "in"
    out = tmp_path / "out"
    out.mkdir()
    case.copy_input(inputs, registry.host)
    code, stdout, stderr = run_cli(
        [*case.cli_args(inputs, out, registry.host), "--keep-tag"], capfd
    )
    assert code == 0, stderr
    for name in case.outputs:
        assert (out / name).read_text() == case.expected_text(name, registry.host), name

    pairs: list[tuple[str, str]] = []
    _pairs(load_yaml11(case.expected_text("stdout.yml", registry.host)), load_yaml11(stdout), pairs)
    tagged = 0
    for kbld, ours in pairs:
        if kbld.startswith("- origins:") or kbld == "null\n":
            # the annotation: the same records, each url as written in the document
            k_items, o_items = _load(kbld), _load(ours)
            assert isinstance(k_items, list) and isinstance(o_items, list)
            assert [i["origins"] for i in k_items] == [i["origins"] for i in o_items]
            for k_item, o_item in zip(k_items, o_items, strict=True):
                k_url, o_url = k_item["url"], o_item["url"]
                m = PINNED.fullmatch(k_url)
                assert m is not None and o_url.endswith("@" + m["digest"])
            continue
        # each X@sha256:D in kbld's value (a whole value, or inside a json/yaml string)
        # is X:T@sha256:D in ours
        pieces, pos, found = [], 0, list(PINNED.finditer(kbld))
        assert found, (kbld, ours)
        for i, m in enumerate(found):
            pieces.append(re.escape(kbld[pos : m.start()]))
            pieces.append(re.escape(m["base"]) + f":(?P<t{i}>[\\w][\\w.-]{{0,127}})@" + m["digest"])
            pos = m.end()
        pieces.append(re.escape(kbld[pos:]))
        got = re.fullmatch("".join(pieces), ours)
        assert got is not None, (kbld, ours)
        for i, m in enumerate(found):
            assert _tag_points_to(registry, m["base"], got[f"t{i}"], m["digest"]), ours
            tagged += 1
    resolved_by_tag = "resolved:" in case.expected_text("stdout.yml", registry.host)
    assert (tagged > 0) == resolved_by_tag, case


def test_without_keep_tag_the_output_is_kbld_s(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The flag's absence changes nothing (the replay tests compare every case)."""
    from tests.support.conformance import get_case

    case = get_case("resolve", "r01")
    seed_case(registry, case)
    inputs = tmp_path / "in"
    out = tmp_path / "out"
    out.mkdir()
    case.copy_input(inputs, registry.host)
    code, stdout, _ = run_cli(case.cli_args(inputs, out, registry.host), capfd)
    assert code == 0
    assert load_yaml11(stdout) == load_yaml11(case.expected_text("stdout.yml", registry.host))
