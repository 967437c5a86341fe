"""Transport policy: which scheme a registry is spoken to with, TLS trust, proxies, pools.

The policy is a plain value; :func:`build_http_client` turns it into the one
``httpx.AsyncClient`` a run uses.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lockresolve.errors import UsageError
from lockresolve.reference import is_insecure_default

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_CONCURRENCY", "TransportPolicy", "build_http_client"]

DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class TransportPolicy:
    """How to reach registries.

    ``insecure``: ``True`` allows plain http for every registry
    (``--registry-insecure``); ``verify_certs=False`` accepts any certificate. Otherwise https is used, except that
    the hosts :func:`~lockresolve.reference.is_insecure_default` names (loopback,
    ``localhost``, ``*.localhost``, ``*.local``, RFC 1918; ggcr's ``Scheme()`` at
    both v0.19.1 and HEAD) may fall back to plain http when they do not speak TLS.
    """

    insecure: bool = False
    verify_certs: bool = True
    ca_cert_paths: tuple[Path, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 5
    max_retry_wait: float = 30.0
    extra_insecure_hosts: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.retries < 0:
            raise UsageError("the retry count cannot be negative")

    def may_use_plain_http(self, registry: str) -> bool:
        return (
            self.insecure or registry in self.extra_insecure_hosts or is_insecure_default(registry)
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.verify_certs:
            return False
        ctx = ssl.create_default_context()
        for path in self.ca_cert_paths:
            try:
                ctx.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"--registry-ca-cert-path {path}: cannot load: {exc}") from None
        return ctx


def build_http_client(
    policy: TransportPolicy,
    *,
    event_hooks: dict[str, Sequence[object]] | None = None,
) -> httpx.AsyncClient:
    """The one shared client: pool sized to the concurrency, keep-alive for the run."""
    import httpx  # here, so that runs that send no request never import it

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
    return httpx.AsyncClient(
        verify=policy.ssl_context(),
        limits=limits,
        timeout=timeout,
        follow_redirects=False,
        trust_env=True,
        event_hooks=event_hooks,  # type: ignore[arg-type]
    )
