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

__all__ = [
    "DEFAULT_CONCURRENCY",
    "RESOLVE_CONCURRENCY",
    "HostTLS",
    "TransportPolicy",
    "client_pair_problem",
]

#: requests in flight per registry host, for the bundle commands (blobs and manifests)
DEFAULT_CONCURRENCY = 16
#: for resolving, which sends only manifest HEADs: small requests, so more may be in
#: flight. At 40 ms a round trip, 16 at once cap a run at 400 HEADs a second; a 429
#: halves the limit for that host, which grows back by one per 20 good answers.
RESOLVE_CONCURRENCY = 32


@dataclass(frozen=True)
class HostTLS:
    """TLS settings of one host (containerd ``hosts.toml``, registries.conf ``insecure``).

    ``client_pairs``: (certificate, key) files; a ``None`` key means the key is in
    the certificate's file. ``plain_http``: plain http is allowed too.
    ``origin`` names the file and entry, for messages.
    """

    ca_files: tuple[Path, ...] = ()
    client_pairs: tuple[tuple[Path, Path | None], ...] = ()
    skip_verify: bool = False
    plain_http: bool = False
    origin: str = ""


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
    #: ``--registry-client-cert`` / ``--registry-client-key`` (mutual TLS, every host)
    client_cert: Path | None = None
    client_key: Path | None = None
    #: per-host TLS settings, by host ("host:port"), in addition to the above
    host_tls: tuple[tuple[str, HostTLS], ...] = ()

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.retries < 0:
            raise UsageError("the retry count cannot be negative")

    def may_use_plain_http(self, registry: str) -> bool:
        return (
            self.insecure or registry in self.extra_insecure_hosts or is_insecure_default(registry)
        )

    @property
    def custom_tls(self) -> bool:
        """Whether a TLS context other than the system's default is needed."""
        return bool(self.ca_cert_paths) or not self.verify_certs or self.client_cert is not None

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.verify_certs:
            if self.client_cert is None:
                return False
            ctx = _unverified_context()
        else:
            ctx = self.default_ssl_context()
        for path in self.ca_cert_paths:
            try:
                ctx.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"--registry-ca-cert-path {path}: cannot load: {exc}") from None
        if self.client_cert is not None:
            _load_client_pair(ctx, self.client_cert, self.client_key, "--registry-client-cert")
        return ctx

    def host_ssl_context(self, tls: HostTLS) -> ssl.SSLContext:
        """The context for one host: the run's settings plus the host's own."""
        base = self.ssl_context()
        if tls.skip_verify or base is False:
            ctx = _unverified_context()
            if self.client_cert is not None:
                _load_client_pair(ctx, self.client_cert, self.client_key, "--registry-client-cert")
        else:
            ctx = base if isinstance(base, ssl.SSLContext) else self.default_ssl_context()
        where = tls.origin or "the host settings"
        for path in tls.ca_files:
            try:
                ctx.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"{where}: CA file {path}: cannot load: {exc}") from None
        for cert, key in tls.client_pairs:
            _load_client_pair(ctx, cert, key, where)
        return ctx

    @staticmethod
    def default_ssl_context() -> ssl.SSLContext:
        """The system's trust store, as Go's crypto/tls uses it."""
        return ssl.create_default_context()


def _unverified_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_pair_problem(cert: Path, key: Path | None) -> str | None:
    """Why a client certificate (and key) cannot be used, or ``None``; cheap (no CA store)."""
    for path in (cert, key):
        if path is not None and not path.is_file():
            return f"file {path} not found"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            certfile=str(cert), keyfile=str(key) if key is not None else None
        )
    except (OSError, ssl.SSLError) as exc:
        shown = f"{cert}" if key is None else f"{cert} with key {key}"
        return f"client certificate {shown}: cannot load: {exc}"
    return None


def _load_client_pair(ctx: ssl.SSLContext, cert: Path, key: Path | None, where: str) -> None:
    """Add a client certificate (mutual TLS); ``key`` ``None``: the key is in ``cert``."""
    try:
        ctx.load_cert_chain(certfile=str(cert), keyfile=str(key) if key is not None else None)
    except FileNotFoundError as exc:
        raise UsageError(f"{where}: client certificate file {exc.filename}: not found") from None
    except (OSError, ssl.SSLError) as exc:
        shown = f"{cert}" if key is None else f"{cert} with key {key}"
        raise UsageError(f"{where}: client certificate {shown}: cannot load: {exc}") from None
