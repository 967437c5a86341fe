"""``push -b --lock-images``: resolve the bundle's images into .imgpkg/images.yml, then push,
in one command and one registry session, against the real registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.conformance import push_blob, push_manifest
from tests.support.images import DOCKER_MANIFEST, make_image
from tests.support.registry import Registry


def push_tag(registry: Registry, repo: str, tag: str, seed: str) -> str:
    image = make_image(seed)
    with registry.client() as client:
        push_blob(client, repo, image.config)
        push_blob(client, repo, image.layer)
        return push_manifest(client, repo, tag, DOCKER_MANIFEST, image.manifest)


def make_bundle(root: Path, registry: Registry, prefix: str, *, with_imgpkg: bool = True) -> Path:
    """``root/config/{app,worker}.yml`` using ``prefix/app:1.0`` (twice) and
    ``prefix/worker:2.0``, a README, and an empty ``.imgpkg/`` (no images.yml yet)."""
    push_tag(registry, f"{prefix}/app", "1.0", f"{prefix}-app")
    push_tag(registry, f"{prefix}/worker", "2.0", f"{prefix}-worker")
    (root / "config").mkdir(parents=True)
    if with_imgpkg:
        (root / ".imgpkg").mkdir()
    (root / "README.md").write_text("image: not/yaml:1.0\n")
    app = f"{registry.host}/{prefix}/app:1.0"
    (root / "config" / "app.yml").write_text(
        f"kind: Pod\nspec:\n  containers:\n  - image: {app}\n  - image: {app}  # again\n"
    )
    (root / "config" / "worker.yml").write_text(
        f"kind: Pod\nspec:\n  containers:\n  - image: {registry.host}/{prefix}/worker:2.0\n"
    )
    return root


def pushed_image(stdout: str) -> str:
    line = next(x for x in stdout.splitlines() if x.startswith("Pushed '"))
    return line.removeprefix("Pushed '").removesuffix("'")


def test_push_lock_images_resolves_writes_and_pushes_in_one_session(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = "lockimg/one"
    root = make_bundle(tmp_path / "bundle", registry, prefix)
    target = f"{registry.host}/{prefix}/bundle:v1"
    mark = registry.mark()
    code, out, err = run_cli(["push", "-b", target, "-f", str(root), "--lock-images"], capfd)
    assert code == 0, err
    assert out.endswith("Succeeded\n")
    assert f"resolve | final: {registry.host}/{prefix}/app:1.0 -> " in err
    log = registry.request_log(since=mark)

    # The lock is what `lockresolve -f config --imgpkg-lock-output` writes.
    lock = root / ".imgpkg" / "images.yml"
    reference = tmp_path / "reference.yml"
    code, _, e = run_cli(
        ["-f", str(root / "config"), "--imgpkg-lock-output", str(reference)], capfd
    )
    assert code == 0, e
    assert lock.read_text() == reference.read_text()
    assert lock.stat().st_mode & 0o777 == 0o600

    # One HEAD per image, then the push; no second handshake for the push.
    calls = Counter((r.method, r.path) for r in log)
    assert calls[("HEAD", f"/v2/{prefix}/app/manifests/1.0")] == 1
    assert calls[("HEAD", f"/v2/{prefix}/worker/manifests/2.0")] == 1
    assert calls[("GET", "/v2/")] <= 1
    assert [r.path for r in log if r.method == "PUT" and "/manifests/" in r.path] == [
        f"/v2/{prefix}/bundle/manifests/v1",
        f"/v2/{prefix}/bundle/manifests/{pushed_image(out).split('@')[1].replace(':', '-')}.imgpkg",
    ]
    assert not any("/v2/lockimg" not in r.path and r.path != "/v2/" for r in log)

    # The pushed bundle carries that lock (and only YAML outside .imgpkg was resolved).
    code, _, err = run_cli(["pull", "-b", target, "-o", str(tmp_path / "pulled")], capfd)
    assert code == 0, err
    assert (tmp_path / "pulled" / ".imgpkg" / "images.yml").read_text() == lock.read_text()

    # Again, nothing changed: no image request, the lock file untouched, same digest.
    before = lock.stat().st_mtime_ns
    mark = registry.mark()
    code, out2, err = run_cli(["push", "-b", target, "-f", str(root), "--lock-images"], capfd)
    assert code == 0, err
    assert pushed_image(out2) == pushed_image(out)
    assert lock.stat().st_mtime_ns == before
    assert not [r for r in registry.request_log(since=mark) if "/bundle/" not in r.path]


def test_push_lock_images_shares_one_auth_session(
    token_registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """With token auth: one 401 challenge for the whole command, one token per scope."""
    reg = token_registry
    assert reg.token_server is not None and reg.username and reg.password
    prefix = "lockimg/token"
    root = make_bundle(tmp_path / "bundle", reg, prefix)
    mark, tokens = reg.mark(), reg.token_server.mark()
    code, _, err = run_cli(
        [
            "push",
            "-b",
            f"{reg.host}/{prefix}/bundle:v1",
            "-f",
            str(root),
            "--lock-images",
            "--registry-username",
            reg.username,
            "--registry-password",
            reg.password,
        ],
        capfd,
    )
    assert code == 0, err
    log = reg.request_log(since=mark)
    assert [r.status for r in log].count(401) == 1
    scopes = reg.token_server.scopes_requested()[tokens:]
    assert len(scopes) == len(set(scopes))
    assert (f"repository:{prefix}/bundle:pull,push",) in scopes


def test_push_lock_images_creates_imgpkg_in_the_only_directory(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = "lockimg/fresh"
    root = make_bundle(tmp_path / "bundle", registry, prefix, with_imgpkg=False)
    target = f"{registry.host}/{prefix}/bundle:v1"
    code, out, err = run_cli(["push", "-b", target, "-f", str(root), "--lock-images"], capfd)
    assert code == 0, err
    assert "file: .imgpkg/images.yml" in out
    assert f"{registry.host}/{prefix}/worker@sha256:" in (root / ".imgpkg/images.yml").read_text()


def test_push_lock_images_failure_writes_and_pushes_nothing(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    prefix = "lockimg/fail"
    root = make_bundle(tmp_path / "bundle", registry, prefix)
    missing = f"{registry.host}/{prefix}/missing:9.9"
    (root / "config" / "broken.yml").write_text(f"image: {missing}\n")
    target = f"{registry.host}/{prefix}/bundle:v1"
    mark = registry.mark()
    code, out, err = run_cli(["push", "-b", target, "-f", str(root), "--lock-images"], capfd)
    assert code == 1
    assert "1 image reference(s) failed to resolve:" in err
    assert f"- Resolving image '{missing}' ({root / 'config' / 'broken.yml'}:1)" in err
    assert "Pushed" not in out
    assert list((root / ".imgpkg").iterdir()) == []
    assert not [r for r in registry.request_log(since=mark) if r.method in ("POST", "PUT", "PATCH")]

    # Leaving the file out of the bundle leaves it out of the lock too.
    argv = ["push", "-b", target, "-f", str(root), "--lock-images"]
    code, _, err = run_cli([*argv, "--file-exclusion", "config/broken.yml"], capfd)
    assert code == 0, err
    assert missing not in (root / ".imgpkg" / "images.yml").read_text()


def test_lock_images_needs_a_bundle(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yml").write_text("image: x\n")
    code, out, err = run_cli(
        ["push", "-i", "127.0.0.1:1/x:1", "-f", str(tmp_path), "--lock-images"], capfd
    )
    assert (code, out) == (2, "")
    assert "--lock-images needs a bundle (-b)" in err
