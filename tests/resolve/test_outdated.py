"""``lockresolve outdated`` end to end against the real registry: after a tag is pushed
again (``moved``) and after newer tags appear (``newer``), in both output forms, with
``--exit-code``; one HEAD per reference and one tag listing per repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.resolve.test_check_update import push_tag
from tests.support.cli import run_cli
from tests.support.registry import Registry


@pytest.fixture
def project(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> tuple[Path, Path, dict[str, str]]:
    h = registry.host
    digests = {
        "app:1.0.0": push_tag(registry, "outdated/app", "1.0.0", "app-1.0.0"),
        "app:1.1.0": push_tag(registry, "outdated/app", "1.1.0", "app-1.1.0"),
        "db:2.0": push_tag(registry, "outdated/db", "2.0", "db-2.0"),
        "tool:latest": push_tag(registry, "outdated/tool", "latest", "tool-latest"),
    }
    push_tag(registry, "outdated/app", "not-a-version", "app-nav")
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "app.yml").write_text(
        "kind: Deployment\nspec:\n  containers:\n"
        f"  - image: {h}/outdated/app:1.0.0\n"
        f"  - image: {h}/outdated/db:2.0\n"
        f"  - image: {h}/outdated/tool\n"
    )
    lock = tmp_path / "images.yml"
    code, _, err = run_cli(["-f", str(cfg), "--imgpkg-lock-output", str(lock)], capfd)
    assert code == 0, err
    return cfg, lock, digests


def _run(
    cfg: Path, lock: Path, capfd: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    return run_cli(["outdated", "-f", str(cfg), "--imgpkg-lock-output", str(lock), *extra], capfd)


def test_outdated_json_and_table(
    registry: Registry,
    project: tuple[Path, Path, dict[str, str]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    cfg, lock, digests = project
    h = registry.host
    app = cfg / "app.yml"

    # Right after locking: app has a newer 1.1.0 already; nothing moved.
    mark = registry.mark()
    code, out, err = _run(cfg, lock, capfd, "--output", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [e["reference"] for e in report] == [
        f"{h}/outdated/app:1.0.0",
        f"{h}/outdated/db:2.0",
        f"{h}/outdated/tool",
    ]
    first = report[0]
    assert first == {
        "reference": f"{h}/outdated/app:1.0.0",
        "file": str(app),
        "line": 4,
        "pinned": f"{h}/outdated/app@{digests['app:1.0.0']}",
        "current": f"{h}/outdated/app@{digests['app:1.0.0']}",
        "moved": False,
        "newer": ["1.1.0"],
        "selected": None,
    }
    assert report[1]["newer"] == [] and report[1]["moved"] is False  # 2.0 is no semver
    assert report[2]["pinned"] == f"{h}/outdated/tool@{digests['tool:latest']}"
    requests = sorted((r.method, r.path) for r in registry.request_log(since=mark))
    assert requests == [
        ("GET", "/v2/outdated/app/tags/list"),
        ("GET", "/v2/outdated/db/tags/list"),
        ("GET", "/v2/outdated/tool/tags/list"),
        ("HEAD", "/v2/outdated/app/manifests/1.0.0"),
        ("HEAD", "/v2/outdated/db/manifests/2.0"),
        ("HEAD", "/v2/outdated/tool/manifests/latest"),
    ]

    # latest is pushed again and newer app versions appear
    moved = push_tag(registry, "outdated/tool", "latest", "tool-latest-2")
    push_tag(registry, "outdated/app", "v2.0.0", "app-2.0.0")
    push_tag(registry, "outdated/app", "1.10.0", "app-1.10.0")
    code, out, err = _run(cfg, lock, capfd, "--output", "json", "--exit-code")
    assert code == 1, err
    report = json.loads(out)
    assert report[0]["newer"] == ["v2.0.0", "1.10.0", "1.1.0"]
    assert report[0]["moved"] is False
    assert report[2]["moved"] is True
    assert report[2]["current"] == f"{h}/outdated/tool@{moved}"
    assert report[2]["newer"] == []  # latest is no version: nothing guessed

    code, out, err = _run(cfg, lock, capfd)
    assert code == 0, err  # without --exit-code
    lines = out.splitlines()
    assert lines[0].split() == ["REFERENCE", "WHERE", "PINNED", "CURRENT", "MOVED", "NEWER"]
    assert len(lines) == 3  # db is current: no row
    assert lines[1].split()[:2] == [f"{h}/outdated/app:1.0.0", f"{app}:4"]
    assert lines[1].endswith("v2.0.0, 1.10.0, 1.1.0")
    assert lines[2].split() == [
        f"{h}/outdated/tool",
        f"{app}:6",
        digests["tool:latest"][:19],
        moved[:19],
        "moved",
    ]
    # aligned: every column starts at the same offset on each line
    col = lines[0].index("WHERE")
    assert all(line[col - 2 : col] == "  " and line[col] != " " for line in lines)
    assert lock.read_text().count("@sha256:") == 3  # outdated writes nothing


def test_nothing_outdated_prints_nothing(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    d = push_tag(registry, "outdated/solo", "3.0.0", "solo-3")
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"kind: Pod\nimage: {registry.host}/outdated/solo:3.0.0\n")
    lock = tmp_path / "images.yml"
    assert run_cli(["-f", str(cfg), "--imgpkg-lock-output", str(lock)], capfd)[0] == 0
    code, out, err = _run(cfg, lock, capfd, "--exit-code")
    assert (code, out) == (0, ""), err
    code, out, _ = _run(cfg, lock, capfd, "--output", "json", "--exit-code")
    assert code == 0
    assert json.loads(out)[0]["current"] == f"{registry.host}/outdated/solo@{d}"


def test_tag_selection_reports_what_it_would_pick(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    push_tag(registry, "outdated/sel", "1.0.0", "sel-1")
    (tmp_path / "pod.yml").write_text("kind: Pod\nimage: app\n")
    cfg = tmp_path / "kbld.yml"
    cfg.write_text(
        "apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\noverrides:\n"
        f"- image: app\n  newImage: {h}/outdated/sel\n"
        "  tagSelection:\n    semver:\n      constraints: '<3.0.0'\n"
    )
    lock = tmp_path / "images.yml"
    args = ["-f", str(tmp_path / "pod.yml"), "-f", str(cfg)]
    assert run_cli([*args, "--imgpkg-lock-output", str(lock)], capfd)[0] == 0
    push_tag(registry, "outdated/sel", "2.0.0", "sel-2")
    push_tag(registry, "outdated/sel", "3.0.0", "sel-3")
    code, out, err = run_cli(
        ["outdated", *args, "--imgpkg-lock-output", str(lock), "--output", "json"], capfd
    )
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry["reference"] == "app"
    assert entry["newer"] == ["3.0.0", "2.0.0"]
    assert entry["selected"] == "2.0.0"
    assert entry["moved"] is False


def test_a_missing_tag_is_one_error_line(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"kind: Pod\nimage: {registry.host}/outdated/none:1.0.0\n")
    code, out, err = run_cli(["outdated", "-f", str(cfg)], capfd)
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "lockresolve: error: 1 image reference(s) failed to check:"
    assert lines[1].startswith(
        f"- Checking image '{registry.host}/outdated/none:1.0.0' ({cfg}:2): "
    )
    assert len(lines) == 2
