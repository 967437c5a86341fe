"""docs/ci.md tells users which lockresolve revision to install: it must be one that exists.

Issue 15: the page said ``rev: v0.1.0`` and ``pip install "git+…@v0.1.0"``, and there is
no such tag, so pre-commit failed with ``pathspec 'v0.1.0' did not match``. Every revision
the page names is a placeholder the text explains, a full commit SHA, or a tag of this
repository.
"""

from __future__ import annotations

import re
import subprocess

from tests.support.conformance import REPO_ROOT

CI = REPO_ROOT / "docs" / "ci.md"


def _tags() -> set[str]:
    done = subprocess.run(
        ["git", "tag", "--list"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    return set(done.stdout.split())


def _revisions(text: str) -> list[str]:
    revs = re.findall(r"^\s*rev:\s*(\S+)", text, flags=re.MULTILINE)
    revs += re.findall(r"git\+<lockresolve-repo>@([^\"'\s]+)", text)
    return revs


def test_every_revision_docs_ci_names_exists() -> None:
    text = CI.read_text(encoding="utf-8")
    revs = _revisions(text)
    assert len(revs) >= 4  # the hook's rev and the three CI installs
    tags = _tags()
    for rev in revs:
        assert rev == "<commit>" or re.fullmatch(r"[0-9a-f]{40}", rev) or rev in tags, rev
    assert "git ls-remote <lockresolve-repo> HEAD" in text  # how to pick one
