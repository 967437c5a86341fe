"""Load the recorded imgpkg bundle cases (``conformance/bundle/``) and build their trees.

The cases are the project's copy under ``tests/fixtures/conformance``, as in
:mod:`tests.support.conformance`; this module stays free of registry helpers so the
pure tar/config tests import nothing else.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLE_CASES_DIR = _REPO_ROOT / "tests" / "fixtures" / "conformance" / "bundle"


@dataclass(frozen=True)
class TreeItem:
    path: str
    type: str  # "file" or "dir"
    mode: int
    data: bytes


@dataclass(frozen=True)
class BundleCase:
    name: str
    description: str
    mode: str  # "-i" or "-b"
    push_args: tuple[str, ...]
    tree: tuple[TreeItem, ...]
    expected: dict[str, Any]

    def materialise(self, root: Path) -> None:
        """Create the case's files and folders under ``root``, modes applied."""
        materialise_tree(self.tree, root)

    def file_paths(self, root: Path) -> list[str]:
        """The ``-f`` values, ``{root}`` substituted."""
        args = self.push_args
        return [
            args[i + 1].replace("{root}", str(root)) for i in range(len(args)) if args[i] == "-f"
        ]

    def exclusions(self) -> tuple[str, ...] | None:
        """The ``--file-exclusion`` values, or None when the default applies."""
        args = self.push_args
        found = [args[i + 1] for i in range(len(args)) if args[i] == "--file-exclusion"]
        return tuple(v for value in found for v in value.split(",")) if found else None

    def labels(self) -> tuple[str, ...]:
        """The raw ``-l`` values."""
        args = self.push_args
        return tuple(args[i + 1] for i in range(len(args)) if args[i] in ("-l", "--labels"))

    def log_lines(self) -> list[str]:
        """The ``dir:`` / ``file:`` lines imgpkg printed."""
        lines = self.expected["push_stdout"].splitlines()
        return [line for line in lines if line.startswith(("dir: ", "file: "))]


def materialise_tree(items: tuple[TreeItem, ...], root: Path) -> None:
    """Create ``items`` under ``root``; modes are applied last, deepest first."""
    root.mkdir(parents=True, exist_ok=True)
    for item in items:
        target = root / item.path
        if item.type == "dir":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item.data)
    for item in sorted(items, key=lambda i: i.path.count("/"), reverse=True):
        (root / item.path).chmod(item.mode)


def write_bundle_dir(
    root: Path, images: Sequence[str] = (), files: Mapping[str, str] | None = None
) -> Path:
    """A bundle directory at ``root``: an ImagesLock of ``images`` and the given files.

    The lock is written as imgpkg writes it (``images:`` left out when empty);
    ``files`` maps a file name to its text.
    """
    (root / ".imgpkg").mkdir(parents=True)
    listed = "".join(f"- image: {image}\n" for image in images)
    (root / ".imgpkg" / "images.yml").write_text(
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\n"
        + (f"images:\n{listed}" if images else "")
        + "kind: ImagesLock\n"
    )
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    return root


def load_case(case_dir: Path) -> BundleCase:
    meta = json.loads((case_dir / "case.json").read_text())
    tree = json.loads((case_dir / "tree.json").read_text())
    expected = json.loads((case_dir / "expected.json").read_text())
    items = tuple(
        TreeItem(
            path=entry["path"],
            type=entry["type"],
            mode=int(entry["mode"]),
            data=base64.b64decode(entry.get("data_base64", "")),
        )
        for entry in tree
    )
    return BundleCase(
        name=case_dir.name,
        description=meta["description"],
        mode=meta["mode"],
        push_args=tuple(meta["push_args"]),
        tree=items,
        expected=expected,
    )


def load_cases() -> list[BundleCase]:
    if not BUNDLE_CASES_DIR.is_dir():
        return []
    return [load_case(d) for d in sorted(BUNDLE_CASES_DIR.iterdir()) if d.is_dir()]
