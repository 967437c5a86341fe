"""BlobOnce: a blob shared by several images of one copy is written once per repository.

Before it, the images of `copy --lock` that share a config and a layer uploaded them into
the destination at the same time, and docker-registry 2.8 answered about every other
manifest PUT of tests/bundle/test_lock_annotations_tar.py with MANIFEST_BLOB_UNKNOWN.
"""

from __future__ import annotations

import anyio
import pytest

from lockresolve.bundle.transfer import BlobOnce

KEY = ("registry.example", "app", "sha256:" + "a" * 64)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_concurrent_writers_of_one_blob_write_it_once() -> None:
    once = BlobOnce()
    calls = 0

    async def write() -> None:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(once.write, KEY, write)
    assert calls == 1
    await once.write(KEY, write)  # already written: nothing to do
    assert calls == 1


@pytest.mark.anyio
async def test_a_failed_write_is_retried_by_the_next_caller_and_reported_by_the_first() -> None:
    once = BlobOnce()
    attempts: list[str] = []
    errors: list[str] = []

    async def failing() -> None:
        attempts.append("first")
        await anyio.sleep(0.05)
        raise RuntimeError("upload refused")

    async def working() -> None:
        attempts.append("second")

    async def first() -> None:
        try:
            await once.write(KEY, failing)
        except RuntimeError as exc:
            errors.append(str(exc))

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await anyio.sleep(0.01)
        tg.start_soon(once.write, KEY, working)
    assert attempts == ["first", "second"]
    assert errors == ["upload refused"]


@pytest.mark.anyio
async def test_other_blobs_and_repositories_are_written_separately() -> None:
    once = BlobOnce()
    written: list[tuple[str, str, str]] = []
    keys = [KEY, (KEY[0], "other", KEY[2]), (KEY[0], KEY[1], "sha256:" + "b" * 64)]

    async with anyio.create_task_group() as tg:
        for key in keys:

            async def write(key: tuple[str, str, str] = key) -> None:
                written.append(key)

            tg.start_soon(once.write, key, write)
    assert sorted(written) == sorted(keys)
