"""Time N manifest HEAD resolutions through lockresolve's registry core.

    python benchmarks/bench_registry.py [--images 200] [--delay-ms 0] [--auth none|basic|token]
                                        [--concurrency 16] [--repeat 3]

Starts Debian's ``docker-registry`` on a free loopback port (tests/support/registry.py),
seeds N distinct tags across 8 repositories with lockresolve's own client
(``push_image``), then resolves all N with ``RegistryClient.resolve`` concurrently in one
anyio task group, each repeat with a fresh (cold) client. With ``--delay-ms D`` every
request goes through a ``FaultProxy(delay=D/1000)`` running in a child process (so its
work does not share this process's GIL); for token auth the token realm is put behind
such a proxy too, so token fetches pay the same delay.

Prints wall time, images/s and HTTP requests sent per image, counted both from the
registry's access log and from the client's own ``stats``, and token fetches.

This module also holds the helpers ``bench_resolve.py`` uses (registry start-up, the
proxy child process, seeding, credentials, machine description).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from lockresolve.reference import Reference  # noqa: E402
from lockresolve.registry.client import RegistryClient  # noqa: E402
from lockresolve.registry.keychain import Keychain  # noqa: E402
from lockresolve.registry.transport import TransportPolicy  # noqa: E402
from tests.support.images import make_image, push_image  # noqa: E402
from tests.support.registry import Registry, RegistryOptions  # noqa: E402

REPOSITORIES = 8
#: never let a benchmark child hang: every wait on a child is bounded by this
CHILD_TIMEOUT = 600.0
#: GNU time, for a child's own peak RSS
GNU_TIME = "/usr/bin/time"


# --------------------------------------------------------------------------------------
# Machine


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, Python, kernel: what docs/performance.md reports."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal:"))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "kernel": f"{platform.system()} {platform.release()}",
    }


def machine_line() -> str:
    m = machine()
    return (
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory']} RAM, "
        f"Python {m['python']}, {m['kernel']}"
    )


# --------------------------------------------------------------------------------------
# The fault proxy in a child process


def serve_proxy(upstream: str, delay_ms: float, token: str | None = None) -> None:
    """Child side: run a FaultProxy; stdin lines ``delay MS``/``count``; EOF stops it.

    ``token``: JSON of a token server to run in this process, in front of which the
    proxy sits (``upstream`` is then ignored): the signing cert's directory, user,
    password, service and issuer. Kept out of the benchmark's own process, the
    token server's threads do not take the GIL from the client being measured.
    """
    from tests.support.faultproxy import FaultProxy

    if token is not None:
        from tests.support.pki import load_signing_cert
        from tests.support.tokenserver import TokenServer

        spec = json.loads(token)
        signing = load_signing_cert(Path(spec["signing_dir"]))
        server = TokenServer(
            Path(spec["signing_dir"]) / "child",
            username=spec["username"],
            password=spec["password"],
            service=spec["service"],
            issuer=spec["issuer"],
            signing_cert=signing,
        ).start()
        upstream = server.url
    proxy = FaultProxy(upstream, delay=delay_ms / 1000).start()
    print(f"port {proxy.port}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["delay"]:
            proxy.delay = float(words[1]) / 1000
            print("ok", flush=True)
        elif words[:1] == ["count"]:
            print(f"{proxy.request_count} {proxy.non_http_count}", flush=True)
    proxy.stop()


class ProxyProcess:
    """A ``FaultProxy`` in front of ``upstream`` in a child process (bounded lifetime)."""

    def __init__(self, upstream: str, delay_ms: float = 0.0, *, token: str | None = None) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--serve-proxy",
                upstream,
                "--delay-ms",
                str(delay_ms),
                *(["--token-server", token] if token is not None else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.delay_ms = delay_ms
        words = self._reply().split()
        if words[:1] != ["port"]:
            self.close()
            raise RuntimeError(f"proxy child did not start: {words!r}")
        self.port = int(words[1])

    def _reply(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("proxy child exited")
        return line

    def _ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._reply()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def set_delay(self, delay_ms: float) -> None:
        self._ask(f"delay {delay_ms}")
        self.delay_ms = delay_ms

    def counts(self) -> tuple[int, int]:
        """(HTTP requests received, connections that opened with non-HTTP bytes)."""
        requests, non_http = self._ask("count").split()
        return int(requests), int(non_http)

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# Child processes


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    #: user + system CPU seconds of the child (from wait4), less sensitive to other load
    cpu_seconds: float
    stderr: str
    #: peak resident set size of the child, MB (``ru_maxrss`` from wait4)
    peak_mb: float = 0.0


def run_child(
    argv: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float = CHILD_TIMEOUT,
    *,
    stdin: Path | None = None,
) -> ChildRun:
    """Run a process to the end, stdout discarded; wall and CPU time, peak RSS, stderr.

    ``stdin``: a file the child reads as its standard input (else none). The peak RSS
    comes from GNU time (``/usr/bin/time -f %M``) when present: the ``ru_maxrss`` that
    wait4 reports for a child forked from this (large) process starts at this process's
    own RSS, so it would hide anything smaller.
    """
    gnu_time = GNU_TIME if os.path.exists(GNU_TIME) else None
    with (
        tempfile.TemporaryFile() as err,
        open(stdin or os.devnull, "rb") as given,
        tempfile.NamedTemporaryFile(prefix="maxrss-") as rss,
    ):
        if gnu_time is not None:
            argv = [gnu_time, "-f", "%M", "-o", rss.name, *argv]
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=given, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
        peak_kb = float(usage.ru_maxrss)
        if gnu_time is not None:
            last = Path(rss.name).read_text().strip().splitlines()
            if last and last[-1].isdigit():
                peak_kb = float(last[-1])
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(proc.returncode, seconds, cpu, text, peak_kb / 1024)


# --------------------------------------------------------------------------------------
# Registry, credentials, seeding


@dataclass
class Setup:
    """A started registry, and for token auth the proxy its token realm points at."""

    registry: Registry
    token_proxy: ProxyProcess | None = None
    extra: list[ProxyProcess] = field(default_factory=list)

    def close(self) -> None:
        for proxy in [*self.extra, self.token_proxy]:
            if proxy is not None:
                proxy.close()
        self.registry.close()


def start_registry(directory: Path, auth: str, storage: Path | None = None) -> Setup:
    """Start a registry; for token auth its realm goes through a (delay-settable) proxy.

    ``storage``: use another registry's storage folder (already seeded images).
    """
    registry = Registry(directory, RegistryOptions(auth=auth))  # type: ignore[arg-type]
    if storage is not None:
        registry.storage_dir = storage
    token_proxy = None
    if auth == "token":
        registry._prepare()  # creates the token server, so a proxy can front its realm
        server = registry.token_server
        assert server is not None
        # The realm is served by a copy of it (same signing key and user) in the proxy's
        # process; this one, in the benchmark's process, stays idle.
        spec = {
            "signing_dir": str(server.signing.cert_path.parent),
            "username": server.username,
            "password": server.password,
            "service": server.service,
            "issuer": server.issuer,
        }
        token_proxy = ProxyProcess(server.url, token=json.dumps(spec))
        registry.options.extra_config = {
            "auth": {
                "token": {
                    "realm": f"{token_proxy.url}/token",
                    "service": server.service,
                    "issuer": server.issuer,
                    "rootcertbundle": str(server.rootcertbundle),
                }
            }
        }
    try:
        registry.start()
    except BaseException:
        if token_proxy is not None:
            token_proxy.close()
        raise
    return Setup(registry, token_proxy)


#: where child processes keep their bytecode (see :func:`child_env`)
PYCACHE = Path(tempfile.gettempdir()) / "lockresolve-bench-pycache"


def child_env(docker_config: Path, *, bytecode_cache: bool = True) -> dict[str, str]:
    """The environment for lockresolve child processes.

    No ``LOCKRESOLVE_``/``KBLD_``/``IMGPKG_`` variables or proxies from the caller, and
    ``DOCKER_CONFIG`` pointing at an empty folder. With ``bytecode_cache`` (the default)
    ``PYTHONDONTWRITEBYTECODE`` is dropped and ``PYTHONPYCACHEPREFIX`` names a cache
    outside the source tree, so that children run from compiled bytecode as an
    installed package does (this sandbox sets PYTHONDONTWRITEBYTECODE=1, which would
    make every child compile lockresolve's sources again); without it the variable is
    kept as the caller has it.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCKRESOLVE_", "KBLD_", "IMGPKG_"))
        and k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    }
    env["DOCKER_CONFIG"] = str(docker_config)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def credential_env(registry: Registry, host: str | None = None) -> dict[str, str]:
    """``LOCKRESOLVE_REGISTRY_*`` variables giving this registry's credentials for ``host``."""
    if registry.credentials is None:
        return {}
    return {
        "LOCKRESOLVE_REGISTRY_HOSTNAME": host or registry.host,
        "LOCKRESOLVE_REGISTRY_USERNAME": registry.credentials[0],
        "LOCKRESOLVE_REGISTRY_PASSWORD": registry.credentials[1],
    }


