"""The registry client: every network call lockresolve makes goes through here.

One ``httpx.AsyncClient`` per client, shared by every task of a run; a
``CapacityLimiter`` per registry host; retries with jittered exponential
backoff shared per host; httpx errors mapped to :mod:`lockresolve.errors` in
:meth:`RegistryClient._send` and nowhere else.

Requests are built from the plain functions in :mod:`.protocol`; answers are
returned as values from :mod:`.model`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import anyio
import httpx

from lockresolve.errors import (
    AuthError,
    DigestMismatchError,
    NotFoundError,
    ProtocolError,
    RegistryError,
    TransportError,
)
from lockresolve.mediatypes import MANIFEST_ACCEPT
from lockresolve.reference import Reference
from lockresolve.registry.auth import (
    REGISTRY_EXT,
    SCOPES_EXT,
    SENT_EXT,
    CredentialSource,
    RegistryAuth,
)
from lockresolve.registry.credentials import Credential
from lockresolve.registry.httpclient import build_http_client
from lockresolve.registry.limits import HostSlot, ReleasingStream, holding, holds
from lockresolve.registry.mirrors import Hop, MirrorConfig
from lockresolve.registry.model import Descriptor, Manifest, RequestStats, sha256_digest
from lockresolve.registry.protocol import (
    MAX_MANIFEST_BYTES,
    Referrer,
    blob_path,
    is_sha256_digest,
    manifest_path,
    parse_error_body,
    parse_link_next,
    parse_referrers,
    parse_retry_after,
    parse_tag_list,
    redact_url,
    referrers_path,
    repository_scope,
    same_origin,
    tags_path,
    upload_path,
)
from lockresolve.registry.ratelimit import describe_429, parse_rate_limit
from lockresolve.registry.routing import hop_scopes, send_routed
from lockresolve.registry.transport import TransportPolicy

__all__ = ["BodyFactory", "RegistryClient", "RequestStats"]

log = logging.getLogger("lockresolve.http")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN"})
_MAX_TAG_PAGES = 10_000
# All pages of one tag listing together (1,000,000 tags of 60 characters fit).
_MAX_TAG_BYTES = 64 * 1024 * 1024
_MAX_REFERRER_PAGES = 100
_MAX_REDIRECTS = 5
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


def _refused(exc: BaseException, url: httpx.URL) -> str | None:
    """``connection refused (host:port)`` when nothing listens there; else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            port = url.port or (443 if url.scheme == "https" else 80)
            host = f"[{url.host}]" if ":" in url.host else url.host
            return f"connection refused ({host}:{port})"
        seen = seen.__cause__ or seen.__context__
    return None


