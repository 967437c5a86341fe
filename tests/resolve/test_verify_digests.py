"""``--verify-digests`` against the real registry: a pinned digest whose manifest was
deleted is an error naming the reference and where it is written; without the flag
the pin is trusted (no request)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resolve.test_check_update import push_tag
from tests.support.cli import run_cli
from tests.support.registry import Registry


def test_deleted_manifest_is_reported(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    gone = push_tag(registry, "verify/gone", "1.0", "verify-gone")
    kept = push_tag(registry, "verify/kept", "1.0", "verify-kept")
    app = tmp_path / "app.yml"
    app.write_text(
        "kind: Pod\nspec:\n  containers:\n"
        f"  - image: {h}/verify/gone:1.0\n  - image: {h}/verify/kept@{kept}\n"
    )
    lock = tmp_path / "images.yml"
    args = ["-f", str(app), "--imgpkg-lock-output", str(lock)]
    assert run_cli(args, capfd)[0] == 0
    before = lock.read_bytes()
    with registry.client() as client:
        assert client.delete(f"/v2/verify/gone/manifests/{gone}").status_code == 202

    mark = registry.mark()
    code, _, err = run_cli([*args, "--check"], capfd)
    assert code == 0, err  # the pin is trusted: nothing asked
    assert registry.request_log(since=mark) == []

    mark = registry.mark()
    code, out, err = run_cli([*args, "--verify-digests"], capfd)
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "lockresolve: error: 1 image reference(s) failed to resolve:"
    assert lines[1].startswith(
        f"- Resolving image '{h}/verify/gone:1.0' ({app}:4): --verify-digests: "
        f"{h}/verify/gone@{gone} is not in its registry: "
    )
    assert "MANIFEST_UNKNOWN" in lines[1]
    assert len(lines) == 2
    assert lock.read_bytes() == before
    heads = [(r.method, r.path) for r in registry.request_log(since=mark) if r.method == "HEAD"]
    assert sorted(heads) == [
        ("HEAD", f"/v2/verify/gone/manifests/{gone}"),
        ("HEAD", f"/v2/verify/kept/manifests/{kept}"),
    ]


def test_all_present_passes_with_one_head_each(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    a = push_tag(registry, "verify/a", "1.0", "verify-a")
    app = tmp_path / "app.yml"
    app.write_text(f"kind: Pod\nimage: {h}/verify/a:1.0\nother:\n  image: {h}/verify/a@{a}\n")
    mark = registry.mark()
    code, out, err = run_cli(["-f", str(app), "--verify-digests"], capfd)
    assert code == 0, err
    assert out.count(f"{h}/verify/a@{a}") >= 2
    assert [(r.method, r.path) for r in registry.request_log(since=mark)] == [
        ("HEAD", "/v2/verify/a/manifests/1.0"),
        ("HEAD", f"/v2/verify/a/manifests/{a}"),
    ]


def test_verify_digests_and_offline_conflict(capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["-f", "x.yml", "--offline", "--verify-digests"], capfd)
    assert code == 2
    assert "--verify-digests asks the registry; it cannot be used with --offline" in err
