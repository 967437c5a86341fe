"""The peers ``bench_resolve.py`` runs beside lockresolve: kbld and the Go anchors.

* ``kbld -f DIR --imgpkg-lock-output OUT`` (kbld v0.42.0), on the same inputs;
* ``headraw -j C`` (the floor: one plain keep-alive HEAD per image, no ping, no
  auth) and ``headloop -j C`` (go-containerregistry's ``remote.Head`` per image),
  reading the unique ``host/repo:tag`` lines on stdin
  (``/work/shared/tools/anchors/*/main.go``).

Each is looked up on ``PATH``; a missing one is reported and skipped. Runs are
alternated: round ``i`` starts with tool ``i mod n``, so no tool always runs first
(or just after the same other one) on a machine whose speed drifts.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: tools in the order of the tables; lockresolve is always present
PEERS = ("kbld", "headraw", "headloop")


@dataclass
class ToolRun:
    seconds: float
    cpu_seconds: float
    peak_mb: float
    requests: int


@dataclass
class Comparison:
    """Alternated runs of lockresolve and its peers on one case."""

    images: int
    delay_ms: float
    files: int
    runs: dict[str, list[ToolRun]] = field(default_factory=dict)
    #: peers not run, with the reason
    skipped: dict[str, str] = field(default_factory=dict)
    #: whether kbld's ImagesLock had exactly lockresolve's bytes (None: not compared)
    same_lock: bool | None = None

    def median(self, tool: str, what: Callable[[ToolRun], float]) -> float | None:
        runs = self.runs.get(tool)
        return statistics.median(what(r) for r in runs) if runs else None


def find_peers(names: Sequence[str] = PEERS) -> tuple[dict[str, str], dict[str, str]]:
    """({name: path} of the peers on PATH, {name: why not} of the others)."""
    found: dict[str, str] = {}
    missing: dict[str, str] = {}
    for name in names:
        path = shutil.which(name)
        if path is None:
            missing[name] = "not on PATH"
        else:
            found[name] = path
    return found, missing


def write_refs(path: Path, host: str, names: Sequence[tuple[str, str]]) -> Path:
    """The anchors' stdin: one ``host/repo:tag`` line per unique image."""
    path.write_text("".join(f"{host}/{repo}:{tag}\n" for repo, tag in names))
    return path


def alternate(
    tools: Sequence[str], rounds: int, run: Callable[[str], ToolRun]
) -> dict[str, list[ToolRun]]:
    """``rounds`` runs of every tool, the starting tool rotating round by round."""
    out: dict[str, list[ToolRun]] = {t: [] for t in tools}
    for i in range(rounds):
        for k in range(len(tools)):
            tool = tools[(i + k) % len(tools)]
            out[tool].append(run(tool))
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def print_comparisons(rows: Sequence[Comparison]) -> None:
    """The side-by-side table, then lockresolve's ratios against each peer."""
    if not rows:
        return
    print()
    print(
        "Side by side (anonymous; medians of the alternated runs; CPU = user + system of "
        "the process, peak = its max RSS; requests from the registry's access log):"
    )
    print()
    print(
        "| unique images | files | added delay (ms) | tool | wall (s) | CPU (s) "
        "| CPU per image (ms) | peak RSS (MB) | requests | runs |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        for tool in ("lockresolve", *PEERS):
            if tool not in row.runs:
                if tool in row.skipped:
                    print(
                        f"| {row.images} | {row.files} | {row.delay_ms:g} | {tool} "
                        f"| skipped: {row.skipped[tool]} | | | | | |"
                    )
                continue
            cpu = row.median(tool, lambda r: r.cpu_seconds)
            per_image = None if cpu is None else cpu * 1000 / row.images
            print(
                f"| {row.images} | {row.files} | {row.delay_ms:g} | {tool} "
                f"| {_fmt(row.median(tool, lambda r: r.seconds))} | {_fmt(cpu)} "
                f"| {_fmt(per_image)} | {_fmt(row.median(tool, lambda r: r.peak_mb), 0)} "
                f"| {max(r.requests for r in row.runs[tool])} | {len(row.runs[tool])} |"
            )
    print()
    print("lockresolve's ratios (lockresolve / peer, medians; below 1 is faster or smaller):")
    print()
    print(
        "| unique images | added delay (ms) | wall / kbld | CPU / kbld | peak / kbld "
        "| wall / headraw | wall / headloop | kbld lock bytes identical |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:

        def ratio(tool: str, what: Callable[[ToolRun], float], row: Comparison = row) -> str:
            return _ratio(row.median("lockresolve", what), row.median(tool, what))

        same = "-" if row.same_lock is None else ("yes" if row.same_lock else "**no**")
        print(
            f"| {row.images} | {row.delay_ms:g} "
            f"| {ratio('kbld', lambda r: r.seconds)} | {ratio('kbld', lambda r: r.cpu_seconds)} "
            f"| {ratio('kbld', lambda r: r.peak_mb)} | {ratio('headraw', lambda r: r.seconds)} "
            f"| {ratio('headloop', lambda r: r.seconds)} | {same} |"
        )
