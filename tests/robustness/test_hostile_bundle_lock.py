"""What ``copy`` reads of a bundle layer (only ``.imgpkg/images.yml``), hostile: bundles
pushed to the real registry with an extended tar header far over the extractor's cap, and
with an ``images.yml`` over 16 MiB whose first 16 MiB alone parse as a lock without
images. Both are refused with one line naming the bundle (and the file); before, Python's
``tarfile`` read any extended header whole into memory, and the long ``images.yml`` was
cut at 16 MiB and copied as a bundle without its images."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.robustness.helpers import leftovers, push_layer_image, run_cli, tally
from tests.support.registry import Registry

LOCK_HEAD = b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n"
PAD_LINE = b"# " + b"x" * 1021 + b"\n"  # a 1 KiB comment line


def _member(
    name: str, data: bytes, pax: dict[str, str] | None = None
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    if pax:
        info.pax_headers = pax
    return info, data


def _layer(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _copy_to_tar(
    registry: Registry, repo: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> tuple[int, list[str], Path]:
    out = tmp_path / "bundle.tar"
    res = run_cli(["copy", "-b", f"{registry.host}/{repo}:1", "--to-tar", str(out)], capfd)
    return res.code, res.err_lines, out


def test_an_extended_header_over_the_cap_is_refused(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    lock = LOCK_HEAD + b"images: []\n"
    tar = _layer(
        [
            _member("README.md", b"hi\n", pax={"comment": "A" * (4 << 20)}),
            _member(".imgpkg/images.yml", lock),
        ]
    )
    push_layer_image(registry, "robust/lockread/pax", "1", tar, bundle=True)

    code, lines, out = _copy_to_tar(registry, "robust/lockread/pax", tmp_path, capfd)

    assert code == 1 and len(lines) == 1, lines
    assert "Reading ImagesLock file of" in lines[0] and "robust/lockread/pax" in lines[0]
    assert "extended header of" in lines[0] and "over the limit" in lines[0], lines[0]
    assert not out.exists() and leftovers(tmp_path) == []
    tally("bundle lock reads refused (copy)")


def test_an_images_yml_over_16_mib_is_an_error_naming_it(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    image = "index.docker.io/library/nginx@sha256:" + "1" * 64
    lock = LOCK_HEAD + PAD_LINE * (16 << 10) + b"images:\n- image: " + image.encode() + b"\n"
    assert len(lock) > 16 << 20
    push_layer_image(
        registry,
        "robust/lockread/big",
        "1",
        _layer([_member(".imgpkg/images.yml", lock)]),
        bundle=True,
    )

    code, lines, out = _copy_to_tar(registry, "robust/lockread/big", tmp_path, capfd)

    assert code == 1 and len(lines) == 1, lines
    assert ".imgpkg/images.yml is" in lines[0] and "over the limit of 16777216 bytes" in lines[0]
    assert "robust/lockread/big" in lines[0], lines[0]
    assert not out.exists() and leftovers(tmp_path) == []
    tally("bundle lock reads refused (copy)")


def test_images_yml_found_under_a_dot_slash_name_as_imgpkg_does(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The control: ``./.imgpkg/images.yml`` is found (Go's ``filepath.Dir`` cleans the
    name) and a bundle whose lock has no image copies."""
    tar = _layer([_member("./.imgpkg/images.yml", LOCK_HEAD + b"images: []\n")])
    push_layer_image(registry, "robust/lockread/dot", "1", tar, bundle=True)

    code, lines, out = _copy_to_tar(registry, "robust/lockread/dot", tmp_path, capfd)

    assert code == 0, lines
    assert out.is_file()
