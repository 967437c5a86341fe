"""``resourceMatchers`` in ``searchRules`` through the CLI, on the real corpus's TAP OSS
package repository (six ``Package`` resources, one bundle image each) and a hand-written
resource with annotations.

The rule under test is ``{keyMatcher: {name: image}, updateStrategy: {none: {}},
resourceMatchers: [M]}``: it leaves the images of the resources ``M`` matches alone. Run
with ``--offline`` (no registry is asked; the images are on ghcr.io), every image the
rule does *not* cover fails as "not pinned", so the failure list says exactly which
resources the matcher did not match.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.conformance import corpus_dir

PACKAGES = {
    "argo-cd": "ghcr.io/vrabbi/argo-cd.tap.oss:3.0.4",
    "jenkins": "ghcr.io/vrabbi/jenkins.tap.oss:8.1.7",
    "kpack-config": "ghcr.io/vrabbi/kpack-config-package:0.5.2",
    "rabbitmq": "ghcr.io/vrabbi/rabbitmq-cluster-operator.tap.oss:2.3.1",
    "tap-oss": "ghcr.io/vrabbi/tap-oss-package:0.2.4",
    "tekton": "ghcr.io/vrabbi/tekton-package:0.32.1",
}
ANNOTATED = "registry.example/annotated/app:1"
ALL = {*PACKAGES.values(), ANNOTATED}

PKG = {
    "apiVersionKindMatcher": {"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package"}
}
JENKINS = {"kindNamespaceNameMatcher": {"kind": "Package", "name": "jenkins.tap.oss.8.1.7"}}
TEKTON = {
    "kindNamespaceNameMatcher": {
        "kind": "Package",
        "namespace": "",
        "name": "tekton.tap.oss.0.32.1",
    }
}
ANNOTATION = {"hasAnnotationMatcher": {"keys": ["example.com/frozen"]}}

CASES: dict[str, tuple[list[object], set[str]]] = {
    # matcher list -> the references left alone (matched resources)
    "all": ([{"allMatcher": {}}], ALL),
    "apiVersionKind": ([PKG], set(PACKAGES.values())),
    "apiVersionKind-other": (
        [{"apiVersionKindMatcher": {"apiVersion": "apps/v1", "kind": "Package"}}],
        set(),
    ),
    "kindNamespaceName": ([JENKINS], {PACKAGES["jenkins"]}),
    "kindNamespaceName-empty-namespace": ([TEKTON], {PACKAGES["tekton"]}),
    "hasAnnotation": ([ANNOTATION], {ANNOTATED}),
    "not": ([{"notMatcher": {"matcher": ANNOTATION}}], set(PACKAGES.values())),
    "any": (
        [{"anyMatcher": {"matchers": [JENKINS, TEKTON]}}],
        {PACKAGES["jenkins"], PACKAGES["tekton"]},
    ),
    "and": (
        [{"andMatcher": {"matchers": [PKG, {"notMatcher": {"matcher": JENKINS}}]}}],
        set(PACKAGES.values()) - {PACKAGES["jenkins"]},
    ),
    "list-is-any-of": ([JENKINS, ANNOTATION], {PACKAGES["jenkins"], ANNOTATED}),
    "nested": (
        [{"notMatcher": {"matcher": {"anyMatcher": {"matchers": [PKG, ANNOTATION]}}}}],
        set(),
    ),
}


def _inputs(tmp_path: Path, matchers: list[object]) -> list[str]:
    (tmp_path / "annotated.yml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: frozen\n"
        "  annotations:\n    example.com/frozen: 'yes'\n"
        f"spec:\n  template:\n    spec:\n      containers:\n      - image: {ANNOTATED}\n"
    )
    rule = {
        "keyMatcher": {"name": "image"},
        "updateStrategy": {"none": {}},
        "resourceMatchers": matchers,
    }
    (tmp_path / "kbld.yml").write_text(
        "apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\nsearchRules:\n- "
        + json.dumps(rule)
        + "\n"
    )
    packages = corpus_dir() / "tap-oss-package-repo" / "packages"
    return [
        "-f",
        str(packages),
        "-f",
        str(tmp_path / "annotated.yml"),
        "-f",
        str(tmp_path / "kbld.yml"),
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_matcher(name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    matchers, left_alone = CASES[name]
    code, out, err = run_cli([*_inputs(tmp_path, matchers), "--offline"], capfd)
    failing = {line.split("'")[1] for line in err.splitlines() if line.startswith("- Resolving")}
    assert failing == ALL - left_alone, err
    assert code == (1 if failing else 0)
    if not failing:
        for ref in ALL:
            assert f"image: {ref}" in out  # left exactly as written


def test_without_matchers_the_rule_applies_everywhere(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    args = _inputs(tmp_path, [])
    # an empty resourceMatchers list is refused; a rule without the key is kbld's
    code, _, err = run_cli([*args, "--offline"], capfd)
    assert code == 1
    assert "searchRules[0].resourceMatchers: expected at least one matcher" in err
    kbld = tmp_path / "kbld.yml"
    kbld.write_text(kbld.read_text().replace(', "resourceMatchers": []', ""))
    code, _, err = run_cli([*args, "--offline"], capfd)
    assert code == 0, err


@pytest.mark.parametrize(
    ("matcher", "message"),
    [
        ({"kindMatcher": {"kind": "Pod"}}, "unknown field 'kindMatcher'"),
        ({"apiVersionKindMatcher": {"kind": "Pod", "group": "x"}}, "unknown field 'group'"),
        ({"apiVersionKindMatcher": {"kind": "Pod"}}, "expected apiVersion and kind"),
        ({}, "expected exactly one of allMatcher"),
        (
            {"allMatcher": {}, "notMatcher": {"matcher": {"allMatcher": {}}}},
            "expected exactly one of",
        ),
        ({"notMatcher": {}}, "matcher: expected a matcher"),
        ({"anyMatcher": {"matchers": []}}, "matchers: expected at least one matcher"),
        ({"hasAnnotationMatcher": {"keys": []}}, "keys: expected at least one annotation key"),
    ],
)
def test_bad_matchers_name_the_file_and_line(
    matcher: object, message: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    args = _inputs(tmp_path, [matcher])
    code, out, err = run_cli(args, capfd)
    assert code == 1
    assert out == ""
    assert err.startswith(f"lockresolve: error: {tmp_path / 'kbld.yml'}:4: Config searchRules[0]")
    assert message in err
    assert err.count("\n") == 1


def test_the_kbld_config_lock_keeps_the_matchers(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """--lock-output writes the rule with its resourceMatchers; read back, it gives the
    same result (the lock given as input, offline)."""
    matchers: list[object] = [JENKINS]
    args = _inputs(tmp_path, matchers)
    lock = tmp_path / "kbld.lock.yml"
    # everything but jenkins fails offline: pin them with preresolved overrides first
    pins = tmp_path / "pins.yml"
    pins.write_text(
        "apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\noverrides:\n"
        + "".join(
            f"- image: {ref}\n  newImage: {ref.split(':')[0]}@sha256:{'b' * 64}\n"
            "  preresolved: true\n"
            for ref in sorted(ALL - {PACKAGES["jenkins"]})
        )
    )
    code, _, err = run_cli([*args, "-f", str(pins), "--offline", "--lock-output", str(lock)], capfd)
    assert code == 0, err
    text = lock.read_text()
    assert "resourceMatchers:\n  - kindNamespaceNameMatcher:\n" in text
    assert "name: jenkins.tap.oss.8.1.7" in text
    packages = corpus_dir() / "tap-oss-package-repo" / "packages"
    code, out, err = run_cli(
        ["-f", str(packages), "-f", str(tmp_path / "annotated.yml"), "-f", str(lock), "--offline"],
        capfd,
    )
    assert code == 0, err
    assert f"image: {PACKAGES['jenkins']}\n" in out
