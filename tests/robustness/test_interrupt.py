"""Ctrl-C end to end: a real SIGINT to a CLI subprocess held up by a slow registry answer.

Each command is stopped while a request of the phase that matters hangs in the fault proxy
(resolve: the HEAD; push: the blob upload; pull: the layer download, with the staging
directory already made; copy: the upload). It must exit 130 with one line on stderr, leave
the existing lock files and ``-o`` exactly as they were, and leave no temporary files.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.resolve.test_check_update import push_tag
from tests.robustness.helpers import (
    EXISTING_LOCK,
    Snapshot,
    cli_command,
    leftovers,
    run_cli,
    snapshot,
    subprocess_env,
    tally,
    write_bundle_tree,
)
from tests.support.faultproxy import Fault, FaultPlan, FaultProxy
from tests.support.registry import Registry

FaultProxyFactory = Callable[..., FaultProxy]

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux), named in the module from Python 3.10
PAGE = 4096
HOLD = 60.0  # seconds the held request waits in the proxy: far longer than the test


def interrupt(
    args: list[str],
    proxy: FaultProxy,
    tmp_path: Path,
    *,
    method: str,
    path_contains: str,
    held: int = 1,
    while_held: Callable[[], None] | None = None,
) -> tuple[int, str, str, float]:
    """Start ``lockresolve ARGS``, wait until the proxy holds the ``held``-th matching
    request (the ones before it pass), call ``while_held``, SIGINT."""
    sequence: list[Fault | None] = [None] * (held - 1)
    proxy.set_plan(
        FaultPlan(
            sequence=[*sequence, Fault.delay(HOLD)], methods={method}, path_contains=path_contains
        )
    )
    mark = proxy.mark()
    proc = subprocess.Popen(
        cli_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 30
        while proxy.count_requests(method, path_contains, since=mark) < held:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"exited {proc.returncode} before the held request:\n{err.decode()}")
            assert time.monotonic() < deadline, "the held request never arrived"
            time.sleep(0.01)
        time.sleep(0.05)  # let the client settle into waiting for the answer
        if while_held is not None:
            while_held()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    tally("Ctrl-C interruptions (SIGINT to a subprocess)")
    return proc.returncode, out.decode(), err.decode(), took


def check_interrupted(code: int, err: str, took: float) -> None:
    assert code == 130, err
    # one line, as docs/reliability.md says: no blank line before it (click's echo)
    assert err == "lockresolve: interrupted\n", err
    assert took < 10


def existing_output(tmp_path: Path, name: str, content: str) -> tuple[Path, Snapshot]:
    """``tmp_path/out/<name>`` holding ``content`` from an earlier run, and ``out``'s snapshot."""
    path = tmp_path / "out" / name
    path.parent.mkdir()
    path.write_text(content)
    return path, snapshot(path.parent)


def check_left_as_it_was(
    result: tuple[int, str, str, float], tmp_path: Path, before: Snapshot
) -> None:
    """Interrupted (:func:`check_interrupted`), ``tmp_path/out`` as ``before``, no temp files."""
    code, _, err, took = result
    check_interrupted(code, err, took)
    assert snapshot(tmp_path / "out") == before
    assert leftovers(tmp_path) == []


@pytest.fixture
def proxy(registry: Registry, fault_proxy_factory: FaultProxyFactory) -> FaultProxy:
    return fault_proxy_factory(registry.url)


