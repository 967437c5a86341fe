"""``--exclude PATTERN`` and ``Config`` ``excludes:``, end to end against the real registry.

An excluded value is left exactly as written (no annotation for it), sends no request
and stays out of the locks; patterns match the reference as written or normalised.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resolve.test_check_update import push_tag
from tests.support.cli import run_cli
from tests.support.registry import Registry


def _files(tmp_path: Path, host: str) -> tuple[Path, Path]:
    app = tmp_path / "app.yml"
    app.write_text(
        "kind: Deployment\nmetadata:\n  name: app\nspec:\n  containers:\n"
        f"  - image: {host}/excl/a:1.0\n"
        "  - image: ghcr.io/acme/sidecar:2  # excluded: never asked for\n"
        f"  - image: {host}/excl/c\n"
        "---\n"
        "kind: Pod\nmetadata:\n  name: tpl\nspec:\n"
        "  image: '{{ .Values.image }}'\n"
    )
    lock = tmp_path / "images.yml"
    return app, lock


def _check(registry: Registry, tmp_path: Path, out: str, lock: Path, mark: int, a: str) -> None:
    h = registry.host
    assert f"- image: {h}/excl/a@{a}\n" in out
    assert "  - image: ghcr.io/acme/sidecar:2  # excluded: never asked for\n" in out
    assert f"  - image: {h}/excl/c\n" in out
    # the Pod holds only an excluded value: untouched, and no annotation added
    assert "kind: Pod\nmetadata:\n  name: tpl\nspec:\n  image: '{{ .Values.image }}'\n" in out
    text = lock.read_text()
    assert f"{h}/excl/a@{a}" in text
    assert "sidecar" not in text and "excl/c" not in text and "Values" not in text
    assert [(r.method, r.path) for r in registry.request_log(since=mark)] == [
        ("HEAD", "/v2/excl/a/manifests/1.0")
    ]


def test_exclude_flags(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    a = push_tag(registry, "excl/a", "1.0", "excl-a")
    app, lock = _files(tmp_path, registry.host)
    mark = registry.mark()
    code, out, err = run_cli(
        [
            "-f",
            str(app),
            "--imgpkg-lock-output",
            str(lock),
            "--exclude",
            "ghcr.io/acme/*",
            "--exclude",
            "{{*",
            # only the normalised form carries the tag: matched as normalised
            "--exclude",
            f"{registry.host}/excl/c:latest",
        ],
        capfd,
    )
    assert code == 0, err
    _check(registry, tmp_path, out, lock, mark, a)


def test_config_excludes(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    a = push_tag(registry, "excl/a", "1.0", "excl-a")
    app, lock = _files(tmp_path, registry.host)
    config = tmp_path / "kbld.yml"
    config.write_text(
        "apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\nexcludes:\n- 'ghcr.io/acme/*'\n"
        f"- '{{{{*'\n- {registry.host}/excl/c:latest\n"
    )
    mark = registry.mark()
    code, out, err = run_cli(
        ["-f", str(app), "-f", str(config), "--imgpkg-lock-output", str(lock)], capfd
    )
    assert code == 0, err
    _check(registry, tmp_path, out, lock, mark, a)


def test_without_exclusions_the_values_are_resolved(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The same inputs without patterns fail as kbld does (the template is no reference)."""
    push_tag(registry, "excl/a", "1.0", "excl-a")
    app, lock = _files(tmp_path, registry.host)
    app.write_text(app.read_text().replace("ghcr.io/acme/sidecar:2", f"{registry.host}/x/y:2"))
    code, _, err = run_cli(["-f", str(app), "--imgpkg-lock-output", str(lock)], capfd)
    assert code == 1
    assert "Resolving image '{{ .Values.image }}'" in err
    assert not lock.exists()


@pytest.mark.parametrize(
    ("doc", "line", "message"),
    [
        ("kind: Config\nexcludes: x\n", 3, "Config excludes: expected a list, got a string"),
        ("kind: Config\nexcludes:\n- ''\n", 4, "Config excludes[0]: Expected to be non-empty"),
        (
            "kind: ImageKeys\nexcludes: [a]\n",
            3,
            "ImageKeys excludes: excludes is a lockresolve extension of kind Config only",
        ),
    ],
)
def test_bad_excludes_name_the_file_and_line(
    doc: str, line: int, message: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kbld.yml"
    path.write_text("apiVersion: kbld.k14s.io/v1alpha1\n" + doc)
    code, out, err = run_cli(["-f", str(path)], capfd)
    assert code == 1
    assert out == ""
    assert err == f"lockresolve: error: {path}:{line}: {message}\n"
