"""Hostile whiteouts end to end: a multi-layer image whose later layer holds a whiteout aimed
at ``..``, ``.`` or nothing is pushed to the real registry and pulled with ``pull -i`` from
inside the user's working folder. The extraction of each layer is safe on its own; these
tests are about what runs after it, the merge of a later layer over the earlier ones, which
used to ``rmtree`` the folder holding ``-o``. Each is refused with one line naming the
entry, and the user's files beside ``-o`` survive byte for byte."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.robustness.helpers import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    digest_of,
    layer_tar,
    leftovers,
    run_cli,
    snapshot,
    tally,
)
from tests.support.conformance import push_blob, push_manifest
from tests.support.registry import Registry

Member = tuple[tarfile.TarInfo, bytes | None]


def _file(name: str, data: bytes = b"") -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def _dir(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def push_layers_image(
    registry: Registry,
    repo: str,
    tag: str,
    tars: list[bytes],
    labels: dict[str, str] | None = None,
) -> str:
    """Push an image with one gzipped layer per tar, diff_ids right, in order, and
    ``labels`` in its config (``dev.carvel.imgpkg.bundle`` makes it a bundle)."""
    layers = [gzip.compress(tar, mtime=0) for tar in tars]
    config_doc: dict[str, Any] = {"architecture": "amd64", "os": "linux"}
    if labels is not None:
        config_doc["config"] = {"Labels": labels}
    config_doc["rootfs"] = {"type": "layers", "diff_ids": [digest_of(t) for t in tars]}
    config = json.dumps(config_doc).encode()
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": digest_of(config)},
        "layers": [
            {"mediaType": DOCKER_LAYER, "size": len(b), "digest": digest_of(b)} for b in layers
        ],
    }
    with registry.client() as client:
        push_blob(client, repo, config)
        for blob in layers:
            push_blob(client, repo, blob)
        body = json.dumps(manifest, separators=(",", ":")).encode()
        return push_manifest(client, repo, tag, DOCKER_MANIFEST, body)


FIRST_LAYER = [_file("app.txt", b"app\n"), _dir("sub"), _file("sub/s.txt", b"s\n")]

#: name -> (the later layer's entries, what the one line must say)
HOSTILE: dict[str, tuple[list[Member], str]] = {
    "dotdot-at-root": ([_file(".wh...")], "'.wh...': a whiteout of '..' is not allowed"),
    "dotdot-in-sub": (
        [_dir("sub"), _file("sub/.wh...")],
        "'sub/.wh...': a whiteout of '..' is not allowed",
    ),
    "dot-at-root": ([_file(".wh..")], "'.wh..': a whiteout of '.' is not allowed"),
    "dot-in-sub": ([_file("sub/.wh..")], "'sub/.wh..': a whiteout of '.' is not allowed"),
    "empty-name": ([_file(".wh.")], "'.wh.': a whiteout of '' is not allowed"),
    "dotdot-in-new-dir": (
        [_file("deep/er/.wh...")],
        "'deep/er/.wh...': a whiteout of '..' is not allowed",
    ),
    "opaque-as-directory": (
        [_dir("sub/.wh..wh..opq"), _file("sub/.wh..wh..opq/x", b"x")],
        "'sub/.wh..wh..opq': a whiteout must be a file, not a directory",
    ),
    "whiteout-as-directory": (
        [_dir(".wh.sub")],
        "'.wh.sub': a whiteout must be a file, not a directory",
    ),
    "aufs-metadata": ([_file(".wh..wh.plnk")], "'.wh..wh.plnk': unsupported whiteout"),
    # a legitimate whiteout next to the hostile one: nothing may be removed before refusing
    "good-then-dotdot": (
        [_file(".wh.app.txt"), _file("sub/.wh...")],
        "'sub/.wh...': a whiteout of '..' is not allowed",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_whiteout_is_refused_and_the_working_folder_survives(
    case: str,
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    members, message = HOSTILE[case]
    repo = f"robust/whiteout/{case}"
    push_layers_image(registry, repo, "1", [layer_tar(FIRST_LAYER), layer_tar(members)])
    victim = tmp_path / "victim"
    (victim / "keepdir").mkdir(parents=True)
    (victim / "important.txt").write_text("the user's work\n")
    (victim / "keepdir" / "notes.md").write_text("keep me\n")
    monkeypatch.chdir(victim)
    before = snapshot(tmp_path)

    res = run_cli(["pull", "-i", f"{registry.host}/{repo}:1", "-o", "out"], capfd)

    assert res.code == 1, res.err
    assert len(res.err_lines) == 1 and "Traceback" not in res.err, res.err
    assert res.err_lines[0].startswith("lockresolve: error: "), res.err
    assert "internal error" not in res.err, res.err
    assert message in res.err, res.err
    assert (victim / "important.txt").read_text() == "the user's work\n"
    assert (victim / "keepdir" / "notes.md").read_text() == "keep me\n"
    assert snapshot(tmp_path) == before
    assert leftovers(tmp_path) == []
    tally("hostile whiteouts refused (pull -i)")


def test_hostile_whiteout_in_a_bundle_pull_keeps_the_old_output(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``pull -b --force`` over an existing ``-o``: the merge is refused, ``-o`` is unchanged."""
    images = b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n"
    first = layer_tar([_dir(".imgpkg"), _file(".imgpkg/images.yml", images), *FIRST_LAYER])
    repo = "robust/whiteout/bundle"
    push_layers_image(
        registry,
        repo,
        "1",
        [first, layer_tar([_file(".wh...")])],
        labels={"dev.carvel.imgpkg.bundle": "true"},
    )
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("old output\n")
    (tmp_path / "work" / "beside.txt").write_text("beside\n")
    before = snapshot(tmp_path)

    res = run_cli(["pull", "-b", f"{registry.host}/{repo}:1", "-o", str(out), "--force"], capfd)

    assert res.code == 1 and len(res.err_lines) == 1, res.err
    assert "'.wh...': a whiteout of '..' is not allowed" in res.err, res.err
    assert snapshot(tmp_path) == before
    assert leftovers(tmp_path) == []
    tally("hostile whiteouts refused (pull -i)")


def test_legitimate_whiteouts_still_apply_through_the_cli(
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control: ordinary and opaque whiteouts, a whiteout and a file of the same name
    in one layer (the file stays: a whiteout hides only the layers below)."""
    second = layer_tar(
        [
            _file(".wh.app.txt"),
            _file("sub/.wh..wh..opq"),
            _file("sub/new.txt", b"new\n"),
            _file(".wh.back.txt"),
            _file("back.txt", b"again\n"),
        ]
    )
    first = layer_tar([*FIRST_LAYER, _file("back.txt", b"first\n")])
    push_layers_image(registry, "robust/whiteout/control", "1", [first, second])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "important.txt").write_text("x\n")

    res = run_cli(["pull", "-i", f"{registry.host}/robust/whiteout/control:1", "-o", "out"], capfd)

    assert res.code == 0, res.err
    found = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")}
    assert found == {"sub", "sub/new.txt", "back.txt"}
    assert (tmp_path / "out" / "back.txt").read_text() == "again\n"
    assert (tmp_path / "important.txt").read_text() == "x\n"
