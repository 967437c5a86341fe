"""``lockresolve outdated`` end to end against the real registry.

A lock is written with ``resolve``; then the registry changes under it (a tag
is re-pushed, newer tags appear) and ``outdated`` must say so, in both output
forms, with one HEAD per reference and one tag listing per repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lockresolve.resolve.outdated import newer_tags
from tests.resolve.test_check_update import deployment, push_tag
from tests.support.cli import run_cli
from tests.support.registry import Registry


def prefix_for(request: pytest.FixtureRequest) -> str:
    return "outdated/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


class Setup:
    def __init__(self, registry: Registry, root: Path, prefix: str) -> None:
        self.registry = registry
        self.root = root
        self.prefix = prefix
        self.config = root / "config"
        self.config.mkdir(parents=True)
        self.lock = root / "images.yml"

    def repo(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def ref(self, name: str, tag: str) -> str:
        return f"{self.registry.host}/{self.prefix}/{name}:{tag}"

    def pinned(self, name: str, digest: str) -> str:
        return f"{self.registry.host}/{self.prefix}/{name}@{digest}"

    def push(self, name: str, tag: str, seed: str) -> str:
        return push_tag(self.registry, self.repo(name), tag, seed)

    def write(self, name: str, text: str) -> Path:
        path = self.config / f"{name}.yml"
        path.write_text(text)
        return path

    def args(self, *extra: str) -> list[str]:
        return ["outdated", "-f", str(self.config), "--imgpkg-lock-output", str(self.lock), *extra]


@pytest.fixture
def setup(registry: Registry, tmp_path: Path, request: pytest.FixtureRequest) -> Setup:
    return Setup(registry, tmp_path / "proj", prefix_for(request))


def lock(setup: Setup, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        ["-f", str(setup.config), "--imgpkg-lock-output", str(setup.lock)], capfd
    )
    assert code == 0, err


def by_ref(out: str) -> dict[str, dict[str, object]]:
    rows = json.loads(out)
    assert isinstance(rows, list)
    return {row["reference"]: row for row in rows}


def test_all_current_prints_nothing_and_exits_0(
    setup: Setup, capfd: pytest.CaptureFixture[str]
) -> None:
    d = setup.push("app", "1.0.0", "a1")
    setup.write("app", deployment("app", setup.ref("app", "1.0.0")))
    lock(setup, capfd)
    code, out, err = run_cli(setup.args("--exit-code"), capfd)
    assert (code, out) == (0, ""), err
    code, out, err = run_cli(setup.args("--output", "json"), capfd)
    assert code == 0, err
    assert json.loads(out) == [
        {
            "reference": setup.ref("app", "1.0.0"),
            "file": str(setup.config / "app.yml"),
            "line": 10,
            "tag": "1.0.0",
            "pinned": setup.pinned("app", d),
            "current": setup.pinned("app", d),
            "moved": False,
            "newer": [],
        }
    ]


def test_repushed_tag_is_moved_in_both_forms(
    setup: Setup, capfd: pytest.CaptureFixture[str]
) -> None:
    old = setup.push("app", "1.0.0", "a1")
    setup.push("other", "2.0.0", "o1")
    setup.write("app", deployment("app", setup.ref("app", "1.0.0")))
    setup.write("other", deployment("other", setup.ref("other", "2.0.0")))
    lock(setup, capfd)
    new = setup.push("app", "1.0.0", "a2")  # re-pushed: same tag, other bytes
    assert new != old

    mark = setup.registry.mark()
    code, out, err = run_cli(setup.args("--output", "json"), capfd)
    assert code == 0, err
    rows = by_ref(out)
    app = rows[setup.ref("app", "1.0.0")]
    assert app["pinned"] == setup.pinned("app", old)
    assert app["current"] == setup.pinned("app", new)
    assert app["moved"] is True and app["newer"] == []
    assert rows[setup.ref("other", "2.0.0")]["moved"] is False
    # One HEAD per reference, one listing per repository, nothing else.
    requests = sorted(
        (r.method, r.path) for r in setup.registry.request_log(since=mark) if r.status != 401
    )
    assert requests == sorted(
        [
            ("HEAD", f"/v2/{setup.prefix}/app/manifests/1.0.0"),
            ("HEAD", f"/v2/{setup.prefix}/other/manifests/2.0.0"),
            ("GET", f"/v2/{setup.prefix}/app/tags/list"),
            ("GET", f"/v2/{setup.prefix}/other/tags/list"),
        ]
    )

    code, out, err = run_cli(setup.args(), capfd)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2  # the header and the one reference that is outdated
    assert lines[0].split() == ["REFERENCE", "WHERE", "PINNED", "CURRENT", "MOVED", "NEWER"]
    assert lines[1].split() == [
        setup.ref("app", "1.0.0"),
        f"{setup.config / 'app.yml'}:10",
        "sha256:" + old.split(":")[1][:12],
        "sha256:" + new.split(":")[1][:12],
        "yes",
        "-",
    ]
    # --exit-code: 1, as git diff --exit-code
    code, _, _ = run_cli(setup.args("--exit-code"), capfd)
    assert code == 1


def test_newer_tags_sorted_by_semver_non_versions_left_out(
    setup: Setup, capfd: pytest.CaptureFixture[str]
) -> None:
    setup.push("app", "v1.2.0", "a1")
    setup.write("app", deployment("app", setup.ref("app", "v1.2.0")))
    lock(setup, capfd)
    for tag in ["v1.10.0", "latest", "v1.9.3", "1.2", "v1.1.0", "v2.0.0-rc.1", "main"]:
        setup.push("app", tag, f"a-{tag}")

    mark = setup.registry.mark()
    code, out, err = run_cli(setup.args("--output", "json", "--exit-code"), capfd)
    assert code == 1, err
    (row,) = json.loads(out)
    assert row["newer"] == ["v1.10.0", "v1.9.3"]  # not 1.2, latest, main, the prerelease
    assert row["moved"] is False
    assert setup.registry.count_requests("HEAD", since=mark) == 1
    assert setup.registry.count_requests("GET", "/tags/list", status=200, since=mark) == 1

    code, out, err = run_cli(setup.args(), capfd)
    assert code == 0, err
    header, line = out.splitlines()
    # aligned: every column starts where its header does
    for title in ("WHERE", "PINNED", "CURRENT", "MOVED", "NEWER"):
        assert line[header.index(title) - 2 : header.index(title)] == "  "
    assert line.endswith("no     v1.10.0, v1.9.3")


def test_digest_beside_tag_is_the_pin_without_a_lock(
    setup: Setup, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = setup.push("app", "1.0.0", "a1")
    setup.write("app", deployment("app", setup.ref("app", "1.0.0") + "@" + old))
    setup.write("digest-only", deployment("d", setup.pinned("app", old)))
    setup.push("app", "1.0.0", "a2")
    code, out, err = run_cli(
        ["outdated", "-f", str(setup.config), "--output", "json", "--exit-code"], capfd
    )
    assert code == 1, err
    (row,) = json.loads(out)  # the digest-only reference has no tag to follow
    assert row["reference"] == setup.ref("app", "1.0.0") + "@" + old
    assert row["pinned"] == setup.pinned("app", old)
    assert row["moved"] is True


def test_unpinned_reference_is_current_and_tag_selection_says_what_it_picks(
    setup: Setup, capfd: pytest.CaptureFixture[str]
) -> None:
    setup.push("plain", "3.0.0", "p1")
    setup.push("sel", "1.0.0", "s1")
    setup.push("sel", "1.1.0", "s2")
    setup.push("sel", "2.0.0", "s3")
    setup.write("plain", deployment("plain", setup.ref("plain", "3.0.0")))
    repo = f"{setup.registry.host}/{setup.prefix}/sel"
    setup.write("sel", deployment("sel", repo))
    (setup.config / "kbld.yml").write_text(
        "apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\noverrides:\n"
        f"- image: {repo}\n  newImage: {repo}\n"
        "  tagSelection:\n    semver:\n      constraints: <2.0.0\n"
    )
    lock(setup, capfd)
    setup.push("sel", "1.2.0", "s4")
    code, out, err = run_cli(setup.args("--output", "json"), capfd)
    assert code == 0, err
    rows = by_ref(out)
    plain = rows[setup.ref("plain", "3.0.0")]
    assert plain["moved"] is False and plain["newer"] == []
    sel = rows[repo]
    assert sel["tag"] == "1.1.0"  # the tag the lock recorded
    assert sel["selected"] == "1.2.0"
    assert sel["newer"] == ["2.0.0", "1.2.0"]
    assert sel["moved"] is False


def test_missing_tag_is_an_error_naming_the_reference(
    setup: Setup, capfd: pytest.CaptureFixture[str]
) -> None:
    setup.write("gone", deployment("gone", setup.ref("gone", "1.0.0")))
    code, out, err = run_cli(setup.args(), capfd)
    assert (code, out) == (1, "")
    assert "1 image reference(s) could not be checked" in err
    assert f"- {setup.ref('gone', '1.0.0')} ({setup.config / 'gone.yml'}:10):" in err
    assert "Traceback" not in err


def test_newer_tags_pure() -> None:
    tags = ["1.0.0", "1.0.1", "1.1.0-rc.1", "1.1.0", "x", "v1.0.2"]
    assert newer_tags(tags, "1.0.0") == ("1.1.0", "v1.0.2", "1.0.1")
    assert newer_tags(tags, "1.1.0-rc.0") == ("1.1.0", "1.1.0-rc.1")
    assert newer_tags(tags, "latest") == ()


def test_split_images_kustomize_and_helm_values(
    setup: Setup, capfd: pytest.CaptureFixture[str]
) -> None:
    """With --kustomize / --helm-values the digest field is the pin that may have moved."""
    old_k = setup.push("kz", "1.0.0", "k1")
    old_h = setup.push("hv", "1.0.0", "h1")
    repo_k = f"{setup.registry.host}/{setup.prefix}/kz"
    repo_h = f"{setup.registry.host}/{setup.prefix}/hv"
    (setup.config / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n"
        f"- name: app\n  newName: {repo_k}\n  newTag: 1.0.0\n  digest: {old_k}\n"
    )
    (setup.config / "values.yaml").write_text(
        f"image:\n  repository: {repo_h}\n  tag: 1.0.0\n  digest: {old_h}\n"
    )
    new_k = setup.push("kz", "1.0.0", "k2")
    setup.push("hv", "1.1.0", "h2")
    code, out, err = run_cli(
        ["outdated", "-f", str(setup.config), "--kustomize", "--helm-values", "--output", "json"],
        capfd,
    )
    assert code == 0, err
    rows = by_ref(out)
    kz = rows[f"{repo_k}:1.0.0"]
    assert (kz["moved"], kz["current"], kz["line"]) == (True, f"{repo_k}@{new_k}", 6)
    assert kz["pinned"] == f"{repo_k}@{old_k}"
    hv = rows[f"{repo_h}:1.0.0"]
    assert (hv["moved"], hv["newer"], hv["line"]) == (False, ["1.1.0"], 3)
    # Without the flags the fields are not images: nothing to report.
    code, out, err = run_cli(["outdated", "-f", str(setup.config), "--output", "json"], capfd)
    assert (code, out) == (0, "[]\n"), err
