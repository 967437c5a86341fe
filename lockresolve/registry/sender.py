"""The one place requests are sent: retries, per-host limits, scheme, mirrors, stats.

:class:`Sender` owns the run's ``httpx.AsyncClient``, a ``CapacityLimiter`` per
registry host and the retry policy (jittered exponential backoff, shared per
host); httpx's exceptions become :mod:`lockresolve.errors` here and in
:mod:`.errormap`, nowhere else. :class:`~lockresolve.registry.client.RegistryClient`
builds the registry API on it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import httpx

from lockresolve.errors import ProtocolError, RegistryError, TransportError
from lockresolve.registry.auth import REGISTRY_EXT, SCOPES_EXT, CredentialSource, RegistryAuth
from lockresolve.registry.credentials import Credential
from lockresolve.registry.errormap import (
    is_tls_mismatch,
    refused,
    transport_error,
)
from lockresolve.registry.httpclient import build_http_client
from lockresolve.registry.limits import HostSlot, ReleasingStream, holding, holds
from lockresolve.registry.model import RequestStats
from lockresolve.registry.protocol import parse_retry_after, redact_url, same_origin
from lockresolve.registry.ratelimit import parse_rate_limit
from lockresolve.registry.routing import hop_scopes, send_routed
from lockresolve.registry.transport import TransportPolicy

if TYPE_CHECKING:  # mirrors.py is imported only by runs that configure mirrors
    from lockresolve.registry.mirrors import Hop, MirrorConfig

__all__ = ["RETRY_STATUSES", "BodyFactory", "Sender", "api_host"]

log = logging.getLogger("lockresolve.http")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_START = "lockresolve.start"
# How long a refused connection is remembered: a run's worth (a long-lived library
# client tries the host again after that).
_REFUSED_MEMORY = 60.0

# A body that can be produced again for a retry: bytes, or a factory of byte streams.
BodyFactory = Callable[[], AsyncIterator[bytes]]


def api_host(registry: str) -> str:
    """Docker Hub's API lives on another host than its reference name."""
    return "registry-1.docker.io" if registry == "index.docker.io" else registry


class _AnonymousCredentials:
    def resolve(self, registry: str, repository: str | None = None) -> Credential:
        return Credential(source="the client was given no credential source")


