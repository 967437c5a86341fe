"""The pre-commit hooks (``.pre-commit-hooks.yaml``) as users run them: the real
``pre-commit`` installs lockresolve from a git repository into its own virtualenv
and runs the hooks in a scratch git repository, against the real registry.

The hook repository is a commit of this working tree's package files
(``tests/support/sourcetree.py``: the checkout's HEAD may not hold uncommitted work),
made once per session; pre-commit's cache (its clone and virtualenv) lives in the
session's temporary folder, so the virtualenv is built once per run (it installs
lockresolve's dependencies with pip).

The ``lockresolve`` hook must never let a lock slip into a commit unstaged: pre-commit
itself only notices changes to tracked files, so a lock the hook *creates* would pass.
The hook passes ``--fail-on-change``, which exits 1 whenever a lock was written.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.conformance import get_case, seed_case
from tests.support.registry import Registry
from tests.support.sourcetree import copy_package_tree

LOCK = ".imgpkg/images.yml"
ARGS = ["-f", "config/", "--imgpkg-lock-output", LOCK]
STAGE_IT = f"lockresolve: stage {LOCK} (git add {LOCK}) and commit again"


def git_run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``git ARGS`` in ``cwd``: (exit status, stdout and stderr)."""
    full_env = {
        **os.environ,
        **(env or {}),
        "GIT_AUTHOR_NAME": "lockresolve tests",
        "GIT_AUTHOR_EMAIL": "tests@lockresolve.invalid",
        "GIT_COMMITTER_NAME": "lockresolve tests",
        "GIT_COMMITTER_EMAIL": "tests@lockresolve.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """``git ARGS``, which must succeed: its stdout and stderr, stripped."""
    code, output = git_run(cwd, *args, env=env)
    assert code == 0, f"git {' '.join(args)}: {output}"
    return output.strip()


@dataclass(frozen=True)
class HookRepo:
    path: Path
    rev: str
    home: Path  # PRE_COMMIT_HOME


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> HookRepo:
    """A git repository holding this working tree's package and hook definitions."""
    repo = copy_package_tree(tmp_path_factory.mktemp("hook-repo"))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "lockresolve working tree")
    return HookRepo(repo, git(repo, "rev-parse", "HEAD"), tmp_path_factory.mktemp("pre-commit"))


@dataclass
class Scratch:
    """A user's repository using the hooks."""

    root: Path
    hooks: HookRepo

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def env(self) -> dict[str, str]:
        return {"PRE_COMMIT_HOME": str(self.hooks.home), "PRE_COMMIT_COLOR": "never"}

    def pre_commit(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", *args],
            cwd=self.root,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def run_hook(self, hook: str) -> subprocess.CompletedProcess[str]:
        return self.pre_commit("run", hook, "--all-files")


def make_scratch(root: Path, registry: Registry, hooks: HookRepo, lock: str | None) -> Scratch:
    """The r01 manifest in ``config/``, ``lock`` (if any) as the lock, and a
    .pre-commit-config.yaml using both hooks; nothing committed yet."""
    if importlib.util.find_spec("pre_commit") is None:
        pytest.fail("pre-commit is not installed: pip install -e '.[test]'", pytrace=False)
    case = get_case("resolve", "r01")
    seed_case(registry, case)
    case.copy_input(root / "config", registry.host)
    if lock is not None:
        (root / ".imgpkg").mkdir()
        (root / LOCK).write_text(lock)
    entries = "\n".join(
        f"  - id: {hook}\n    args: [{', '.join(ARGS)}]"
        for hook in ("lockresolve", "lockresolve-check")
    )
    (root / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hooks.path}\n  rev: {hooks.rev}\n  hooks:\n{entries}\n"
    )
    git(root, "init", "-q")
    return Scratch(root, hooks)


def r01_lock(registry: Registry) -> str:
    """kbld's recorded lock for r01, byte for byte."""
    return get_case("resolve", "r01").expected_text("images.yml", registry.host)


@pytest.fixture
def scratch(registry: Registry, hook_repo: HookRepo, tmp_path: Path) -> Scratch:
    """The r01 manifest with a stale lock (it pins the tag the manifest used before),
    committed."""
    stale = r01_lock(registry).replace("web:1.0", "web:0.9").replace('tag: "1.0"', 'tag: "0.9"')
    made = make_scratch(tmp_path / "project", registry, hook_repo, stale)
    git(made.root, "add", "-A")
    git(made.root, "commit", "-q", "-m", "start")
    return made


