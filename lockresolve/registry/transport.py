"""Transport policy: which scheme a registry is spoken to with, TLS trust, proxies, pools.

The policy is a plain value; :func:`lockresolve.registry.httpclient.build_http_client`
turns it into the one ``httpx.AsyncClient`` a run uses.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from lockresolve.errors import UsageError
from lockresolve.reference import is_insecure_default

__all__ = ["DEFAULT_CONCURRENCY", "RESOLVE_CONCURRENCY", "TransportPolicy"]

#: requests in flight per registry host, for the bundle commands (blobs and manifests)
DEFAULT_CONCURRENCY = 16
#: for resolving, which sends only manifest HEADs: small requests, so more may be in
#: flight. At 40 ms a round trip, 16 at once cap a run at 400 HEADs a second; a 429
#: halves the limit for that host, which grows back by one per 20 good answers.
RESOLVE_CONCURRENCY = 32


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
        ctx = self.default_ssl_context()
        for path in self.ca_cert_paths:
            try:
                ctx.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"--registry-ca-cert-path {path}: cannot load: {exc}") from None
        return ctx

    @staticmethod
    def default_ssl_context() -> ssl.SSLContext:
        """The system's trust store, as Go's crypto/tls uses it."""
        return ssl.create_default_context()