@pytest.fixture
def pushed(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> tuple[str, Path]:
    """A bundle in the registry (pushed fault-free), and its source tree."""
    src = write_bundle_tree(tmp_path / "src")
    ref = f"{registry.host}/robust/interrupt/bundle:1"
    res = run_cli(["push", "-b", ref, "-f", str(src)], capfd)
    assert res.code == 0, res.err
    return ref, src


def test_ctrl_c_during_resolve(proxy: FaultProxy, tmp_path: Path) -> None:
    (tmp_path / "in.yml").write_text(f"kind: Pod\nimage: {proxy.host}/robust/interrupt/app:1\n")
    lock, before = existing_output(tmp_path, "images.yml", EXISTING_LOCK)
    result = interrupt(
        ["-f", "in.yml", "--imgpkg-lock-output", str(lock)],
        proxy,
        tmp_path,
        method="HEAD",
        path_contains="/manifests/",
    )
    check_left_as_it_was(result, tmp_path, before)
    assert result[1] == ""  # stdout


def test_ctrl_c_during_push(proxy: FaultProxy, tmp_path: Path) -> None:
    src = write_bundle_tree(tmp_path / "src")
    lock, before = existing_output(tmp_path, "bundle.lock.yml", "existing bundle lock\n")
    result = interrupt(
        [
            "push",
            "-b",
            f"{proxy.host}/robust/interrupt/pushed:1",
            "-f",
            str(src),
            "--lock-output",
            str(lock),
        ],
        proxy,
        tmp_path,
        method="PUT",
        path_contains="/blobs/uploads/",
    )
    check_left_as_it_was(result, tmp_path, before)


def test_ctrl_c_during_pull(
    proxy: FaultProxy, pushed: tuple[str, Path], tmp_path: Path, registry: Registry
) -> None:
    ref = pushed[0].replace(registry.host, proxy.host)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the old output\n")
    (out / "sub").mkdir()
    (out / "sub" / "data.bin").write_bytes(b"\x00\x01" * 100)
    before = snapshot(out)
    result = interrupt(
        ["pull", "-b", ref, "-o", str(out), "--force"],
        proxy,
        tmp_path,
        method="GET",
        path_contains="/blobs/",
    )
    check_left_as_it_was(result, tmp_path, before)


def test_ctrl_c_during_layer_download_after_staging_began(
    proxy: FaultProxy, pushed: tuple[str, Path], tmp_path: Path, registry: Registry
) -> None:
    """Held on the second blob GET (the layer; the first is the config), so the staging
    directory next to ``-o`` and the download directory in TMPDIR exist when Ctrl-C comes."""
    ref = pushed[0].replace(registry.host, proxy.host)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the old output\n")
    before = snapshot(out)

    def staging_exists() -> None:
        staging = [p.name for p in tmp_path.iterdir() if ".lockresolve-" in p.name]
        assert staging, "the staging directory should exist while the layer downloads"

    result = interrupt(
        ["pull", "-b", ref, "-o", str(out), "--force"],
        proxy,
        tmp_path,
        method="GET",
        path_contains="/blobs/",
        held=2,
        while_held=staging_exists,
    )
    check_left_as_it_was(result, tmp_path, before)


def test_ctrl_c_during_copy(
    proxy: FaultProxy, pushed: tuple[str, Path], tmp_path: Path, registry: Registry
) -> None:
    lock, before = existing_output(tmp_path, "copy.lock.yml", "existing copy lock\n")
    result = interrupt(
        [
            "copy",
            "-b",
            pushed[0],
            "--to-repo",
            f"{proxy.host}/robust/interrupt/copied",
            "--lock-output",
            str(lock),
        ],
        proxy,
        tmp_path,
        method="PUT",
        path_contains="/manifests/",
    )
    check_left_as_it_was(result, tmp_path, before)


def test_ctrl_c_during_copy_to_tar_keeps_only_the_resumable_partial_file(
    proxy: FaultProxy, pushed: tuple[str, Path], tmp_path: Path, registry: Registry
) -> None:
    """``--to-tar`` keeps ``<tar>.partial`` on purpose (``--resume`` reuses its blobs); the
    existing tar itself is untouched and nothing else is left."""
    ref = pushed[0].replace(registry.host, proxy.host)
    tar = tmp_path / "out" / "bundle.tar"
    tar.parent.mkdir()
    tar.write_bytes(b"an existing tar\n")
    code, _, err, took = interrupt(
        ["copy", "-b", ref, "--to-tar", str(tar)],
        proxy,
        tmp_path,
        method="GET",
        path_contains="/blobs/",
    )
    check_interrupted(code, err, took)
    assert tar.read_bytes() == b"an existing tar\n"
    assert [Path(p).name for p in leftovers(tmp_path)] in ([], ["bundle.tar.partial"])


def test_ctrl_c_after_the_lock_is_written_exits_0(registry: Registry, tmp_path: Path) -> None:
    """Issue 15: once the lock is in place, a SIGINT (here while ``-q`` reports what
    changed) undoes nothing, so the run exits 0, not 130.

    Deterministic: stderr is a one-page pipe filled before the start, so the child
    blocks on its first stderr write, which ``-q`` makes only after the lock's rename.
    """
    digest = push_tag(registry, "robust/interrupt/committed", "1", "committed")
    ref = f"{registry.host}/robust/interrupt/committed:1"
    (tmp_path / "in.yml").write_text(f"kind: Pod\nimage: {ref}\n")
    lock = tmp_path / "images.yml"
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, PAGE)
    os.write(write_end, b"x" * PAGE)  # full: the next write blocks
    proc = subprocess.Popen(
        cli_command("-q", "-f", "in.yml", "--imgpkg-lock-output", str(lock)),
        stdout=subprocess.PIPE,
        stderr=write_end,
        env=subprocess_env(tmp_path),
        cwd=tmp_path,
    )
    os.close(write_end)
    try:
        deadline = time.monotonic() + 30
        while not lock.exists():
            assert proc.poll() is None, "exited before writing the lock"
            assert time.monotonic() < deadline, "the lock never appeared"
            time.sleep(0.01)
        time.sleep(0.3)  # into the blocked stderr write
        assert proc.poll() is None, "did not block on stderr"
        proc.send_signal(signal.SIGINT)
        with os.fdopen(read_end, "rb") as pipe:
            err = pipe.read()[PAGE:].decode()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    tally("Ctrl-C interruptions (SIGINT to a subprocess)")
    assert proc.returncode == 0, err
    assert "interrupted" not in err and "Traceback" not in err
    assert out == b""
    assert f"{registry.host}/robust/interrupt/committed@{digest}" in lock.read_text()
    assert leftovers(tmp_path) == []
