"""Push and pull keep memory flat in the bundle size, and a pull streams its one layer.

Python-level allocations are traced (``tracemalloc``: every ``bytes`` buffer
the pipeline holds is a Python object) while a bundle of a 64 MiB file is
pushed and pulled through the real registry; the peak stays a few MiB, far
below the bundle. The file is zeros (sparse, cheap to make), so its layer is
~100 KB of gzip: a pull that gunzipped one read of it in one go would hold
the whole 64 MiB at once.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest

from lockresolve.bundle.commands.pull import pull
from lockresolve.bundle.commands.push import push
from lockresolve.registry.client import RegistryClient
from tests.support.registry import Registry

SIZE = 64 << 20
LIMIT = 16 << 20


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _bundle(root: Path) -> Path:
    (root / ".imgpkg").mkdir(parents=True)
    (root / ".imgpkg" / "images.yml").write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n"
    )
    with (root / "big.bin").open("wb") as fh:
        fh.truncate(SIZE)
    return root


@pytest.mark.anyio
async def test_push_then_pull_of_64_mib_stays_under_16_mib_of_buffers(
    registry: Registry, tmp_path: Path
) -> None:
    root = _bundle(tmp_path / "bundle")
    target = f"{registry.host}/memory/big:v1"
    async with RegistryClient() as client:
        tracemalloc.start()
        try:
            result = await push(client, target, [root], bundle=True)
            _, push_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            await pull(client, result.image, tmp_path / "out", kind="bundle")
            _, pull_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    pulled = tmp_path / "out" / "big.bin"
    assert pulled.stat().st_size == SIZE
    with pulled.open("rb") as fh:
        assert hashlib.sha256(fh.read()).digest() == hashlib.sha256(bytes(SIZE)).digest()
    assert push_peak < LIMIT, f"push held {push_peak / 2**20:.1f} MiB"
    assert pull_peak < LIMIT, f"pull held {pull_peak / 2**20:.1f} MiB"
