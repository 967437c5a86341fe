"""Registry rate limits: Docker Hub's ``RateLimit-*`` headers and the one line a lasting 429 gets.

Docker Hub answers every manifest request with ``RateLimit-Limit: 100;w=21600``
(requests per window of seconds), ``RateLimit-Remaining: 76;w=21600`` and
``docker-ratelimit-source`` (the address or account counted). Plain functions
and values; the client records what it sees in :class:`RateLimits`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RateLimit", "RateLimits", "describe_429", "parse_rate_limit"]

_VALUE = re.compile(r"^\s*(\d+)\s*(?:;\s*w\s*=\s*(\d+))?")


@dataclass(frozen=True)
class RateLimit:
    """One answer's limit: ``limit`` requests per ``window`` seconds, ``remaining`` left."""

    limit: int | None
    window: int | None
    remaining: int | None
    source: str | None = None


def _parse(value: str | None) -> tuple[int | None, int | None]:
    if not value:
        return None, None
    match = _VALUE.match(value)
    if match is None:
        return None, None
    return int(match[1]), int(match[2]) if match[2] else None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The rate limit an answer announces, or ``None`` when it announces none."""
    limit, window = _parse(headers.get("ratelimit-limit"))
    remaining, remaining_window = _parse(headers.get("ratelimit-remaining"))
    if limit is None and remaining is None:
        return None
    return RateLimit(
        limit=limit,
        window=window or remaining_window,
        remaining=remaining,
        source=headers.get("docker-ratelimit-source"),
    )


@dataclass
class RateLimits:
    """The lowest remaining count seen per host in a run (for ``-v``)."""

    lowest: dict[str, RateLimit] = field(default_factory=dict)

    def note(self, host: str, limit: RateLimit) -> None:
        seen = self.lowest.get(host)
        if seen is None or (
            limit.remaining is not None
            and (seen.remaining is None or limit.remaining < seen.remaining)
        ):
            self.lowest[host] = limit

    def summary(self) -> str:
        """``registry-1.docker.io 12 of 100 per 21600s left`` per host, or ``""``."""
        return ", ".join(f"{host} {_left(rl)}" for host, rl in sorted(self.lowest.items()))


def _left(rl: RateLimit) -> str:
    remaining = "?" if rl.remaining is None else str(rl.remaining)
    return f"{remaining} of {_quota(rl)} left"


def _quota(rl: RateLimit) -> str:
    limit = "?" if rl.limit is None else str(rl.limit)
    return f"{limit} per {rl.window}s" if rl.window else limit


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 120:
        return f"{whole}s"
    minutes, _ = divmod(whole, 60)
    if minutes < 120:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def describe_429(host: str, limit: RateLimit | None, retry_after: float | None) -> str:
    """One line for a 429 that outlasted the retries: host, limit, window, remaining, reset."""
    parts = [f"rate limit of {host} reached"]
    if limit is not None:
        quota = f"{limit.limit} requests" if limit.limit is not None else "? requests"
        if limit.window:
            quota += f" per {_duration(limit.window)} ({limit.window}s)"
        parts.append(quota)
        if limit.remaining is not None:
            parts.append(f"{limit.remaining} remaining")
    if retry_after is not None:
        parts.append(f"resets in {_duration(retry_after)}")
    else:
        parts.append("no reset time given")
    return (
        ", ".join(parts)
        + "; pull through a mirror (--registry-mirror) or log in to get a higher limit"
    )
