"""``copy --to-tar`` writes each layer into a region planned up front (``os.pwrite``): a
source that hands out more bytes than the descriptor declares must not write past that
region into the next member's header or data. What a user relies on: the ``.partial``
file left by the failed run still holds the honest layers intact, so ``--resume`` reuses
them instead of downloading again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lockresolve.bundle.formats.imgtar import blob_name, read_tar_entries, write_imgpkg_tar
from lockresolve.bundle.imagedesc import CopyFailed, ImageDesc, LayerDesc
from lockresolve.bundle.progress import Progress
from lockresolve.registry.client import BodyFactory

pytestmark = pytest.mark.anyio

LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LyingSource:
    """Serves each blob's bytes, and ``extra`` more for the one digest in ``liar``."""

    def __init__(self, blobs: dict[str, bytes], liar: str, extra: bytes) -> None:
        self.blobs, self.liar, self.extra = blobs, liar, extra

    def origin(self, artifact_ref: str) -> tuple[str, str] | None:
        return None

    def body(self, artifact_ref: str, digest: str, progress: Progress | None = None) -> BodyFactory:
        data = self.blobs[digest] + (self.extra if digest == self.liar else b"")

        async def stream() -> AsyncIterator[bytes]:
            for i in range(0, len(data), 1000):
                yield data[i : i + 1000]

        return stream


def _image(blobs: list[bytes]) -> ImageDesc:
    config = json.dumps({"rootfs": {"diff_ids": []}}).encode()
    layers = tuple(LayerDesc(LAYER, _digest(b), _digest(b), len(b)) for b in blobs)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"digest": _digest(config), "size": len(config)},
            "layers": [{"digest": ly.digest, "size": ly.size} for ly in layers],
        }
    ).encode()
    return ImageDesc(
        refs=(f"example.test/r@{_digest(manifest)}",),
        layers=layers,
        config_digest=_digest(config),
        config_raw=config,
        manifest_media_type="application/vnd.docker.distribution.manifest.v2+json",
        manifest_digest=_digest(manifest),
        manifest_raw=manifest,
    )


@pytest.mark.parametrize("extra", [1, 700, 5000])
async def test_a_blob_longer_than_declared_never_writes_outside_its_member(
    extra: int, tmp_path: Path
) -> None:
    blobs = [bytes([n]) * (3000 + 100 * n) for n in range(4)]
    by_digest = {_digest(b): b for b in blobs}
    image = _image(blobs)
    ordered = sorted(by_digest, key=str.encode)  # the tar's member order
    liar = ordered[1]  # a member with neighbours on both sides
    out = tmp_path / "out.tar"

    with pytest.raises(CopyFailed):
        await write_imgpkg_tar(out, [image], LyingSource(by_digest, liar, b"\xee" * extra))

    partial = out.with_name("out.tar.partial")
    entries = read_tar_entries(partial)
    for digest in ordered:
        region = entries[blob_name(digest)]
        assert region.size == len(by_digest[digest])
        if digest == liar:
            continue
        with open(partial, "rb") as fh:
            fh.seek(region.offset)
            assert fh.read(region.size) == by_digest[digest], digest
    assert b"\xee" not in partial.read_bytes()

    result = await write_imgpkg_tar(out, [image], LyingSource(by_digest, "", b""), resume=True)
    assert result.reused == 3 and result.downloaded == 1
