"""``pull --tar FILE`` and ``pull --oci-layout DIR``: a bundle or an image straight from files,
without a registry. Sources: the tar imgpkg v0.42.3 made (``copy/c01``), tars and layouts
lockresolve made from the real registry (a bundle with a nested bundle, a plain image), and
an OCI layout skopeo made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.robustness.helpers import leftovers, run_cli, seed_tags, tree
from tests.support.conformance import get_case, substitute
from tests.support.registry import Registry, skopeo_copy_to_oci

C01 = get_case("copy", "c01")


def _ok(args: list[str], capfd: pytest.CaptureFixture[str]) -> str:
    res = run_cli(args, capfd)
    assert res.code == 0, res.err
    return res.out


def test_pull_from_the_tar_imgpkg_made(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    out = _ok(
        ["pull", "--tar", str(C01.path / "imgpkg-export.tar"), "-o", str(tmp_path / "o")], capfd
    )
    files = json.loads((C01.path / "bundle-tree.json").read_text())
    got = tree(tmp_path / "o")
    assert {k: v for k, v in got.items() if v is not None} == {
        path: substitute(text, "127.0.0.1:5000").encode() for path, text in files.items()
    }
    assert "Pulling bundle '127.0.0.1:5000/conf/c01/bundle@sha256:" in out
    assert out.endswith("Succeeded\n")


def _push_bundle(registry: Registry, root: Path, ref: str, images: list[str], name: str) -> str:
    (root / ".imgpkg").mkdir(parents=True)
    listed = "".join(f"- image: {i}\n" for i in images)
    (root / ".imgpkg" / "images.yml").write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\n"
        + (f"images:\n{listed}" if images else "images: []\n")
        + "kind: ImagesLock\n"
    )
    (root / f"{name}.yml").write_text(f"{name}: true\n")
    (root / "sub").mkdir()
    (root / "sub" / "deep.txt").write_text(f"{name} deep\n")
    from lockresolve.cli import main

    try:
        main(["push", "-b", ref, "-f", str(root)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    import httpx

    repo, _, tag = ref.removeprefix(registry.host + "/").rpartition(":")
    head = httpx.head(
        f"{registry.url}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    return f"{registry.host}/{repo}@{head.headers['Docker-Content-Digest']}"


@pytest.fixture(scope="module")
def nested_bundle(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    base = tmp_path_factory.mktemp("pullfiles")
    img = seed_tags(registry, "pullfiles/img", ["1"])["1"]
    inner = _push_bundle(
        registry, base / "inner", f"{registry.host}/pullfiles/inner:1", [], "inner"
    )
    outer = f"{registry.host}/pullfiles/outer:1"
    _push_bundle(
        registry, base / "outer", outer, [inner, f"{registry.host}/pullfiles/img@{img}"], "outer"
    )
    return outer


@pytest.mark.parametrize("form", ["tar", "oci-layout"])
def test_a_bundle_from_lockresolves_tar_and_layout_equals_a_registry_pull(
    form: str, nested_bundle: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / ("b.tar" if form == "tar" else "layout")
    _ok(["copy", "-b", nested_bundle, f"--to-{form}", str(source)], capfd)
    out = _ok(["pull", f"--{form}", str(source), "-o", str(tmp_path / "files"), "-r"], capfd)
    _ok(["pull", "-b", nested_bundle, "-o", str(tmp_path / "reg"), "-r"], capfd)

    from_files, from_registry = tree(tmp_path / "files"), tree(tmp_path / "reg")
    assert set(from_files) == set(from_registry)
    nested = [k for k in from_files if k.startswith(".imgpkg/bundles/") and k.endswith("inner.yml")]
    assert len(nested) == 1 and from_files[nested[0]] == b"inner: true\n"
    for path, data in from_files.items():
        if not path.endswith("images.yml"):  # a registry pull relocates images.yml
            assert data == from_registry[path], path
    assert "Pulling nested bundle" in out
    assert leftovers(tmp_path) == []


def test_include_path_applies_to_a_tar(
    nested_bundle: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    tar = tmp_path / "b.tar"
    _ok(["copy", "-b", nested_bundle, "--to-tar", str(tar)], capfd)
    _ok(["pull", "--tar", str(tar), "-o", str(tmp_path / "o"), "--include-path", "sub"], capfd)
    assert set(tree(tmp_path / "o")) == {".imgpkg", ".imgpkg/images.yml", "sub", "sub/deep.txt"}


def test_a_plain_image_from_a_skopeo_layout_and_a_tar(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "img"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "app.conf").write_text("port: 8080\n")
    ref = f"{registry.host}/pullfiles/plain:1"
    _ok(["push", "-i", ref, "-f", str(root)], capfd)
    layout = skopeo_copy_to_oci("pullfiles/plain:1", tmp_path / "layout", registry, tag="1")
    _ok(["pull", "--oci-layout", str(layout), "-o", str(tmp_path / "a")], capfd)
    assert tree(tmp_path / "a") == {"etc": None, "etc/app.conf": b"port: 8080\n"}
    tar = tmp_path / "i.tar"
    _ok(["copy", "-i", ref, "--to-tar", str(tar)], capfd)
    out = _ok(["pull", "--tar", str(tar), "-o", str(tmp_path / "b")], capfd)
    assert tree(tmp_path / "b") == tree(tmp_path / "a")
    assert "Pulling image '" in out


def test_refusals_are_one_line(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    res = run_cli(["pull", "--tar", str(junk), "-o", str(tmp_path / "o")], capfd)
    assert res.code == 1 and len(res.err_lines) == 1 and str(junk) in res.err, res.err
    res = run_cli(
        ["pull", "--tar", str(junk), "-b", "x.example/y:1", "-o", str(tmp_path / "o")], capfd
    )
    assert res.code == 2 and "Expected only one of" in res.err, res.err
    assert not (tmp_path / "o").exists()