def make_client(registry: Registry, host: str, concurrency: int = 16) -> RegistryClient:
    keychain = Keychain.from_environment(
        credential_env(registry, host), docker_config_dir=Path("/nonexistent")
    )
    return RegistryClient(TransportPolicy(concurrency=concurrency), keychain)


def image_names(
    count: int, repositories: int = REPOSITORIES, *, latest: bool = False
) -> list[tuple[str, str]]:
    """``count`` distinct (repository, tag) pairs spread over ``repositories`` repositories.

    With ``latest`` the first image of each repository is tagged ``latest``. A shorter
    list is always a prefix of a longer one, so one seeding serves every size.
    """
    return [
        (f"bench/app-{i % repositories}", "latest" if latest and i < repositories else f"v{i}")
        for i in range(count)
    ]


async def _seed(registry: Registry, names: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    digests: dict[tuple[str, str], str] = {}
    async with make_client(registry, registry.host) as client:

        async def one(repo: str, tag: str) -> None:
            digests[(repo, tag)] = await push_image(
                client, registry.host, repo, tag, make_image(f"{repo}:{tag}")
            )

        async with anyio.create_task_group() as tg:
            for repo, tag in names:
                tg.start_soon(one, repo, tag)
    return digests


def seed(registry: Registry, names: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Push one small distinct image per (repository, tag); returns their digests."""
    return anyio.run(_seed, registry, names)


# --------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    registry_requests: Counter[str]
    client_requests: int
    client_by_method: dict[str, int]
    token_fetches_client: int
    token_requests_server: int
    proxy_requests: int
    non_http: int


async def _resolve_all(
    registry: Registry, host: str, names: Sequence[tuple[str, str]], concurrency: int
) -> tuple[float, float, RegistryClient, dict[tuple[str, str], str]]:
    found: dict[tuple[str, str], str] = {}
    client = make_client(registry, host, concurrency)
    refs = [(name, Reference.parse(f"{host}/{name[0]}:{name[1]}")) for name in names]
    async with client:
        start = time.perf_counter()
        cpu = time.process_time()

        async def one(name: tuple[str, str], ref: Reference) -> None:
            found[name] = (await client.resolve(ref)).digest

        async with anyio.create_task_group() as tg:
            for name, ref in refs:
                tg.start_soon(one, name, ref)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    return seconds, cpu, client, found


def bench_once(
    setup: Setup,
    host: str,
    names: Sequence[tuple[str, str]],
    digests: dict[tuple[str, str], str],
    concurrency: int,
    proxy: ProxyProcess | None,
) -> Run:
    registry = setup.registry
    mark = registry.mark()
    token_before = setup.token_proxy.counts()[0] if setup.token_proxy else 0
    proxy_before = proxy.counts() if proxy else (0, 0)
    seconds, cpu, client, found = anyio.run(_resolve_all, registry, host, names, concurrency)
    if found != {n: digests[n] for n in names}:
        raise SystemExit("resolved digests differ from the seeded ones")
    log = registry.request_log(since=mark)
    by_kind = Counter(f"{e.method} {e.status}" for e in log)
    proxy_after = proxy.counts() if proxy else (0, 0)
    return Run(
        seconds=seconds,
        cpu_seconds=cpu,
        registry_requests=by_kind,
        client_requests=client.stats.total,
        client_by_method=dict(client.stats.by_method),
        token_fetches_client=client.auth.token_fetches,
        token_requests_server=(
            setup.token_proxy.counts()[0] - token_before if setup.token_proxy else 0
        ),
        proxy_requests=proxy_after[0] - proxy_before[0],
        non_http=proxy_after[1] - proxy_before[1],
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="distinct tags (default 200)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added per request")
    parser.add_argument("--auth", choices=["none", "basic", "token"], default="none")
    parser.add_argument("--concurrency", type=int, default=16, help="per host (default 16)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, each with a cold client")
    parser.add_argument("--serve-proxy", metavar="UPSTREAM", help=argparse.SUPPRESS)
    parser.add_argument("--token-server", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_proxy:
        serve_proxy(args.serve_proxy, args.delay_ms, args.token_server)
        return
    if args.images < 1 or args.repeat < 1:
        parser.error("--images and --repeat must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="lockresolve-bench-registry-"))
    setup = start_registry(work / "registry", args.auth)
    proxy: ProxyProcess | None = None
    try:
        names = image_names(args.images)
        t0 = time.perf_counter()
        digests = seed(setup.registry, names)
        print(
            f"seeded {len(names)} images in {REPOSITORIES} repositories of "
            f"{setup.registry.url} (auth={args.auth}) in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        host = setup.registry.host
        if args.delay_ms > 0:
            proxy = ProxyProcess(setup.registry.url, args.delay_ms)
            host = proxy.host
        if setup.token_proxy is not None:
            setup.token_proxy.set_delay(args.delay_ms)
        runs = []
        for i in range(args.repeat):
            run = bench_once(setup, host, names, digests, args.concurrency, proxy)
            runs.append(run)
            n = len(names)
            reg_total = sum(run.registry_requests.values())
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(run.registry_requests.items()))
            print(
                f"run {i + 1}: {run.seconds:.3f} s, {n / run.seconds:.0f} images/s, "
                f"client CPU {run.cpu_seconds * 1000 / n:.2f} ms/image; "
                f"registry log {reg_total} requests ({reg_total / n:.3f}/image; {kinds}); "
                f"client stats {run.client_requests} ({run.client_requests / n:.3f}/image; "
                f"{run.client_by_method}); token fetches {run.token_fetches_client} "
                f"(token server saw {run.token_requests_server})"
                + (
                    f"; proxy saw {run.proxy_requests} requests, {run.non_http} TLS probes"
                    if proxy
                    else ""
                ),
                flush=True,
            )
    finally:
        if proxy is not None:
            proxy.close()
        setup.close()
        shutil.rmtree(work, ignore_errors=True)

    median = statistics.median(r.seconds for r in runs)
    cpu_median = statistics.median(r.cpu_seconds for r in runs)
    last = runs[-1]
    n = len(names)
    reg_total = sum(last.registry_requests.values())
    print()
    print(machine_line())
    print()
    print(
        "| images | auth | delay (ms) | concurrency | wall (s, median) | images/s "
        "| client CPU (ms/image) | registry requests/image | client requests/image "
        "| token fetches |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {n} | {args.auth} | {args.delay_ms:g} | {args.concurrency} | {median:.3f} "
        f"| {n / median:.0f} | {cpu_median * 1000 / n:.2f} | {reg_total / n:.3f} "
        f"| {last.client_requests / n:.3f} | {last.token_fetches_client} |"
    )


if __name__ == "__main__":
    main()
