"""A one-line progress bar on stderr, drawn only when stderr is a terminal.

Transfers report bytes with :meth:`Progress.advance` (from any task or worker
thread) and grow the expected total with :meth:`Progress.expect` as they learn
sizes. When stderr is not a TTY (pipes, CI logs, tests) nothing is written at
all, so the commands' output stays exactly imgpkg's.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

_REDRAW_SECONDS = 0.1
_BAR_WIDTH = 28


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


class Progress:
    """Bytes done out of bytes expected, with a rate; a no-op unless ``enabled``.

    ``enabled`` defaults to whether ``stream`` (stderr) is a terminal and
    ``TERM`` is not ``dumb``. Use as a context manager: the line is cleared
    at the end.
    """

    def __init__(
        self, label: str, *, stream: TextIO | None = None, enabled: bool | None = None
    ) -> None:
        self.label = label
        self._stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = _is_terminal(self._stream)
        self.enabled = enabled
        self.total = 0
        self.done = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn = False

    @classmethod
    def disabled(cls) -> Progress:
        return cls("", enabled=False)

    def expect(self, n: int) -> None:
        """Add ``n`` bytes to the total expected."""
        with self._lock:
            self.total += n
        self._maybe_draw()

    def advance(self, n: int) -> None:
        """Record ``n`` more bytes transferred."""
        with self._lock:
            self.done += n
        self._maybe_draw()

    def _maybe_draw(self) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._drawn_at < _REDRAW_SECONDS:
            return
        self._drawn_at = now
        self._draw(now)

    def _draw(self, now: float) -> None:
        with self._lock:
            done, total = self.done, max(self.total, self.done)
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        if total:
            filled = int(_BAR_WIDTH * done / total)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            text = f"{self.label} [{bar}] {_human(done)}/{_human(total)} {_human(rate)}/s"
        else:
            text = f"{self.label} {_human(done)} {_human(rate)}/s"
        try:
            self._stream.write("\r\x1b[2K" + text)
            self._stream.flush()
        except (OSError, ValueError):
            self.enabled = False
            return
        self._drawn = True

    def close(self) -> None:
        if self.enabled and self._drawn:
            try:
                self._stream.write("\r\x1b[2K")
                self._stream.flush()
            except (OSError, ValueError):
                pass
        self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
