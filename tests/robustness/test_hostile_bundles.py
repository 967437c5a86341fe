"""Hostile bundles end to end: bundle images whose layer was built by hand to escape ``-o``
are pushed to the real registry and pulled with the CLI. Each is refused with one line
naming the entry; nothing is written outside ``-o``, and ``-o`` keeps its old content."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.robustness.helpers import (
    layer_tar,
    leftovers,
    push_layer_image,
    run_cli,
    snapshot,
    tally,
)
from tests.support.registry import Registry

Member = tuple[tarfile.TarInfo, bytes | None]

IMAGES_YML = b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n"


def _file(name: str, data: bytes = b"evil\n") -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def _entry(name: str, kind: bytes, linkname: str = "", size: int = 0) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size
    return info, None


def _dir(name: str) -> Member:
    return _entry(name, tarfile.DIRTYPE)


def _bundle_prefix() -> list[Member]:
    return [_dir(".imgpkg"), _file(".imgpkg/images.yml", IMAGES_YML), _file("ok.txt", b"ok\n")]


def hostile_layers(outside: Path) -> dict[str, tuple[list[Member], str]]:
    """name -> (the hostile entries, what the one-line message must say)."""
    return {
        "dotdot": ([_file("../escape.txt")], "'../escape.txt': path contains '..'"),
        "dotdot-nested": (
            [_dir("a"), _file("a/../../escape.txt")],
            "'a/../../escape.txt': path contains '..'",
        ),
        "dotdot-backslash": ([_file("..\\escape.txt")], "path contains '..'"),
        "absolute": (
            [_file(str(outside / "abs.txt"))],
            f"'{outside / 'abs.txt'}': absolute path",
        ),
        "symlink-out": (
            [_entry("up", tarfile.SYMTYPE, str(outside))],
            "'up' is a symbolic link",
        ),
        "file-through-symlink": (
            [_entry("link", tarfile.SYMTYPE, str(outside)), _file("link/evil.txt")],
            "'link' is a symbolic link",
        ),
        "hardlink-out": (
            [_entry("hl", tarfile.LNKTYPE, str(outside / "victim.txt"))],
            "'hl' is a hard link",
        ),
        "hardlink-relative": (
            [_entry("hl", tarfile.LNKTYPE, "../outside/victim.txt")],
            "'hl' is a hard link",
        ),
        "char-device": ([_entry("null", tarfile.CHRTYPE)], "'null' is a character device"),
        "block-device": ([_entry("sda", tarfile.BLKTYPE)], "'sda' is a block device"),
        "fifo": ([_entry("pipe", tarfile.FIFOTYPE)], "'pipe' is a fifo"),
        "duplicate-name": (
            [_file("dup.txt", b"one\n"), _file("dup.txt", b"two\n")],
            "'dup.txt' appears more than once",
        ),
        "duplicate-of-bundle-file": (
            [_file(".imgpkg/images.yml", b"images: [evil]\n")],
            "'.imgpkg/images.yml' appears more than once",
        ),
        "file-through-file": (
            [_file("f"), _file("f/g")],
            "'f/g' passes through 'f', which is not a directory",
        ),
        "huge-declared-size": (
            [_entry("huge.bin", tarfile.REGTYPE, size=9 << 30)],
            "'huge.bin' declares 9663676416 bytes, over the limit",
        ),
    }


CASES = sorted(hostile_layers(Path("/placeholder")))


@pytest.mark.parametrize("case", CASES)
def test_hostile_bundle_is_refused_and_nothing_escapes(
    case: str, registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the old output\n")
    members, message = hostile_layers(outside)[case]
    tar = _build(members)
    ref = f"{registry.host}/robust/hostile/{case}:1"
    push_layer_image(registry, f"robust/hostile/{case}", "1", tar, bundle=True)
    before = snapshot(tmp_path)

    res = run_cli(["pull", "-b", ref, "-o", str(out), "--force"], capfd)

    assert res.code == 1, res.err
    assert len(res.err_lines) == 1 and "Traceback" not in res.err, res.err
    assert res.err_lines[0].startswith("lockresolve: error: "), res.err
    assert message in res.err, res.err
    assert snapshot(tmp_path) == before
    assert leftovers(tmp_path) == []
    tally("hostile bundle layers refused (pull)")


def _build(members: list[Member]) -> bytes:
    return layer_tar([*_bundle_prefix(), *members])


def test_hostile_image_pulled_with_i_is_refused_too(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    tar = layer_tar([_file("ok.txt"), _file("../../escape.txt")])
    push_layer_image(registry, "robust/hostile/plain", "1", tar)
    before = snapshot(tmp_path)
    res = run_cli(
        ["pull", "-i", f"{registry.host}/robust/hostile/plain:1", "-o", str(tmp_path / "o")], capfd
    )
    assert res.code == 1 and "'../../escape.txt': path contains '..'" in res.err
    assert snapshot(tmp_path) == before
    tally("hostile bundle layers refused (pull)")


def test_a_well_formed_layer_built_the_same_way_is_pulled(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The control: the same hand-built bundle without the hostile entry pulls fine."""
    push_layer_image(
        registry, "robust/hostile/control", "1", _build([_file("sub/x.txt")]), bundle=True
    )
    res = run_cli(
        ["pull", "-b", f"{registry.host}/robust/hostile/control:1", "-o", str(tmp_path / "o")],
        capfd,
    )
    assert res.code == 0, res.err
    assert (tmp_path / "o" / "sub" / "x.txt").read_bytes() == b"evil\n"
    assert (tmp_path / "o" / "ok.txt").read_bytes() == b"ok\n"
