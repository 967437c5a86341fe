"""Faults end to end: through the fault-injecting proxy (3 requests in 10 answered 503, 429
with Retry-After, or dropped) resolve, push, pull and copy finish with exit 0 and exactly
the results of a fault-free run; with a registry that stays down every command ends quickly
with a clear message and leaves existing files as they were."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy
from lockresolve.resolve.engine import ResolveOptions, resolve_inputs
from tests.registry.test_faults import RecordingSleep
from tests.robustness.helpers import (
    EXISTING_LOCK,
    leftovers,
    run_cli,
    seed_tags,
    snapshot,
    tally,
    tree,
    write_bundle_tree,
)
from tests.support.faultproxy import Fault, FaultPlan, FaultProxy
from tests.support.registry import Registry

FaultProxyFactory = Callable[..., FaultProxy]
RegistryFactory = Callable[..., Registry]

REPOS = [f"robust/faults/app{j}" for j in range(4)]
TAGS = [f"t{i}" for i in range(50)]

#: the faults of the issue: 503, 429 with Retry-After (0 s: the CLI waits for real), dropped
CLI_FAULTS = [Fault.unavailable(), Fault.too_many_requests(0), Fault.close()]


def faulty_plan(seed: int, choices: list[Fault] | None = None) -> FaultPlan:
    return FaultPlan(rate=0.3, seed=seed, choices=choices or CLI_FAULTS)


def record_faults(proxy: FaultProxy, what: str) -> None:
    tally(f"faults injected: {what}", proxy.fault_count)
    tally("faults injected (total)", proxy.fault_count)
    tally(f"requests through the fault proxy: {what}", proxy.request_count)


def write_inputs(directory: Path, host: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for repo in REPOS:
        lines = ["apiVersion: v1", "kind: Pod", "metadata:", f"  name: {repo.rsplit('/', 1)[1]}"]
        lines += ["spec:", "  containers:"]
        for tag in TAGS:
            lines += [f"  - name: c-{tag}", f"    image: {host}/{repo}:{tag}"]
        (directory / f"{repo.rsplit('/', 1)[1]}.yml").write_text("\n".join(lines) + "\n")
    return directory


@pytest.fixture(scope="module")
def seeded(registry: Registry) -> dict[str, dict[str, str]]:
    return {repo: seed_tags(registry, repo, TAGS) for repo in REPOS}


def test_resolving_200_images_through_faults_gives_the_fault_free_lock(
    registry: Registry,
    seeded: dict[str, dict[str, str]],
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    proxy = fault_proxy_factory(registry.url)
    inputs = write_inputs(tmp_path / "in", proxy.host)
    args = ["-f", str(inputs), "--registry-retry-count", "12"]

    clean = run_cli([*args, "--imgpkg-lock-output", str(tmp_path / "clean.yml")], capfd)
    assert clean.code == 0, clean.err
    assert proxy.fault_count == 0

    proxy.set_plan(faulty_plan(seed=2024))
    proxy.reset_counts()
    faulty = run_cli([*args, "--imgpkg-lock-output", str(tmp_path / "faulty.yml")], capfd)
    assert faulty.code == 0, faulty.err
    assert (tmp_path / "faulty.yml").read_bytes() == (tmp_path / "clean.yml").read_bytes()
    assert faulty.out == clean.out
    lock = (tmp_path / "faulty.yml").read_text()
    for repo, digests in seeded.items():
        for digest in digests.values():
            assert f"{proxy.host}/{repo}@{digest}" in lock
    assert lock.count("- annotations:") == 200
    kinds = proxy.faults_by_kind
    assert kinds.get("status:503", 0) > 0 and kinds.get("status:429", 0) > 0
    assert kinds.get("close", 0) > 0
    assert proxy.fault_count >= 0.15 * proxy.request_count
    assert faulty.seconds < 60
    record_faults(proxy, "resolve of 200 images (CLI)")
    tally("images resolved through faults (CLI)", 200)


def test_resolving_200_images_honours_real_retry_after_values(
    registry: Registry,
    seeded: dict[str, dict[str, str]],
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
) -> None:
    """The same run in the library with a fake clock, so Retry-After can be whole seconds
    (and HTTP-dates) and more kinds of fault can be mixed in without waiting for them."""
    choices = [
        Fault.unavailable(),
        Fault.unavailable(retry_after=2),
        Fault.too_many_requests(1),
        Fault.too_many_requests(3, http_date=True),
        Fault.close(),
        Fault.reset(),
        Fault.error(502),
        Fault.error(504),
    ]
    proxy = fault_proxy_factory(registry.url, plan=faulty_plan(seed=7, choices=choices))
    inputs = write_inputs(tmp_path / "in", proxy.host)
    sleep = RecordingSleep()

    async def run() -> str:
        client = RegistryClient(TransportPolicy(retries=12), sleep=sleep, clock=sleep.clock)
        async with client:
            result = await resolve_inputs([str(inputs)], ResolveOptions(), client=client)
        assert not result.failures, result.failures
        return result.images_lock_text()

    text = anyio.run(run)
    for repo, digests in seeded.items():
        for digest in digests.values():
            assert f"{proxy.host}/{repo}@{digest}" in text
    assert proxy.fault_count >= 0.15 * proxy.request_count
    assert 1.0 in sleep.pauses  # a Retry-After of one second was waited for (on the fake clock)
    record_faults(proxy, "resolve of 200 images (library, fake clock)")


@pytest.fixture
def bundle_src(tmp_path: Path) -> Path:
    return write_bundle_tree(tmp_path / "bundle-src", files=4)


def _locked_image(path: Path) -> str:
    text = path.read_text()
    line = next(line for line in text.splitlines() if "image:" in line)
    return line.split("image:", 1)[1].strip()


def test_push_pull_and_copy_of_a_bundle_through_faults_finish_intact(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    bundle_src: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    retries = ["--registry-retry-count", "12"]
    direct = f"{registry.host}/robust/faults/bundle-clean"

    # Fault-free: push, pull, copy, straight to the registry.
    clean_lock = tmp_path / "clean-push.yml"
    res = run_cli(
        ["push", "-b", f"{direct}:1", "-f", str(bundle_src), "--lock-output", str(clean_lock)],
        capfd,
    )
    assert res.code == 0, res.err
    clean_digest = _locked_image(clean_lock).split("@", 1)[1]
    res = run_cli(["pull", "-b", f"{direct}:1", "-o", str(tmp_path / "clean-pull")], capfd)
    assert res.code == 0, res.err
    res = run_cli(
        [
            "copy",
            "-b",
            f"{direct}:1",
            "--to-repo",
            f"{direct}-copy",
            "--lock-output",
            str(tmp_path / "clean-copy.yml"),
        ],
        capfd,
    )
    assert res.code == 0, res.err

    # The same through the fault proxy.
    proxy = fault_proxy_factory(registry.url, plan=faulty_plan(seed=99))
    faulty = f"{proxy.host}/robust/faults/bundle"
    push_lock = tmp_path / "push.yml"
    res = run_cli(
        [
            "push",
            "-b",
            f"{faulty}:1",
            "-f",
            str(bundle_src),
            "--lock-output",
            str(push_lock),
            *retries,
        ],
        capfd,
    )
    assert res.code == 0, res.err
    assert _locked_image(push_lock) == f"{faulty}@{clean_digest}"
    pushed_faults = proxy.fault_count

    res = run_cli(["pull", "-b", f"{faulty}:1", "-o", str(tmp_path / "pull"), *retries], capfd)
    assert res.code == 0, res.err
    assert tree(tmp_path / "pull") == tree(tmp_path / "clean-pull")
    for rel, content in tree(bundle_src).items():
        if not rel.startswith(".imgpkg"):
            assert tree(tmp_path / "pull")[rel] == content
    pulled_faults = proxy.fault_count - pushed_faults

    copy_lock = tmp_path / "copy.yml"
    res = run_cli(
        [
            "copy",
            "-b",
            f"{faulty}:1",
            "--to-repo",
            f"{faulty}-copy",
            "--lock-output",
            str(copy_lock),
            *retries,
        ],
        capfd,
    )
    assert res.code == 0, res.err
    assert (
        _locked_image(copy_lock).split("@")[1]
        == _locked_image(tmp_path / "clean-copy.yml").split("@")[1]
    )
    copied_faults = proxy.fault_count - pushed_faults - pulled_faults

    # What the faulty copy wrote is whole: pull it straight from the registry.
    res = run_cli(
        [
            "pull",
            "-b",
            f"{registry.host}/robust/faults/bundle-copy:1",
            "-o",
            str(tmp_path / "copied"),
        ],
        capfd,
    )
    assert res.code == 0, res.err
    assert tree(tmp_path / "copied") == tree(tmp_path / "clean-pull")

    assert pushed_faults > 0 and pulled_faults > 0 and copied_faults > 0
    assert leftovers(tmp_path) == []
    tally("faults injected: push of a bundle", pushed_faults)
    tally("faults injected: pull of a bundle", pulled_faults)
    tally("faults injected: copy of a bundle", copied_faults)
    tally("faults injected (total)", proxy.fault_count)


# --- a registry that stays down -------------------------------------------------------


DOWN_BOUND = 30.0  # seconds; with --registry-retry-count 2 a run takes well under one


def _prepare_down(
    registry_factory: RegistryFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> tuple[Registry, dict[str, Path]]:
    reg = registry_factory()
    src = write_bundle_tree(tmp_path / "src")
    res = run_cli(["push", "-b", f"{reg.host}/robust/down/bundle:1", "-f", str(src)], capfd)
    assert res.code == 0, res.err
    files = {
        "resolve_input": tmp_path / "in.yml",
        "lock": tmp_path / "images.yml",
        "push_lock": tmp_path / "bundle.lock.yml",
        "copy_lock": tmp_path / "copy.lock.yml",
        "tar": tmp_path / "bundle.tar",
        "out": tmp_path / "out",
    }
    files["resolve_input"].write_text(f"kind: Pod\nimage: {reg.host}/robust/down/bundle:1\n")
    files["lock"].write_text(EXISTING_LOCK)
    for key in ("push_lock", "copy_lock", "tar"):
        files[key].write_text(f"existing {key}, must survive\n")
    files["out"].mkdir()
    (files["out"] / "keep.txt").write_text("existing output\n")
    return reg, files


def test_a_registry_that_stays_down_fails_fast_and_changes_nothing(
    registry_factory: RegistryFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    reg, f = _prepare_down(registry_factory, tmp_path, capfd)
    reg.stop()
    before = snapshot(tmp_path)
    retry = ["--registry-retry-count", "2"]
    ref = f"{reg.host}/robust/down/bundle:1"
    commands = {
        "resolve": ["-f", str(f["resolve_input"]), "--imgpkg-lock-output", str(f["lock"]), *retry],
        "push": [
            "push",
            "-b",
            ref,
            "-f",
            str(tmp_path / "src"),
            "--lock-output",
            str(f["push_lock"]),
            *retry,
        ],
        "pull": ["pull", "-b", ref, "-o", str(f["out"]), "--force", *retry],
        "copy": [
            "copy",
            "-b",
            ref,
            "--to-repo",
            f"{reg.host}/robust/down/copy",
            "--lock-output",
            str(f["copy_lock"]),
            *retry,
        ],
        "copy-to-tar": ["copy", "-b", ref, "--to-tar", str(f["tar"]), *retry],
        "tag-ls": ["tag", "ls", "-i", ref, *retry],
    }
    for name, args in commands.items():
        res = run_cli(args, capfd)
        assert res.code == 1, (name, res.err)
        assert res.seconds < DOWN_BOUND, name
        if name != "push":  # push lists the files it would push (imgpkg's dir:/file: lines)
            assert res.out == "", name
        lines = res.err_lines
        assert "Traceback" not in res.err
        assert lines[0].startswith("lockresolve: error:"), (name, res.err)
        assert f"connection refused ({reg.host})" in res.err, (name, res.err)
        if name != "resolve":
            assert len(lines) == 1, (name, res.err)
        else:
            assert lines[1].startswith(f"- Resolving image '{ref}' ({f['resolve_input']}:2)")
        assert snapshot(tmp_path) == before, name
        tally("commands run against a registry that is down")


def test_a_registry_that_answers_503_forever_fails_within_the_retry_budget(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    seed_tags(registry, "robust/faults/always503", ["1"])
    proxy = fault_proxy_factory(
        registry.url, plan=FaultPlan(rate=1.0, choices=[Fault.unavailable()])
    )
    ref = f"{proxy.host}/robust/faults/always503:1"
    (tmp_path / "in.yml").write_text(f"image: {ref}\n")
    lock = tmp_path / "images.yml"
    lock.write_text(EXISTING_LOCK)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep\n")
    before = snapshot(tmp_path)
    for args in (
        ["-f", str(tmp_path / "in.yml"), "--imgpkg-lock-output", str(lock)],
        ["pull", "-i", ref, "-o", str(out), "--force"],
    ):
        proxy.reset_counts()
        res = run_cli([*args, "--registry-retry-count", "2"], capfd)
        assert res.code == 1, res.err
        assert res.seconds < DOWN_BOUND
        assert "503" in res.err and "always503" in res.err
        assert proxy.request_count <= 3 + 1  # 1 + 2 retries (+ the https probe)
        assert snapshot(tmp_path) == before
        tally("faults injected (total)", proxy.fault_count)
        tally("commands run against a registry that is down")
    assert json.dumps(proxy.faults_by_kind)  # recorded


def test_a_blob_upload_dropped_mid_put_is_started_again(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    bundle_src: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The monolithic PUT is sent once per upload session; when its connection drops, the
    push opens a new session and sends the body again (it failed the push before)."""
    plan = FaultPlan(
        sequence=[Fault.close(), Fault.reset()], methods={"PUT"}, path_contains="/blobs/uploads/"
    )
    proxy = fault_proxy_factory(registry.url, plan=plan)
    res = run_cli(
        ["push", "-b", f"{proxy.host}/robust/faults/dropped-put:1", "-f", str(bundle_src)], capfd
    )
    assert res.code == 0, res.err
    assert proxy.faults_by_kind == {"close": 1, "reset": 1}
    tally("faults injected (total)", proxy.fault_count)


def test_an_error_in_one_of_several_concurrent_uploads_is_one_clear_line(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    bundle_src: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Errors raised inside a task group reach the CLI as an exception group; the user
    still gets lockresolve's one line, not an internal error."""
    plan = FaultPlan(rate=1.0, choices=[Fault.close()], methods={"PUT"}, path_contains="/blobs/")
    proxy = fault_proxy_factory(registry.url, plan=plan)
    ref = f"{proxy.host}/robust/faults/failing-put:1"
    res = run_cli(["push", "-b", ref, "-f", str(bundle_src), "--registry-retry-count", "0"], capfd)
    assert res.code == 1
    assert res.err_lines == [
        line for line in res.err_lines if line.startswith("lockresolve: error: PUT")
    ]
    assert len(res.err_lines) == 1 and "internal error" not in res.err
    # A dropped connection surfaces as either, depending on when the drop is seen.
    assert ("RemoteProtocolError" in res.err or "ReadError" in res.err) and (
        "robust/faults/failing-put" in res.err
    )
    tally("faults injected (total)", proxy.fault_count)
