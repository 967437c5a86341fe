"""Fixtures for the robustness tests, and the tally printed at the end of a run.

Every test here adds what it tried to :data:`tests.robustness.helpers.TALLY`
(inputs tried, faults injected, refusals seen); the totals are printed in the
terminal summary, which is where the figures in ``docs/reliability.md`` come from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.robustness.helpers import TALLY


@pytest.fixture(autouse=True)
def _fresh_lockresolve_logging() -> Iterator[None]:
    """``-v`` adds a handler on the stream of the moment; drop it after each in-process run."""
    logger = logging.getLogger("lockresolve")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
    logger.setLevel(level)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.section("robustness tally")
    for key in sorted(TALLY):
        terminalreporter.write_line(f"{key}: {TALLY[key]}")
