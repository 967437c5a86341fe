"""pull and copy read through a real pull-through cache; push and a copy's destination never do.

As in ``test_mirrors.py`` the mirror is a ``docker-registry`` with ``proxy.remoteurl``
pointing at the upstream. Here the upstream keeps running: distribution's cache answers
500 (not 404) for a manifest the upstream does not have, so the relocation check (is
the image in the bundle's repository?) falls back to the upstream, which says 404 as
it would without a mirror. The access logs prove that everything else lockresolve read
(manifests, blobs, the locations image) came from the mirror.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import RegistryFactory
from tests.support.bundle_cases import write_bundle_dir
from tests.support.cli import run_cli
from tests.support.registry import Registry


def from_lockresolve(registry: Registry, since: int) -> list[str]:
    """Requests lockresolve sent (httpx's user agent; the cache's own requests are Go's)."""
    return [
        f"{e.method} {e.path} {e.status}"
        for e in registry.request_log(since)
        if "python-httpx" in e.user_agent
    ]


def only_fallbacks(requests: list[str]) -> bool:
    """Each a manifest the upstream does not have either (after the mirror's 404 or 500)."""
    return all("/manifests/" in r and r.endswith(" 404") for r in requests)


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def push_bundle(upstream: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> str:
    """A bundle in the upstream whose ImagesLock names an image pushed there too."""
    files = tmp_path / "image-files"
    files.mkdir()
    (files / "data.txt").write_text("data\n")
    code, out, err = run_cli(
        ["push", "-i", f"{upstream.host}/app/image:1", "-f", str(files)], capfd
    )
    assert code == 0, err
    pushed = re.search(r"([^\s']+/app/image@sha256:[0-9a-f]{64})", out + err)
    assert pushed is not None, out + err
    bundle_dir = write_bundle_dir(
        tmp_path / "bundle", [pushed[1]], files={"config.yml": "key: value\n"}
    )
    ref = f"{upstream.host}/app/bundle:v1"
    code, _, err = run_cli(["push", "-b", ref, "-f", str(bundle_dir)], capfd)
    assert code == 0, err
    return ref


def test_pull_reads_through_the_mirror(
    registry_factory: RegistryFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    upstream = registry_factory()
    mirror = registry_factory(proxy_remote=upstream.url)
    ref = push_bundle(upstream, tmp_path, capfd)
    code, direct_out, err = run_cli(["pull", "-b", ref, "-o", str(tmp_path / "direct")], capfd)
    assert code == 0, err
    mark = upstream.mark()
    code, out, err = run_cli(
        [
            "pull",
            "-b",
            ref,
            "-o",
            str(tmp_path / "mirrored"),
            f"--registry-mirror={upstream.host}={mirror.host}",
            "--registry-retry-count=1",
        ],
        capfd,
    )
    assert code == 0, err
    assert out == direct_out
    assert tree(tmp_path / "mirrored") == tree(tmp_path / "direct")
    assert only_fallbacks(from_lockresolve(upstream, mark))
    served = from_lockresolve(mirror, 0)
    assert len([r for r in served if r.startswith("GET ") and "/blobs/" in r]) == 2


def test_copy_reads_through_the_mirror_and_writes_to_the_destination_only(
    registry_factory: RegistryFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    upstream = registry_factory()
    mirror = registry_factory(proxy_remote=upstream.url)
    dest = registry_factory()
    ref = push_bundle(upstream, tmp_path, capfd)
    # The destination has mirrors too: a copy must still write to it, and check it, directly.
    flags = [
        f"--registry-mirror={upstream.host}={mirror.host}",
        f"--registry-mirror={dest.host}={mirror.host}",
    ]
    mark, mirror_mark = upstream.mark(), mirror.mark()
    lock = tmp_path / "copied.lock.yml"
    code, out, err = run_cli(
        [
            "copy",
            "-b",
            ref,
            "--to-repo",
            f"{dest.host}/copied",
            "--lock-output",
            str(lock),
            *flags,
            "--registry-retry-count=1",
        ],
        capfd,
    )
    assert code == 0, err
    assert f"{dest.host}/copied@sha256:" in lock.read_text()
    assert mirror.host not in out + lock.read_text()
    assert dest.count_requests("PUT", "/manifests/") >= 2
    assert not [e for e in mirror.request_log(mirror_mark) if "/copied/" in e.path]
    assert only_fallbacks(from_lockresolve(upstream, mark))
    served = from_lockresolve(mirror, mirror_mark)
    assert len([r for r in served if r.startswith("GET ") and "/blobs/" in r]) >= 2


def test_push_never_goes_to_a_mirror(
    registry_factory: RegistryFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    upstream = registry_factory()
    mirror = registry_factory()
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_text("a\n")
    code, _, err = run_cli(
        [
            "push",
            "-i",
            f"{upstream.host}/pushed/image:1",
            "-f",
            str(files),
            f"--registry-mirror={upstream.host}={mirror.host}",
        ],
        capfd,
    )
    assert code == 0, err
    assert mirror.count_requests() == 0
    assert upstream.count_requests("HEAD", "/blobs/") == 2
    assert upstream.count_requests("PUT", "/manifests/") == 2
