"""``--kustomize`` and ``--helm-values`` end to end through the CLI, against the real
registry: kustomize ``images:`` of a ``Kustomization`` and a ``Component`` (the corpus's
metrics-server, and a hand-written one with comments, quotes, a flow entry and CRLF),
Helm-style values maps (the corpus's pebble and samplewebhook charts, and a hand-written
one); the lock holds the joined references as kbld would write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resolve.test_check_update import push_tag
from tests.support.cli import run_cli
from tests.support.conformance import corpus_dir
from tests.support.registry import Registry

CORPUS = corpus_dir()


def test_kustomize_component_from_the_corpus(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    d = push_tag(registry, "metrics-server/metrics-server", "v0.9.0", "ms-0.9.0")
    original = (
        CORPUS / "metrics-server-kustomize/components/release/kustomization.yaml"
    ).read_text()
    text = original.replace("registry.k8s.io/", f"{h}/")
    path = tmp_path / "kustomization.yaml"
    path.write_text(text)
    lock = tmp_path / "images.yml"
    code, out, err = run_cli(
        ["-f", str(path), "--kustomize", "--imgpkg-lock-output", str(lock)], capfd
    )
    assert code == 0, err
    assert out == "---\n" + text + f"  digest: {d}\n"
    assert lock.read_text() == (
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n- annotations:\n"
        f"    kbld.carvel.dev/id: {h}/metrics-server/metrics-server:v0.9.0\n"
        "    kbld.carvel.dev/origins: |\n      - resolved:\n          tag: v0.9.0\n"
        f"          url: {h}/metrics-server/metrics-server:v0.9.0\n"
        f"  image: {h}/metrics-server/metrics-server@{d}\nkind: ImagesLock\n"
    )
    # without the flag: kbld's output (nothing to resolve in a Kustomization)
    code, out, err = run_cli(["-f", str(path)], capfd)
    assert code == 0, err
    assert out == "---\n" + text


def test_kustomization_layout_is_kept(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    one = push_tag(registry, "kz/app", "1.0", "kz-app-1.0")
    two = push_tag(registry, "kz/web", "2.0", "kz-web-2.0")
    pinned = "sha256:" + "a" * 64
    text = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\r\n"
        "kind: Kustomization\r\n"
        "images:\r\n"
        "# the app\r\n"
        f'- name: app\r\n  newName: {h}/kz/app\r\n  newTag: "1.0"  # quoted, commented\r\n'
        f"- {{name: web, newName: '{h}/kz/web', newTag: '2.0'}}\r\n"
        f"- name: {h}/kz/old\r\n  newTag: v1\r\n  digest: {pinned}\r\n"
        "- name: tagless\r\n  newName: elsewhere/x\r\n"
    )
    path = tmp_path / "kustomization.yaml"
    path.write_bytes(text.encode())
    mark = registry.mark()
    code, out, err = run_cli(["-f", str(path), "--kustomize"], capfd)
    assert code == 0, err
    assert out == "---\r\n" + text.replace(
        "# quoted, commented\r\n", f"# quoted, commented\r\n  digest: {one}\r\n"
    ).replace("newTag: '2.0'}", f"newTag: '2.0', digest: {two}}}")
    # one HEAD each; the entry with a digest and the one without a tag cost nothing
    assert sorted(r.path for r in registry.request_log(since=mark)) == [
        "/v2/kz/app/manifests/1.0",
        "/v2/kz/web/manifests/2.0",
    ]


def test_helm_values_from_the_corpus(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    digests = {
        n: push_tag(registry, f"local/{n}", "local", f"helm-{n}")
        for n in ("pebble", "samplewebhook")
    }
    lock = tmp_path / "images.yml"
    args = ["--helm-values", "--imgpkg-lock-output", str(lock)]
    for name in digests:
        src = (CORPUS / f"cert-manager-helm-values/{name}/chart/values.yaml").read_text()
        text = src.replace(f"repository: local/{name}", f"repository: {h}/local/{name}")
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        args += ["-f", str(path)]
    code, out, err = run_cli(args, capfd)
    assert code == 0, err
    for name, d in digests.items():
        assert (
            f"  repository: {h}/local/{name}\n  tag: local\n  pullPolicy: Never\n  digest: {d}\n"
            in out
        )
        assert f"kbld.carvel.dev/id: {h}/local/{name}:local\n" in lock.read_text()
    assert "metadata" not in out  # no kbld annotation for split references


def test_helm_values_hand_written(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    h = registry.host
    d = push_tag(registry, "helm/app", "1.10", "helm-app-1.10")
    text = (
        "global:\n  registry: x\n"
        "app:\n  image:\n"
        f'    registry: {h}  # where\n    repository: helm/app\n    tag: "1.10"\n'
        "    digest: ''\n"
        f"sidecar:\n  image: {{repository: '{h}/helm/app', tag: '1.10'}}\n"
    )
    path = tmp_path / "values.yaml"
    path.write_text(text)
    code, out, err = run_cli(["-f", str(path), "--helm-values"], capfd)
    assert code == 0, err
    assert out == "---\n" + text.replace("digest: ''", f"digest: {d}").replace(
        "tag: '1.10'}", f"tag: '1.10', digest: {d}}}"
    )


def test_helm_values_that_do_not_join_are_reported(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(
        "image:\n  repository: bitnami/nginx\n  tag: 1.10\n"
        "other:\n  image:\n    repository: Bad/Name\n    tag: v1\n"
        "empty:\n  repository: x\n  tag: ''\n"
    )
    code, out, err = run_cli(["-f", str(path), "--helm-values", "--offline"], capfd)
    assert code == 1
    assert out == ""
    lines = sorted(err.splitlines()[1:])
    assert lines == [
        f"- Resolving image 'empty' ({path}:9): tag is not a non-empty string "
        '(quote it: tag: "1.10")',
        f"- Resolving image 'image' ({path}:2): tag is not a non-empty string "
        '(quote it: tag: "1.10")',
        f"- Resolving image 'other.image' ({path}:6): 'Bad/Name:v1' is not an image reference: "
        + lines[2].split("is not an image reference: ", 1)[1],
    ]
