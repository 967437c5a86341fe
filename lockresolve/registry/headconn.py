"""A keep-alive HTTP/1.1 connection that sends HEAD requests and nothing else.

Resolving is one HEAD per image; through httpcore and h11 each costs about as much
CPU as everything else lockresolve does for that image (a state machine per
connection, events per header block, per-request bookkeeping). A HEAD answer has
no body (RFC 9110 9.3.2), so the exchange is: write the request line and headers,
read up to the blank line, split the header block. :class:`LeanPool` sends its
HEAD requests through this class and every other request through httpcore.

Errors are httpcore's, so httpx maps them as for its own connections
(``ConnectError`` with the ``ssl.SSLError`` as its cause for a server that does
not speak TLS, ``ReadTimeout``, ``RemoteProtocolError``...). A connection whose
state is in doubt (an error, a cancellation, a ``Connection: close``, bytes after
the header block) is closed, never reused.
"""

from __future__ import annotations

import select
import ssl
import time

import anyio
import anyio.abc
import httpcore

__all__ = ["MAX_HEADER_BYTES", "HeadConnection", "open_head_connection"]

#: the largest response header block accepted (h11's default limit is 16 KiB)
MAX_HEADER_BYTES = 64 * 1024
_READ = 65536


def _timeouts(request: httpcore.Request) -> dict[str, float | None]:
    timeouts = request.extensions.get("timeout", {})
    return timeouts if isinstance(timeouts, dict) else {}


async def open_head_connection(
    origin: httpcore.Origin,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float | None,
    keepalive_expiry: float,
) -> HeadConnection:
    """Connect to ``origin`` (TLS when it is https); httpcore's errors on failure."""
    host = origin.host.decode("ascii")
    stream: anyio.abc.ByteStream
    try:
        with anyio.fail_after(connect_timeout):
            if origin.scheme == b"https":
                stream = await anyio.connect_tcp(
                    host,
                    origin.port,
                    ssl_context=ssl_context or ssl.create_default_context(),
                    tls_hostname=host,
                    tls_standard_compatible=False,
                )
            else:
                stream = await anyio.connect_tcp(host, origin.port)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(str(exc) or "connect timed out") from exc
    except (OSError, ssl.SSLError, anyio.BrokenResourceError) as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    return HeadConnection(stream, keepalive_expiry)


class HeadConnection:
    """One connection; :meth:`head` sends one request at a time."""

    def __init__(self, stream: anyio.abc.ByteStream, keepalive_expiry: float) -> None:
        self._stream = stream
        self._expiry = keepalive_expiry
        self._idle_since = time.monotonic()
        self._closed = False
        #: requests answered on this connection
        self.requests = 0

    def is_closed(self) -> bool:
        return self._closed

    def has_expired(self) -> bool:
        """Idle too long, or the server hung up (the idle socket reads as ready: EOF)."""
        if time.monotonic() - self._idle_since >= self._expiry:
            return True
        sock = self._stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        if sock is None:
            return False
        try:
            poll = select.poll()
            poll.register(sock, select.POLLIN)
            return bool(poll.poll(0))
        except (OSError, ValueError):
            return True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    async def head(self, request: httpcore.Request) -> httpcore.Response:
        """Send ``request`` (a HEAD without a body) and read the answer's header block."""
        if self._closed:
            raise httpcore.ConnectionNotAvailable()
        timeouts = _timeouts(request)
        _check_request(request)
        lines = [b"HEAD " + request.url.target + b" HTTP/1.1\r\n"]
        lines += [name + b": " + value + b"\r\n" for name, value in request.headers]
        lines.append(b"\r\n")
        keep = False
        try:
            try:
                with anyio.fail_after(timeouts.get("write")):
                    await self._stream.send(b"".join(lines))
            except TimeoutError as exc:
                raise httpcore.WriteTimeout("write timed out") from exc
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                raise httpcore.WriteError(str(exc)) from exc
            status, reason, version, headers, keep = await self._read_head(timeouts.get("read"))
        finally:
            if keep:
                self.requests += 1
                self._idle_since = time.monotonic()
            else:
                await self.aclose()
        return httpcore.Response(
            status=status,
            headers=headers,
            content=b"",
            extensions={"http_version": version, "reason_phrase": reason},
        )

    async def _read_head(
        self, read_timeout: float | None
    ) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]], bool]:
        buffer = b""
        while True:
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise httpcore.RemoteProtocolError("the response header block is too large")
                try:
                    with anyio.fail_after(read_timeout):
                        chunk = await self._stream.receive(_READ)
                except TimeoutError as exc:
                    raise httpcore.ReadTimeout("read timed out") from exc
                except anyio.EndOfStream:
                    raise httpcore.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    ) from None
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                    raise httpcore.ReadError(str(exc)) from exc
                buffer += chunk
                end = buffer.find(b"\r\n\r\n", max(0, len(buffer) - len(chunk) - 3))
            block, buffer = buffer[:end], buffer[end + 4 :]
            status, reason, version, headers = _parse_head(block)
            if 100 <= status < 200 and status != 101:
                continue  # an interim answer; the final one follows
            keep = version == b"HTTP/1.1" and not buffer and status != 101
            for name, value in headers:
                if name.lower() == b"connection" and b"close" in value.lower():
                    keep = False
            return status, reason, version, headers, keep


def _parse_head(block: bytes) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    """Status line and header fields of a response header block (no obsolete folding)."""
    lines = block.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise httpcore.RemoteProtocolError("malformed status line")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise httpcore.RemoteProtocolError("malformed status code")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise httpcore.RemoteProtocolError("malformed header line")
        headers.append((name, value.strip(b" \t")))
    return int(code), parts[2] if len(parts) > 2 else b"", parts[0], headers


#: what may not stand in a request line or header field: a CR or LF would end the line
#: there and let a value (a token from a config file or a token server) inject headers
_FORBIDDEN = frozenset(b"\r\n\x00")


def _check_request(request: httpcore.Request) -> None:
    """Refuse what h11 refuses before it is written: a target or header with CR, LF or NUL,
    a header name with a space or colon. The value is never quoted (it may be a secret)."""
    if _FORBIDDEN.intersection(request.url.target) or b" " in request.url.target:
        raise httpcore.LocalProtocolError("illegal request target")
    for name, value in request.headers:
        if not name or _FORBIDDEN.intersection(name) or b" " in name or b":" in name:
            raise httpcore.LocalProtocolError("illegal header name")
        if _FORBIDDEN.intersection(value) or value != value.strip(b" \t"):
            raise httpcore.LocalProtocolError(f"illegal header value for {name.decode('latin-1')}")
