"""The record of requests the test servers keep (the fault proxy, the token server).

A server subclasses :class:`RequestLog` and appends to ``_requests`` under
``_lock``; tests read :attr:`RequestLog.requests`, take a :meth:`RequestLog.mark`
and count what came after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["RequestLog"]

T = TypeVar("T")


class RequestLog(Generic[T]):
    """A thread-safe list of the requests a server received."""

    _lock: threading.Lock
    _requests: list[T]

    @property
    def requests(self) -> list[T]:
        """A copy of every request recorded so far."""
        with self._lock:
            return list(self._requests)

    def mark(self) -> int:
        """A position in the request record; pass it as ``since=`` to count what follows."""
        with self._lock:
            return len(self._requests)

    def _count_where(self, since: int, keep: Callable[[T], bool]) -> int:
        """How many requests after ``since`` ``keep`` accepts."""
        return sum(1 for req in self.requests[since:] if keep(req))
