"""lockresolve side by side with imgpkg (and kbld) on one local registry: ``python benchmarks/bench_peers.py``.

Starts one loopback ``docker-registry`` (tests/support/registry.py), builds the
inputs once, then runs each case with lockresolve and with each peer found on
``PATH`` (a missing peer is reported and skipped), alternating the tools run by
run (lockresolve first on even runs, the peer first on odd ones), and prints the
median of ``--runs`` (default 5) runs of wall time, CPU time (user + system, of
the process and its children, from ``wait4``) and peak RSS, with the ratio
lockresolve / peer.

Cases:

- ``push-26mb``: ``push -i`` of the digest-heavy tree (200 files of 1,000
  lines, each line with a sha256: ~26 MB), each run to an empty repository;
- ``push-100mb``: ``push -i`` of a ~100 MB tree (YAML-like files with digests
  and 8 MB of incompressible bytes), each run to an empty repository;
- ``pull-26mb``, ``pull-100mb``: ``pull -i`` of those images to a new folder.

For pushes the manifest digests of both tools are compared (they must be
equal: same layer bytes); a difference is printed and the script exits 1.
``--cases`` picks some, ``--runs`` the number of runs. lockresolve runs as
installed in this environment (``python -m lockresolve.cli``), with the gzip
encoder that ``lockresolve --version`` names.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_registry import machine_line  # noqa: E402

from tests.support.registry import Registry, RegistryOptions  # noqa: E402

# Children run with a bytecode cache, as an installed package would (this
# environment may set PYTHONDONTWRITEBYTECODE).
_PYCACHE = tempfile.mkdtemp(prefix="lockresolve-pycache-")
CHILD_ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": _PYCACHE,
}
TIME = shutil.which("time", path="/usr/bin:/bin")  # GNU time: CPU and peak RSS of a command
DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})")
CASES = ("push-26mb", "push-100mb", "pull-26mb", "pull-100mb")


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mb: float
    stdout: str


def run(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run one command: wall time, and its CPU and peak RSS from ``/usr/bin/time``.

    GNU time forks a small process of its own that execs the command, so the
    peak RSS is the command's (``wait4`` on a child of this process would also
    count this process's pages from before the exec).
    """
    timed = [TIME, "-f", "TIME %U %S %M", "--", *argv] if TIME else argv
    start = time.perf_counter()
    proc = subprocess.run(timed, capture_output=True, text=True, env={**CHILD_ENV, **(env or {})})
    wall = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{output[-2000:]}")
    cpu, rss = float("nan"), float("nan")
    for line in proc.stderr.splitlines():
        if line.startswith("TIME "):
            user, system, kb = line.split()[1:]
            cpu, rss = float(user) + float(system), int(kb) / 1024
    return Run(wall, cpu, rss, output)


# --- inputs ---------------------------------------------------------------------------------


def digest_heavy_tree(root: Path, files: int = 200, lines: int = 1000) -> int:
    """200 files of 1,000 lines, each with a sha256 (the issue's 26 MB tree)."""
    rng = random.Random(26)
    total = 0
    for i in range(files):
        sub = root / f"group-{i % 10:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        text = "".join(
            f"  - image: registry.example.com/platform-team-{i % 7}/application-{n % 50}"
            f"@sha256:{rng.getrandbits(256):064x}\n"
            for n in range(lines)
        ).encode()
        (sub / f"images-{i:03d}.yml").write_bytes(text)
        total += len(text)
    return total


def large_tree(root: Path) -> int:
    """~100 MB: 92 files of ~1 MB of YAML with digests, and 8 MB of random bytes."""
    rng = random.Random(100)
    total = 0
    for i in range(92):
        sub = root / f"config-{i % 8}"
        sub.mkdir(parents=True, exist_ok=True)
        lines = []
        size = 0
        while size < 1_000_000:
            line = (
                f"  - name: item-{size}\n    image: registry.example.com/app-{rng.randrange(90)}"
                f"@sha256:{rng.getrandbits(256):064x}\n    replicas: {rng.randrange(9)}\n"
            )
            lines.append(line)
            size += len(line)
        data = ("items:\n" + "".join(lines)).encode()
        (sub / f"file-{i:03d}.yml").write_bytes(data)
        total += len(data)
    noise = rng.randbytes(8_000_000)
    (root / "blob.bin").write_bytes(noise)
    return total + len(noise)


# --- the tools ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    push: Callable[[str, Path], list[str]]
    pull: Callable[[str, Path], list[str]]


def lockresolve_tool() -> Tool:
    base = [sys.executable, "-m", "lockresolve.cli"]
    return Tool(
        "lockresolve",
        lambda ref, tree: [*base, "push", "-i", ref, "-f", str(tree)],
        lambda ref, out: [*base, "pull", "-i", ref, "-o", str(out)],
    )


def imgpkg_tool(path: str) -> Tool:
    # --tty: without a terminal imgpkg prints nothing, not even the pushed digest
    insecure = ["--registry-insecure", "--tty"]
    return Tool(
        "imgpkg",
        lambda ref, tree: [path, "push", "-i", ref, "-f", str(tree), *insecure],
        lambda ref, out: [path, "pull", "-i", ref, "-o", str(out), *insecure],
    )


