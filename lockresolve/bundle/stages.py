"""Run the stages of a byte pipeline in threads, joined by small bounded queues.

``Threaded(source)`` iterates ``source`` in a worker thread and hands its items
to the consumer through a queue of at most ``depth`` items, so chained stages
(read and tar, gzip, hash and write) run at the same time wherever the work
releases the GIL (file reads and writes, ``hashlib`` on large buffers, zlib,
the C gzip encoder), and memory stays bounded by the queue depths times the
chunk size whatever the size of the stream.

An exception in the worker is raised in the consumer at the point in the
stream where it happened. ``close()`` (or leaving the ``with`` block) stops the
worker and closes ``source`` in the worker's thread, so files it opened are
closed; it returns once the worker has finished.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Threaded"]

T = TypeVar("T")

_POLL = 0.05  # seconds between checks of the stop flag while a queue is full


class _End:
    """The end of the stream, or the exception that ended it."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Threaded(Generic[T]):
    """Iterate ``source`` in a worker thread; items arrive through a bounded queue."""

    def __init__(self, source: Iterable[T], *, depth: int = 4, name: str = "stage") -> None:
        self._queue: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._run, args=(source,), name=f"lockresolve-{name}", daemon=True
        )
        self._thread.start()

    def _put(self, item: T | _End) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL)
            except queue.Full:
                continue
            return True
        return False

    def _run(self, source: Iterable[T]) -> None:
        iterator = iter(source)
        try:
            for item in iterator:
                if not self._put(item):
                    return
        except BaseException as exc:
            self._put(_End(exc))
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        self._put(_End())

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, _End):
            self._done = True
            self._thread.join()
            if item.error is not None:
                raise item.error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the worker (closing ``source``) and wait for it."""
        self._done = True
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Threaded[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
