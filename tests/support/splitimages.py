"""Helpers for the ``--kustomize`` and ``--helm-values`` tests (images written as map
fields, pinned by a ``digest`` key): per-test repository prefixes, tags pushed in bulk,
input written with a chosen line ending, and a run that returns stdout and the lock."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.resolve.test_check_update import push_tag
from tests.support.cli import run_cli
from tests.support.registry import Registry

__all__ = ["lock_of", "prefix_for", "push_tags", "write_lines"]


def prefix_for(area: str, request: pytest.FixtureRequest) -> str:
    """``area/<the test's name, slugged>``: each test's own repositories."""
    return f"{area}/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


def push_tags(registry: Registry, prefix: str, tags: list[tuple[str, str]]) -> dict[str, str]:
    """Push ``prefix/<name>:<tag>`` (a distinct image each) for every pair: name -> digest."""
    return {n: push_tag(registry, f"{prefix}/{n}", t, f"{prefix}-{n}") for n, t in tags}


def write_lines(path: Path, text: str, newline: str) -> Path:
    """``text`` with each ``\\n`` written as ``newline``."""
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def lock_of(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, *inputs: Path, extra: tuple[str, ...] = ()
) -> tuple[str, str]:
    """(stdout, lock text) of ``lockresolve -f … --imgpkg-lock-output``; fails on exit != 0."""
    lock = tmp_path / f"lock-{len(list(tmp_path.iterdir()))}.yml"
    argv = [a for p in inputs for a in ("-f", str(p))]
    code, out, err = run_cli([*argv, "--imgpkg-lock-output", str(lock), *extra], capfd)
    assert code == 0, err
    return out, lock.read_text()
