"""Every recorded kbld case, replayed through the CLI against the real registry.

Lock files must equal kbld's byte for byte; stdout must equal kbld's as data
(YAML 1.1 rules on both sides: kbld re-serialises with Go yaml.v2); stderr
names every failing reference; a failing run writes nothing.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.conformance import ConformanceCase, case_params, get_case, seed_case
from tests.support.registry import Registry
from tests.support.yamldata import load_yaml11


@pytest.mark.parametrize("case", case_params("resolve"))
def test_resolve_case(
    case: ConformanceCase,
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    seed_case(registry, case)
    inputs = tmp_path / "in"
    out = tmp_path / "out"
    out.mkdir()
    case.copy_input(inputs, registry.host)
    code, stdout, stderr = run_cli(case.cli_args(inputs, out, registry.host), capfd)

    assert code == case.exit_code, stderr
    if case.exit_code != 0:
        assert stdout == ""
        assert list(out.iterdir()) == []
        expected_err = case.expected_text("stderr.txt", registry.host, input_dir=inputs)
        failing = [
            line.split("'")[1] for line in expected_err.splitlines() if line.startswith("- ")
        ]
        assert failing
        for ref in failing:
            assert f"Resolving image '{ref}'" in stderr
        return

    for name in case.outputs:
        written = out / name
        assert written.read_text() == case.expected_text(name, registry.host), name
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
    expected_stdout = case.expected_text("stdout.yml", registry.host)
    assert load_yaml11(stdout) == load_yaml11(expected_stdout)
    expected_err = case.expected_text("stderr.txt", registry.host)
    assert [
        line for line in stderr.splitlines() if line.startswith("resolve |")
    ] == expected_err.splitlines()


def test_digest_and_lock_pinned_references_cost_no_request(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    for name in ("r03", "r09"):
        case = get_case("resolve", name)
        seed_case(registry, case)
        inputs = tmp_path / name
        out = tmp_path / f"{name}-out"
        out.mkdir()
        case.copy_input(inputs, registry.host)
        mark = registry.mark()
        code, _, err = run_cli(case.cli_args(inputs, out, registry.host), capfd)
        assert code == 0, err
        log = registry.request_log(since=mark)
        if name == "r03":
            # pinned@sha256 and pinned:1.0@sha256 need nothing; pinned:1.0 one HEAD.
            assert [(r.method, r.path) for r in log] == [
                ("HEAD", "/v2/conf/r03/pinned/manifests/1.0")
            ]
        else:
            # a:1.0 is pinned by the ImagesLock given with -f; only b:1.0 is asked for.
            assert [(r.method, r.path) for r in log] == [("HEAD", "/v2/conf/r09/b/manifests/1.0")]


def test_one_head_per_distinct_normalised_reference(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    case = get_case("resolve", "r02")
    seed_case(registry, case)
    case.copy_input(tmp_path / "in", registry.host)
    mark = registry.mark()
    code, _, err = run_cli(["-f", str(tmp_path / "in")], capfd)
    assert code == 0, err
    heads = [r.path for r in registry.request_log(since=mark)]
    # sidecar and sidecar:latest are one image: three HEADs for four spellings.
    assert sorted(heads) == [
        "/v2/conf/r02/api/manifests/2.1.0",
        "/v2/conf/r02/init/manifests/v3",
        "/v2/conf/r02/sidecar/manifests/latest",
    ]
