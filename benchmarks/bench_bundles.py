"""Benchmark the bundle commands: push, pull, copy to a repository and to a tar.

    python benchmarks/bench_bundles.py [--only small|large] [--keep]

Starts two local ``docker-registry`` processes (tests/support/registry.py), builds
two bundles (2 MB of 500 YAML files; 100 MB of larger YAML-like files and some
incompressible bytes), and runs each command as a separate ``lockresolve``
process so its peak memory (max RSS, from ``wait4``) is its own. Prints a
Markdown table: wall time, MB/s (bundle bytes over wall time) and peak RSS.
Copies go to the second registry so every byte really moves (a copy within one
registry only mounts blobs).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.registry import Registry, RegistryOptions  # noqa: E402

# The child reports its own peak RSS (VmHWM of its address space): wait4's ru_maxrss would
# also count the parent's pages from before the exec.
RUNNER = (
    "import atexit, os, sys\n"
    "def _peak():\n"
    "    with open('/proc/self/status') as fh:\n"
    "        kb = next(int(l.split()[1]) for l in fh if l.startswith('VmHWM:'))\n"
    "    with open(os.environ['LOCKRESOLVE_BENCH_PEAK'], 'w') as out:\n"
    "        out.write(str(kb))\n"
    "atexit.register(_peak)\n"
    "from lockresolve import cli\n"
    "from lockresolve.cli_bundle import copy_command, pull_command, push_command, tag_group\n"
    "for c in (push_command, pull_command, copy_command, tag_group):\n"
    "    if c.name not in cli.cli.commands:\n"
    "        cli.cli.add_command(c)\n"
    "cli.main(sys.argv[1:])\n"
)


@dataclass(frozen=True)
class Figure:
    bundle: str
    step: str
    seconds: float
    megabytes: float
    max_rss_mb: float

    @property
    def rate(self) -> float:
        return self.megabytes / self.seconds if self.seconds else 0.0


def yaml_text(rng: random.Random, size: int) -> bytes:
    lines: list[str] = []
    total = 0
    i = 0
    while total < size:
        line = (
            f"  - name: item-{i}\n    image: registry.example.com/team/app-{rng.randrange(50)}"
            f":{rng.randrange(100)}.{rng.randrange(100)}\n    replicas: {rng.randrange(9)}\n"
        )
        lines.append(line)
        total += len(line)
        i += 1
    return ("apiVersion: v1\nkind: List\nitems:\n" + "".join(lines)).encode()[:size]


def make_bundle(root: Path, files: int, file_size: int, noise: int = 0) -> float:
    rng = random.Random(files * 7919 + file_size)
    (root / ".imgpkg").mkdir(parents=True)
    (root / ".imgpkg" / "images.yml").write_text(
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n"
    )
    total = 0
    for i in range(files):
        sub = root / "config" / f"group-{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        data = yaml_text(rng, file_size)
        (sub / f"file-{i:04d}.yml").write_bytes(data)
        total += len(data)
    if noise:
        (root / "blob.bin").write_bytes(rng.randbytes(noise))
        total += noise
    return total / 1e6


def run(argv: list[str]) -> tuple[float, float]:
    """Run lockresolve in a child process: (wall seconds, peak RSS in MB)."""
    with tempfile.NamedTemporaryFile(prefix="peak-", delete=False) as peak_file:
        peak_path = peak_file.name
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOCKRESOLVE_BENCH_PEAK": peak_path}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lockresolve {' '.join(argv)} failed:\n{proc.stderr.decode()}")
    peak_kb = int(Path(peak_path).read_text() or 0)
    os.unlink(peak_path)
    return seconds, peak_kb / 1024


def bench(
    name: str, tree: Path, size_mb: float, src: Registry, dst: Registry, work: Path
) -> list[Figure]:
    figures: list[Figure] = []
    ref = f"{src.host}/bench/{name}:1"

    def step(label: str, argv: list[str]) -> None:
        seconds, rss = run(argv)
        figures.append(Figure(name, label, seconds, size_mb, rss))
        print(
            f"  {label:<28} {seconds:7.2f} s  {size_mb / seconds:7.2f} MB/s  {rss:6.0f} MB",
            flush=True,
        )

    step("push (gzip=go)", ["push", "-b", ref, "-f", str(tree)])
    step(
        "push (gzip=zlib)",
        ["push", "-b", f"{src.host}/bench/{name}-zlib:1", "-f", str(tree), "--gzip=zlib"],
    )
    step("pull", ["pull", "-b", ref, "-o", str(work / f"{name}-pulled")])
    step(
        "copy to repo (other registry)",
        ["copy", "-b", ref, "--to-repo", f"{dst.host}/bench/{name}"],
    )
    tar = work / f"{name}.tar"
    step("copy to tar", ["copy", "-b", ref, "--to-tar", str(tar)])
    step(
        "copy from tar to repo",
        ["copy", "--tar", str(tar), "--to-repo", f"{dst.host}/bench/{name}-from-tar"],
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["small", "large"])
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lockresolve-bench-"))
    src = Registry(work / "reg-src", RegistryOptions()).start()
    dst = Registry(work / "reg-dst", RegistryOptions()).start()
    figures: list[Figure] = []
    try:
        if args.only in (None, "small"):
            tree = work / "small"
            mb = make_bundle(tree, files=500, file_size=4000)
            print(f"small: 500 YAML files, {mb:.1f} MB", flush=True)
            figures += bench("small", tree, mb, src, dst, work)
        if args.only in (None, "large"):
            tree = work / "large"
            mb = make_bundle(tree, files=80, file_size=1_000_000, noise=20_000_000)
            print(f"large: 80 YAML files of 1 MB + 20 MB of random bytes, {mb:.1f} MB", flush=True)
            figures += bench("large", tree, mb, src, dst, work)
    finally:
        src.close()
        dst.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    cpu = platform.processor() or platform.machine()
    print()
    print(
        f"Machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {date.today().isoformat()}"
    )
    print()
    print("| bundle | step | wall (s) | MB/s | peak RSS (MB) |")
    print("|---|---|---:|---:|---:|")
    for f in figures:
        print(f"| {f.bundle} | {f.step} | {f.seconds:.2f} | {f.rate:.1f} | {f.max_rss_mb:.0f} |")


if __name__ == "__main__":
    main()
