"""The push layer as a pipeline: same bytes, steps overlapping, errors and early stops clean.

``build_layer`` runs tar, gzip and hash+write in three threads
(:class:`lockresolve.bundle.stages.Threaded`). These tests check what a user
relies on: the layer is the same as the one-pass result (digest, size,
diff_id), a file that changes size mid-push still fails with its one-line
error and leaves no layer file behind, the steps really run at the same time,
and stopping a stage early closes what it opened.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockresolve.bundle.formats.tar import iter_tar, plan_layer
from lockresolve.bundle.layer import build_layer
from lockresolve.bundle.stages import Threaded
from lockresolve.errors import BundleError
from lockresolve.goflate import go_gzip


def _tree(root: Path, files: int, size: int) -> Path:
    rng = random.Random(files)
    for i in range(files):
        path = root / f"d{i % 3}" / f"f{i}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            f"- image: r.example/a{n}@sha256:{rng.getrandbits(256):064x}\n" for n in range(size)
        ]
        path.write_text("".join(lines))
    return root


def test_pipelined_layer_equals_the_one_pass_gzip_of_the_tar(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree", 30, 2000)
    plan = plan_layer([root])
    tar = b"".join(iter_tar(plan))
    seen: list[int] = []
    layer = build_layer(plan, tmp_path, on_tar_bytes=seen.append)
    gz = go_gzip(tar)
    assert layer.path.read_bytes() == gz
    assert layer.digest == "sha256:" + hashlib.sha256(gz).hexdigest()
    assert layer.size == len(gz)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert layer.tar_size == len(tar) == sum(seen)


def test_a_file_growing_mid_push_fails_and_leaves_no_layer_file(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree", 4, 100)
    plan = plan_layer([root])
    (root / "d0" / "f0.yml").write_text("longer than planned " * 1000)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BundleError, match="changed size"):
        build_layer(plan, out)
    assert list(out.iterdir()) == []


def test_stages_overlap() -> None:
    # Two stages that each sleep (releasing the GIL) 20 ms per item: chained,
    # 10 items take about 10 x 20 ms, not 2 x 10 x 20 ms.
    def slow(items: Iterator[int]) -> Iterator[int]:
        for item in items:
            time.sleep(0.02)
            yield item

    start = time.perf_counter()
    with Threaded(slow(iter(range(10))), name="a") as a, Threaded(slow(a), name="b") as b:
        assert list(b) == list(range(10))
    elapsed = time.perf_counter() - start
    assert elapsed < 0.36, elapsed


def test_an_error_reaches_the_consumer_where_it_happened() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise BundleError("boom")

    got = []
    with pytest.raises(BundleError, match="boom"), Threaded(failing()) as stage:
        for item in stage:
            got.append(item)
    assert got == [1, 2]


def test_closing_early_stops_the_worker_and_closes_its_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            while True:
                yield b"x" * 1000
        finally:
            closed.set()

    stage = Threaded(endless(), depth=2)
    assert next(stage) == b"x" * 1000
    stage.close()
    assert closed.is_set()
    with pytest.raises(StopIteration):
        next(stage)


def test_gunzip_output_is_bounded_for_a_highly_compressed_layer(tmp_path: Path) -> None:
    # 64 MB of zeros gzip to ~64 KB: one read of the file must not expand
    # into one 64 MB buffer (peak memory flat in the layer size).
    import gzip

    from lockresolve.bundle.unpack import iter_uncompressed

    layer = tmp_path / "zeros.tar.gz"
    with gzip.open(layer, "wb", compresslevel=9) as fh:
        for _ in range(64):
            fh.write(bytes(1 << 20))
    sizes = [
        len(chunk)
        for chunk in iter_uncompressed(layer, "application/vnd.oci.image.layer.v1.tar+gzip")
    ]
    assert sum(sizes) == 64 << 20
    assert max(sizes) <= 1 << 20  # bounded (256 KiB steps today)
