"""HEAD requests through the lean pool's own connections (lockresolve/registry/headconn.py).

Against the real registry: answers and headers as httpx gives them for any other
request, one connection for sequential HEADs. Against a scripted socket server, for
what a registry rarely does: ``Connection: close``, an interim ``100`` answer, a
hang-up while idle, a broken status line, bytes after the header block.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from lockresolve.mediatypes import MANIFEST_ACCEPT
from tests.support.images import make_image, push_image
from tests.support.leanpool import ScriptedServer, lean_client
from tests.support.registry import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_head_answers_match_a_get_and_share_one_connection(registry: Registry) -> None:
    from lockresolve.registry.client import RegistryClient

    async with RegistryClient() as seeder:
        digest = await push_image(seeder, registry.host, "head/app", "v1", make_image("head"))
    client, pool = lean_client()
    url = f"{registry.url}/v2/head/app/manifests/v1"
    accept = {"Accept": ", ".join(MANIFEST_ACCEPT)}
    async with client:
        heads = [await client.head(url, headers=accept) for _ in range(4)]
        get = await client.get(url, headers=accept)
        missing = await client.head(f"{registry.url}/v2/head/app/manifests/absent")
    assert [h.status_code for h in heads] == [200] * 4
    assert {h.headers["docker-content-digest"] for h in heads} == {digest}
    assert heads[0].headers["content-type"] == get.headers["content-type"]
    assert heads[0].headers["content-length"] == str(len(get.content))
    assert heads[0].content == b""
    assert missing.status_code == 404
    # the four HEADs and the 404 on one connection, the GET on httpcore's
    assert pool.connections_opened == 2


OK = b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:" + b"a" * 64 + b"\r\n\r\n"


async def head_twice(server: ScriptedServer, pause: float = 0.0) -> tuple[tuple[int, int], int]:
    """HEAD ``/a`` then ``/b`` (``pause`` seconds apart): the statuses, connections opened."""
    client, pool = lean_client()
    async with client:
        first = await client.head(f"http://127.0.0.1:{server.port}/a")
        if pause:
            await anyio.sleep(pause)
        second = await client.head(f"http://127.0.0.1:{server.port}/b")
    return (first.status_code, second.status_code), pool.connections_opened


@pytest.fixture
def scripted() -> Iterator[type[ScriptedServer]]:
    yield ScriptedServer


async def test_connection_close_is_honoured(scripted: type[ScriptedServer]) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    with scripted([closing, OK]) as server:
        statuses, opened = await head_twice(server)
    assert statuses == (200, 200)
    assert server.connections == 2
    assert opened == 2


async def test_an_interim_answer_is_skipped(scripted: type[ScriptedServer]) -> None:
    with scripted([b"HTTP/1.1 100 Continue\r\n\r\n" + OK]) as server:
        client, _ = lean_client()
        async with client:
            response = await client.head(f"http://127.0.0.1:{server.port}/a")
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == "sha256:" + "a" * 64


async def test_an_idle_connection_the_server_closed_is_not_reused(
    scripted: type[ScriptedServer],
) -> None:
    with scripted([OK, OK], close_after=0.05) as server:
        # the server has closed the idle connection by the second HEAD
        statuses, opened = await head_twice(server, pause=0.3)
    assert statuses == (200, 200)
    assert opened == 2
    assert server.connections == 2


async def test_a_broken_status_line_is_a_protocol_error(scripted: type[ScriptedServer]) -> None:
    with scripted([b"HTTP/9 nope\r\n\r\n"]) as server:
        client, _ = lean_client()
        async with client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.head(f"http://127.0.0.1:{server.port}/a")


async def test_a_hang_up_before_the_answer_is_a_protocol_error(
    scripted: type[ScriptedServer],
) -> None:
    with scripted([None]) as server:
        client, _ = lean_client()
        async with client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.head(f"http://127.0.0.1:{server.port}/a")


async def test_bytes_after_the_header_block_retire_the_connection(
    scripted: type[ScriptedServer],
) -> None:
    with scripted([OK + b"junk", OK]) as server:
        statuses, opened = await head_twice(server)
    assert statuses == (200, 200)
    assert opened == 2
    assert server.connections == 2


async def test_the_request_carries_httpx_headers(scripted: type[ScriptedServer]) -> None:
    with scripted([OK]) as server:
        client, _ = lean_client()
        async with client:
            await client.head(
                f"http://127.0.0.1:{server.port}/v2/x/manifests/1?q=2", headers={"Accept": "a/b"}
            )
    request = server.requests[0].decode()
    lines = request.split("\r\n")
    assert lines[0] == "HEAD /v2/x/manifests/1?q=2 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "Accept: a/b" in lines


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer tok-SECRET-4711\r\nX-Injected: 1"},
        {"Authorization": "Bearer tok-SECRET-4711\r\n"},
        {"Authorization": "Bearer tok-SECRET-4711\x00"},
    ],
    ids=["crlf-inside", "crlf-at-end", "nul"],
)
async def test_a_header_value_with_a_line_break_is_refused_unsent(
    scripted: type[ScriptedServer], headers: dict[str, str]
) -> None:
    # Before: the lean HEAD path wrote the value as it was, so a token with CR/LF (from a
    # Docker config or a token server) ended the header line and injected its own
    # headers; h11, which every other request goes through, refuses such a value.
    with scripted([OK]) as server:
        client, _ = lean_client()
        async with client:
            with pytest.raises(httpx.LocalProtocolError) as caught:
                await client.head(
                    f"http://127.0.0.1:{server.port}/v2/x/manifests/1", headers=headers
                )
    assert "SECRET" not in str(caught.value)
    assert server.requests == []