def _is_tls_mismatch(exc: BaseException) -> bool:
    """A TLS handshake that failed because the server speaks plain http."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class RegistryClient:
    """Async client for OCI/Docker registries. Use as ``async with RegistryClient(...)``."""

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
        self.mirrors = mirrors or MirrorConfig()
        #: repositories written to: read from the registry itself, never a mirror
        self._write_targets: set[tuple[str, str]] = set()
        #: routed hosts that could not be reached: skipped for the rest of the run
        self._dead_mirrors: set[str] = set()
        self.stats = RequestStats()
        self.auth = RegistryAuth(credentials or _AnonymousCredentials())
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._http = build_http_client(
            self.policy,
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

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

    # -- the one place requests are sent ---------------------------------------

    def _host(self, registry: str) -> _Host:
        host = self._hosts.get(registry)
        if host is None:
            n = self.policy.concurrency
            host = self._hosts[registry] = _Host(limiter=anyio.CapacityLimiter(n), ceiling=n)
        return host

    def limiter(self, registry: str) -> anyio.CapacityLimiter:
        """The per-host concurrency limit, for callers that schedule work per host."""
        return self._host(registry).limiter

    def _backoff(self, attempt: int) -> float:
        base = min(self.policy.max_retry_wait, 0.1 * (2**attempt))
        return float(base * (0.5 + self._jitter() / 2))

    async def _wait_pause(self, host: _Host) -> None:
        delay = host.pause_until - self._clock()
        if delay > 0:
            await self._sleep(delay)

    def write_to(self, registry: str, repository: str) -> None:
        """Mark a repository as a destination: every request for it goes to the registry
        itself, never to a mirror (push, and a copy's destination)."""
        self._write_targets.add((registry, repository))

    async def _send(
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
        """:meth:`_send_direct`, through the mirrors for reads (:mod:`.mirrors`).

        Each hop is tried in turn; a 404, 401/403, 429 or 5xx (after that hop's
        retries) or a connection failure moves on to the next. The last hop's
        answer (or error) is the result.
        """
        plan = None
        if (
            not self.mirrors.empty
            and method in ("GET", "HEAD")
            and not target.startswith(("http://", "https://"))
        ):
            plan = self.mirrors.plan(registry, target, dead=self._dead_mirrors)
        if plan is None or any(
            (registry, scope.split(":")[1]) in self._write_targets
            for scope in scopes
            if scope.startswith("repository:")
        ):
            return await self._send_direct(
                method, registry, target, scopes=scopes, subject=subject, headers=headers,
                body=body, params=params, stream=stream, retry=retry, auth=auth,
            )  # fmt: skip
        if not plan:
            raise RegistryError(self.mirrors.why_none(registry, target), subject=subject)

        async def send(hop: Hop) -> httpx.Response:
            return await self._send_direct(
                method, hop.host, hop.target, scopes=hop_scopes(scopes, hop), subject=subject,
                headers=headers, params=params, stream=stream, retry=retry, auth=auth,
                scheme=hop.scheme,
            )  # fmt: skip

        return await send_routed(plan, send, self._dead_mirrors)

    async def _send_direct(
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
        scheme: str | None = None,
    ) -> httpx.Response:
        """Send one request with retries; return the final response (any status).

        ``target`` is a path on the registry or an absolute URL (upload
        locations, redirects, pagination). Transport failures that outlast the
        retries raise :class:`TransportError`.
        """
        host = self._host(registry)
        if host.refused is not None and self._clock() < host.refused_until:
            # Refused once in this run: not worth asking again (kbld gives up at once too).
            raise TransportError(
                host.refused, subject=subject, method=method, url=redact_url(target), status=None
            )
        if scheme is not None and host.scheme is None:
            host.scheme = scheme  # a mirror configured with http:// or https://
        attempts = self.policy.retries + 1 if retry else 1
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
                        request = self._http.build_request(
                            method,
                            url,
                            headers=dict(headers or {}),
                            content=body() if callable(body) else body,
                            params=params,
                            extensions={REGISTRY_EXT: registry, SCOPES_EXT: tuple(scopes)},
                        )
                        with holding(registry):
                            response = await self._http.send(
                                request, auth=self.auth if auth else None, stream=stream
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
                    if deciding and isinstance(exc, httpx.ConnectError) and _is_tls_mismatch(exc):
                        # A loopback or private registry that speaks plain http.
                        host.scheme = "http"
                        log.debug("%s does not speak TLS; using plain http", registry)
                        continue
                    last_exc = exc
                    log.debug("%s %s failed: %s", method, redact_url(url), type(exc).__name__)
                    attempt += 1
                    refused = _refused(exc, request.url)
                    if refused is not None:
                        host.refused = refused
                        host.refused_until = self._clock() + _REFUSED_MEMORY
                        raise TransportError(
                            refused, subject=subject, method=method, url=redact_url(url)
                        ) from None
                    if attempt < attempts and not isinstance(
                        exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
                    ):
                        self.stats.retries += 1
                        host.pause_until = max(
                            host.pause_until, self._clock() + self._backoff(attempt - 1)
                        )
                        continue
                    raise self._transport_error(exc, method, url, subject) from None
                if (
                    stream
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
                    wait = self._backoff(attempt - 1)
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
        raise self._transport_error(last_exc, method, target, subject)  # pragma: no cover

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

    def _transport_error(
        self, exc: BaseException | None, method: str, url: str, subject: str
    ) -> TransportError:
        reason = type(exc).__name__ if exc is not None else "no answer"
        if isinstance(exc, httpx.LocalProtocolError):
            # h11 quotes the refused header *value* (b'Bearer TOKEN\r\n'): never print it.
            reason += " (a header value the HTTP library refuses, such as a credential "
            reason += "with a line break; its value is not shown)"
        elif exc is not None and str(exc):
            reason = f"{reason}: {exc}"
        if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
            reason += (
                " (trust the registry's CA with --registry-ca-cert-path, "
                "or pass --registry-verify-certs=false)"
            )
        if "ALERT_BAD_CERTIFICATE" in str(exc) or "ALERT_CERTIFICATE_REQUIRED" in str(exc):
            reason += " (the registry wants a client certificate: --registry-client-cert)"
        return TransportError(
            reason, subject=subject, method=method, url=redact_url(url), status=None
        )

    async def _error(self, response: httpx.Response, subject: str) -> RegistryError:
        """Map an error answer to the exception tree, with the registry's own codes."""
        try:
            content = b"" if response.request.method == "HEAD" else await _read_capped(response)
        except (httpx.HTTPError, _TooLarge):
            # An unreadable or oversized body (a CDN's HTML page): the status says enough.
            content = b""
        finally:
            await response.aclose()
        details = parse_error_body(content)
        status = response.status_code
        reason = f"{status} {response.reason_phrase}".strip()
        kwargs: dict[str, Any] = {
            "subject": subject,
            "method": response.request.method,
            "url": redact_url(str(response.request.url)),
            "status": status,
            "details": details,
        }
        codes = {d.code for d in details}
        if status == 429:
            netloc = response.request.url.netloc.decode("ascii")
            return RegistryError(
                describe_429(
                    netloc,
                    parse_rate_limit(response.headers),
                    parse_retry_after(response.headers.get("retry-after")),
                ),
                **{**kwargs, "details": ()},
            )
        if status in (401, 403):
            request = response.request
            sent = request.extensions.get(SENT_EXT)
            if not isinstance(sent, str):
                sent = (
                    "credentials sent"
                    if "authorization" in request.headers
                    else "no credentials sent"
                )
            return AuthError(reason, credentials=sent, **kwargs)
        if status == 404 or codes & _NOT_FOUND_CODES:
            return NotFoundError(reason, **kwargs)
        return RegistryError(reason, **kwargs)

    # -- manifests -------------------------------------------------------------

    async def _manifest_request(
        self, method: str, ref: Reference, accept: Sequence[str] = MANIFEST_ACCEPT
    ) -> httpx.Response:
        """HEAD or GET (streamed) ``ref``'s manifest; the caller reads and closes the answer."""
        return await self._send(
            method,
            ref.registry,
            manifest_path(ref.repository, ref.identifier),
            scopes=[repository_scope(ref.repository, "pull")],
            subject=ref.original,
            headers={"Accept": ", ".join(accept)},
            stream=method == "GET",
        )

    async def _exists(self, response: httpx.Response, subject: str) -> bool:
        """A HEAD's answer: 200 is ``True``, 404 ``False``; other answers raise."""
        await response.aclose()
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise await self._error(response, subject)

    async def head_manifest(self, ref: Reference) -> Descriptor | None:
        """HEAD a manifest: its descriptor, or ``None`` when the answer carried no digest.

        Raises for errors; a 404 is followed by a GET so the error carries the
        registry's own code and message (a failing run only).
        """
        response = await self._manifest_request("HEAD", ref)
        status = response.status_code
        if status == 200:
            digest = response.headers.get("docker-content-digest", "")
            if not is_sha256_digest(digest):
                return None  # absent or not a digest: the GET hashes the content itself
            if ref.digest is not None and digest != str(ref.digest):
                raise DigestMismatchError(
                    f"the registry answered digest {digest}",
                    subject=ref.original,
                    method="HEAD",
                    url=redact_url(str(response.request.url)),
                )
            return Descriptor(
                digest=digest,
                media_type=response.headers.get("content-type", "").split(";")[0].strip(),
                size=_content_length(response),
            )
        if status in (405, 501):
            return None
        if status == 404:
            await response.aclose()
            # One GET only to learn the registry's own error code and message.
            manifest = await self.get_manifest(ref)
            return manifest.descriptor  # the tag appeared in between
        raise await self._error(response, ref.original)

    async def manifest_exists(self, ref: Reference) -> bool:
        """One HEAD: whether the manifest exists (404 is ``False``, other errors raise)."""
        return await self._exists(await self._manifest_request("HEAD", ref), ref.original)

    async def resolve(self, ref: Reference) -> Descriptor:
        """The descriptor a tag or digest points at: one HEAD, a GET only when needed."""
        descriptor = await self.head_manifest(ref)
        if descriptor is not None:
            return descriptor
        return (await self.get_manifest(ref)).descriptor

    async def get_manifest(
        self, ref: Reference, accept: Sequence[str] = MANIFEST_ACCEPT
    ) -> Manifest:
        """GET a manifest, verified against the digest asked for or announced."""
        response = await self._manifest_request("GET", ref, accept)
        if response.status_code != 200:
            raise await self._error(response, ref.original)
        url = redact_url(str(response.request.url))
        try:
            data = await _read_capped(response, MAX_MANIFEST_BYTES)
        except _TooLarge:
            raise ProtocolError(
                f"manifest larger than {MAX_MANIFEST_BYTES} bytes refused",
                subject=ref.original,
                method="GET",
                url=url,
            ) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, "GET", url, ref.original) from None
        finally:
            await response.aclose()
        digest = sha256_digest(data)
        expected = str(ref.digest) if ref.digest is not None else None
        announced = response.headers.get("docker-content-digest")
        for claimed in (expected, announced):
            if claimed and claimed.startswith("sha256:") and claimed != digest:
                raise DigestMismatchError(
                    f"manifest content hashes to {digest}, not {claimed}",
                    subject=ref.original,
                    method="GET",
                    url=url,
                )
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return Manifest(data=data, media_type=media_type or _sniff_media_type(data), digest=digest)

    async def put_manifest(
        self, registry: str, repository: str, reference: str, data: bytes, media_type: str
    ) -> str:
        """PUT a manifest under a tag or digest; returns its digest."""
        subject = f"{registry}/{repository}:{reference}"
        response = await self._send(
            "PUT",
            registry,
            manifest_path(repository, reference),
            scopes=[repository_scope(repository, "pull,push")],
            subject=subject,
            headers={"Content-Type": media_type},
            body=data,
        )
        if response.status_code not in (200, 201, 202):
            raise await self._error(response, subject)
        await response.aclose()
        digest = sha256_digest(data)
        announced = response.headers.get("docker-content-digest")
        if announced and announced != digest:
            raise DigestMismatchError(
                f"the registry stored the manifest as {announced}, expected {digest}",
                subject=subject,
            )
        return digest

    # -- blobs -----------------------------------------------------------------

    async def blob_exists(self, registry: str, repository: str, digest: str) -> bool:
        subject = f"{registry}/{repository}@{digest}"
        response = await self._send(
            "HEAD",
            registry,
            blob_path(repository, digest),
            scopes=[repository_scope(repository, "pull")],
            subject=subject,
        )
        return await self._exists(response, subject)

    async def get_blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        *,
        chunk_size: int = 1 << 20,
        size: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream a blob, verifying its digest; raises at the end on a mismatch.

        Redirects (to storage) are followed; the registry's Authorization header
        is never sent to another host (nor to another scheme). A broken transfer
        resumes with ``Range``. ``size`` is the descriptor's: a blob that would
        be longer (a ``Content-Length`` that says so, or the bytes themselves) is
        refused before the byte past it is handed out, one that ends short at
        the end. The host's concurrency slot is held until the stream is done.
        Callers must not commit what they read before the iterator finishes.
        """
        subject = f"{registry}/{repository}@{digest}"
        hasher = hashlib.sha256()
        received = 0
        resumes = 0
        while True:
            response = await self._open_blob(registry, repository, digest, subject, received)
            try:
                skip = received if response.status_code == 200 else 0
                if size is not None:
                    _check_declared_length(response, size - received + skip, size, subject)
                async for chunk in response.aiter_bytes(chunk_size):
                    if skip:
                        drop = min(skip, len(chunk))
                        chunk = chunk[drop:]
                        skip -= drop
                        if not chunk:
                            continue
                    if size is not None and received + len(chunk) > size:
                        raise ProtocolError(
                            f"blob is longer than the {size} bytes its descriptor declares",
                            subject=subject,
                            method="GET",
                            url=redact_url(str(response.request.url)),
                        )
                    hasher.update(chunk)
                    received += len(chunk)
                    yield chunk
                break
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout) as exc:
                resumes += 1
                if resumes > self.policy.retries:
                    raise self._transport_error(
                        exc, "GET", str(response.request.url), subject
                    ) from None
                log.debug("blob %s interrupted at %d bytes; resuming", digest, received)
                self.stats.retries += 1
            finally:
                await response.aclose()
        if size is not None and received != size:
            raise ProtocolError(
                f"blob ended after {received} of the {size} bytes its descriptor declares",
                subject=subject,
                method="GET",
            )
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise DigestMismatchError(
                f"blob content hashes to {actual}", subject=subject, method="GET"
            )

    async def _open_blob(
        self, registry: str, repository: str, digest: str, subject: str, offset: int
    ) -> httpx.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = await self._send(
            "GET",
            registry,
            blob_path(repository, digest),
            scopes=[repository_scope(repository, "pull")],
            subject=subject,
            headers=headers,
            stream=True,
        )
        registry_url = str(response.request.url)
        registry = _served_by(response, registry)
        for _ in range(_MAX_REDIRECTS):
            if response.status_code not in (301, 302, 303, 307, 308):
                break
            location = response.headers.get("location")
            await response.aclose()
            if not location:
                raise ProtocolError("redirect without a Location", subject=subject, method="GET")
            target = urljoin(str(response.request.url), location)
            if urlsplit(target).scheme not in ("http", "https"):
                raise ProtocolError(
                    "redirect to a non-http URL refused", subject=subject, method="GET"
                )
            same_host = same_origin(target, registry_url)
            response = await self._send(
                "GET",
                registry,
                target,
                scopes=[repository_scope(repository, "pull")],
                subject=subject,
                headers=headers,
                stream=True,
                auth=same_host,
            )
        else:
            await response.aclose()
            raise ProtocolError("too many redirects", subject=subject, method="GET")
        if response.status_code not in (200, 206):
            raise await self._error(response, subject)
        return response

    async def mount_blob(
        self, registry: str, repository: str, digest: str, from_repository: str
    ) -> str | None:
        """Cross-repository mount. ``None`` when mounted, else an upload location to use."""
        subject = f"{registry}/{repository}@{digest}"
        response = await self._send(
            "POST",
            registry,
            upload_path(repository) + "?" + urlencode({"mount": digest, "from": from_repository}),
            scopes=[
                repository_scope(repository, "pull,push"),
                repository_scope(from_repository, "pull"),
            ],
            subject=subject,
        )
        if response.status_code == 201:
            await response.aclose()
            return None
        if response.status_code == 202:
            await response.aclose()
            return self._location(response, subject)
        if response.status_code in (401, 403):
            # The token may not read the source repository (another credential or project
            # owns it): the registry refuses the mount as a whole. Upload instead.
            await response.aclose()
            log.debug("mount of %s refused (%d); uploading", digest, response.status_code)
            scopes = [repository_scope(repository, "pull,push")]
            return await self._start_upload(registry, repository, scopes, subject)
        raise await self._error(response, subject)

    async def _start_upload(
        self, registry: str, repository: str, scopes: Sequence[str], subject: str
    ) -> str:
        """POST a new upload session; its location."""
        response = await self._send(
            "POST", registry, upload_path(repository), scopes=scopes, subject=subject
        )
        await response.aclose()
        if response.status_code != 202:
            raise await self._error(response, subject)
        return self._location(response, subject)

    def _same_origin(self, registry: str, url: str) -> bool:
        """Whether ``url`` is on the registry itself (scheme, host and port): only then
        does it get the registry's credentials (upload locations, tag pages)."""
        scheme = self._host(registry).scheme or "https"
        return same_origin(url, f"{scheme}://{api_host(registry)}/")

    def _location(self, response: httpx.Response, subject: str) -> str:
        location = response.headers.get("location")
        if not location:
            raise ProtocolError("upload answer without a Location", subject=subject, method="POST")
        return str(urljoin(str(response.request.url), location))

    async def upload_blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        size: int,
        body: bytes | BodyFactory,
        *,
        location: str | None = None,
    ) -> None:
        """Upload a blob: POST, then one streaming PUT ``?digest=``; PATCH chunks as fallback.

        ``body`` must be replayable (bytes, or a factory giving a fresh stream)
        so that a failed attempt can be retried.
        """
        subject = f"{registry}/{repository}@{digest}"
        scopes = [repository_scope(repository, "pull,push")]
        attempt = 0
        reauthorised = False
        while True:
            if location is None:
                location = await self._start_upload(registry, repository, scopes, subject)
            put_url = _with_query(location, {"digest": digest})
            try:
                response = await self._send(
                    "PUT",
                    registry,
                    put_url,
                    scopes=scopes,
                    subject=subject,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                    body=body,
                    retry=False,
                    auth=self._same_origin(registry, put_url),
                )
            except TransportError:
                # A dropped or reset connection: the upload session may be gone,
                # so start a new one and send the (replayable) body again.
                if attempt >= self.policy.retries:
                    raise
                self.stats.retries += 1
                location = None
                await self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            await response.aclose()
            if response.status_code in (201, 204):
                return
            if response.status_code == 401 and callable(body) and not reauthorised:
                # The token was refused after the streamed body was sent (expired or
                # revoked mid-push); the auth flow cannot replay it. Once: a new session
                # and a fresh body, with the fresh token the flow now fetches.
                reauthorised = True
                self.stats.retries += 1
                location = None
                continue
            if response.status_code in (400, 405, 415, 501) and attempt == 0:
                codes = {d.code for d in parse_error_body(response.content or b"")}
                if response.status_code != 400 or codes & {"BLOB_UPLOAD_INVALID", "UNSUPPORTED"}:
                    await self._upload_chunked(registry, repository, digest, body, scopes, subject)
                    return
            if response.status_code in RETRY_STATUSES and attempt < self.policy.retries:
                location = None
                await self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            raise await self._error(response, subject)

    async def _upload_chunked(
        self,
        registry: str,
        repository: str,
        digest: str,
        body: bytes | BodyFactory,
        scopes: Sequence[str],
        subject: str,
        chunk_size: int = 8 << 20,
    ) -> None:
        async with self._one_slot(registry):
            await self._upload_chunks(
                registry, repository, digest, body, scopes, subject, chunk_size
            )

    @asynccontextmanager
    async def _one_slot(self, registry: str) -> AsyncIterator[None]:
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

    async def _upload_chunks(
        self,
        registry: str,
        repository: str,
        digest: str,
        body: bytes | BodyFactory,
        scopes: Sequence[str],
        subject: str,
        chunk_size: int,
    ) -> None:
        # The body (a GET stream, in a copy) is read between the PATCHes, outside any
        # request: the caller holds one slot for it all (see _one_slot).
        location = await self._start_upload(registry, repository, scopes, subject)
        offset = 0
        async for chunk in _chunks(body, chunk_size):
            response = await self._send(
                "PATCH",
                registry,
                location,
                scopes=scopes,
                subject=subject,
                auth=self._same_origin(registry, location),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
                body=chunk,
            )
            await response.aclose()
            if response.status_code != 202:
                raise await self._error(response, subject)
            offset += len(chunk)
            location = self._location(response, subject)
        response = await self._send(
            "PUT",
            registry,
            _with_query(location, {"digest": digest}),
            scopes=scopes,
            subject=subject,
            auth=self._same_origin(registry, location),
        )
        await response.aclose()
        if response.status_code not in (201, 204):
            raise await self._error(response, subject)

    # -- tags ------------------------------------------------------------------

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of a repository, following ``Link`` pagination (bounded)."""
        subject = f"{registry}/{repository}"
        target: str | None = tags_path(repository) + "?n=1000"
        seen: set[str] = set()
        tags: list[str] = []
        budget = _MAX_TAG_BYTES  # all pages together: memory stays bounded
        for _ in range(_MAX_TAG_PAGES):
            if target is None:
                return tags
            if target in seen:
                raise ProtocolError("tag listing pagination loops", subject=subject, method="GET")
            response = await self._send(
                "GET",
                registry,
                target,
                scopes=[repository_scope(repository, "pull")],
                subject=subject,
                # A Link to another host (or scheme) is followed without credentials.
                auth=not target.startswith(("http://", "https://"))
                or self._same_origin(registry, target),
                stream=True,
            )
            if response.status_code != 200:
                raise await self._error(response, subject)
            url = redact_url(str(response.request.url))
            try:
                content = await _read_capped(response, budget)
            except _TooLarge:
                raise ProtocolError(
                    f"tag listing larger than {_MAX_TAG_BYTES} bytes refused",
                    subject=subject,
                    method="GET",
                    url=url,
                ) from None
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, "GET", url, subject) from None
            finally:
                await response.aclose()
            budget -= len(content)
            try:
                tags.extend(parse_tag_list(content))
            except ValueError as exc:
                raise ProtocolError(
                    f"unreadable tag list: {exc}", subject=subject, method="GET", url=url
                ) from None
            registry = _served_by(response, registry)
            seen.add(str(response.request.url))
            target = parse_link_next(response.headers.get("link"), str(response.request.url))
        raise ProtocolError(
            f"tag listing has more than {_MAX_TAG_PAGES} pages", subject=subject, method="GET"
        )

    # -- referrers -------------------------------------------------------------

    async def referrers(
        self, registry: str, repository: str, digest: str, artifact_type: str | None = None
    ) -> tuple[Referrer, ...] | None:
        """The OCI 1.1 referrers of ``digest`` (``GET /v2/<name>/referrers/<digest>``), following
        ``Link`` pages (bounded); ``None`` when the registry does not offer the API (a 404,
        405 or 501, or an answer that is not an OCI image index). Other errors raise; an
        index with malformed entries is a :class:`ProtocolError`."""
        subject = f"{registry}/{repository}@{digest}"
        target: str | None = referrers_path(repository, digest, artifact_type)
        seen: set[str] = set()
        found: list[Referrer] = []
        for _ in range(_MAX_REFERRER_PAGES):
            if target is None:
                return tuple(found)
            if target in seen:
                raise ProtocolError("referrers pagination loops", subject=subject, method="GET")
            response = await self._send(
                "GET",
                registry,
                target,
                scopes=[repository_scope(repository, "pull")],
                subject=subject,
                headers={"Accept": "application/vnd.oci.image.index.v1+json"},
                auth=not target.startswith(("http://", "https://"))
                or self._same_origin(registry, target),
                stream=True,
            )
            url = redact_url(str(response.request.url))
            if response.status_code in (404, 405, 501) and not found:
                await response.aclose()
                return None
            if response.status_code != 200:
                raise await self._error(response, subject)
            try:
                data = await _read_capped(response, MAX_MANIFEST_BYTES)
            except _TooLarge:
                raise ProtocolError(
                    f"referrers answer larger than {MAX_MANIFEST_BYTES} bytes refused",
                    subject=subject,
                    method="GET",
                    url=url,
                ) from None
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, "GET", url, subject) from None
            finally:
                await response.aclose()
            try:
                page = parse_referrers(data)
            except ValueError as exc:
                raise ProtocolError(
                    f"referrers index is malformed: {exc}", subject=subject, method="GET", url=url
                ) from None
            if page is None:
                if found:
                    raise ProtocolError(
                        "a referrers page is not an OCI image index",
                        subject=subject,
                        method="GET",
                        url=url,
                    )
                return None
            found.extend(page)
            registry = _served_by(response, registry)
            seen.add(str(response.request.url))
            target = parse_link_next(response.headers.get("link"), str(response.request.url))
        raise ProtocolError(
            f"referrers listing has more than {_MAX_REFERRER_PAGES} pages",
            subject=subject,
            method="GET",
        )


def _content_length(response: httpx.Response) -> int:
    """The ``Content-Length`` as a size; 0 when absent or not a plain number (``-5``)."""
    declared = response.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else 0


class _TooLarge(Exception):
    pass


def _check_declared_length(response: httpx.Response, left: int, size: int, subject: str) -> None:
    """Refuse an answer whose ``Content-Length`` is more than the bytes still expected."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > left:
        raise ProtocolError(
            f"blob is {declared} bytes long by its Content-Length; its descriptor declares {size}",
            subject=subject,
            method="GET",
            url=redact_url(str(response.request.url)),
        )


def _served_by(response: httpx.Response, registry: str) -> str:
    """The host a routed request went to (a mirror, or ``registry``)."""
    return str(response.request.extensions.get(REGISTRY_EXT) or registry)


async def _read_capped(response: httpx.Response, cap: int = 64 * 1024) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise _TooLarge
    parts: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > cap:
            raise _TooLarge
        parts.append(chunk)
    return b"".join(parts)


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    sep = "&" if urlsplit(url).query else "?"
    return url + sep + urlencode(extra)


async def _chunks(body: bytes | BodyFactory, size: int) -> AsyncIterator[bytes]:
    if isinstance(body, bytes):
        for i in range(0, len(body), size):
            yield body[i : i + size]
        return
    buf = bytearray()
    async for part in body():
        buf += part
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _sniff_media_type(data: bytes) -> str:
    try:
        value = __import__("json").loads(data).get("mediaType")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
