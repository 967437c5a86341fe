"""Run every benchmark script in benchmarks/ (``bench_*.py``) with one command.

    python benchmarks/run_all.py [--quick] [--only NAME[,NAME]] [--log FILE] [--timeout S]

Each script runs as its own process, one after the other (they measure time, so they
must not share the CPUs), with the argument sets below; a script added later runs with
no arguments. ``--quick`` uses small sizes, to check that everything still runs.
Output is streamed and, with ``--log``, also written to a file. Exits 1 when any run
failed or timed out; every run is bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

HERE = Path(__file__).resolve().parent

#: argument sets per script: (full, quick)
ARGUMENTS: dict[str, tuple[list[list[str]], list[list[str]]]] = {
    "bench_registry.py": (
        [
            ["--auth", auth, "--delay-ms", delay]
            for auth in ("none", "basic", "token")
            for delay in ("0", "40")
        ]
        + [["--images", "500", "--concurrency", c] for c in ("4", "16", "64")],
        [
            ["--images", "50", "--repeat", "1"],
            ["--images", "50", "--auth", "token", "--delay-ms", "40", "--repeat", "1"],
        ],
    ),
    "bench_resolve.py": ([[]], [["--sizes", "50", "--repeat", "1"]]),
    "bench_startup.py": ([[]], [["--runs", "3"]]),
    "bench_bundles.py": ([[]], [["--only", "small"]]),
    "bench_gzip.py": ([[]], [["--size", "1", "--repeat", "1"]]),
    "bench_peers.py": ([[]], [["--runs", "1", "--cases", "push-26mb,pull-26mb"]]),
}


def scripts(only: set[str] | None) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        wanted = {n if n.endswith(".py") else f"{n}.py" for n in only}
        wanted |= {f"bench_{n}" for n in wanted if not n.startswith("bench_")}
        found = [p for p in found if p.name in wanted]
    return found


def run(argv: list[str], timeout: float, log: TextIO | None) -> tuple[int | None, float]:
    """Run one benchmark, streaming its output; (exit code or None on timeout, seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=HERE.parent,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()

    watchdog = threading.Timer(timeout, stop)
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if log is not None:
                log.write(line)
                log.flush()
        proc.wait()
    finally:
        watchdog.cancel()
    seconds = time.perf_counter() - start
    return (None if timed_out.is_set() else proc.returncode), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", help="comma-separated script names (bench_resolve or resolve)")
    parser.add_argument("--log", type=Path, help="also write all output to this file")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds per run (default 3600)"
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    selected = scripts(only)
    if not selected:
        parser.error("no benchmark script matches --only")

    log = args.log.open("w") if args.log else None
    header = (
        f"# lockresolve benchmarks, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"Python {platform.python_version()} {'(quick)' if args.quick else ''}\n"
    )
    sys.stdout.write(header)
    if log is not None:
        log.write(header)
    results: list[tuple[str, int | None, float]] = []
    try:
        for script in selected:
            full, quick = ARGUMENTS.get(script.name, ([[]], [[]]))
            for extra in quick if args.quick else full:
                command = [sys.executable, str(script), *extra]
                shown = " ".join(["python", f"benchmarks/{script.name}", *extra])
                banner = f"\n## {shown}\n\n"
                sys.stdout.write(banner)
                if log is not None:
                    log.write(banner)
                code, seconds = run(command, args.timeout, log)
                results.append((shown, code, seconds))
    finally:
        summary = ["\n## Summary\n"]
        for shown, code, seconds in results:
            state = "timed out" if code is None else ("ok" if code == 0 else f"exit {code}")
            summary.append(f"- `{shown}`: {state} ({seconds:.0f} s)")
        text = "\n".join(summary) + "\n"
        sys.stdout.write(text)
        if log is not None:
            log.write(text)
            log.close()
    if any(code != 0 for _, code, _ in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