def test_hook_rewrites_a_stale_lock_then_passes(registry: Registry, scratch: Scratch) -> None:
    expected = r01_lock(registry)
    first = scratch.run_hook("lockresolve")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "- exit code: 1" in first.stdout  # the hook failed, not only pre-commit's diff
    assert "files were modified by this hook" in first.stdout
    # --quiet: what changed, not the documents
    assert f"lockresolve: {LOCK} was updated:" in first.stdout
    assert f"+ {registry.host}/conf/r01/web:1.0 -> " in first.stdout
    assert f"- {registry.host}/conf/r01/web:0.9 " in first.stdout
    assert STAGE_IT in first.stdout
    assert "apiVersion: apps/v1" not in first.stdout
    assert scratch.lock.read_text() == expected  # kbld's recorded lock, byte for byte

    # Unchanged lock: the hook writes nothing and passes.
    git(scratch.root, "add", LOCK)
    written = scratch.lock.stat().st_mtime_ns
    second = scratch.run_hook("lockresolve")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "lockresolve (update the image lock)" in second.stdout
    assert "Passed" in second.stdout
    assert scratch.lock.read_text() == expected
    assert scratch.lock.stat().st_mtime_ns == written


def test_hook_fails_a_commit_whose_lock_it_created_until_the_lock_is_staged(
    registry: Registry, hook_repo: HookRepo, tmp_path: Path
) -> None:
    """The first run creates the lock: an untracked file pre-commit would not notice.
    The commit must fail, naming the lock, and go in once the lock is staged."""
    scratch = make_scratch(tmp_path / "project", registry, hook_repo, lock=None)
    git(scratch.root, "add", ".pre-commit-config.yaml")
    git(scratch.root, "commit", "-q", "-m", "hooks")
    installed = scratch.pre_commit("install")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    git(scratch.root, "add", "config")

    code, refused = git_run(scratch.root, "commit", "-m", "add the app", env=scratch.env)
    assert code == 1, refused
    assert f"lockresolve: {LOCK} was created:" in refused
    assert f"+ {registry.host}/conf/r01/web:1.0 -> " in refused
    assert STAGE_IT in refused
    assert git(scratch.root, "log", "--format=%s") == "hooks"  # no commit went in
    assert scratch.lock.read_text() == r01_lock(registry)

    git(scratch.root, "add", LOCK)
    git(scratch.root, "commit", "-q", "-m", "add the app", env=scratch.env)
    assert git(scratch.root, "log", "--format=%s") == "add the app\nhooks"
    assert git(scratch.root, "show", f"HEAD:{LOCK}") + "\n" == r01_lock(registry)
    assert git(scratch.root, "status", "--porcelain") == ""


def test_fail_on_change_exits_1_only_when_a_lock_was_written(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    case = get_case("resolve", "r01")
    seed_case(registry, case)
    config = case.copy_input(tmp_path / "config", registry.host)
    lock = tmp_path / "images.yml"
    args = ["-f", str(config), "--imgpkg-lock-output", str(lock), "--fail-on-change"]

    code, out, err = run_cli(args, capfd)
    assert code == 1, err
    assert f"lockresolve: {lock} was created:" in err
    assert f"lockresolve: stage {lock} (git add {lock}) and commit again" in err
    assert "apiVersion: apps/v1" in out  # without -q the documents are printed as usual
    assert lock.read_text() == r01_lock(registry)

    code, _, err = run_cli(args, capfd)
    assert code == 0, err
    assert "stage" not in err

    # Without the flag a created lock is a success, as in kbld.
    lock.unlink()
    code, _, err = run_cli(args[:-1], capfd)
    assert code == 0, err
    assert "stage" not in err
    assert lock.read_text() == r01_lock(registry)


def test_check_hook_fails_on_a_stale_lock_without_touching_it(
    registry: Registry, scratch: Scratch
) -> None:
    stale = scratch.lock.read_bytes()
    failed = scratch.run_hook("lockresolve-check")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"{LOCK} is out of date:" in failed.stdout
    assert f"+ {registry.host}/conf/r01/web:1.0 -> " in failed.stdout
    assert "files were modified" not in failed.stdout
    assert scratch.lock.read_bytes() == stale

    scratch.lock.write_text(r01_lock(registry))
    git(scratch.root, "add", "-A")
    mark = registry.mark()
    passed = scratch.run_hook("lockresolve-check")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert registry.request_log(since=mark) == []  # an up-to-date check asks nothing
