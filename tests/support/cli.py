"""Running the CLI in-process, as a user would run it, with its exit status."""

from __future__ import annotations

import pytest

from lockresolve.cli import main


def run_cli(args: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``lockresolve ARGS``: (exit status, stdout, stderr)."""
    try:
        main(list(args))
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capfd.readouterr()
    return (code if isinstance(code, int) else (0 if code is None else 1)), out, err
