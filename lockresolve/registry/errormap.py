"""Answers and exceptions mapped to :mod:`lockresolve.errors`: the client's one error map.

Plain functions over httpx's values: an error answer becomes a
:class:`RegistryError` (with the registry's own codes), an httpx or TLS exception
a :class:`TransportError`; neither ever quotes a credential. The helpers that read
an answer's headers and (bounded) body for the client live here too.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from lockresolve.errors import (
    AuthError,
    NotFoundError,
    ProtocolError,
    RegistryError,
    TransportError,
)
from lockresolve.registry.auth import REGISTRY_EXT, SENT_EXT
from lockresolve.registry.protocol import parse_error_body, parse_retry_after, redact_url
from lockresolve.registry.ratelimit import describe_429, parse_rate_limit

__all__ = [
    "TooLarge",
    "check_declared_length",
    "content_length",
    "error_from_response",
    "is_tls_mismatch",
    "read_capped",
    "refused",
    "served_by",
    "transport_error",
]

_NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN"})


class TooLarge(Exception):
    """A body past the cap :func:`read_capped` was given."""


def refused(exc: BaseException, url: httpx.URL) -> str | None:
    """``connection refused (host:port)`` when nothing listens there; else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            port = url.port or (443 if url.scheme == "https" else 80)
            host = f"[{url.host}]" if ":" in url.host else url.host
            return f"connection refused ({host}:{port})"
        seen = seen.__cause__ or seen.__context__
    return None


def is_tls_mismatch(exc: BaseException) -> bool:
    """A TLS handshake that failed because the server speaks plain http."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def transport_error(
    exc: BaseException | None, method: str, url: str, subject: str
) -> TransportError:
    """A failed exchange (no answer) as one line, with a hint for the usual TLS causes."""
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
    return TransportError(reason, subject=subject, method=method, url=redact_url(url), status=None)


async def error_from_response(response: httpx.Response, subject: str) -> RegistryError:
    """Map an error answer to the exception tree, with the registry's own codes."""
    try:
        content = b"" if response.request.method == "HEAD" else await read_capped(response)
    except (httpx.HTTPError, TooLarge):
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
                "credentials sent" if "authorization" in request.headers else "no credentials sent"
            )
        return AuthError(reason, credentials=sent, **kwargs)
    if status == 404 or codes & _NOT_FOUND_CODES:
        return NotFoundError(reason, **kwargs)
    return RegistryError(reason, **kwargs)


def content_length(response: httpx.Response) -> int:
    """The ``Content-Length`` as a size; 0 when absent or not a plain number (``-5``)."""
    declared = response.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else 0


def check_declared_length(response: httpx.Response, left: int, size: int, subject: str) -> None:
    """Refuse an answer whose ``Content-Length`` is more than the bytes still expected."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > left:
        raise ProtocolError(
            f"blob is {declared} bytes long by its Content-Length; its descriptor declares {size}",
            subject=subject,
            method="GET",
            url=redact_url(str(response.request.url)),
        )


def served_by(response: httpx.Response, registry: str) -> str:
    """The host a routed request went to (a mirror, or ``registry``)."""
    return str(response.request.extensions.get(REGISTRY_EXT) or registry)


async def read_capped(response: httpx.Response, cap: int = 64 * 1024) -> bytes:
    """The whole body, or :class:`TooLarge` as soon as it (or its Content-Length) passes ``cap``."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise TooLarge
    parts: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > cap:
            raise TooLarge
        parts.append(chunk)
    return b"".join(parts)
