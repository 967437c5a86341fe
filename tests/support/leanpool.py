"""Helpers for tests of the lean connection pool (lockresolve/registry/pool.py, headconn.py).

:func:`lean_client` is an httpx client over a fresh :class:`LeanPool`;
:class:`ScriptedServer` a socket server that answers with scripted bytes, for
what a registry rarely does (``Connection: close``, hang-ups, broken answers).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable

import httpx

from lockresolve.registry.pool import LeanPool, LeanTransport

__all__ = ["ScriptedServer", "lean_client"]


def lean_client(
    ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
    *,
    max_connections: int = 8,
    max_idle: int = 8,
) -> tuple[httpx.AsyncClient, LeanPool]:
    """An httpx client over a new lean pool, and the pool (to count its connections)."""
    pool = LeanPool(
        ssl_context=ssl_context or ssl.create_default_context(),
        max_connections=max_connections,
        max_keepalive_connections=max_idle,
        keepalive_expiry=60.0,
    )
    return httpx.AsyncClient(transport=LeanTransport(pool), timeout=10.0), pool


class ScriptedServer:
    """Answers each request on a connection with the next reply of ``replies``
    (bytes to send; ``None``: close the connection instead), on any connection.

    ``close_after``: after one reply, wait that many seconds and close the
    connection (a registry's idle timeout).
    """

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
