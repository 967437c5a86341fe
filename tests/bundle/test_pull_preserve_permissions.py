"""``pull --preserve-permissions``: every file and folder gets exactly the mode its tar entry
gives (the permission bits; setuid, setgid and sticky dropped), whatever the umask; without
it, imgpkg's rule holds (owner bits copied to group and other unless the entry has group or
other bits; folders 0777; both less the umask). Layers built by hand with the modes
``imgpkg push --preserve-permissions`` writes, pushed to the real registry."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.robustness.helpers import layer_tar, push_layer_image, run_cli
from tests.support.registry import Registry

IMAGES_YML = b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n"


def _member(
    name: str, mode: int, data: bytes | None = None
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    if data is None:
        info.type = tarfile.DIRTYPE
    else:
        info.size = len(data)
    return info, data


MEMBERS = [
    _member(".imgpkg", 0o755),
    _member(".imgpkg/images.yml", 0o600, IMAGES_YML),
    _member("bin", 0o750),
    _member("bin/tool", 0o4755, b"#!/bin/sh\n"),  # setuid: dropped either way
    _member("secret", 0o700),
    _member("secret/key.pem", 0o400, b"key\n"),
    _member("shared.txt", 0o664, b"shared\n"),
    _member("owner-only.txt", 0o600, b"mine\n"),
]
#: with --preserve-permissions
EXACT = {
    ".imgpkg": 0o755,
    ".imgpkg/images.yml": 0o600,
    "bin": 0o750,
    "bin/tool": 0o755,
    "secret": 0o700,
    "secret/key.pem": 0o400,
    "shared.txt": 0o664,
    "owner-only.txt": 0o600,
}


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): stat.S_IMODE(p.lstat().st_mode) for p in root.rglob("*")
    }


@pytest.fixture(scope="module")
def bundle(registry: Registry) -> str:
    push_layer_image(registry, "perm/bundle", "1", layer_tar(MEMBERS), bundle=True)
    return f"{registry.host}/perm/bundle:1"


def test_preserve_permissions_gives_the_archive_modes(
    bundle: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], umask_022: None
) -> None:
    res = run_cli(
        ["pull", "-b", bundle, "-o", str(tmp_path / "o"), "--preserve-permissions"], capfd
    )
    assert res.code == 0, res.err
    got = _modes(tmp_path / "o")
    os.chmod(tmp_path / "o" / "secret", 0o700)  # let pytest clean up
    assert got == EXACT


def test_without_the_flag_imgpkgs_rule_holds(
    bundle: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], umask_022: None
) -> None:
    res = run_cli(["pull", "-b", bundle, "-o", str(tmp_path / "o")], capfd)
    assert res.code == 0, res.err
    got = _modes(tmp_path / "o")
    assert got == {
        ".imgpkg": 0o755,
        ".imgpkg/images.yml": 0o644,  # 0600: owner bits copied, less the umask
        "bin": 0o755,
        "bin/tool": 0o755,
        "secret": 0o755,
        "secret/key.pem": 0o444,
        "shared.txt": 0o644,  # has group/other bits: kept, less the umask
        "owner-only.txt": 0o644,
    }


def test_preserve_permissions_with_a_tar_source(
    bundle: str, tmp_path: Path, capfd: pytest.CaptureFixture[str], umask_022: None
) -> None:
    tar = tmp_path / "b.tar"
    assert run_cli(["copy", "-b", bundle, "--to-tar", str(tar)], capfd).code == 0
    res = run_cli(
        ["pull", "--tar", str(tar), "-o", str(tmp_path / "o"), "--preserve-permissions"], capfd
    )
    assert res.code == 0, res.err
    got = _modes(tmp_path / "o")
    os.chmod(tmp_path / "o" / "secret", 0o700)
    assert got == EXACT
