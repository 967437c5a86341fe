"""A copy of the files that make the package, as a checkout of this working tree has them.

The packaging and pre-commit tests build and install lockresolve the way a user does
(``python -m build``, ``pip``, ``pipx``, pre-commit's own clone). They work on a copy, so
that nothing they run writes into the checkout (``build/``, ``*.egg-info``), and so that
uncommitted work is what gets tested: the copy holds every file git tracks or would track
(not ignored) at the top level and under ``lockresolve/``, whatever it is (``setup.py``,
``MANIFEST.in``, C sources).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["REPO_ROOT", "copy_package_tree", "package_files"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "lockresolve"


def package_files(root: Path = REPO_ROOT) -> list[str]:
    """Paths (relative, ``/``-separated) of the top-level files and of ``lockresolve/``."""
    if shutil.which("git") is None:
        pytest.fail("git is not installed: apt-get install git", pytrace=False)
    done = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{root} is not a git checkout: {done.stderr.decode()}", pytrace=False)
    names = [name.decode() for name in done.stdout.split(b"\0") if name]
    return sorted(
        name
        for name in names
        if ("/" not in name or name.startswith(f"{PACKAGE}/")) and (root / name).is_file()
    )


def copy_package_tree(dest: Path, root: Path = REPO_ROOT) -> Path:
    """Copy :func:`package_files` to ``dest`` (created); returns ``dest``."""
    for name in package_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return dest
