"""Whether the command's result is committed: after that, Ctrl-C no longer fails the run.

A command calls :func:`mark_committed` once its result is in place (the lock
renamed into place, the tar or ``-o`` tree complete). A SIGINT that arrives
later (while a report is printed, a session closes or the interpreter exits)
cannot undo anything, so ``lockresolve.cli.main`` then exits 0 instead of 130.
Only the standard library is imported here.
"""

from __future__ import annotations

__all__ = ["is_committed", "mark_committed", "reset"]

_committed = False


def mark_committed() -> None:
    """The result is in place; an interruption from now on is not a failure."""
    global _committed
    _committed = True


def is_committed() -> bool:
    return _committed


def reset() -> None:
    """Forget an earlier command's commit (``main`` calls it first: tests run many)."""
    global _committed
    _committed = False
