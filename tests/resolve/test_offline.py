"""``--offline``: never a request; every reference that would need one is listed.

Counted at the real registry: zero requests in every case, whether the run passes
(everything pinned by a digest, the existing lock, an ImagesLock or a preresolved
override given with ``-f``) or fails (each unpinned reference named with file and line).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resolve.test_check_update import push_tag
from tests.support.cli import run_cli
from tests.support.registry import Registry


def pod(*images: str) -> str:
    return "kind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n" + "".join(
        f"  - image: {i}\n" for i in images
    )


@pytest.fixture
def refs(registry: Registry) -> dict[str, str]:
    """name -> digest of three tags in the registry."""
    return {n: push_tag(registry, f"offline/{n}", "1.0", f"offline-{n}") for n in ("a", "b", "c")}


def test_offline_with_every_reference_pinned_sends_nothing(
    registry: Registry, refs: dict[str, str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    (tmp_path / "app.yml").write_text(pod(f"{h}/offline/a:1.0", f"{h}/offline/b:1.0"))
    lock = tmp_path / "images.yml"
    args = ["-f", str(tmp_path / "app.yml"), "--imgpkg-lock-output", str(lock)]
    code, online_out, err = run_cli(args, capfd)
    assert code == 0, err
    locked = lock.read_bytes()

    # pinned by the existing lock, by a digest, by an ImagesLock and a preresolved override
    other = tmp_path / "other-lock.yml"
    other.write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n"
        f"- image: {h}/offline/c@{refs['c']}\n  annotations:\n"
        f"    kbld.carvel.dev/id: {h}/offline/c:1.0\n"
    )
    (tmp_path / "more.yml").write_text(
        pod(f"{h}/offline/c:1.0", f"{h}/offline/a@{refs['a']}", "relocated/x:1")
        + "---\napiVersion: kbld.k14s.io/v1alpha1\nkind: Config\noverrides:\n"
        f"- image: relocated/x:1\n  newImage: {h}/offline/b@{refs['b']}\n  preresolved: true\n"
    )
    mark = registry.mark()
    code, out, err = run_cli([*args, "--offline"], capfd)
    assert code == 0, err
    assert out == online_out
    code, out, err = run_cli(
        [*args, "-f", str(tmp_path / "more.yml"), "-f", str(other), "--offline"], capfd
    )
    assert code == 0, err
    assert f"image: {h}/offline/c@{refs['c']}" in out
    assert f"image: {h}/offline/b@{refs['b']}" in out
    assert registry.request_log(since=mark) == []
    assert lock.read_bytes() != locked  # c, a@, x were added from what was given
    assert f"{h}/offline/c@{refs['c']}" in lock.read_text()


def test_offline_lists_every_unpinned_reference_and_sends_nothing(
    registry: Registry, refs: dict[str, str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    (tmp_path / "app.yml").write_text(pod(f"{h}/offline/a:1.0"))
    lock = tmp_path / "images.yml"
    args = ["-f", str(tmp_path / "app.yml"), "--imgpkg-lock-output", str(lock)]
    assert run_cli(args, capfd)[0] == 0
    before = lock.read_bytes()
    (tmp_path / "new.yml").write_text(
        pod(f"{h}/offline/b:1.0", f"{h}/offline/a:1.0", f"{h}/offline/c:1.0", f"{h}/offline/b:1.0")
    )
    mark = registry.mark()
    code, out, err = run_cli([*args, "-f", str(tmp_path / "new.yml"), "--offline"], capfd)
    assert code == 1
    assert out == ""
    new = tmp_path / "new.yml"
    lines = err.splitlines()
    assert lines[0] == "lockresolve: error: 2 image reference(s) failed to resolve:"
    assert sorted(lines[1:]) == [
        f"- Resolving image '{h}/offline/b:1.0' ({new}:6, {new}:9): not pinned, and --offline "
        "sends no request (pin it by digest, by an ImagesLock or a preresolved override given "
        "with -f, or by the --imgpkg-lock-output lock)",
        f"- Resolving image '{h}/offline/c:1.0' ({new}:8): not pinned, and --offline "
        "sends no request (pin it by digest, by an ImagesLock or a preresolved override given "
        "with -f, or by the --imgpkg-lock-output lock)",
    ]
    assert registry.request_log(since=mark) == []
    assert lock.read_bytes() == before

    # --update re-resolves everything: offline, every reference is listed
    code, _, err = run_cli([*args, "--offline", "--update"], capfd)
    assert code == 1
    assert f"Resolving image '{h}/offline/a:1.0' ({tmp_path / 'app.yml'}:6): not pinned" in err
    assert registry.request_log(since=mark) == []


def test_offline_refuses_an_input_url(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["-f", "http://127.0.0.1:9/x.yml", "--offline"], capfd)
    assert code == 2
    assert out == ""
    assert err == (
        "lockresolve: error: --offline: -f http://127.0.0.1:9/x.yml would be fetched over "
        "the network\n"
    )
