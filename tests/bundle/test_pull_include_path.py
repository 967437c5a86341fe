"""``pull --include-path``: a file, a folder, several, a missing path and a bad one, against
the real registry through the CLI; ``.imgpkg/`` is always kept and ``images.yml`` is still
relocated (the bundle's repository holds its image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bundle.test_push_lock_images import push_tag
from tests.robustness.helpers import leftovers, run_cli, tree
from tests.support.registry import Registry

FILES = {
    "config/app.yml": "kind: Pod\n",
    "config/sub/x.yml": "x: 1\n",
    "docs/readme.md": "# docs\n",
    "top.txt": "top\n",
}


@pytest.fixture(scope="module")
def bundle_ref(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    digest = push_tag(registry, "inc/app", "1.0", "inc-app")
    push_tag(registry, "inc/bundle", "app", "inc-app")  # the same image, in the bundle's repo
    root = tmp_path_factory.mktemp("inc") / "bundle"
    (root / ".imgpkg").mkdir(parents=True)
    (root / ".imgpkg" / "images.yml").write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n"
        f"- image: {registry.host}/inc/app@{digest}\nkind: ImagesLock\n"
    )
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    from lockresolve.cli import main

    try:
        main(["push", "-b", f"{registry.host}/inc/bundle:1", "-f", str(root)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return f"{registry.host}/inc/bundle:1"


def _pull(ref: str, out: Path, capfd: pytest.CaptureFixture[str], *paths: str) -> tuple[int, str]:
    args = ["pull", "-b", ref, "-o", str(out)]
    for p in paths:
        args += ["--include-path", p]
    res = run_cli(args, capfd)
    return res.code, res.err


def test_one_file(
    bundle_ref: str, registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, err = _pull(bundle_ref, tmp_path / "o", capfd, "config/app.yml")
    assert code == 0, err
    got = tree(tmp_path / "o")
    assert set(got) == {".imgpkg", ".imgpkg/images.yml", "config", "config/app.yml"}
    assert got["config/app.yml"] == b"kind: Pod\n"
    lock = (tmp_path / "o" / ".imgpkg" / "images.yml").read_text()
    assert f"image: {registry.host}/inc/bundle@sha256:" in lock  # relocated


def test_a_folder_and_a_file_with_dot_and_slash_spellings(
    bundle_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, err = _pull(bundle_ref, tmp_path / "o", capfd, "./config/", "top.txt", "config")
    assert code == 0, err
    assert set(tree(tmp_path / "o")) == {
        ".imgpkg",
        ".imgpkg/images.yml",
        "config",
        "config/app.yml",
        "config/sub",
        "config/sub/x.yml",
        "top.txt",
    }


def test_a_missing_path_is_an_error_naming_it(
    bundle_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, err = _pull(bundle_ref, tmp_path / "o", capfd, "config/app.yml", "nope/x.yml")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1, err
    assert "--include-path 'nope/x.yml': no such file or folder in" in lines[0]
    assert not (tmp_path / "o").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", ["../x", "/etc", ".", "a/../../b"])
def test_paths_outside_the_bundle_are_usage_errors(
    bad: str, bundle_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, err = _pull(bundle_ref, tmp_path / "o", capfd, bad)
    assert code == 2 and f"--include-path {bad!r}" in err, err
    assert not (tmp_path / "o").exists()


def test_without_include_path_everything_is_pulled(
    bundle_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, err = _pull(bundle_ref, tmp_path / "o", capfd)
    assert code == 0, err
    assert {k for k, v in tree(tmp_path / "o").items() if v is not None} == {
        ".imgpkg/images.yml",
        *FILES,
    }
