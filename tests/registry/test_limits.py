"""The per-host limit holds for whole streamed transfers, and a blob is bounded by its
descriptor's size (issue 12, item 9): against the real registry, and pytest-httpx for a
registry that lies about a blob's length."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import anyio
import httpx
import pytest
from pytest_httpx import HTTPXMock

from lockresolve.errors import ProtocolError
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy
from tests.support.registry import Registry

pytestmark = pytest.mark.anyio

BLOB = bytes(range(256)) * (3 * 4096 + 7)  # a little over 3 MiB: several chunks
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _seed(client: RegistryClient, registry: Registry, repo: str) -> None:
    if not await client.blob_exists(registry.host, repo, DIGEST):
        await client.upload_blob(registry.host, repo, DIGEST, len(BLOB), BLOB)


async def test_concurrency_bounds_blob_downloads_for_their_whole_length(
    registry: Registry,
) -> None:
    repo = "limits/stream"
    async with RegistryClient(TransportPolicy(concurrency=1)) as client:
        await _seed(client, registry, repo)
        stream = client.get_blob(registry.host, repo, DIGEST, chunk_size=1 << 20)
        first = await stream.__anext__()  # the download is under way, not finished
        with anyio.move_on_after(1.0) as waited:
            await client.blob_exists(registry.host, repo, DIGEST)
        # The one slot is the download's until its body is read: the HEAD had to wait.
        assert waited.cancelled_caught
        rest = [chunk async for chunk in stream]
        assert first + b"".join(rest) == BLOB
        with anyio.fail_after(10):  # the slot came back
            assert await client.blob_exists(registry.host, repo, DIGEST)


async def test_an_abandoned_download_gives_its_slot_back_when_closed(registry: Registry) -> None:
    repo = "limits/abandon"
    async with RegistryClient(TransportPolicy(concurrency=1)) as client:
        await _seed(client, registry, repo)
        stream = cast(
            AsyncGenerator[bytes, None],
            client.get_blob(registry.host, repo, DIGEST, chunk_size=1 << 20),
        )
        await stream.__anext__()
        await stream.aclose()
        with anyio.fail_after(10):
            assert await client.blob_exists(registry.host, repo, DIGEST)


async def test_the_declared_size_passes_and_a_smaller_one_is_refused(registry: Registry) -> None:
    repo = "limits/size"
    async with RegistryClient(TransportPolicy(concurrency=2)) as client:
        await _seed(client, registry, repo)
        got = b"".join(
            [c async for c in client.get_blob(registry.host, repo, DIGEST, size=len(BLOB))]
        )
        assert got == BLOB
        received = 0
        with pytest.raises(ProtocolError, match="descriptor declares 1000"):
            async for chunk in client.get_blob(registry.host, repo, DIGEST, size=1000):
                received += len(chunk)
        assert received <= 1000


async def test_a_registry_that_streams_past_the_declared_size_is_cut_off(
    httpx_mock: HTTPXMock,
) -> None:
    # No Content-Length (chunked), endless-looking bytes: nothing past the size is handed out.
    def endless() -> list[bytes]:
        return [b"x" * 65536 for _ in range(64)]

    httpx_mock.add_response(
        method="GET",
        url=f"https://registry.example/v2/app/blobs/{DIGEST}",
        stream=_Stream(endless()),
    )
    received = 0
    async with RegistryClient(TransportPolicy(retries=0)) as client:
        with pytest.raises(ProtocolError, match="longer than the 100000 bytes"):
            async for chunk in client.get_blob("registry.example", "app", DIGEST, size=100_000):
                received += len(chunk)
    assert received <= 100_000


async def test_a_content_length_over_the_declared_size_is_refused_before_reading(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"https://registry.example/v2/app/blobs/{DIGEST}",
        content=b"y" * 5000,
    )
    received = 0
    async with RegistryClient(TransportPolicy(retries=0)) as client:
        with pytest.raises(ProtocolError, match="Content-Length"):
            async for chunk in client.get_blob("registry.example", "app", DIGEST, size=10):
                received += len(chunk)
    assert received == 0


class _Stream(httpx.AsyncByteStream):
    """An async byte stream for pytest-httpx without a Content-Length."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


async def test_a_same_host_copy_falling_back_to_chunks_cannot_deadlock_at_concurrency_1(
    httpx_mock: HTTPXMock,
) -> None:
    # Mount declined (202), monolithic PUT refused (405): the source GET is then read
    # between PATCHes to the same host, with one slot for everything.
    from lockresolve.bundle.transfer import copy_blob

    data = b"z" * (9 << 20)  # more than one 8 MiB chunk: PATCHes while the GET streams
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    base = "https://registry.example/v2"
    httpx_mock.add_response(method="HEAD", url=f"{base}/dst/blobs/{digest}", status_code=404)
    httpx_mock.add_response(
        method="POST",
        url=f"{base}/dst/blobs/uploads/?mount={digest.replace(':', '%3A')}&from=src",
        status_code=202,
        headers={"Location": "/v2/dst/blobs/uploads/u0"},
    )
    httpx_mock.add_response(
        method="PUT",
        url=f"{base}/dst/blobs/uploads/u0?digest={digest.replace(':', '%3A')}",
        status_code=405,
    )
    httpx_mock.add_response(
        method="POST",
        url=f"{base}/dst/blobs/uploads/",
        status_code=202,
        headers={"Location": "/v2/dst/blobs/uploads/u1"},
    )
    httpx_mock.add_response(
        method="GET", url=f"{base}/src/blobs/{digest}", content=data, is_reusable=True
    )
    for n in (1, 2):
        httpx_mock.add_response(
            method="PATCH",
            url=f"{base}/dst/blobs/uploads/u{n}",
            status_code=202,
            headers={"Location": f"/v2/dst/blobs/uploads/u{n + 1}"},
        )
    httpx_mock.add_response(
        method="PUT",
        url=f"{base}/dst/blobs/uploads/u3?digest={digest.replace(':', '%3A')}",
        status_code=201,
    )
    async with RegistryClient(TransportPolicy(concurrency=1, retries=0)) as client:
        with anyio.fail_after(10):
            outcome = await copy_blob(
                client, ("registry.example", "src"), ("registry.example", "dst"), digest, len(data)
            )
    assert outcome == "uploaded"
    patches = [r for r in httpx_mock.get_requests() if r.method == "PATCH"]
    assert b"".join(p.content for p in patches) == data