def encoder_name() -> str:
    out = run([sys.executable, "-m", "lockresolve.cli", "--version"]).stdout
    return next(line for line in out.splitlines() if line.startswith("lockresolve"))


# --- cases ----------------------------------------------------------------------------------


@dataclass
class Result:
    case: str
    tool: str
    runs: list[Run]

    def median(self, what: Callable[[Run], float]) -> float:
        return statistics.median(what(r) for r in self.runs)


def bench(
    cases: list[str], tools: list[Tool], runs: int, registry: Registry, work: Path
) -> list[Result]:
    trees = {"26mb": work / "tree-26mb", "100mb": work / "tree-100mb"}
    sizes: dict[str, int] = {}
    for key, make in (("26mb", digest_heavy_tree), ("100mb", large_tree)):
        if any(c.endswith(key) for c in cases):
            sizes[key] = make(trees[key])
            print(f"# input {key}: {sizes[key] / 1e6:.1f} MB in {trees[key]}", flush=True)
    results: dict[tuple[str, str], Result] = {}
    failed = False
    for case in cases:
        kind, key = case.split("-")
        print(f"## {case}", flush=True)
        # what pull reads: one image per tool, pushed once
        sources = {}
        if kind == "pull":
            for tool in tools:
                ref = f"{registry.host}/src-{key}/{tool.name}:v1"
                sources[tool.name] = ref
                run(tool.push(ref, trees[key]))
        for i in range(runs):
            order = tools if i % 2 == 0 else tools[::-1]
            digests = {}
            for tool in order:
                if kind == "push":
                    ref = f"{registry.host}/{case}/{tool.name}-{i}:v1"  # an empty repository
                    argv = tool.push(ref, trees[key])
                else:
                    out = work / f"out-{case}-{tool.name}-{i}"
                    argv = tool.pull(sources[tool.name], out)
                r = run(argv)
                if kind == "pull":
                    shutil.rmtree(work / f"out-{case}-{tool.name}-{i}", ignore_errors=True)
                else:
                    found = DIGEST.search(r.stdout)
                    digests[tool.name] = found.group(1) if found else "?"
                results.setdefault((case, tool.name), Result(case, tool.name, [])).runs.append(r)
                print(
                    f"  run {i + 1} {tool.name:<12} {r.wall:6.2f} s wall {r.cpu:6.2f} s cpu"
                    f" {r.rss_mb:6.0f} MB",
                    flush=True,
                )
            if kind == "push" and len(set(digests.values())) > 1:
                print(f"  DIGESTS DIFFER: {digests}", flush=True)
                failed = True
            elif kind == "push" and i == 0:
                print(f"  manifest digest (all tools): {next(iter(digests.values()))}")
    if failed:
        raise SystemExit("manifest digests differ between tools")
    return list(results.values())


def print_table(results: list[Result], runs: int) -> None:
    print("\n| case | tool | wall s | CPU s | peak RSS MB | wall ratio | CPU ratio | RSS ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    by_case: dict[str, list[Result]] = {}
    for r in results:
        by_case.setdefault(r.case, []).append(r)
    for case, rows in by_case.items():
        ours = next(r for r in rows if r.tool == "lockresolve")
        for r in rows:
            ratio = ""
            if r is not ours:
                ratio = " | ".join(
                    f"{ours.median(f) / r.median(f):.2f}x"
                    for f in (lambda x: x.wall, lambda x: x.cpu, lambda x: x.rss_mb)
                )
            else:
                ratio = " |  | "
            print(
                f"| {case} | {r.tool} | {r.median(lambda x: x.wall):.2f} |"
                f" {r.median(lambda x: x.cpu):.2f} | {r.median(lambda x: x.rss_mb):.0f} | {ratio} |"
            )
    print(f"\nMedians of {runs} runs; ratios are lockresolve / peer (below 1: lockresolve ahead).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {CASES}")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {sorted(unknown)}")
    print(f"# {machine_line()}")
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {encoder_name()}")
    if TIME is None:
        print("# /usr/bin/time is missing: CPU and peak RSS are not measured")
    tools = [lockresolve_tool()]
    imgpkg = shutil.which("imgpkg")
    if imgpkg:
        version = subprocess.run([imgpkg, "version"], capture_output=True, text=True).stdout
        print(f"# imgpkg: {imgpkg} ({version.strip().splitlines()[0] if version else '?'})")
        tools.append(imgpkg_tool(imgpkg))
    else:
        print("# imgpkg is not on PATH: its columns are skipped")
    if shutil.which("kbld") is None:
        print("# kbld is not on PATH (resolve is measured by bench_resolve.py)")
    else:
        print("# kbld: resolve is compared in bench_resolve.py; this script covers push and pull")
    work = Path(tempfile.mkdtemp(prefix="lockresolve-peers-"))
    registry = Registry(work / "registry", RegistryOptions()).start()
    try:
        results = bench(cases, tools, args.runs, registry, work)
    finally:
        registry.stop()
        shutil.rmtree(_PYCACHE, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results, args.runs)


if __name__ == "__main__":
    main()
