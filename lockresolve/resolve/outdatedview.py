"""``lockresolve outdated`` output: an aligned table for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from lockresolve.resolve.outdated import OutdatedOptions, OutdatedReport, Status, check_outdated

if TYPE_CHECKING:
    from lockresolve.registry.settings import RegistrySettings

__all__ = ["json_text", "run_outdated_command", "table_text"]

_HEADERS = ("REFERENCE", "WHERE", "PINNED", "CURRENT", "MOVED", "NEWER")


def _short(url: str | None) -> str:
    """``sha256:`` and the first 12 hex digits of a digest reference (``-`` for none)."""
    if url is None:
        return "-"
    digest = url.rsplit("@", 1)[-1]
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}:{hex_[:12]}"


def _newer(status: Status) -> str:
    text = ", ".join(status.newer) if status.newer else "-"
    if status.selected is not None and status.selected != status.tag:
        text += f" (selection picks {status.selected})"
    return text


def table_text(statuses: Sequence[Status]) -> str:
    """One aligned row per outdated reference; empty when everything is current."""
    rows = [
        (
            s.reference,
            f"{s.file}:{s.line}",
            _short(s.pinned),
            _short(s.current),
            "yes" if s.moved else "no",
            _newer(s),
        )
        for s in statuses
        if s.outdated
    ]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in [_HEADERS, *rows]) for i in range(len(_HEADERS) - 1)]
    lines = []
    for row in [_HEADERS, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines) + "\n"


def json_text(statuses: Sequence[Status]) -> str:
    """Every reference checked, as a JSON list (current ones too)."""
    return json.dumps([s.as_json() for s in statuses], indent=2) + "\n"


def run_outdated_command(
    *,
    settings: RegistrySettings,
    files: Sequence[str],
    imgpkg_lock_output: Path | None,
    output: str,
    exit_code: bool,
    split_kinds: frozenset[str] = frozenset(),
) -> int:
    """What the CLI's ``outdated`` does; returns the exit status (input errors raise)."""
    from lockresolve.resolve.engine import load_pins

    options = OutdatedOptions(
        pins=load_pins(imgpkg_lock_output),
        own_lock=imgpkg_lock_output,
        registry=settings,
        split_kinds=split_kinds,
    )
    report: OutdatedReport = anyio.run(check_outdated, list(files), options)
    sys.stdout.write(
        json_text(report.statuses) if output == "json" else table_text(report.statuses)
    )
    sys.stdout.flush()
    if report.problems:
        lines = [
            f"lockresolve: error: {len(report.problems)} image reference(s) could not be checked:"
        ]
        lines += [f"- {problem}" for problem in report.problems]
        print("\n".join(lines), file=sys.stderr)
        return 1
    return 1 if exit_code and report.outdated else 0
