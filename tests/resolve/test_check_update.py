"""``--check``, the pinning rule, ``--update`` and ``--update-ref``, against the real registry.

The common case in a developer loop is "nothing changed": a check over an
up-to-date lock must send no request and write nothing. A tag that moved in
the registry keeps its locked digest until the user asks (``--update`` or
``--update-ref``); ``--check`` then names what moved.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.conformance import get_case, push_blob, push_manifest, seed_case
from tests.support.images import DOCKER_MANIFEST, make_image
from tests.support.registry import Registry


def push_tag(registry: Registry, repo: str, tag: str, seed: str) -> str:
    """Tag a tiny image (its bytes depend on ``seed``) as ``repo:tag``; its digest."""
    image = make_image(seed)
    with registry.client() as client:
        push_blob(client, repo, image.config)
        push_blob(client, repo, image.layer)
        return push_manifest(client, repo, tag, DOCKER_MANIFEST, image.manifest)


def deployment(name: str, image: str) -> str:
    return (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        f"  name: {name}  # keep me\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "      - name: main\n"
        f"        image: {image}\n"
    )


@dataclass
class Project:
    """A folder with ``config/<name>.yml`` files (one image each) and ``.imgpkg/images.yml``."""

    root: Path
    registry: Registry
    prefix: str  # repository prefix, unique per test
    digests: dict[str, str]  # image name -> digest pushed as :1.0

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def lock(self) -> Path:
        return self.root / ".imgpkg" / "images.yml"

    def ref(self, name: str, tag: str = "1.0") -> str:
        return f"{self.registry.host}/{self.prefix}/{name}:{tag}"

    def pinned(self, name: str, digest: str | None = None) -> str:
        return f"{self.registry.host}/{self.prefix}/{name}@{digest or self.digests[name]}"

    def add(self, name: str, seed: str | None = None) -> None:
        """Push ``<name>:1.0`` and add a file that uses it."""
        repo = f"{self.prefix}/{name}"
        self.digests[name] = push_tag(self.registry, repo, "1.0", seed or f"{repo}-v1")
        (self.config / f"{name}.yml").write_text(deployment(name, self.ref(name)))

    def args(self, *extra: str, lock_input: bool = False) -> list[str]:
        argv = ["-f", str(self.config)]
        if lock_input:
            argv += ["-f", str(self.lock)]
        return [*argv, "--imgpkg-lock-output", str(self.lock), *extra]


@pytest.fixture
def project(registry: Registry, tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    """Ten files, ten images (``i0``..``i9``), no lock yet."""
    prefix = "check/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    proj = Project(tmp_path / "proj", registry, prefix, {})
    proj.config.mkdir(parents=True)
    (proj.root / ".imgpkg").mkdir()
    for i in range(10):
        proj.add(f"i{i}")
    return proj


def lock_once(project: Project, capfd: pytest.CaptureFixture[str]) -> str:
    code, _, err = run_cli(project.args(), capfd)
    assert code == 0, err
    return project.lock.read_text()


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


# --- check: nothing changed ------------------------------------------------------------


@pytest.mark.parametrize("lock_input", [False, True], ids=["lock-as-output", "lock-also-input"])
def test_up_to_date_check_sends_no_request_and_writes_nothing(
    project: Project, capfd: pytest.CaptureFixture[str], lock_input: bool
) -> None:
    lock_once(project, capfd)
    before = snapshot(project.lock)
    mark = project.registry.mark()
    code, out, err = run_cli(project.args("--check", lock_input=lock_input), capfd)
    assert code == 0, err
    assert out == ""
    assert f"{project.lock} is up to date" in err
    assert project.registry.request_log(since=mark) == []
    assert snapshot(project.lock) == before


def test_rerun_without_changes_keeps_the_file_and_sends_no_request(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    first = lock_once(project, capfd)
    before = snapshot(project.lock)
    mark = project.registry.mark()
    code, out, err = run_cli(project.args(), capfd)
    assert code == 0, err
    assert project.registry.request_log(since=mark) == []
    assert snapshot(project.lock) == before  # same bytes: not even rewritten
    # The documents still come out, pinned, as on the first run.
    assert out.count("@sha256:") >= 10
    assert "# keep me" in out
    assert first == project.lock.read_text()


# --- check: what changed ---------------------------------------------------------------


def test_check_names_an_added_reference_and_resolves_only_it(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    lock_once(project, capfd)
    before = snapshot(project.lock)
    project.add("new")
    mark = project.registry.mark()
    code, out, err = run_cli(project.args("--check"), capfd)
    assert code == 1
    assert out == ""
    assert f"{project.lock} is out of date:" in err
    assert f"  + {project.ref('new')} -> {project.pinned('new')}" in err
    assert err.count("  + ") == 1 and "  - " not in err and "  ~ " not in err
    assert [(r.method, r.path) for r in project.registry.request_log(since=mark)] == [
        ("HEAD", f"/v2/{project.prefix}/new/manifests/1.0")
    ]
    assert snapshot(project.lock) == before


def test_check_names_a_removed_reference_without_a_request(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    lock_once(project, capfd)
    before = snapshot(project.lock)
    (project.config / "i3.yml").unlink()
    mark = project.registry.mark()
    code, out, err = run_cli(project.args("--check"), capfd)
    assert code == 1
    assert out == ""
    assert f"  - {project.ref('i3')} (was {project.pinned('i3')})" in err
    assert err.count("  - ") == 1 and "  + " not in err
    assert project.registry.request_log(since=mark) == []
    assert snapshot(project.lock) == before


def test_check_without_a_lock_lists_everything_and_creates_nothing(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(project.args("--check"), capfd)
    assert code == 1
    assert out == ""
    assert f"{project.lock} is missing:" in err
    assert err.count("  + ") == 10
    assert not project.lock.exists()
    assert os.listdir(project.lock.parent) == []


def test_check_needs_a_lock_flag(project: Project, capfd: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["-f", str(project.config), "--check"], capfd)
    assert code == 2
    assert out == ""
    assert "--check needs --imgpkg-lock-output or --lock-output" in err


# --- a tag that moves: pinned by default, re-pinned on request ---------------------------


def test_moved_tag_keeps_its_pin_until_update(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    original = lock_once(project, capfd)
    old = project.digests["i0"]
    new = push_tag(project.registry, f"{project.prefix}/i0", "1.0", "moved")
    assert new != old

    # The default run keeps the locked digest: no request, same bytes.
    mark = project.registry.mark()
    code, out, err = run_cli(project.args(), capfd)
    assert code == 0, err
    assert project.registry.request_log(since=mark) == []
    assert project.lock.read_text() == original
    assert project.pinned("i0", old) in out
    code, _, err = run_cli(project.args("--check"), capfd)
    assert code == 0, err

    # --check --update asks about every tag and names the one that moved.
    mark = project.registry.mark()
    code, out, err = run_cli(project.args("--check", "--update"), capfd)
    assert code == 1
    assert out == ""
    moved = f"  ~ {project.ref('i0')}: {project.pinned('i0', old)} -> {project.pinned('i0', new)}"
    assert moved in err
    assert err.count("  ~ ") == 1 and "  + " not in err and "  - " not in err
    heads = sorted(r.path for r in project.registry.request_log(since=mark))
    assert heads == sorted(f"/v2/{project.prefix}/i{i}/manifests/1.0" for i in range(10))
    assert project.lock.read_text() == original

    # --update writes it; the result is what a run without any lock gives.
    code, _, err = run_cli(project.args("--update"), capfd)
    assert code == 0, err
    updated = project.lock.read_text()
    assert project.pinned("i0", new) in updated
    assert project.pinned("i0", old) not in updated
    project.lock.unlink()
    assert lock_once(project, capfd) == updated


def test_update_ref_moves_only_that_reference(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    lock_once(project, capfd)
    old1, old2 = project.digests["i1"], project.digests["i2"]
    new1 = push_tag(project.registry, f"{project.prefix}/i1", "1.0", "moved-1")
    new2 = push_tag(project.registry, f"{project.prefix}/i2", "1.0", "moved-2")

    mark = project.registry.mark()
    code, _, err = run_cli(project.args("-q", "--update-ref", project.ref("i1")), capfd)
    assert code == 0, err
    assert [(r.method, r.path) for r in project.registry.request_log(since=mark)] == [
        ("HEAD", f"/v2/{project.prefix}/i1/manifests/1.0")
    ]
    text = project.lock.read_text()
    assert project.pinned("i1", new1) in text
    assert project.pinned("i2", old2) in text  # moved too, but not asked for
    assert new2 not in text
    # --quiet says what changed in the lock instead of printing the documents.
    assert f"{project.lock} was updated:" in err
    assert f"  ~ {project.ref('i1')}: {project.pinned('i1', old1)} -> " in err

    code, out, err = run_cli(project.args("--check"), capfd)
    assert (code, out) == (0, ""), err


def test_update_ref_must_name_a_reference_of_the_inputs(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    original = lock_once(project, capfd)
    code, out, err = run_cli(project.args("--update-ref", project.ref("nope")), capfd)
    assert code == 2
    assert out == ""
    assert f"--update-ref {project.ref('nope')}: no input has this image reference" in err
    assert project.lock.read_text() == original


# --- the lock as an input too: a fixed point -------------------------------------------


@pytest.mark.parametrize("how", ["lock-file", "project-dir"])
def test_lock_given_as_input_too_is_a_fixed_point(
    project: Project, capfd: pytest.CaptureFixture[str], how: str
) -> None:
    original = lock_once(project, capfd)
    if how == "lock-file":
        args = project.args(lock_input=True)
    else:  # the walk of the folder finds .imgpkg/images.yml
        args = ["-f", str(project.root), "--imgpkg-lock-output", str(project.lock)]
    for _ in range(2):
        mark = project.registry.mark()
        code, _, err = run_cli(args, capfd)
        assert code == 0, err
        assert project.registry.request_log(since=mark) == []
        assert project.lock.read_text() == original  # no preresolved origin creeps in

    # Read as the existing lock, not as kbld overrides: --update re-resolves it.
    new = push_tag(project.registry, f"{project.prefix}/i4", "1.0", "moved-4")
    code, _, err = run_cli([*args, "--update"], capfd)
    assert code == 0, err
    assert project.pinned("i4", new) in project.lock.read_text()


def test_kbld_case_lock_is_a_fixed_point_with_kbld_bytes(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    case = get_case("resolve", "r01")
    seed_case(registry, case)
    inputs = case.copy_input(tmp_path / "in", registry.host)
    lock = tmp_path / "images.yml"
    expected = case.expected_text("images.yml", registry.host)
    code, _, err = run_cli(["-f", str(inputs), "--imgpkg-lock-output", str(lock)], capfd)
    assert code == 0, err
    assert lock.read_text() == expected
    for extra in ([], ["-f", str(lock)], ["-f", str(lock), "--check"]):
        mark = registry.mark()
        code, _, err = run_cli(
            ["-f", str(inputs), *extra, "--imgpkg-lock-output", str(lock)], capfd
        )
        assert code == 0, err
        assert registry.request_log(since=mark) == []
        assert lock.read_text() == expected


def test_another_lock_given_as_input_stays_kbld_configuration(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """r09: a lock that is not the output keeps kbld's meaning (preresolved), even
    with --update."""
    case = get_case("resolve", "r09")
    seed_case(registry, case)
    inputs = case.copy_input(tmp_path / "in", registry.host)
    out = tmp_path / "out" / "images.yml"
    argv = [*case.cli_args(inputs, out.parent, registry.host), "--update"]
    code, _, err = run_cli(argv, capfd)
    assert code == 0, err
    assert out.read_text() == case.expected_text("images.yml", registry.host)


def test_kbld_config_lock_given_as_input_checks_without_a_request(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    lock = project.root / "kbld-lock.yml"
    base = ["-f", str(project.config), "--lock-output", str(lock)]
    code, _, err = run_cli(base, capfd)
    assert code == 0, err
    original = lock.read_text()
    with_lock = ["-f", str(project.config), "-f", str(lock), "--lock-output", str(lock)]
    mark = project.registry.mark()
    code, out, err = run_cli([*with_lock, "--check"], capfd)
    assert (code, out) == (0, ""), err
    assert project.registry.request_log(since=mark) == []
    code, _, err = run_cli(with_lock, capfd)
    assert code == 0, err
    assert lock.read_text() == original

    project.add("extra")
    code, out, err = run_cli([*with_lock, "--check"], capfd)
    assert code == 1
    assert f"  + {project.ref('extra')} -> {project.pinned('extra')}" in err
    assert err.count("  + ") == 1
    assert lock.read_text() == original


# --- the pinning rule's edges ----------------------------------------------------------


def test_pins_without_origins_are_kept(project: Project, capfd: pytest.CaptureFixture[str]) -> None:
    """A lock written with --origins-annotation=false records no origins; its pins
    still hold (same repository), so a re-run is free."""
    code, _, err = run_cli(project.args("--origins-annotation=false"), capfd)
    assert code == 0, err
    original = project.lock.read_text()
    assert "kbld.carvel.dev/origins" not in original
    mark = project.registry.mark()
    code, _, err = run_cli(project.args("--origins-annotation=false", "--check"), capfd)
    assert code == 0, err
    assert project.registry.request_log(since=mark) == []


def test_pin_of_another_platform_is_resolved_again(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    case = get_case("resolve", "r05")  # multi:2.0 is an index, single:2.0 is not
    seed_case(registry, case)
    inputs = case.copy_input(tmp_path / "in", registry.host)
    lock = tmp_path / "images.yml"
    base = ["-f", str(inputs), "--imgpkg-lock-output", str(lock)]
    code, _, err = run_cli([*base, "--platform", "linux/arm64"], capfd)
    assert code == 0, err
    assert lock.read_text() == case.expected_text("images.yml", registry.host)

    mark = registry.mark()
    code, _, err = run_cli([*base, "--platform", "linux/arm64", "--check"], capfd)
    assert code == 0, err
    assert registry.request_log(since=mark) == []

    # Without --platform the arm64 child no longer answers for multi:2.0.
    mark = registry.mark()
    code, _, err = run_cli([*base, "--check"], capfd)
    assert code == 1
    multi = f"{registry.host}/conf/r05/multi"
    assert f"  ~ {multi}:2.0: {multi}@sha256:35016cb8" in err
    assert f"-> {multi}@sha256:592ed21d" in err
    assert err.count("  ~ ") == 1
    assert [(r.method, r.path) for r in registry.request_log(since=mark)] == [
        ("HEAD", "/v2/conf/r05/multi/manifests/2.0")
    ]
