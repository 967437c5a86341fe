"""The one ``httpx.AsyncClient`` a run uses, built from a :class:`TransportPolicy`.

Direct connections go through :mod:`lockresolve.registry.pool`; when the
environment names a proxy (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, with
``NO_PROXY``), httpx's own transports are used instead, since httpx reads those
variables only when it builds its transports itself.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from http.cookiejar import CookieJar
from typing import Any
from urllib.request import getproxies, proxy_bypass

import httpx

from lockresolve.registry.pool import LeanPool, LeanTransport
from lockresolve.registry.transport import TransportPolicy

__all__ = ["build_http_client"]


class _NoCookies(CookieJar):
    """A jar that keeps nothing: registry clients send no cookies.

    Go's ``http.Client`` without a ``Jar`` (what go-containerregistry, kbld and
    imgpkg use) ignores ``Set-Cookie``; so does this. It also spares httpx's
    cookie parsing on every response.
    """

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def _tls_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    return httpx.create_ssl_context(verify=verify)


def _env_proxy(proxies: dict[str, str], host: str) -> str | None:
    """The proxy the environment names for ``https://host``, as httpx would pick it."""
    if proxy_bypass(host.rsplit(":", 1)[0]) or proxy_bypass(host):
        return None
    return proxies.get("https") or proxies.get("all")


def build_http_client(
    policy: TransportPolicy,
    *,
    event_hooks: dict[str, Sequence[object]] | None = None,
) -> httpx.AsyncClient:
    """The one shared client: pool sized to the concurrency, keep-alive for the run."""
    limits = httpx.Limits(
        max_connections=max(policy.concurrency * 4, 16),
        max_keepalive_connections=max(policy.concurrency * 4, 16),
        keepalive_expiry=300.0,
    )
    timeout = httpx.Timeout(
        connect=policy.connect_timeout,
        read=policy.read_timeout,
        write=policy.read_timeout,
        pool=None,
    )
    # The lean pool builds the default TLS context when an https connection first
    # needs one; CA files and --registry-verify-certs=false are read at once, so
    # that a bad file is reported before any request.
    proxies = getproxies()
    proxied = any(proxies.get(key) for key in ("http", "https", "all"))
    verify: ssl.SSLContext | bool = True
    transport: httpx.AsyncBaseTransport | None = None
    if proxied or policy.custom_tls:
        verify = policy.ssl_context()

    def lean(context: ssl.SSLContext | Callable[[], ssl.SSLContext]) -> LeanTransport:
        return LeanTransport(
            LeanPool(
                ssl_context=context,
                max_connections=limits.max_connections or 1,
                max_keepalive_connections=limits.max_keepalive_connections or 0,
                keepalive_expiry=limits.keepalive_expiry or 0.0,
            )
        )

    if not proxied:
        transport = lean(policy.default_ssl_context if verify is True else _tls_context(verify))
    # Hosts with TLS settings of their own (hosts.toml ca/client/skip_verify) get
    # their own pool (or proxied transport) with their own context.
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
    for host, tls in policy.host_tls:
        context = policy.host_ssl_context(tls)
        if proxied:
            mounts[f"https://{host}"] = httpx.AsyncHTTPTransport(
                verify=context, limits=limits, proxy=_env_proxy(proxies, host)
            )
        else:
            mounts[f"https://{host}"] = lean(context)
    return httpx.AsyncClient(
        transport=transport,
        mounts=mounts or None,
        verify=verify,
        limits=limits,
        timeout=timeout,
        cookies=_NoCookies(),
        follow_redirects=False,
        trust_env=True,
        event_hooks=event_hooks,  # type: ignore[arg-type]
    )
