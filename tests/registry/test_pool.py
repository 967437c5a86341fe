"""The lean connection pool under httpx: reuse, limits, hang-ups, cancellation, lazy TLS."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import anyio
import httpx
import pytest

from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.pool import LeanPool, LeanTransport
from lockresolve.registry.transport import TransportPolicy
from tests.support.leanpool import ScriptedServer, lean_client
from tests.support.registry import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def get_concurrently(client: httpx.AsyncClient, url: str, times: int) -> list[int]:
    """GET ``url`` ``times`` times at once; the status codes."""
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await client.get(url)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(times):
            tg.start_soon(one)
    return statuses


async def test_sequential_requests_share_one_connection(registry: Registry) -> None:
    client, pool = lean_client()
    async with client:
        for _ in range(5):
            response = await client.get(f"{registry.url}/v2/")
            assert response.status_code == 200
    assert pool.connections_opened == 1


async def test_concurrent_requests_never_exceed_max_connections(registry: Registry) -> None:
    client, pool = lean_client(max_connections=2)
    async with client:
        assert await get_concurrently(client, f"{registry.url}/v2/", 12) == [200] * 12
    assert pool.connections_opened == 2


async def test_idle_connections_beyond_the_keepalive_limit_are_closed(registry: Registry) -> None:
    client, pool = lean_client(max_connections=4, max_idle=1)
    async with client:
        assert await get_concurrently(client, f"{registry.url}/v2/", 8) == [200] * 8
        opened = pool.connections_opened
        assert opened > 1
        # The one idle connection kept serves the next request.
        assert (await client.get(f"{registry.url}/v2/")).status_code == 200
        assert pool.connections_opened == opened


KEEP_ALIVE_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_a_connection_the_server_hung_up_is_not_reused() -> None:
    client, pool = lean_client()
    # each connection answers once with keep-alive, then hangs up 50 ms later: what a
    # registry's idle timeout does
    with ScriptedServer([KEEP_ALIVE_OK, KEEP_ALIVE_OK], close_after=0.05) as server:
        async with client:
            first = await client.get(f"http://127.0.0.1:{server.port}/")
            await anyio.sleep(0.3)  # the server has closed the idle connection by now
            second = await client.get(f"http://127.0.0.1:{server.port}/")
    assert (first.text, second.text) == ("ok", "ok")
    assert pool.connections_opened == 2
    assert server.connections == 2


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(5)
    sock.close()
    for conn in accepted:
        conn.close()


async def test_a_cancelled_request_gives_its_slot_back(
    silent_server: int, registry: Registry
) -> None:
    client, _ = lean_client(max_connections=1)
    async with client:
        with anyio.move_on_after(0.2) as scope:
            await client.get(f"http://127.0.0.1:{silent_server}/")
        assert scope.cancelled_caught
        # The one slot is free again: this would wait forever otherwise.
        with anyio.fail_after(5):
            assert (await client.get(f"{registry.url}/v2/")).status_code == 200


async def test_transport_errors_are_httpx_errors() -> None:
    client, _ = lean_client()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: refused
        async with client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")


async def test_plain_http_never_builds_a_tls_context(registry: Registry) -> None:
    calls: list[int] = []

    def factory() -> ssl.SSLContext:
        calls.append(1)
        return ssl.create_default_context()

    client, _ = lean_client(factory)
    async with client:
        assert (await client.get(f"{registry.url}/v2/")).status_code == 200
    assert calls == []


async def test_the_tls_context_is_built_once_for_concurrent_https(
    tls_registry: Registry,
) -> None:
    calls: list[int] = []

    def factory() -> ssl.SSLContext:
        calls.append(1)
        context = tls_registry.ssl_context()
        assert context is not None
        return context

    client, _ = lean_client(factory)
    async with client:
        assert await get_concurrently(client, f"{tls_registry.url}/v2/", 6) == [200] * 6
    assert calls == [1]


async def test_the_registry_client_uses_the_lean_pool_without_a_proxy(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    async with RegistryClient(TransportPolicy()) as client:
        transport = client._http._transport  # what httpx sends direct requests through
        assert isinstance(transport, LeanTransport)
        missing = Reference.parse(f"{registry.host}/pool/absent:1")
        assert await client.manifest_exists(missing) is False
        assert await client.manifest_exists(missing) is False
        pool = transport._pool
        assert isinstance(pool, LeanPool)
        # https was tried first (a loopback registry may speak either), then plain http.
        assert pool.connections_opened == 2
