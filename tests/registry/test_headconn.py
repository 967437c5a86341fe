"""HEAD requests through the lean pool's own connections (lockresolve/registry/headconn.py).

Against the real registry: answers and headers as httpx gives them for any other
request, one connection for sequential HEADs. Against a scripted socket server, for
what a registry rarely does: ``Connection: close``, an interim ``100`` answer, a
hang-up while idle, a broken status line, bytes after the header block.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import anyio
import httpx
import pytest

from lockresolve.mediatypes import MANIFEST_ACCEPT
from lockresolve.registry.pool import LeanPool, LeanTransport
from tests.support.images import make_image, push_image
from tests.support.registry import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def lean_client() -> tuple[httpx.AsyncClient, LeanPool]:
    pool = LeanPool(
        ssl_context=ssl.create_default_context(),
        max_connections=8,
        max_keepalive_connections=8,
        keepalive_expiry=60.0,
    )
    return httpx.AsyncClient(transport=LeanTransport(pool), timeout=5.0), pool


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


class ScriptedServer:
    """Answers each request on a connection with the next reply of ``replies``
    (bytes to send; ``None``: close the connection instead)."""

    def __init__(self, replies: list[bytes | None], *, close_after: float | None = None) -> None:
        self.replies = list(replies)
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                request, _, data = data.partition(b"\r\n\r\n")
                with self._lock:
                    self.requests.append(request)
                    reply = self.replies.pop(0) if self.replies else None
                if reply is None:
                    return
                conn.sendall(reply)
                if self.close_after is not None:
                    self._stop.wait(self.close_after)
                    return


OK = b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:" + b"a" * 64 + b"\r\n\r\n"


@pytest.fixture
def scripted() -> Iterator[type[ScriptedServer]]:
    yield ScriptedServer


async def test_connection_close_is_honoured(scripted: type[ScriptedServer]) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    with scripted([closing, OK]) as server:
        client, pool = lean_client()
        async with client:
            first = await client.head(f"http://127.0.0.1:{server.port}/a")
            second = await client.head(f"http://127.0.0.1:{server.port}/b")
    assert (first.status_code, second.status_code) == (200, 200)
    assert server.connections == 2
    assert pool.connections_opened == 2


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
        client, pool = lean_client()
        async with client:
            first = await client.head(f"http://127.0.0.1:{server.port}/a")
            await anyio.sleep(0.3)  # the server has closed the idle connection by now
            second = await client.head(f"http://127.0.0.1:{server.port}/b")
    assert (first.status_code, second.status_code) == (200, 200)
    assert pool.connections_opened == 2
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
        client, pool = lean_client()
        async with client:
            first = await client.head(f"http://127.0.0.1:{server.port}/a")
            second = await client.head(f"http://127.0.0.1:{server.port}/b")
    assert (first.status_code, second.status_code) == (200, 200)
    assert pool.connections_opened == 2
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
