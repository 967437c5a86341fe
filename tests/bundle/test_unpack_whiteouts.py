"""The merge of a later layer over earlier ones, at the seam: every path it removes or
replaces stays under the directory being unpacked, even when that directory already holds
a symbolic link (extraction never writes one; the merge must not trust that)."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from lockresolve.bundle.unpack import DownloadedLayer, unpack_layers
from lockresolve.errors import UnsafeArchiveError


def _layer(tmp: Path, name: str, files: dict[str, bytes]) -> DownloadedLayer:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    blob = tmp / name
    blob.write_bytes(gzip.compress(raw, mtime=0))
    return DownloadedLayer(
        blob,
        "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest(),
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "sha256:" + hashlib.sha256(raw).hexdigest(),
    )


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "victim.txt").write_text("precious\n")
    return path


@pytest.mark.parametrize(
    "later",
    [
        {"link/.wh.victim.txt": b""},
        {"link/.wh..wh..opq": b""},
        {"link/planted.txt": b"x"},
        {"link/deeper/planted.txt": b"x"},
    ],
    ids=["whiteout", "opaque", "file", "file-below"],
)
def test_merge_through_a_symlinked_directory_is_refused(
    later: dict[str, bytes], tmp_path: Path, outside: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    first = _layer(tmp_path, "l1", {"a.txt": b"a"})
    second = _layer(tmp_path, "l2", later)
    # The first layer is extracted into dest; plant the link the way a bug elsewhere might.
    (dest / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(UnsafeArchiveError, match="symbolic link out of the layer's root"):
        unpack_layers([first, second], dest)

    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    assert (outside / "victim.txt").read_text() == "precious\n"


@pytest.mark.parametrize("name", [".wh...", "sub/.wh...", ".wh..", ".wh."])
def test_nothing_is_removed_before_a_hostile_whiteout_is_refused(name: str, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    first = _layer(tmp_path, "l1", {"a.txt": b"a", "sub/b.txt": b"b"})
    second = _layer(tmp_path, "l2", {".wh.a.txt": b"", "sub/.wh.b.txt": b"", name: b""})
    (tmp_path / "beside.txt").write_text("beside\n")

    with pytest.raises(UnsafeArchiveError, match="whiteout of"):
        unpack_layers([first, second], dest)

    assert (dest / "a.txt").read_bytes() == b"a"
    assert (dest / "sub" / "b.txt").read_bytes() == b"b"
    assert (tmp_path / "beside.txt").read_text() == "beside\n"
