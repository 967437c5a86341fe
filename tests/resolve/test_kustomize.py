"""``--kustomize``: ``images:`` entries of Kustomization and Component files, pinned by ``digest``.

End to end through the CLI against the real registry: the corpus's
metrics-server overlay and component, and hand-written files whose comments,
quoting and CRLF line endings must come out as they went in, with only the
``digest`` fields added or filled. The lock must hold what resolve writes for
the joined reference written as a plain ``image:``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.resolve.test_check_update import deployment, push_tag
from tests.support import splitimages
from tests.support.cli import run_cli
from tests.support.conformance import corpus_dir
from tests.support.registry import Registry
from tests.support.splitimages import lock_of, push_tags, write_lines

KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def prefix_for(request: pytest.FixtureRequest) -> str:
    return splitimages.prefix_for("kz", request)


def test_corpus_component_and_overlay(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    src = corpus_dir() / "metrics-server-kustomize"
    work = tmp_path / "ms"
    shutil.copytree(src, work)
    # The component renames gcr.io/...:master to registry.k8s.io/...:v0.9.0; point that
    # name at the test registry with a kbld override (as a mirror would).
    joined = "registry.k8s.io/metrics-server/metrics-server:v0.9.0"
    mirror = f"{registry.host}/kz/corpus/metrics-server"
    digest = push_tag(registry, "kz/corpus/metrics-server", "v0.9.0", "ms-v0.9.0")
    config = tmp_path / "kbld.yml"
    config.write_text(
        "apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\noverrides:\n"
        f"- image: {joined}\n  newImage: {mirror}:v0.9.0\n"
    )
    component = work / "components/release/kustomization.yaml"
    files = [
        work / "base/kustomization.yaml",
        component,
        work / "overlays/release/kustomization.yaml",
        work / "components/autoscale/kustomization.yaml",
    ]
    # (the base file has no final line break: the output adds one, as for any input)
    before = [f.read_text().removesuffix("\n") + "\n" for f in files]
    out, lock = lock_of(capfd, tmp_path, *files, config, extra=("--kustomize",))
    expected = [*before]
    expected[1] = before[1] + f"  digest: {digest}\n"
    assert out == "".join("---\n" + text for text in expected)
    # The lock: what resolve writes for the joined reference as a plain image value.
    plain = tmp_path / "plain.yml"
    plain.write_text(deployment("ms", joined))
    _, plain_lock = lock_of(capfd, tmp_path, plain, config)
    assert lock == plain_lock
    assert f"kbld.carvel.dev/id: {joined}\n" in lock
    assert f"image: {mirror}@{digest}\n" in lock

    # Without --kustomize: nothing found, the text unchanged, as kbld would leave it.
    out, lock = lock_of(capfd, tmp_path, *files, config)
    assert out == "".join("---\n" + text for text in before)
    assert lock == "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n"


HAND = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
# images pinned by lockresolve
images:
- name: app   # the app
  newName: "{reg}/{prefix}/app"
  newTag: '1.0'  # keep quoting
- name: worker
  newName: {reg}/{prefix}/worker
  newTag: "2.0"
  digest: ""        # filled by lockresolve
- name: {reg}/{prefix}/sidecar
  newTag: v3
- name: untouched
  newName: somewhere/else   # no newTag: the resource's tag stays, left alone
resources:
- deployment.yaml
"""


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("kind", ["Kustomization", "Component"])
def test_hand_written_keeps_comments_quotes_and_line_endings(
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    newline: str,
    kind: str,
) -> None:
    prefix = prefix_for(request)
    d = push_tags(registry, prefix, [("app", "1.0"), ("worker", "2.0"), ("sidecar", "v3")])
    text = HAND.format(reg=registry.host, prefix=prefix).replace(
        "kind: Kustomization", f"kind: {kind}"
    )
    path = write_lines(tmp_path / "kustomization.yaml", text, newline)
    out, lock = lock_of(capfd, tmp_path, path, extra=("--kustomize",))
    want = (
        text.replace(
            "  newTag: '1.0'  # keep quoting\n",
            f"  newTag: '1.0'  # keep quoting\n  digest: {d['app']}\n",
        )
        .replace('  digest: ""        #', f'  digest: "{d["worker"]}"        #')
        .replace("  newTag: v3\n", f"  newTag: v3\n  digest: {d['sidecar']}\n")
    )
    assert out.encode() == ("---\n" + want).replace("\n", newline).encode()
    for name, tag in [("app", "1.0"), ("worker", "2.0"), ("sidecar", "v3")]:
        assert f"kbld.carvel.dev/id: {registry.host}/{prefix}/{name}:{tag}" in lock
    assert "somewhere/else" not in lock

    # Run again on the pinned output: the digests are written, so no request and no change.
    path.write_bytes(out.removeprefix("---" + newline).encode())
    mark = registry.mark()
    again, again_lock = lock_of(capfd, tmp_path, path, extra=("--kustomize",))
    assert again == out
    assert again_lock == lock  # the digest fields pin as the lock did: same entries
    assert registry.request_log(since=mark) == []


