"""Per-host concurrency slots that a transfer holds for its whole length, never twice.

A slot is one token of a host's ``CapacityLimiter``, borrowed on behalf of the
slot itself (not the task), so that a streamed answer can keep it until its
body is read and closed, wherever that happens.

A request sent while the same task is already inside a request to that host
(the blob GET that is the body of a PUT within one registry, read by httpx in
the PUT's task) shares the outer request's slot instead of waiting for a
second one: no task ever waits for a token it holds, so a full limiter (even
``--concurrency 1``) cannot deadlock. :func:`holding` marks the hosts the
current task is inside; it is a context variable, so it follows the task and
is not seen by other tasks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import anyio
import httpx

__all__ = ["HostSlot", "ReleasingStream", "holding", "holds"]

_HELD: ContextVar[frozenset[str]] = ContextVar("lockresolve_held_hosts", default=frozenset())


def holds(registry: str) -> bool:
    """Whether the current task is inside a request to ``registry`` (and holds its slot)."""
    return registry in _HELD.get()


@contextmanager
def holding(registry: str) -> Iterator[None]:
    """Mark ``registry`` as held by the current task for the duration of the block."""
    token = _HELD.set(_HELD.get() | {registry})
    try:
        yield
    finally:
        _HELD.reset(token)


class HostSlot:
    """One token of a host's limiter; :meth:`release` is idempotent."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self._limiter = limiter
        self._held = False

    async def acquire(self) -> None:
        await self._limiter.acquire_on_behalf_of(self)
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._limiter.release_on_behalf_of(self)


class ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives its host slot back when it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._release()
