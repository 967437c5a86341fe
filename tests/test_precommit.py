"""The pre-commit hooks (``.pre-commit-hooks.yaml``) as users run them: the real
``pre-commit`` installs lockresolve from a git repository into its own virtualenv
and runs the hooks in a scratch git repository, against the real registry.

The hook repository is a commit of this working tree (the checkout's HEAD may not
hold uncommitted work), made once per session; pre-commit's cache (its clone and
virtualenv) lives in the session's temporary folder, so the virtualenv is built
once per run (it installs lockresolve's dependencies with pip).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.conformance import REPO_ROOT, get_case, seed_case
from tests.support.registry import Registry

LOCK = ".imgpkg/images.yml"
ARGS = ["-f", "config/", "--imgpkg-lock-output", LOCK]


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "lockresolve tests",
        "GIT_AUTHOR_EMAIL": "tests@lockresolve.invalid",
        "GIT_COMMITTER_NAME": "lockresolve tests",
        "GIT_COMMITTER_EMAIL": "tests@lockresolve.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


@dataclass(frozen=True)
class HookRepo:
    path: Path
    rev: str
    home: Path  # PRE_COMMIT_HOME


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> HookRepo:
    """A git repository holding this working tree's package and hook definitions."""
    if shutil.which("git") is None:
        pytest.fail("git is not installed: apt-get install git", pytrace=False)
    repo = tmp_path_factory.mktemp("hook-repo")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(REPO_ROOT / name, repo / name)
    shutil.copytree(
        REPO_ROOT / "lockresolve",
        repo / "lockresolve",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
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

    def pre_commit(self, hook: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PRE_COMMIT_HOME": str(self.hooks.home), "PRE_COMMIT_COLOR": "never"}
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", hook, "--all-files"],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


@pytest.fixture
def scratch(registry: Registry, hook_repo: HookRepo, tmp_path: Path) -> Scratch:
    """The r01 manifest with a stale lock (it pins the tag the manifest used before),
    committed, and a .pre-commit-config.yaml using both hooks."""
    if importlib.util.find_spec("pre_commit") is None:
        pytest.fail("pre-commit is not installed: pip install -e '.[test]'", pytrace=False)
    case = get_case("resolve", "r01")
    seed_case(registry, case)
    root = tmp_path / "project"
    case.copy_input(root / "config", registry.host)
    stale = case.expected_text("images.yml", registry.host).replace("web:1.0", "web:0.9")
    stale = stale.replace('tag: "1.0"', 'tag: "0.9"')
    (root / ".imgpkg").mkdir()
    (root / LOCK).write_text(stale)
    hooks = "\n".join(
        f"  - id: {hook}\n    args: [{', '.join(ARGS)}]"
        for hook in ("lockresolve", "lockresolve-check")
    )
    (root / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hook_repo.path}\n  rev: {hook_repo.rev}\n  hooks:\n{hooks}\n"
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return Scratch(root, hook_repo)


def test_hook_rewrites_a_stale_lock_then_passes(registry: Registry, scratch: Scratch) -> None:
    expected = get_case("resolve", "r01").expected_text("images.yml", registry.host)
    first = scratch.pre_commit("lockresolve")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout
    # --quiet: what changed, not the documents
    assert f"+ {registry.host}/conf/r01/web:1.0 -> " in first.stdout
    assert f"- {registry.host}/conf/r01/web:0.9 " in first.stdout
    assert "apiVersion: apps/v1" not in first.stdout
    assert scratch.lock.read_text() == expected  # kbld's recorded lock, byte for byte

    second = scratch.pre_commit("lockresolve")
    assert second.returncode == 0, second.stdout + second.stderr
    assert scratch.lock.read_text() == expected


def test_check_hook_fails_on_a_stale_lock_without_touching_it(
    registry: Registry, scratch: Scratch
) -> None:
    stale = scratch.lock.read_bytes()
    failed = scratch.pre_commit("lockresolve-check")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"{LOCK} is out of date:" in failed.stdout
    assert f"+ {registry.host}/conf/r01/web:1.0 -> " in failed.stdout
    assert "files were modified" not in failed.stdout
    assert scratch.lock.read_bytes() == stale

    scratch.lock.write_text(get_case("resolve", "r01").expected_text("images.yml", registry.host))
    git(scratch.root, "add", "-A")
    mark = registry.mark()
    passed = scratch.pre_commit("lockresolve-check")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert registry.request_log(since=mark) == []  # an up-to-date check asks nothing