def test_entry_that_cannot_join_is_an_error_with_file_and_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kustomization.yaml"
    path.write_text(KUSTOMIZATION + "images:\n- name: app\n  newTag: 1.10\n")
    code, out, err = run_cli(["-f", str(path), "--kustomize"], capfd)
    assert (code, out) == (1, "")
    assert err == (
        f"lockresolve: error: {path}:5: the image's 'newTag' is not a string "
        "(quote it: a number would be read as 1.1)\n"
    )
    path.write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Component\nimages:\n"
        "- name: app\n  newName: 'Bad Name'\n  newTag: '1'\n"
    )
    code, out, err = run_cli(["-f", str(path), "--kustomize"], capfd)
    assert (code, out) == (1, "")
    assert err.startswith(f"lockresolve: error: {path}:6: the image's fields do not join")
    assert "Traceback" not in err


def test_missing_image_fails_with_file_and_line_and_check_reports_the_lock(
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    prefix = prefix_for(request)
    push_tag(registry, f"{prefix}/app", "1.0", f"{prefix}-app")
    path = tmp_path / "kustomization.yaml"
    text = (
        KUSTOMIZATION + "images:\n"
        f"- name: app\n  newName: {registry.host}/{prefix}/app\n  newTag: '1.0'\n"
        f"- name: gone\n  newName: {registry.host}/{prefix}/gone\n  newTag: '9'\n"
    )
    path.write_text(text)
    lock = tmp_path / "images.yml"
    argv = ["-f", str(path), "--kustomize", "--imgpkg-lock-output", str(lock)]
    code, out, err = run_cli(argv, capfd)
    assert (code, out) == (1, "")
    assert f"Resolving image '{registry.host}/{prefix}/gone:9' ({path}:9):" in err
    assert not lock.exists()
    assert path.read_text() == text

    # Drop the missing one: --check names the lock entry to add, writes nothing.
    path.write_text(text.split("- name: gone")[0])
    code, out, err = run_cli([*argv, "--check"], capfd)
    assert (code, out) == (1, "")
    assert f"  + {registry.host}/{prefix}/app:1.0 -> {registry.host}/{prefix}/app@sha256:" in err
    assert not lock.exists()
    code, _, err = run_cli([*argv, "-q"], capfd)
    assert code == 0, err
    code, _, err = run_cli([*argv, "--check"], capfd)
    assert code == 0, err


def test_pinned_file_lifecycle_with_lock_update_and_edited_tag(
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    """The file is rewritten with the output each time, as a user pinning in place does."""
    prefix = prefix_for(request)
    repo = f"{registry.host}/{prefix}/app"
    v1 = push_tag(registry, f"{prefix}/app", "1.0", f"{prefix}-1")
    path = tmp_path / "kustomization.yaml"
    lock = tmp_path / "images.yml"
    path.write_text(KUSTOMIZATION + f"images:\n- name: app\n  newName: {repo}\n  newTag: '1.0'\n")
    argv = ["-f", str(path), "--kustomize", "--imgpkg-lock-output", str(lock)]

    def run(*extra: str) -> str:
        code, out, err = run_cli([*argv, *extra], capfd)
        assert code == 0, err
        text = out.removeprefix("---\n")
        path.write_text(text)
        return text

    assert f"  digest: {v1}\n" in run()
    first_lock = lock.read_text()
    # Re-run on the pinned file with its lock: no request, same file, same lock.
    v2 = push_tag(registry, f"{prefix}/app", "1.0", f"{prefix}-2")  # the tag moves
    mark = registry.mark()
    assert f"  digest: {v1}\n" in run()
    assert registry.request_log(since=mark) == []
    assert lock.read_text() == first_lock
    code, _, err = run_cli([*argv, "--check"], capfd)
    assert code == 0, err
    # --update re-resolves and rewrites the digest field in place.
    text = run("--update")
    assert f"  digest: {v2}\n" in text and v1 not in text
    assert f"image: {repo}@{v2}\n" in lock.read_text()
    # A tag edited by hand next to the old digest: the lock does not know it, so it
    # is resolved again and the stale digest replaced.
    v3 = push_tag(registry, f"{prefix}/app", "1.1", f"{prefix}-3")
    path.write_text(path.read_text().replace("newTag: '1.0'", "newTag: '1.1'"))
    text = run()
    assert f"  newTag: '1.1'\n  digest: {v3}\n" in text
    assert f"kbld.carvel.dev/id: {repo}:1.1\n" in lock.read_text()
    assert f"{repo}:1.0" not in lock.read_text()


def test_a_tag_given_by_an_alias_is_refused_with_its_own_line(
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    # 'newTag: *t' with the anchor on another key: the tag's node is the anchored one, so
    # 'digest:' was inserted after the anchor's line. Before: the broken edit's parser error
    # ('kustomization.yaml:4: expected <block end>, but found ...') for a valid file.
    prefix = prefix_for(request)
    push_tag(registry, f"{prefix}/app", "1", "alias-1")
    path = tmp_path / "kustomization.yaml"
    text = (
        KUSTOMIZATION + "x: &t '1'\n"
        f"images:\n- name: app\n  newName: {registry.host}/{prefix}/app\n  newTag: *t\n"
    )
    path.write_text(text)
    code, out, err = run_cli(["-f", str(path), "--kustomize"], capfd)
    assert (code, out) == (1, "")
    assert err.splitlines()[-1] == (
        f"lockresolve: error: {path}:7: cannot write 'digest:' beside a tag given by an alias"
    )
    assert path.read_text() == text
