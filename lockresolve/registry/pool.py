"""A lean HTTP/1.1 keep-alive pool, under httpx, for direct connections.

httpcore's ``AsyncConnectionPool`` re-examines every pooled connection each time
a request arrives or a response closes: it asks each idle socket whether it is
readable (through anyio's ``extra_attributes``) and counts the idle connections
once per connection. With 16 connections that is about 150 checks per event and
more than half of the client's CPU in a resolve run (2.5 ms against 1.1 ms per
HEAD, measured by ``benchmarks/bench_registry.py``).

:class:`LeanPool` does the same job in constant time per request. Idle
connections wait on a stack per origin; a request takes the most recently used
one and checks only that one (closed, keep-alive expired, or a server that hung
up), and opens a new connection when none is left. A response hands its
connection back when it is closed. At most ``max_connections`` requests are in
flight (a request waits for a slot, as with httpcore and no pool timeout) and at
most ``max_keepalive_connections`` idle connections are kept per origin.

It stands on httpcore's public connection interface
(``httpcore.AsyncHTTPConnection``: ``handle_async_request``, ``is_idle``,
``is_closed``, ``has_expired``, ``aclose``). :class:`LeanTransport` puts it
under httpx's own ``AsyncHTTPTransport``, which turns httpx requests into
httpcore ones and maps httpcore's exceptions, exactly as for its own pool: the
one private name used is the ``_pool`` attribute that transport sends through.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable

import anyio
import httpcore
import httpx

from lockresolve.registry.headconn import HeadConnection, open_head_connection

__all__ = ["LeanPool", "LeanTransport"]

#: an origin as a dictionary key (httpcore's ``Origin`` is not hashable)
_Key = tuple[bytes, bytes, int]


class _Checkout:
    """One request's pool slot and connection, given back exactly once."""

    def __init__(self, pool: LeanPool, key: _Key) -> None:
        self.pool = pool
        self.key = key
        self.connection: httpcore.AsyncHTTPConnection | None = None
        self._done = False

    async def release(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            if self.connection is not None:
                with anyio.CancelScope(shield=True):
                    await self.pool._checkin(self.key, self.connection)
        finally:
            self.pool._slots.release()


class _ResponseStream:
    """The connection's response body; closing it hands the connection back."""

    def __init__(self, stream: AsyncIterable[bytes], checkout: _Checkout) -> None:
        self._stream = stream
        self._checkout = checkout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            await self._checkout.release()


class LeanPool:
    """HTTP/1.1 over keep-alive connections, a stack of idle ones per origin.

    ``ssl_context`` may be a factory: it is then called in a worker thread when
    the first https connection needs it. Loading the system's CA store costs
    about 50 ms of CPU, which then overlaps the caller's work (it releases the
    GIL), and runs that only speak plain http never pay it.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        max_connections: int,
        max_keepalive_connections: int,
        keepalive_expiry: float,
    ) -> None:
        if isinstance(ssl_context, ssl.SSLContext):
            self._ssl_context: ssl.SSLContext | None = ssl_context
            self._ssl_factory: Callable[[], ssl.SSLContext] | None = None
        else:
            self._ssl_context, self._ssl_factory = None, ssl_context
        self._ssl_lock = anyio.Lock()
        self._max_idle = max_keepalive_connections
        self._keepalive_expiry = keepalive_expiry
        self._slots = anyio.Semaphore(max(1, max_connections))
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        self._open: set[httpcore.AsyncHTTPConnection] = set()
        #: idle connections that only send HEAD requests (headconn.py), per origin
        self._idle_head: dict[_Key, list[HeadConnection]] = {}
        self._open_head: set[HeadConnection] = set()
        #: connections opened so far (for tests and benchmarks)
        self.connections_opened = 0

    async def _tls(self) -> ssl.SSLContext:
        async with self._ssl_lock:
            if self._ssl_context is None:
                assert self._ssl_factory is not None
                self._ssl_context = await anyio.to_thread.run_sync(self._ssl_factory)
        return self._ssl_context

    async def _take(self, key: _Key) -> httpcore.AsyncHTTPConnection | None:
        """The most recently used idle connection that is still good, if any."""
        stack = self._idle.get(key)
        while stack:
            connection = stack.pop()
            if connection.is_closed() or connection.has_expired():
                await self._discard(connection)
                continue
            return connection
        return None

    async def _new(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        tls = self._ssl_context
        if tls is None and origin.scheme == b"https":
            tls = await self._tls()
        connection = httpcore.AsyncHTTPConnection(
            origin=origin, ssl_context=tls, keepalive_expiry=self._keepalive_expiry
        )
        self._open.add(connection)
        self.connections_opened += 1
        return connection

    async def _checkin(self, key: _Key, connection: httpcore.AsyncHTTPConnection) -> None:
        if connection.is_idle() and not connection.is_closed():
            stack = self._idle.setdefault(key, [])
            if len(stack) < self._max_idle:
                stack.append(connection)
                return
        await self._discard(connection)

    async def _discard(self, connection: httpcore.AsyncHTTPConnection) -> None:
        self._open.discard(connection)
        with anyio.CancelScope(shield=True):
            await connection.aclose()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        scheme = request.url.scheme
        if scheme not in (b"http", b"https"):
            raise httpcore.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme.decode()}://'."
                if scheme
                else "Request URL is missing an 'http://' or 'https://' protocol."
            )
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        if request.method == b"HEAD" and _without_body(request):
            return await self._head(request, origin, key)
        checkout = _Checkout(self, key)
        await self._slots.acquire()
        try:
            while True:
                connection = await self._take(key) or await self._new(origin)
                checkout.connection = connection
                try:
                    response = await connection.handle_async_request(request)
                except httpcore.ConnectionNotAvailable:
                    # Became unusable between the check and the request: try another.
                    await self._discard(connection)
                    checkout.connection = None
                    continue
                break
        except BaseException:
            if checkout.connection is not None:
                await self._discard(checkout.connection)
                checkout.connection = None
            await checkout.release()
            raise
        assert isinstance(response.stream, AsyncIterable)
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_ResponseStream(response.stream, checkout),
            extensions=response.extensions,
        )

    # HEAD requests: their own connections, no httpcore (see headconn.py)
    async def _head(
        self, request: httpcore.Request, origin: httpcore.Origin, key: _Key
    ) -> httpcore.Response:
        async with self._slots:
            stack = self._idle_head.setdefault(key, [])
            connection: HeadConnection | None = None
            while stack:
                candidate = stack.pop()
                if candidate.is_closed() or candidate.has_expired():
                    await self._discard_head(candidate)
                    continue
                connection = candidate
                break
            if connection is None:
                connection = await self._new_head(request, origin)
            try:
                response = await connection.head(request)
            except BaseException:
                self._open_head.discard(connection)
                raise
            if connection.is_closed():
                self._open_head.discard(connection)
            elif len(stack) < self._max_idle:
                stack.append(connection)
            else:
                await self._discard_head(connection)
            return response

    async def _new_head(self, request: httpcore.Request, origin: httpcore.Origin) -> HeadConnection:
        tls = self._ssl_context
        if tls is None and origin.scheme == b"https":
            tls = await self._tls()
        timeouts = request.extensions.get("timeout", {})
        connect = timeouts.get("connect") if isinstance(timeouts, dict) else None
        self.connections_opened += 1  # counted as httpcore's are: attempts included
        connection = await open_head_connection(origin, tls, connect, self._keepalive_expiry)
        self._open_head.add(connection)
        return connection

    async def _discard_head(self, connection: HeadConnection) -> None:
        self._open_head.discard(connection)
        await connection.aclose()

    async def aclose(self) -> None:
        connections = list(self._open)
        heads = list(self._open_head)
        self._open.clear()
        self._idle.clear()
        self._open_head.clear()
        self._idle_head.clear()
        with anyio.CancelScope(shield=True):
            for connection in connections:
                await connection.aclose()
            for head in heads:
                await head.aclose()

    async def __aenter__(self) -> LeanPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _without_body(request: httpcore.Request) -> bool:
    """No body announced (a HEAD request never has one in practice; httpx sends none)."""
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding" or (lowered == b"content-length" and value != b"0"):
            return False
    return True


class LeanTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, sending through a :class:`LeanPool`."""

    def __init__(self, pool: LeanPool) -> None:
        # httpx's __init__ only builds the pool (and its TLS context) that this
        # one replaces; everything else the transport does goes through _pool.
        self._pool = pool  # type: ignore[assignment]
