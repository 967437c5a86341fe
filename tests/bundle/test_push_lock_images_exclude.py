"""``push -b --lock-images`` on a bundle holding templates and dot-files: ``--lock-images-exclude``
keeps files in the bundle without resolving them, dot-files other than ``.imgpkg/`` are not
read, and a file that does not parse is named with the way out. Against the real registry;
the pushed bundle is pulled back to check what it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bundle.test_push_lock_images import push_tag
from tests.support.cli import run_cli
from tests.support.registry import Registry

HELM = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
      - name: app
        image: {{ .Values.image }}
{{- if .Values.extra }}
        args: [--extra]
{{- end }}
"""


def make_templated_bundle(root: Path, registry: Registry, prefix: str) -> str:
    """A bundle with a real ``config/pod.yml``, a Helm chart, a ytt-style template in
    ``other/``, a broken ``.pre-commit-config.yaml`` and a ``.github`` workflow whose
    image must not be locked. Returns the pod's image."""
    push_tag(registry, f"{prefix}/app", "1.0", f"{prefix}-app")
    push_tag(registry, f"{prefix}/ci", "1.0", f"{prefix}-ci")
    app = f"{registry.host}/{prefix}/app:1.0"
    for rel, text in {
        ".imgpkg/images.yml": "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n",
        "config/pod.yml": f"kind: Pod\nspec:\n  containers:\n  - image: {app}\n",
        "chart/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "chart/templates/deployment.yaml": HELM,
        "other/values.tpl.yaml": "#@ load('@ytt:data', 'data')\nimage: #@ data.values.image\n",
        ".pre-commit-config.yaml": "repos:\n- repo: x\n  rev: {{bad\n",
        ".github/workflows/ci.yml": f"jobs:\n  x:\n    container:\n      image: {registry.host}/{prefix}/ci:1.0\n",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return app


def test_excluded_templates_and_dot_files_are_pushed_but_not_resolved(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = "lockimg/exclude"
    root = tmp_path / "bundle"
    app = make_templated_bundle(root, registry, prefix)
    target = f"{registry.host}/{prefix}/bundle:1"

    code, _, err = run_cli(
        [
            "push",
            "-b",
            target,
            "-f",
            str(root),
            "--lock-images",
            "--lock-images-exclude",
            "chart/templates/*",
            "--lock-images-exclude",
            "other/*.tpl.yaml",
        ],
        capfd,
    )

    assert code == 0, err
    lock = (root / ".imgpkg" / "images.yml").read_text()
    assert f"kbld.carvel.dev/id: {app}" in lock
    assert "/ci@" not in lock and lock.count("- annotations:") == 1
    assert f"resolve | final: {app} -> " in err
    code, _, err = run_cli(["pull", "-b", target, "-o", str(tmp_path / "pulled")], capfd)
    assert code == 0, err
    pulled = tmp_path / "pulled"
    for rel in (
        "chart/templates/deployment.yaml",
        "other/values.tpl.yaml",
        ".pre-commit-config.yaml",
        ".github/workflows/ci.yml",
    ):
        assert (pulled / rel).read_bytes() == (root / rel).read_bytes(), rel


def test_a_template_that_does_not_parse_is_named_with_the_way_out(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = "lockimg/exclude-error"
    root = tmp_path / "bundle"
    make_templated_bundle(root, registry, prefix)
    (root / "other" / "values.tpl.yaml").unlink()
    before = (root / ".imgpkg" / "images.yml").read_bytes()
    target = f"{registry.host}/{prefix}/bundle:1"

    code, out, err = run_cli(["push", "-b", target, "-f", str(root), "--lock-images"], capfd)

    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, err
    assert "chart/templates/deployment.yaml:" in lines[0]
    assert "--lock-images-exclude 'chart/templates/*'" in lines[0]
    assert ".pre-commit-config.yaml" not in err  # dot-files are not read at all
    assert (root / ".imgpkg" / "images.yml").read_bytes() == before
    assert out == ""
    with registry.client() as client:
        assert client.get(f"/v2/{prefix}/bundle/tags/list").status_code == 404


def test_lock_images_exclude_needs_lock_images(capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        ["push", "-b", "127.0.0.1:1/x:1", "-f", ".", "--lock-images-exclude", "chart"], capfd
    )
    assert code == 2 and "--lock-images-exclude needs --lock-images" in err