@dataclass
class _Host:
    """Per-host state: the concurrency limit, a shared pause, and the scheme in use."""

    limiter: anyio.CapacityLimiter
    ceiling: int
    scheme: str | None = None
    scheme_lock: anyio.Lock = field(default_factory=anyio.Lock)
    pause_until: float = 0.0
    calm_streak: int = 0
    #: the message of a refused connection: requests until ``refused_until`` fail at once
    refused: str | None = None
    refused_until: float = 0.0

    def throttle(self) -> None:
        """Halve the concurrency after a 429."""
        self.limiter.total_tokens = max(1, int(self.limiter.total_tokens) // 2)
        self.calm_streak = 0

    def calm(self) -> None:
        """Let a throttled host recover one slot per 20 good answers."""
        if self.limiter.total_tokens < self.ceiling:
            self.calm_streak += 1
            if self.calm_streak >= 20:
                self.limiter.total_tokens = int(self.limiter.total_tokens) + 1
                self.calm_streak = 0


@dataclass(frozen=True)
class _Call:
    """One request as :meth:`Sender.send` was asked for it (a mirror hop is a copy)."""

    method: str
    registry: str
    #: a path on the registry, or an absolute URL (upload locations, redirects, pages)
    target: str
    scopes: Sequence[str]
    subject: str
    headers: Mapping[str, str] | None
    body: bytes | BodyFactory | None
    params: Mapping[str, str] | None
    stream: bool
    retry: bool
    auth: bool
    #: a mirror's configured scheme (http:// or https://), else decided per host
    scheme: str | None = None


class Sender:
    """Sends requests for :class:`~lockresolve.registry.client.RegistryClient`."""

    def __init__(
        self,
        policy: TransportPolicy | None = None,
        credentials: CredentialSource | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        mirrors: MirrorConfig | None = None,
    ) -> None:
        self.policy = policy or TransportPolicy()
        #: the mirrors to read through; ``None`` when there are none
        self.mirrors = mirrors if mirrors is not None and not mirrors.empty else None
        #: repositories written to: read from the registry itself, never a mirror
        self._write_targets: set[tuple[str, str]] = set()
        #: routed hosts that could not be reached: skipped for the rest of the run
        self._dead_mirrors: set[str] = set()
        self.stats = RequestStats()
        self.auth = RegistryAuth(credentials or _AnonymousCredentials())
        self.sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._http = build_http_client(
            self.policy,
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        log.debug("%s", self.stats.summary())

    # -- logging ---------------------------------------------------------------

    async def _on_request(self, request: httpx.Request) -> None:
        request.extensions[_START] = time.perf_counter()

    async def _on_response(self, response: httpx.Response) -> None:
        request = response.request
        self.stats.by_method[request.method] += 1
        netloc = request.url.netloc.decode("ascii")
        self.stats.by_host[netloc] += 1
        if "ratelimit-limit" in response.headers or "ratelimit-remaining" in response.headers:
            limit = parse_rate_limit(response.headers)
            if limit is not None:
                self.stats.rate_limits.note(netloc, limit)
        if log.isEnabledFor(logging.DEBUG):
            started = request.extensions.get(_START, time.perf_counter())
            log.debug(
                "%s %s %d %.1fms",
                request.method,
                redact_url(str(request.url)),
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )

    # -- per-host state --------------------------------------------------------

    def _host(self, registry: str) -> _Host:
        host = self._hosts.get(registry)
        if host is None:
            n = self.policy.concurrency
            host = self._hosts[registry] = _Host(limiter=anyio.CapacityLimiter(n), ceiling=n)
        return host

    def limiter(self, registry: str) -> anyio.CapacityLimiter:
        """The per-host concurrency limit, for callers that schedule work per host."""
        return self._host(registry).limiter

    def backoff(self, attempt: int) -> float:
        """The jittered wait before retry number ``attempt`` (from 0)."""
        base = min(self.policy.max_retry_wait, 0.1 * (2**attempt))
        return float(base * (0.5 + self._jitter() / 2))

    async def _wait_pause(self, host: _Host) -> None:
        delay = host.pause_until - self._clock()
        if delay > 0:
            await self.sleep(delay)

    def write_to(self, registry: str, repository: str) -> None:
        """Mark a repository as a destination: every request for it goes to the registry
        itself, never to a mirror (push, and a copy's destination)."""
        self._write_targets.add((registry, repository))

    def same_origin(self, registry: str, url: str) -> bool:
        """Whether ``url`` is on the registry itself (scheme, host and port): only then
        does it get the registry's credentials (upload locations, tag pages)."""
        scheme = self._host(registry).scheme or "https"
        return same_origin(url, f"{scheme}://{api_host(registry)}/")

    @asynccontextmanager
    async def one_slot(self, registry: str) -> AsyncIterator[None]:
        """One slot of ``registry`` for a whole exchange: every request inside it (and a
        streamed body from the same host read inside it) shares the slot."""
        if holds(registry):
            yield
            return
        slot = HostSlot(self._host(registry).limiter)
        await slot.acquire()
        try:
            with holding(registry):
                yield
        finally:
            slot.release()

    # -- the one place requests are sent ---------------------------------------

    async def send(
        self,
        method: str,
        registry: str,
        target: str,
        *,
        scopes: Sequence[str],
        subject: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | BodyFactory | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
        retry: bool = True,
        auth: bool = True,
    ) -> httpx.Response:
        """Send one request (with retries), through the mirrors for reads (:mod:`.mirrors`).

        Each hop is tried in turn; a 404, 401/403, 429 or 5xx (after that hop's
        retries) or a connection failure moves on to the next. The last hop's
        answer (or error) is the result. ``target`` is a path on the registry or
        an absolute URL (upload locations, redirects, pagination).
        """
        call = _Call(method, registry, target, scopes, subject, headers, body, params,
                     stream, retry, auth)  # fmt: skip
        plan = None
        if (
            self.mirrors is not None
            and method in ("GET", "HEAD")
            and not target.startswith(("http://", "https://"))
        ):
            plan = self.mirrors.plan(registry, target, dead=self._dead_mirrors)
        if plan is None or any(
            (registry, scope.split(":")[1]) in self._write_targets
            for scope in scopes
            if scope.startswith("repository:")
        ):
            return await self._send_direct(call)
        if not plan:
            assert self.mirrors is not None
            raise RegistryError(self.mirrors.why_none(registry, target), subject=subject)

        async def send(hop: Hop) -> httpx.Response:
            return await self._send_direct(
                dataclasses.replace(
                    call,
                    registry=hop.host,
                    target=hop.target,
                    scopes=hop_scopes(scopes, hop),
                    body=None,
                    scheme=hop.scheme,
                )
            )

        return await send_routed(plan, send, self._dead_mirrors)

    async def _send_direct(self, call: _Call) -> httpx.Response:
        """Send one request to one host with retries; the final response (any status).

        Transport failures that outlast the retries raise :class:`TransportError`.
        """
        method, registry, target, subject = call.method, call.registry, call.target, call.subject
        host = self._host(registry)
        if host.refused is not None and self._clock() < host.refused_until:
            # Refused once in this run: not worth asking again (kbld gives up at once too).
            raise TransportError(
                host.refused, subject=subject, method=method, url=redact_url(target), status=None
            )
        if call.scheme is not None and host.scheme is None:
            host.scheme = call.scheme  # a mirror configured with http:// or https://
        attempts = self.policy.retries + 1 if call.retry else 1
        last_exc: BaseException | None = None
        attempt = 0
        while attempt < attempts:
            await self._wait_pause(host)
            # Inside a request to this host already (the GET that is the body of a PUT on
            # the same registry): share that slot; waiting for a second one could deadlock.
            slot = None if holds(registry) else HostSlot(host.limiter)
            if slot is not None:
                await slot.acquire()
            kept = False
            try:
                scheme, deciding = await self._scheme(registry, host)
                url = (
                    target
                    if target.startswith(("http://", "https://"))
                    else f"{scheme}://{api_host(registry)}{target}"
                )
                try:
                    try:
                        body = call.body
                        request = self._http.build_request(
                            method,
                            url,
                            headers=dict(call.headers or {}),
                            content=body() if callable(body) else body,
                            params=call.params,
                            extensions={REGISTRY_EXT: registry, SCOPES_EXT: tuple(call.scopes)},
                        )
                        with holding(registry):
                            response = await self._http.send(
                                request, auth=self.auth if call.auth else None, stream=call.stream
                            )
                        if deciding:
                            host.scheme = scheme
                    finally:
                        if deciding:
                            host.scheme_lock.release()
                except (httpx.InvalidURL, UnicodeError) as exc:
                    # A host httpx cannot put in a URL (not IDNA-encodable): that request fails.
                    raise ProtocolError(
                        f"cannot send a request to {redact_url(url)!r}: "
                        f"{str(exc) or type(exc).__name__}",
                        subject=subject,
                        method=method,
                    ) from None
                except (httpx.HTTPError, ssl.SSLError) as exc:  # a TLS alert on read is raw
                    if deciding and isinstance(exc, httpx.ConnectError) and is_tls_mismatch(exc):
                        # A loopback or private registry that speaks plain http.
                        host.scheme = "http"
                        log.debug("%s does not speak TLS; using plain http", registry)
                        continue
                    last_exc = exc
                    log.debug("%s %s failed: %s", method, redact_url(url), type(exc).__name__)
                    attempt += 1
                    why = refused(exc, request.url)
                    if why is not None:
                        host.refused = why
                        host.refused_until = self._clock() + _REFUSED_MEMORY
                        raise TransportError(
                            why, subject=subject, method=method, url=redact_url(url)
                        ) from None
                    if attempt < attempts and not isinstance(
                        exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
                    ):
                        self.stats.retries += 1
                        host.pause_until = max(
                            host.pause_until, self._clock() + self.backoff(attempt - 1)
                        )
                        continue
                    raise transport_error(exc, method, url, subject) from None
                if (
                    call.stream
                    and slot is not None
                    and isinstance(response.stream, httpx.AsyncByteStream)
                ):
                    # Keep the slot until the body is read and closed: --concurrency
                    # bounds streamed transfers, not only their first bytes.
                    response.stream = ReleasingStream(response.stream, slot.release)
                    kept = True
            finally:
                if slot is not None and not kept:
                    slot.release()
            attempt += 1
            if response.status_code in RETRY_STATUSES and attempt < attempts:
                wait = parse_retry_after(response.headers.get("retry-after"))
                if (
                    response.status_code == 429
                    and wait is not None
                    and (wait > self.policy.max_retry_wait)
                ):
                    return response  # a quota that resets later than any retry would wait
                if wait is None:
                    wait = self.backoff(attempt - 1)
                wait = min(wait, self.policy.max_retry_wait)
                if response.status_code == 429:
                    host.throttle()
                host.pause_until = max(host.pause_until, self._clock() + wait)
                self.stats.retries += 1
                await response.aclose()
                continue
            if response.status_code < 400:
                host.calm()
            return response
        raise transport_error(last_exc, method, target, subject)  # pragma: no cover

    async def _scheme(self, registry: str, host: _Host) -> tuple[str, bool]:
        """The scheme to use, and whether this request decides it (then it holds the lock).

        Loopback and private hosts are tried with https first and fall back to
        plain http; the first request decides, the others wait for it.
        """
        if host.scheme is not None:
            return host.scheme, False
        if not self.policy.may_use_plain_http(registry):
            host.scheme = "https"
            return host.scheme, False
        await host.scheme_lock.acquire()
        if host.scheme is not None:
            host.scheme_lock.release()
            return host.scheme, False
        return "https", True
