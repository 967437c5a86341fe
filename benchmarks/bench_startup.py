"""Start-up cost: ``lockresolve --version`` and a no-change ``--check`` over ten files.

    python benchmarks/bench_startup.py [--runs 15] [--top 15]

Each command runs ``--runs`` times as a fresh process; the median (and min/max) wall
time is printed, next to ``python -c pass`` (the interpreter's own floor). Both the
``python -m lockresolve.cli`` form and the installed ``lockresolve`` console script are
measured.

The ``--check`` case: ten YAML files referencing ten images of a local
``docker-registry``, with an up-to-date ``.imgpkg/images.yml`` written by one real
run. Every check's registry requests are counted from the registry's access log (the
aim is none); then the registry is stopped and one more check must still pass, since
nothing needs the network.

Last, ``python -X importtime`` shows what ``--version`` (and the check) import: the
biggest imports by cumulative and by own time, and whether the heavy modules (httpx,
ruamel.yaml, anyio, the resolver) are loaded at all.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_registry import (
    CHILD_TIMEOUT,
    child_env,
    image_names,
    machine_line,
    run_child,
    seed,
    start_registry,
)

HEAVY = ("httpx", "httpcore", "ruamel.yaml", "anyio", "lockresolve.resolve", "h11", "ssl")
_IMPORT_RE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


@dataclass
class Timing:
    label: str
    runs: list[float]
    cpu: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def time_command(label: str, argv: list[str], runs: int, env: dict[str, str], cwd: Path) -> Timing:
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        run = run_child(argv, env, cwd)
        if run.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {run.returncode}:\n{run.stderr[-2000:]}")
        times.append(run.seconds)
        cpu.append(run.cpu_seconds)
    return Timing(label, times, cpu)


@dataclass
class ImportLine:
    self_us: int
    cumulative_us: int
    depth: int
    name: str


def import_times(argv: list[str], env: dict[str, str], cwd: Path) -> list[ImportLine]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        timeout=CHILD_TIMEOUT,
        check=False,
        text=True,
    )
    lines = []
    for raw in proc.stderr.splitlines():
        m = _IMPORT_RE.match(raw)
        if m:
            lines.append(ImportLine(int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    return lines


def print_imports(title: str, lines: list[ImportLine], top: int) -> None:
    total = sum(x.self_us for x in lines)
    print(f"\n{title}: {len(lines)} modules imported, {total / 1000:.1f} ms of import time in all")
    loaded = {x.name for x in lines}
    heavy = ", ".join(
        f"{h}: {'yes' if any(n == h or n.startswith(h + '.') for n in loaded) else 'no'}"
        for h in HEAVY
    )
    print(f"heavy modules loaded? {heavy}")
    print(f"\ntop {top} by cumulative time (a package includes what it imports):\n")
    print("| module | cumulative (ms) | self (ms) |")
    print("|---|---:|---:|")
    # Outermost imports only, so that a package and its own submodules are not listed twice.
    outer = [x for x in lines if x.depth <= 1]
    for x in sorted(outer, key=lambda x: -x.cumulative_us)[:top]:
        print(f"| `{x.name}` | {x.cumulative_us / 1000:.1f} | {x.self_us / 1000:.1f} |")
    print(f"\ntop {top} by own time:\n")
    print("| module | self (ms) |")
    print("|---|---:|")
    for x in sorted(lines, key=lambda x: -x.self_us)[:top]:
        print(f"| `{x.name}` | {x.self_us / 1000:.1f} |")


def write_check_inputs(directory: Path, host: str, names: list[tuple[str, str]]) -> None:
    directory.mkdir(parents=True)
    for i, (repo, tag) in enumerate(names):
        other_repo, other_tag = names[(i + 1) % len(names)]
        (directory / f"app-{i:02d}.yaml").write_text(
            "---\n"
            "apiVersion: apps/v1\n"
            "kind: Deployment\n"
            "metadata:\n"
            f"  name: app-{i:02d}\n"
            "spec:\n"
            "  template:\n"
            "    spec:\n"
            "      containers:\n"
            "      - name: main\n"
            f"        image: {host}/{repo}:{tag}\n"
            "      - name: sidecar\n"
            f"        image: {host}/{other_repo}:{other_tag}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median)")
    parser.add_argument("--top", type=int, default=15, help="importtime rows to show")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="lockresolve-bench-startup-"))
    docker_config = work / "docker-config"
    docker_config.mkdir()
    env = child_env(docker_config)
    raw_env = child_env(docker_config, bytecode_cache=False)
    py = sys.executable
    script = shutil.which("lockresolve")
    timings: list[Timing] = []
    check_runs = 0
    check_requests = 0
    offline_ok = False
    try:
        setup = start_registry(work / "registry", "none")
        try:
            names = image_names(10)
            seed(setup.registry, names)
            inputs = work / "config"
            lock = work / ".imgpkg" / "images.yml"
            write_check_inputs(inputs, setup.registry.host, names)
            argv = ["-f", str(inputs), "--imgpkg-lock-output", str(lock)]
            subprocess.run(
                [py, "-m", "lockresolve.cli", *argv],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=work,
                timeout=CHILD_TIMEOUT,
                check=True,
            )
            check = [*argv, "--check"]
            commands: list[tuple[str, list[str], dict[str, str]]] = [
                ("python -c pass", [py, "-c", "pass"], env),
                (
                    "python -m lockresolve.cli --version",
                    [py, "-m", "lockresolve.cli", "--version"],
                    env,
                ),
            ]
            if script:
                commands.append(("lockresolve --version", [script, "--version"], env))
            commands.append(
                (
                    "python -m lockresolve.cli --check (10 files)",
                    [py, "-m", "lockresolve.cli", *check],
                    env,
                )
            )
            if script:
                commands.append(("lockresolve --check (10 files)", [script, *check], env))
            commands += [
                (
                    "python -m lockresolve.cli --version, no bytecode cache",
                    [py, "-m", "lockresolve.cli", "--version"],
                    raw_env,
                ),
                (
                    "python -m lockresolve.cli --check (10 files), no bytecode cache",
                    [py, "-m", "lockresolve.cli", *check],
                    raw_env,
                ),
            ]
            mark = setup.registry.mark()
            for label, command, command_env in commands:
                time_command(label, command, 1, command_env, work)  # warm the caches
                timings.append(time_command(label, command, args.runs, command_env, work))
                if "--check" in command:
                    check_runs += args.runs + 1
            check_requests = len(setup.registry.request_log(since=mark))
        finally:
            setup.close()
        # The registry is gone: a check with an up-to-date lock must not need it.
        offline = subprocess.run(
            [py, "-m", "lockresolve.cli", *check],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=work,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
        offline_ok = offline.returncode == 0
        version_imports = import_times(["-m", "lockresolve.cli", "--version"], env, work)
        check_imports = import_times(["-m", "lockresolve.cli", *check], env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(machine_line())
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| command | median (ms) | min (ms) | max (ms) | CPU, median (ms) | runs |")
    print("|---|---:|---:|---:|---:|---:|")
    for t in timings:
        print(
            f"| `{t.label}` | {t.median * 1000:.0f} | {min(t.runs) * 1000:.0f} "
            f"| {max(t.runs) * 1000:.0f} | {statistics.median(t.cpu) * 1000:.0f} "
            f"| {len(t.runs)} |"
        )
    if not script:
        print("\n(no `lockresolve` console script on PATH: only the -m form was measured)")
    print(
        f"\nregistry requests sent by {check_runs} no-change checks: {check_requests}; "
        f"a check with the registry stopped: {'passed (exit 0)' if offline_ok else 'FAILED'}"
    )
    print(
        "\n'no bytecode cache': PYTHONDONTWRITEBYTECODE=1 as this sandbox sets it, so "
        "lockresolve's own modules are compiled again by every process; the other rows "
        "use a warm bytecode cache (PYTHONPYCACHEPREFIX), as an installed package has."
    )
    print_imports("`python -X importtime -m lockresolve.cli --version`", version_imports, args.top)
    print_imports("`python -X importtime -m lockresolve.cli ... --check`", check_imports, args.top)


if __name__ == "__main__":
    main()
