"""A fault-injecting HTTP/1.1 proxy for tests and benchmarks.

:class:`FaultProxy` listens on 127.0.0.1 and forwards to a plain-http upstream (a test
registry), streaming bodies both ways (Content-Length, chunked, or read-to-close), with
keep-alive on both sides. It runs its own asyncio loop in a background thread, so it works
the same from sync tests, async tests and benchmark scripts::

    plan = FaultPlan(sequence=[Fault.unavailable(), None, Fault.too_many_requests(2)])
    with FaultProxy(registry.url, plan=plan, delay=0.04) as proxy:
        client.get(f"{proxy.url}/v2/")        # 503
        proxy.request_count, proxy.fault_count, proxy.faults_by_kind

It is also a forward proxy: a request line in absolute form (``GET http://h:p/x HTTP/1.1``,
what a client configured with ``HTTP_PROXY`` sends) is forwarded to ``h:p`` and counted in
:attr:`FaultProxy.absolute_form_count`; ``CONNECT h:p`` opens a blind tunnel (for
``HTTPS_PROXY``), counted in :attr:`FaultProxy.connect_count`.

Non-HTTP bytes (a TLS ClientHello from a Go client probing https first) get an immediate
``400`` and the connection is closed, so such clients fall back instead of hanging.

Faults (:class:`Fault`): an error status (503, 429 with ``Retry-After`` in seconds or as an
HTTP-date, anything else), closing without an answer, a TCP reset after reading the
request, truncating the response body, an extra delay, or extra response headers
(Docker Hub's ``RateLimit-*``, on a 429 or on a forwarded answer). A :class:`FaultPlan` gives a
deterministic sequence and/or a seeded random rate, optionally limited to some methods or
paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import json
import random
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.support.requestlog import RequestLog

__all__ = ["Fault", "FaultKind", "FaultPlan", "FaultProxy", "ProxiedRequest"]

FaultKind = Literal["status", "close", "reset", "truncate", "delay", "headers"]

_MAX_HEAD = 1 << 20
_CHUNK = 1 << 16
_IDLE_TIMEOUT = 120.0
_HOP_BY_HOP_DROP = {"proxy-connection", "proxy-authorization", "expect", "keep-alive"}


@dataclass(frozen=True)
class Fault:
    """One injected fault. Build with the class methods."""

    kind: FaultKind
    status: int = 503
    #: for ``status``: ``Retry-After`` seconds (sent as an integer, or as an HTTP-date
    #: that far in the future when ``http_date``)
    retry_after: float | None = None
    http_date: bool = False
    #: for ``delay``: extra seconds before forwarding
    seconds: float = 0.0
    #: for ``truncate``: how many response body bytes to pass before cutting the connection
    after_bytes: int = 0
    #: for ``status``: a JSON error code for the body
    code: str = "UNAVAILABLE"
    #: for ``status``: when > 0, an HTML page of this many bytes instead of the JSON body
    #: (a CDN's or load balancer's error page)
    html_size: int = 0
    #: for ``status`` and ``headers``: extra response headers (Docker Hub's ``RateLimit-*``)
    extra_headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def unavailable(cls, retry_after: float | None = None, *, http_date: bool = False) -> Fault:
        """503 Service Unavailable."""
        return cls("status", 503, retry_after, http_date, code="UNAVAILABLE")

    @classmethod
    def too_many_requests(cls, retry_after: float | None = 1, *, http_date: bool = False) -> Fault:
        """429 Too Many Requests with ``Retry-After`` (seconds, or an HTTP-date)."""
        return cls("status", 429, retry_after, http_date, code="TOOMANYREQUESTS")

    @classmethod
    def rate_limited(
        cls,
        retry_after: float | None,
        *,
        limit: str = "100;w=21600",
        remaining: str = "0;w=21600",
        source: str = "127.0.0.1",
    ) -> Fault:
        """Docker Hub's 429: ``TOOMANYREQUESTS`` with ``RateLimit-*`` and ``Retry-After``."""
        return cls(
            "status",
            429,
            retry_after,
            code="TOOMANYREQUESTS",
            extra_headers=_rate_headers(limit, remaining, source),
        )

    @classmethod
    def headers(cls, *pairs: tuple[str, str]) -> Fault:
        """Forward normally and add these headers to the answer."""
        return cls("headers", extra_headers=tuple(pairs))

    @classmethod
    def rate_limit_headers(
        cls, remaining: int, *, limit: int = 100, window: int = 21600, source: str = "127.0.0.1"
    ) -> Fault:
        """Forward normally, answering with Docker Hub's rate-limit headers."""
        return cls.headers(*_rate_headers(f"{limit};w={window}", f"{remaining};w={window}", source))

    @classmethod
    def error(
        cls,
        status: int,
        retry_after: float | None = None,
        *,
        code: str = "UNKNOWN",
        html_size: int = 0,
    ) -> Fault:
        """Any status answered by the proxy instead of the upstream (``html_size``: an HTML
        page of that many bytes as the body)."""
        return cls("status", status, retry_after, code=code, html_size=html_size)

    @classmethod
    def close(cls) -> Fault:
        """Close the connection right after reading the request head, without answering."""
        return cls("close")

    @classmethod
    def reset(cls) -> Fault:
        """Read the whole request, then reset the connection (RST)."""
        return cls("reset")

    @classmethod
    def truncate(cls, after_bytes: int = 0) -> Fault:
        """Forward, but cut the connection after ``after_bytes`` of the response body."""
        return cls("truncate", after_bytes=after_bytes)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Forward normally after an extra ``seconds``."""
        return cls("delay", seconds=seconds)

    def retry_after_header(self) -> str | None:
        if self.retry_after is None:
            return None
        if self.http_date:
            when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.retry_after)
            return email.utils.format_datetime(when, usegmt=True)
        return str(round(self.retry_after))


def _rate_headers(limit: str, remaining: str, source: str) -> tuple[tuple[str, str], ...]:
    return (
        ("RateLimit-Limit", limit),
        ("RateLimit-Remaining", remaining),
        ("Docker-RateLimit-Source", source),
    )


@dataclass
class FaultPlan:
    """Which requests get which faults.

    Eligible requests (matching ``methods`` and ``path_contains``, when given) first
    consume ``sequence`` one entry each (``None`` = pass through); after it, each gets a
    fault with probability ``rate``, drawn from ``choices`` by a ``random.Random(seed)``.
    At most ``max_faults`` faults are injected in total (None = no limit).
    """

    sequence: Sequence[Fault | None] = ()
    rate: float = 0.0
    choices: Sequence[Fault] = (Fault.unavailable(),)
    seed: int = 0
    methods: frozenset[str] | set[str] | None = None
    path_contains: str | None = None
    max_faults: int | None = None
    #: only requests whose ``Content-Length`` is larger than this (e.g. a layer's PUT, not
    #: a config's)
    content_length_over: int | None = None

    def matches(self, method: str, path: str, content_length: int = 0) -> bool:
        if self.methods is not None and method.upper() not in {m.upper() for m in self.methods}:
            return False
        if self.content_length_over is not None and content_length <= self.content_length_over:
            return False
        return self.path_contains is None or self.path_contains in path


@dataclass
class ProxiedRequest:
    """One request the proxy received."""

    connection_id: int
    method: str
    #: the request target as received (absolute form for proxied requests)
    target: str
    #: the origin-form path (with query) forwarded upstream
    path: str
    #: where it was sent: "host:port"
    upstream: str
    absolute_form: bool
    fault: FaultKind | None = None
    #: the status the client got (None: connection dropped, or tunnel)
    status: int | None = None
    request_body_bytes: int = 0
    response_body_bytes: int = 0
    time: float = field(default_factory=time.time)


class _BadRequest(Exception):
    pass


@dataclass
class _Head:
    first_line: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def has_token(self, name: str, token: str) -> bool:
        lname = name.lower()
        return any(
            token in (t.strip().lower() for t in value.split(","))
            for key, value in self.headers
            if key.lower() == lname
        )


def _parse_head(raw: bytes) -> _Head:
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes anything
        raise _BadRequest(str(exc)) from exc
    lines = text.split("\r\n")
    first = lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(f"bad header line {line!r}")
        headers.append((name, value.strip()))
    return _Head(first, headers)


def _body_framing(head: _Head) -> tuple[str, int]:
    """("chunked", 0) | ("length", n) | ("none", 0) for a request."""
    te = head.get("Transfer-Encoding")
    if te is not None and "chunked" in te.lower():
        return "chunked", 0
    cl = head.get("Content-Length")
    if cl is not None:
        try:
            return "length", int(cl.split(",")[0].strip())
        except ValueError as exc:
            raise _BadRequest("bad Content-Length") from exc
    return "none", 0


class _Upstream:
    def __init__(
        self, key: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.key = key
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class FaultProxy(RequestLog[ProxiedRequest]):
    """See the module docs. ``upstream`` is the default target for origin-form requests
    (``http://host:port``; None makes a pure forward proxy)."""

    def __init__(
        self,
        upstream: str | None = None,
        plan: FaultPlan | None = None,
        *,
        delay: float = 0.0,
        allow_connect: bool = True,
        decline_mounts: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream: tuple[str, int] | None = None
        if upstream is not None:
            parts = urllib.parse.urlsplit(upstream if "://" in upstream else f"http://{upstream}")
            if parts.scheme != "http":
                raise ValueError("FaultProxy forwards to plain-http upstreams only")
            self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        #: seconds added before forwarding each request (e.g. 0.04 for a 40 ms round trip)
        self.delay = delay
        self.allow_connect = allow_connect
        #: forward a cross-repository mount POST (``?mount=&from=``) as a plain upload start,
        #: so the registry answers 202 with an upload session, as a registry that declines
        #: the mount does (across projects, or a blob the caller may not read)
        self.decline_mounts = decline_mounts
        self.mounts_declined = 0
        self._bind = (host, port)
        self.port = 0
        self._lock = threading.Lock()
        self._plan = plan or FaultPlan()
        self._plan_index = 0
        self._plan_faults = 0
        self._rng = random.Random(self._plan.seed)
        self._requests: list[ProxiedRequest] = []
        self._faults: Counter[str] = Counter()
        self._non_http = 0
        self._connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- public API -------------------------------------------------------------------

    @property
    def host(self) -> str:
        """ "127.0.0.1:PORT" (what a client puts in an image reference)."""
        return f"{self._bind[0]}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        self.set_plan(plan)

    def set_plan(self, plan: FaultPlan | None) -> None:
        """Replace the plan (its sequence and random state start over)."""
        with self._lock:
            self._plan = plan or FaultPlan()
            self._plan_index = 0
            self._plan_faults = 0
            self._rng = random.Random(self._plan.seed)

    @property
    def request_count(self) -> int:
        """Requests received (including CONNECTs and faulted ones)."""
        with self._lock:
            return len(self._requests)

    def count_requests(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        *,
        status: int | None = None,
        since: int = 0,
    ) -> int:
        """Requests received (after ``since``, a :meth:`mark`), optionally filtered by
        method, a path containing ``path_contains``, or the status the client got."""
        return self._count_where(
            since,
            lambda req: (
                (method is None or req.method == method.upper())
                and (path_contains is None or path_contains in req.path)
                and (status is None or req.status == status)
            ),
        )

    @property
    def fault_count(self) -> int:
        """Faults injected (``delay`` faults included)."""
        with self._lock:
            return sum(n for kind, n in self._faults.items() if ":" not in kind)

    @property
    def faults_by_kind(self) -> dict[str, int]:
        """Faults injected per kind; ``status`` faults are also counted as ``status:<code>``."""
        with self._lock:
            return dict(self._faults)

    @property
    def absolute_form_count(self) -> int:
        """Requests that arrived in absolute form (the client used us as its HTTP proxy)."""
        return sum(1 for r in self.requests if r.absolute_form)

    @property
    def connect_count(self) -> int:
        """CONNECT tunnels requested (the client used us as its HTTPS proxy)."""
        return sum(1 for r in self.requests if r.method == "CONNECT")

    @property
    def non_http_count(self) -> int:
        """Connections that opened with non-HTTP bytes (e.g. a TLS ClientHello)."""
        with self._lock:
            return self._non_http

    @property
    def connection_count(self) -> int:
        """Client connections accepted."""
        with self._lock:
            return self._connections

    def reset_counts(self) -> None:
        """Forget recorded requests and counters (the plan position is kept)."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._non_http = 0
            self._connections = 0

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _startup(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self._bind[0], self._bind[1], limit=_MAX_HEAD
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    # -- plan -----------------------------------------------------------------------

    def _decide(self, method: str, path: str, content_length: int = 0) -> Fault | None:
        with self._lock:
            plan = self._plan
            if not plan.matches(method, path, content_length):
                return None
            if plan.max_faults is not None and self._plan_faults >= plan.max_faults:
                return None
            fault: Fault | None = None
            if self._plan_index < len(plan.sequence):
                fault = plan.sequence[self._plan_index]
                self._plan_index += 1
            elif plan.rate > 0 and plan.choices and self._rng.random() < plan.rate:
                fault = self._rng.choice(list(plan.choices))
            if fault is not None:
                self._plan_faults += 1
                self._faults[fault.kind] += 1
                if fault.kind == "status":
                    self._faults[f"status:{fault.status}"] += 1
            return fault

    # -- connection handling ---------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._lock:
            self._connections += 1
            conn_id = self._connections
        upstream: _Upstream | None = None
        try:
            first = True
            while True:
                head_bytes = await self._read_head(reader, writer, first)
                if head_bytes is None:
                    return
                first = False
                try:
                    head = _parse_head(head_bytes[:-4])
                    upstream, keep = await self._serve_one(conn_id, head, reader, writer, upstream)
                except _BadRequest:
                    await self._send_simple(writer, 400, "Bad Request", close=True)
                    return
                if not keep:
                    return
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
        ):
            return
        except asyncio.CancelledError:
            return
        finally:
            if upstream is not None:
                upstream.close()
            with contextlib.suppress(Exception):
                writer.close()
            self._tasks.discard(task)

    async def _read_head(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bool
    ) -> bytes | None:
        try:
            lead = await asyncio.wait_for(reader.read(1), _IDLE_TIMEOUT)
        except TimeoutError:
            return None
        if not lead:
            return None
        if not (b"A" <= lead <= b"Z"):
            # A TLS ClientHello (0x16) or other non-HTTP bytes: answer at once and close.
            if first:
                with self._lock:
                    self._non_http += 1
            await self._send_simple(writer, 400, "Bad Request", close=True)
            return None
        try:
            rest = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            await self._send_simple(writer, 400, "Bad Request", close=True)
            return None
        return lead + rest

    async def _send_simple(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        reason: str,
        *,
        close: bool,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        head_only: bool = False,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"]
        for key, value in headers or []:
            lines.append(f"{key}: {value}")
        lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head_only:
            data += body
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()

    async def _serve_one(
        self,
        conn_id: int,
        head: _Head,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: _Upstream | None,
    ) -> tuple[_Upstream | None, bool]:
        """Handle one request. Returns (upstream connection to keep, keep client alive)."""
        parts = head.first_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(head.first_line)
        method, target, version = parts
        client_close = head.has_token("Connection", "close") or (
            version == "HTTP/1.0" and not head.has_token("Connection", "keep-alive")
        )

        absolute = False
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            try:
                dest = (host.strip("[]"), int(port_text))
            except ValueError as exc:
                raise _BadRequest(target) from exc
            path = target
        elif target.startswith(("http://", "https://")):
            absolute = True
            split = urllib.parse.urlsplit(target)
            default_port = 443 if split.scheme == "https" else 80
            dest = (split.hostname or "", split.port or default_port)
            path = urllib.parse.urlunsplit(("", "", split.path or "/", split.query, ""))
        elif target.startswith("/"):
            if self.upstream is None:
                await self._send_simple(writer, 502, "Bad Gateway", close=True)
                return upstream, False
            dest = self.upstream
            path = target
        else:
            raise _BadRequest(target)

        if self.decline_mounts and method == "POST" and "/blobs/uploads/" in path:
            base, _, query = path.partition("?")
            kept = [
                (k, v)
                for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
                if k not in ("mount", "from")
            ]
            if len(kept) != len(urllib.parse.parse_qsl(query, keep_blank_values=True)):
                with self._lock:
                    self.mounts_declined += 1
            path = base + ("?" + urllib.parse.urlencode(kept) if kept else "")

        record = ProxiedRequest(
            connection_id=conn_id,
            method=method,
            target=target,
            path=path,
            upstream=f"{dest[0]}:{dest[1]}",
            absolute_form=absolute,
        )
        with self._lock:
            self._requests.append(record)
        declared = head.get("Content-Length") or ""
        fault = self._decide(method, path, int(declared) if declared.isdigit() else 0)
        record.fault = fault.kind if fault else None

        wait = self.delay + (fault.seconds if fault is not None and fault.kind == "delay" else 0.0)
        if wait > 0:
            await asyncio.sleep(wait)

        framing, length = _body_framing(head) if method != "CONNECT" else ("none", 0)

        if fault is not None and fault.kind == "close":
            return upstream, False
        if fault is not None and fault.kind in ("reset", "status"):
            await self._drain_body(reader, framing, length, None, record)
            if fault.kind == "reset":
                self._abort(writer)
                return upstream, False
            status = fault.status
            body = json.dumps(
                {"errors": [{"code": fault.code, "message": f"injected {status}", "detail": None}]}
            ).encode()
            extra = [("Content-Type", "application/json"), *fault.extra_headers]
            if fault.html_size > 0:
                page = b"<html><body>" + b"<p>not here</p>" * (fault.html_size // 15 + 1)
                body = page[: fault.html_size - 14] + b"</body></html>"
                extra = [("Content-Type", "text/html"), *fault.extra_headers]
            retry = fault.retry_after_header()
            if retry is not None:
                extra.append(("Retry-After", retry))
            record.status = status
            await self._send_simple(
                writer,
                status,
                _reason(status),
                close=client_close,
                headers=extra,
                body=body,
                head_only=method == "HEAD",
            )
            return upstream, not client_close

        if method == "CONNECT":
            if not self.allow_connect:
                record.status = 405
                await self._send_simple(writer, 405, "Method Not Allowed", close=True)
                return upstream, False
            await self._tunnel(dest, reader, writer, record)
            return upstream, False

        # Forward to the upstream.
        if upstream is not None and (upstream.key != dest or not upstream.usable()):
            upstream.close()
            upstream = None
        if upstream is None:
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    dest[0], dest[1], limit=_MAX_HEAD
                )
            except OSError:
                await self._drain_body(reader, framing, length, None, record)
                record.status = 502
                await self._send_simple(writer, 502, "Bad Gateway", close=True)
                return None, False
            upstream = _Upstream(dest, up_reader, up_writer)

        if head.get("Expect") is not None and "100-continue" in (head.get("Expect") or "").lower():
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()

        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in head.headers if k.lower() not in _HOP_BY_HOP_DROP]
        if head.get("Host") is None:
            lines.append(f"Host: {dest[0]}:{dest[1]}")
        upstream.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self._drain_body(reader, framing, length, upstream.writer, record)
        await upstream.writer.drain()

        # Response head(s).
        try:
            while True:
                raw = await upstream.reader.readuntil(b"\r\n\r\n")
                resp = _parse_head(raw[:-4])
                status = int(resp.first_line.split(" ", 2)[1])
                if 100 <= status < 200 and status != 101:
                    continue  # interim responses are not relayed
                break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError, _BadRequest):
            upstream.close()
            record.status = 502
            await self._send_simple(writer, 502, "Bad Gateway", close=True)
            return None, False
        record.status = status

        if method == "HEAD" or status in (204, 304):
            rframing, rlength = "none", 0
        else:
            rframing, rlength = _body_framing(resp)
            if rframing == "none":
                rframing = "eof"
        upstream_close = resp.has_token("Connection", "close") or rframing == "eof"

        truncate = fault.after_bytes if fault is not None and fault.kind == "truncate" else None
        if fault is not None and fault.kind == "headers":
            added = "".join(f"{k}: {v}\r\n" for k, v in fault.extra_headers)
            raw = raw[:-2] + added.encode("latin-1") + b"\r\n"
        writer.write(raw)
        if truncate is not None and rframing != "none":
            await self._copy_body(
                upstream.reader, writer, rframing, rlength, record, limit=truncate
            )
            await writer.drain()
            upstream.close()
            self._abort(writer)
            return None, False
        await self._copy_body(upstream.reader, writer, rframing, rlength, record, limit=None)
        await writer.drain()
        if upstream_close:
            upstream.close()
            return None, False
        if truncate is not None:
            self._abort(writer)
            return upstream, False
        return upstream, not client_close

    async def _drain_body(
        self,
        reader: asyncio.StreamReader,
        framing: str,
        length: int,
        dest: asyncio.StreamWriter | None,
        record: ProxiedRequest,
    ) -> None:
        """Read a request body, forwarding it to ``dest`` when given."""
        counter = [0]
        await _copy_framed(reader, dest, framing, length, counter, limit=None)
        record.request_body_bytes = counter[0]

    async def _copy_body(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        framing: str,
        length: int,
        record: ProxiedRequest,
        *,
        limit: int | None,
    ) -> None:
        counter = [0]
        try:
            await _copy_framed(reader, writer, framing, length, counter, limit=limit)
        finally:
            record.response_body_bytes = counter[0]

    async def _tunnel(
        self,
        dest: tuple[str, int],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: ProxiedRequest,
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(dest[0], dest[1])
        except OSError:
            record.status = 502
            await self._send_simple(writer, 502, "Bad Gateway", close=True)
            return
        record.status = 200
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(_CHUNK):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    if dst.can_write_eof():
                        dst.write_eof()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()

    @staticmethod
    def _abort(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


async def _copy_framed(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter | None,
    framing: str,
    length: int,
    counter: list[int],
    *,
    limit: int | None,
) -> None:
    """Copy one message body as framed (verbatim, chunk framing included); count payload
    bytes in ``counter[0]``; stop after ``limit`` payload bytes when given."""

    def emit(data: bytes) -> bool:
        """Write ``data``; False once the limit is reached."""
        if limit is not None:
            room = limit - counter[0]
            if room <= 0:
                return False
            data = data[:room]
        counter[0] += len(data)
        if writer is not None:
            writer.write(data)
        return limit is None or counter[0] < limit

    async def flush() -> None:
        if writer is not None:
            await writer.drain()

    async def relay(remaining: int) -> bool:
        """Pass ``remaining`` bytes on; False once the limit has stopped the copy."""
        while remaining > 0:
            data = await reader.read(min(_CHUNK, remaining))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
            if not emit(data):
                return False
            await flush()
        return True

    if framing == "none":
        return
    if framing == "length":
        await relay(length)
        return
    if framing == "eof":
        while data := await reader.read(_CHUNK):
            if not emit(data):
                return
            await flush()
        return
    # chunked: pass the framing through verbatim
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequest("bad chunk size") from exc
        if writer is not None:
            writer.write(size_line)
        if size == 0:
            # trailers up to the empty line
            while True:
                line = await reader.readuntil(b"\r\n")
                if writer is not None:
                    writer.write(line)
                if line == b"\r\n":
                    break
            await flush()
            return
        if not await relay(size):
            return
        crlf = await reader.readexactly(2)
        if writer is not None:
            writer.write(crlf)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
