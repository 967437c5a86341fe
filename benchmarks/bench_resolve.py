"""End-to-end resolve benchmark: YAML files in, ImagesLock out, against a local registry.

    python benchmarks/bench_resolve.py [--sizes 200,1000] [--delays 0,40] [--auth none,token]
                                       [--repeat 3] [--files 20]

For each auth mode a local ``docker-registry`` is started (token auth: with a token
server whose realm sits behind a proxy that adds the same delay), N unique images are
seeded once, and for each size N and added delay D:

* 20 Deployment files are written; every image is referenced twice, in two different
  files (images tagged ``latest`` once as ``host/repo:latest`` and once as
  ``host/repo``, two spellings of one image);
* the real CLI runs end to end as a subprocess,
  ``python -m lockresolve.cli -f DIR --imgpkg-lock-output OUT`` (through a loopback
  ``FaultProxy`` adding D ms per request when D > 0), from no lock: wall time, requests;
* ``resolve_inputs`` runs in this process (imports done, so start-up is excluded):
  the time after start-up, its CPU time split into parsing, rendering and the rest,
  and the client's own request count;
* the same call with the lock as pins (no request: what ``--check`` does after
  start-up);
* ``--check`` runs as a subprocess with the lock just written: time, and the registry
  requests it sent (the aim is none).

Subprocesses are timed for wall and CPU time (user + system, from ``wait4``); on a
busy machine the CPU figures are the steadier ones.

Requests are counted from the registry's access log (every request, 401s included)
plus the token server's record. Each figure is the median of ``--repeat`` runs. The
real kbld and the Go anchors ``headraw`` and ``headloop`` (``../shared/tools/build-peers.sh``)
run beside lockresolve, alternated, where they are on ``PATH``; a missing one is skipped
with a message (``--no-peers`` skips them all).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import anyio
from bench_registry import (
    ProxyProcess,
    Setup,
    child_env,
    credential_env,
    image_names,
    machine_line,
    run_child,
    seed,
    start_registry,
)
from peers import Comparison, ToolRun, alternate, find_peers, print_comparisons, write_refs

from lockresolve.registry.settings import RegistrySettings
from lockresolve.registry.transport import RESOLVE_CONCURRENCY
from lockresolve.resolve.engine import (
    ResolveOptions,
    pins_from_images_lock,
    resolve_inputs,
)
from lockresolve.resolve.model import ResolvedImage

#: YAML files per case when --files is not given (issue 13's cases: 200 images in 8
#: files, 2,000 in 40); other sizes get one file per 25 images
FILES_FOR = {200: 8, 2000: 40}


def files_for(images: int) -> int:
    return FILES_FOR.get(images, max(2, images // 25))


CONTAINERS_PER_DEPLOYMENT = 5


# --------------------------------------------------------------------------------------
# Inputs


def spellings(host: str, repo: str, tag: str) -> tuple[str, str]:
    """How the image is written in its two places."""
    full = f"{host}/{repo}:{tag}"
    return (full, f"{host}/{repo}") if tag == "latest" else (full, full)


def write_inputs(
    directory: Path, host: str, names: list[tuple[str, str]], files: int
) -> dict[str, str]:
    """Write ``files`` YAML files of Deployments; every image twice, in two files.

    Returns {reference as written: "repo:tag"}.
    """
    per_file: list[list[str]] = [[] for _ in range(files)]
    written: dict[str, str] = {}
    for i, (repo, tag) in enumerate(names):
        first, second = spellings(host, repo, tag)
        per_file[i % files].append(first)
        per_file[(i + files // 2) % files].append(second)
        written[first] = written[second] = f"{repo}:{tag}"
    directory.mkdir(parents=True, exist_ok=True)
    for f, images in enumerate(per_file):
        docs = []
        for d in range(0, len(images), CONTAINERS_PER_DEPLOYMENT):
            name = f"svc-{f:02d}-{d // CONTAINERS_PER_DEPLOYMENT:03d}"
            containers = "".join(
                f"      - name: c{k}\n"
                f"        image: {image}  # pinned by lockresolve\n"
                f"        ports:\n"
                f"        - containerPort: {8080 + k}\n"
                for k, image in enumerate(images[d : d + CONTAINERS_PER_DEPLOYMENT])
            )
            docs.append(
                "---\n"
                "apiVersion: apps/v1\n"
                "kind: Deployment\n"
                "metadata:\n"
                f"  name: {name}\n"
                "  labels:\n"
                f"    app.kubernetes.io/name: {name}\n"
                "spec:\n"
                "  replicas: 2\n"
                "  template:\n"
                "    spec:\n"
                "      containers:\n" + containers
            )
        (directory / f"deploy-{f:02d}.yaml").write_text("".join(docs))
    return written


def check_lock(
    text: str, written: dict[str, str], digests: dict[tuple[str, str], str], source: str
) -> None:
    pins = pins_from_images_lock(text, source)
    if set(pins) != set(written):
        raise SystemExit(f"{source}: {len(pins)} references locked, {len(written)} expected")
    for ref, image in pins.items():
        repo, _, tag = written[ref].rpartition(":")
        if not image.url.endswith("@" + digests[(repo, tag)]):
            raise SystemExit(f"{source}: {ref} locked to {image.url}, wrong digest")


# --------------------------------------------------------------------------------------
# Runs


@dataclass
class Counted:
    seconds: float
    registry_requests: int
    token_requests: int
    client_requests: int | None = None
    cpu_seconds: float | None = None
    #: CPU seconds spent parsing inputs and rendering output (in-process runs)
    phases: dict[str, float] = field(default_factory=dict)
    #: CPU seconds of the registry and the delay proxy processes during the run
    others: dict[str, float] = field(default_factory=dict)
    #: peak RSS of the child, MB (subprocess runs)
    peak_mb: float = 0.0

    @property
    def total(self) -> int:
        return self.registry_requests + self.token_requests


class Bench:
    def __init__(self, setup: Setup, auth: str, work: Path, concurrency: int) -> None:
        self.setup = setup
        self.concurrency = concurrency
        self.auth = auth
        self.work = work
        self.docker_config = work / "docker-config"
        self.docker_config.mkdir(exist_ok=True)
        self.warm = False
        #: run kbld and the anchors beside lockresolve (anonymous cases only)
        self.peers = True
        self.kbld_delayed_max = 200
        #: other processes whose CPU time in-process runs record, by name
        self.watched: dict[str, int] = {}
        if setup.registry.pid is not None:
            self.watched["registry"] = setup.registry.pid

    def _marks(self) -> tuple[int, int]:
        reg = self.setup.registry
        token = self.setup.token_proxy
        return reg.mark(), token.counts()[0] if token is not None else 0

    def _counts(self, marks: tuple[int, int]) -> tuple[int, int]:
        reg = self.setup.registry
        return (
            len(reg.request_log(since=marks[0])),
            self.setup.token_proxy.counts()[0] - marks[1] if self.setup.token_proxy else 0,
        )

    def env(self, host: str) -> dict[str, str]:
        env = child_env(self.docker_config)
        env.update(credential_env(self.setup.registry, host))
        return env

    def cli(self, argv: list[str], host: str, *, expect: int = 0) -> Counted:
        marks = self._marks()
        run = run_child([sys.executable, "-m", "lockresolve.cli", *argv], self.env(host), self.work)
        if run.returncode != expect:
            raise SystemExit(
                f"lockresolve {' '.join(argv)} exited {run.returncode}:\n{run.stderr[-3000:]}"
            )
        return Counted(
            run.seconds, *self._counts(marks), cpu_seconds=run.cpu_seconds, peak_mb=run.peak_mb
        )

    def peer(self, tool: str, argv: list[str], host: str, stdin: Path | None = None) -> ToolRun:
        """Run a peer (kbld or an anchor) once: wall, CPU, peak RSS, registry requests."""
        marks = self._marks()
        run = run_child(argv, self.env(host), self.work, stdin=stdin)
        if run.returncode != 0:
            raise SystemExit(f"{tool} exited {run.returncode}:\n{run.stderr[-3000:]}")
        registry, token = self._counts(marks)
        return ToolRun(run.seconds, run.cpu_seconds, run.peak_mb, registry + token)

    def in_process(
        self, directory: Path, pins: Mapping[str, ResolvedImage] | None = None
    ) -> tuple[Counted, str]:
        """``resolve_inputs`` in this process (start-up excluded); ``pins``: an earlier lock."""
        reg = self.setup.registry
        settings = RegistrySettings(concurrency=self.concurrency)
        if reg.credentials is not None:
            settings = dataclasses.replace(
                settings, username=reg.credentials[0], password=reg.credentials[1]
            )
        options = ResolveOptions(registry=settings, pins=dict(pins or {}))
        saved = os.environ.get("DOCKER_CONFIG")
        os.environ["DOCKER_CONFIG"] = str(self.docker_config)
        try:
            marks = self._marks()
            others = {name: process_cpu(pid) for name, pid in self.watched.items()}
            with phase_timer() as phases:
                start = time.perf_counter()
                cpu = time.process_time()
                result = anyio.run(resolve_inputs, [str(directory)], options)
                cpu = time.process_time() - cpu
                seconds = time.perf_counter() - start
        finally:
            if saved is None:
                os.environ.pop("DOCKER_CONFIG", None)
            else:
                os.environ["DOCKER_CONFIG"] = saved
        if result.failures:
            raise SystemExit("in-process resolve failed:\n" + "\n".join(map(str, result.failures)))
        others = {name: process_cpu(pid) - others[name] for name, pid in self.watched.items()}
        registry, token = self._counts(marks)
        counted = Counted(seconds, registry, token, result.stats.total, cpu, dict(phases), others)
        return counted, result.images_lock_text()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: engine functions whose CPU time is reported (parsing inputs, rendering output)
PHASES = {"parse": "parse_source", "render": "render_resource"}


@contextmanager
def phase_timer() -> Iterator[dict[str, float]]:
    """CPU seconds spent in the engine's parse and render functions, while active.

    Wraps the names in ``lockresolve.resolve.engine``'s namespace (parsing runs in
    worker threads, so thread CPU time is summed); a name the engine no longer has is
    skipped, so the benchmark keeps working when the engine changes.
    """
    from lockresolve.resolve import engine

    totals: dict[str, float] = {}
    lock = threading.Lock()
    saved: dict[str, Callable[..., object]] = {}

    def wrap(phase: str, fn: Callable[..., object]) -> Callable[..., object]:
        def timed(*args: object, **kwargs: object) -> object:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    totals[phase] = totals.get(phase, 0.0) + time.thread_time() - start

        return timed

    for phase, name in PHASES.items():
        fn = getattr(engine, name, None)
        if callable(fn):
            saved[name] = fn
            setattr(engine, name, wrap(phase, fn))
    try:
        yield totals
    finally:
        for name, fn in saved.items():
            setattr(engine, name, fn)


@dataclass
class Row:
    auth: str
    images: int
    delay_ms: float
    refs_written: int
    occurrences: int
    cli: list[Counted]
    inproc: list[Counted]
    pinned: list[Counted]
    check: list[Counted]


def _ms_per_request(process: str, run: Counted) -> float:
    return run.others.get(process, 0.0) * 1000 / max(run.total, 1)


def med(runs: list[Counted], what: Callable[[Counted], float | None]) -> float:
    return statistics.median(float(what(r) or 0.0) for r in runs)


def run_case(
    bench: Bench,
    names: list[tuple[str, str]],
    digests: dict[tuple[str, str], str],
    delay_ms: float,
    proxy: ProxyProcess | None,
    files: int,
    repeat: int,
) -> tuple[Row, Comparison | None]:
    host = bench.setup.registry.host
    bench.watched.pop("delay proxy", None)
    if delay_ms > 0:
        assert proxy is not None
        proxy.set_delay(delay_ms)
        host = proxy.host
        bench.watched["delay proxy"] = proxy.proc.pid
    if bench.setup.token_proxy is not None:
        bench.setup.token_proxy.set_delay(delay_ms)
    n = len(names)
    case = bench.work / f"case-{bench.auth}-{n}-{delay_ms:g}"
    inputs = case / "config"
    lock = case / ".imgpkg" / "images.yml"
    written = write_inputs(inputs, host, names, files)
    argv = ["-f", str(inputs), "--imgpkg-lock-output", str(lock)]
    argv += ["--concurrency", str(bench.concurrency)]
    # The peers run on anonymous registries only (kbld would need its own credentials).
    peers, missing = find_peers() if bench.auth == "none" and bench.peers else ({}, {})
    if "kbld" in peers and delay_ms > 0 and n > bench.kbld_delayed_max:
        del peers["kbld"]
        missing["kbld"] = (
            f"--kbld-delayed-max {bench.kbld_delayed_max} (with a delay kbld takes about"
            " 4 requests x delay / 4 workers per image)"
        )
    refs = write_refs(case / "refs.txt", host, names)
    kbld_lock = case / "kbld" / "images.yml"
    kbld_lock.parent.mkdir(parents=True, exist_ok=True)
    peer_argv = {
        "kbld": [
            peers.get("kbld", "kbld"),
            "-f",
            str(inputs),
            "--imgpkg-lock-output",
            str(kbld_lock),
        ],
        "headraw": [peers.get("headraw", "headraw"), "-j", str(bench.concurrency)],
        "headloop": [peers.get("headloop", "headloop"), "-j", str(bench.concurrency)],
    }
    if not bench.warm:
        # Untimed: fills the bytecode cache, imports everything in this process, and
        # warms the registry's file cache (and the page cache for the peers' binaries).
        bench.cli(argv, host)
        bench.in_process(inputs)
        for tool in peers:
            bench.peer(tool, peer_argv[tool], host, None if tool == "kbld" else refs)
        bench.warm = True
    cli_runs: list[Counted] = []
    inproc_runs: list[Counted] = []
    pinned_runs: list[Counted] = []
    check_runs: list[Counted] = []

    def one(tool: str) -> ToolRun:
        if tool == "lockresolve":
            lock.unlink(missing_ok=True)
            counted = bench.cli(argv, host)
            check_lock(lock.read_text(), written, digests, str(lock))
            cli_runs.append(counted)
            return ToolRun(
                counted.seconds, counted.cpu_seconds or 0.0, counted.peak_mb, counted.total
            )
        if tool == "kbld":
            kbld_lock.unlink(missing_ok=True)
        return bench.peer(tool, peer_argv[tool], host, None if tool == "kbld" else refs)

    runs = alternate(["lockresolve", *peers], repeat, one)
    lock_text = lock.read_text()
    comparison: Comparison | None = None
    if bench.auth == "none" and bench.peers:
        comparison = Comparison(n, delay_ms, files, runs, missing)
        if "kbld" in peers:
            comparison.same_lock = kbld_lock.read_text() == lock_text
        for tool, why in missing.items():
            print(f"  {tool} skipped: {why}", flush=True)
    for _ in range(repeat):
        counted, text = bench.in_process(inputs)
        inproc_runs.append(counted)
        if text != lock_text:
            raise SystemExit("the in-process lock differs from the CLI's")
    pins = pins_from_images_lock(lock_text, str(lock))
    for _ in range(repeat):
        counted, text = bench.in_process(inputs, pins)
        pinned_runs.append(counted)
        if text != lock_text:
            raise SystemExit("the pinned in-process lock differs from the CLI's")
    for _ in range(repeat):
        check_runs.append(bench.cli([*argv, "--check"], host))
    row = Row(
        auth=bench.auth,
        images=n,
        delay_ms=delay_ms,
        refs_written=len(written),
        occurrences=2 * n,
        cli=cli_runs,
        inproc=inproc_runs,
        pinned=pinned_runs,
        check=check_runs,
    )
    c = row.cli[-1]
    print(
        f"  auth={row.auth} images={n} delay={delay_ms:g} ms: "
        f"CLI {med(row.cli, lambda r: r.seconds):.2f} s, "
        f"in-process {med(row.inproc, lambda r: r.seconds):.2f} s "
        f"(CPU {med(row.inproc, lambda r: r.cpu_seconds):.2f} s), "
        f"pinned {med(row.pinned, lambda r: r.seconds):.2f} s, "
        f"check {med(row.check, lambda r: r.seconds):.2f} s; "
        f"requests {c.registry_requests} registry + {c.token_requests} token "
        f"(client counted {row.inproc[-1].client_requests} in-process); "
        f"check sent {max(r.total for r in row.check)}, "
        f"pinned sent {max(r.total for r in row.pinned)}",
        flush=True,
    )
    return row, comparison


def print_tables(rows: list[Row], concurrency: int) -> None:
    print()
    print(machine_line())
    print(f"Concurrency: {concurrency} requests per registry host")
    print(f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average ", end="")
    print(" ".join(f"{x:.2f}" for x in os.getloadavg()))
    print()
    print(
        "| auth | unique images | refs written / occurrences | added delay (ms) "
        "| CLI wall (s) | CLI CPU (s) | in-process wall, after start-up (s) "
        "| requests (registry + token) | requests per unique image | client-counted "
        "| `--check` wall (s) | `--check` CPU (s) | `--check` requests |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c = r.cli[-1]
        print(
            f"| {r.auth} | {r.images} | {r.refs_written} / {r.occurrences} | {r.delay_ms:g} "
            f"| {med(r.cli, lambda x: x.seconds):.2f} "
            f"| {med(r.cli, lambda x: x.cpu_seconds):.2f} "
            f"| {med(r.inproc, lambda x: x.seconds):.2f} "
            f"| {c.total} ({c.registry_requests} + {c.token_requests}) "
            f"| {c.total / r.images:.3f} | {r.inproc[-1].client_requests} "
            f"| {med(r.check, lambda x: x.seconds):.2f} "
            f"| {med(r.check, lambda x: x.cpu_seconds):.2f} "
            f"| {max(x.total for x in r.check)} |"
        )
    print()
    print(
        "In-process breakdown (medians): CPU = this process's CPU time during the call; "
        "parse / render = CPU time inside the engine's parse_source / render_resource; "
        "pinned = the same call with the lock as pins (no request: parse + render + lock "
        "only, what --check does after start-up)."
    )
    print()
    print(
        "| auth | unique images | added delay (ms) | wall (s) | CPU (s) | parse CPU (s) "
        "| render CPU (s) | other CPU (s) | registry CPU per request (ms) "
        "| delay proxy CPU per request (ms) | pinned wall (s) | pinned requests |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cpu = med(r.inproc, lambda x: x.cpu_seconds)
        parse = med(r.inproc, lambda x: x.phases.get("parse"))
        render = med(r.inproc, lambda x: x.phases.get("render"))
        per_request = {
            name: med(r.inproc, functools.partial(_ms_per_request, name))
            for name in ("registry", "delay proxy")
        }
        proxy_cpu = f"{per_request['delay proxy']:.2f}" if r.delay_ms > 0 else "-"
        print(
            f"| {r.auth} | {r.images} | {r.delay_ms:g} | {med(r.inproc, lambda x: x.seconds):.2f} "
            f"| {cpu:.2f} | {parse:.2f} | {render:.2f} | {cpu - parse - render:.2f} "
            f"| {per_request['registry']:.2f} | {proxy_cpu} "
            f"| {med(r.pinned, lambda x: x.seconds):.2f} | {max(x.total for x in r.pinned)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,2000", help="unique image counts")
    parser.add_argument("--delays", default="0,40", help="added ms per request")
    parser.add_argument("--auth", default="none,token", help="none, basic, token (comma list)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument(
        "--files",
        type=int,
        default=None,
        help="YAML files per case (default: 8 for 200 images, 40 for 2,000, else 1 per 25)",
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="do not run kbld, headraw, headloop"
    )
    parser.add_argument(
        "--kbld-delayed-max",
        type=int,
        default=200,
        help="run kbld with an added delay only up to this many images (it is slow there)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=RESOLVE_CONCURRENCY,
        help=f"requests per registry host (default {RESOLVE_CONCURRENCY}, resolve's own)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    delays = [float(x) for x in args.delays.split(",")]
    auths = args.auth.split(",")
    if min(sizes) < 1 or args.repeat < 1 or (args.files is not None and args.files < 2):
        parser.error("sizes and --repeat must be positive, --files at least 2")
    if not set(auths) <= {"none", "basic", "token"}:
        parser.error("--auth takes none, basic, token")

    work = Path(tempfile.mkdtemp(prefix="lockresolve-bench-resolve-"))
    names = image_names(max(sizes), latest=True)
    rows: list[Row] = []
    comparisons: list[Comparison] = []
    seeder = start_registry(work / "seed", "none")
    try:
        t0 = time.perf_counter()
        digests = seed(seeder.registry, names)
        print(f"seeded {len(names)} images in {time.perf_counter() - t0:.1f} s", flush=True)
        seeder.close()
        for auth in auths:
            setup = start_registry(work / f"reg-{auth}", auth, storage=seeder.registry.storage_dir)
            proxy = ProxyProcess(setup.registry.url) if any(d > 0 for d in delays) else None
            try:
                bench = Bench(setup, auth, work, args.concurrency)
                bench.peers = not args.no_peers
                bench.kbld_delayed_max = args.kbld_delayed_max
                for n in sizes:
                    files = args.files or files_for(n)
                    for delay in delays:
                        row, comparison = run_case(
                            bench, names[:n], digests, delay, proxy, files, args.repeat
                        )
                        rows.append(row)
                        if comparison is not None:
                            comparisons.append(comparison)
                            # printed at once too, so a long run shows its figures as it goes
                            print_comparisons([comparison])
            finally:
                if proxy is not None:
                    proxy.close()
                setup.close()
    finally:
        seeder.close()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_tables(rows, args.concurrency)
    print_comparisons(comparisons)


if __name__ == "__main__":
    main()
