"""Values the registry client returns: descriptors and fetched manifests."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lockresolve.registry.ratelimit import RateLimits

__all__ = ["Descriptor", "Manifest", "RequestStats", "sha256_digest"]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """What a registry says of a manifest or blob: digest, media type, size."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A manifest's raw bytes (verified against ``digest``) and its media type."""

    data: bytes
    media_type: str
    digest: str

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(digest=self.digest, media_type=self.media_type, size=len(self.data))

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class RequestStats:
    """Counts of requests sent, by method and host; printed by ``-v``.

    (Here rather than in ``client.py`` so that a run that sends no request can
    report its zero counts without importing httpx.)
    """

    by_method: Counter[str] = field(default_factory=Counter)
    by_host: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    rate_limits: RateLimits = field(default_factory=RateLimits)

    @property
    def total(self) -> int:
        return sum(self.by_method.values())

    def summary(self) -> str:
        methods = ", ".join(f"{m} {n}" for m, n in sorted(self.by_method.items()))
        hosts = len(self.by_host)
        line = (
            f"{self.total} HTTP requests ({methods or 'none'}) to {hosts} host(s), "
            f"{self.retries} retried"
        )
        if self.by_host:
            line += "; by host: " + ", ".join(
                f"{host} {n}" for host, n in sorted(self.by_host.items(), key=lambda i: -i[1])
            )
        limits = self.rate_limits.summary()
        if limits:
            line += f"; rate limit lowest: {limits}"
        return line
