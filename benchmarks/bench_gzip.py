"""Throughput of lockresolve's gzip compressors: ``python benchmarks/bench_gzip.py``.

Compresses ~5 MB of YAML-like text, ~5 MB of random bytes and a real tar (the
YAML corpus under tests/fixtures/corpus, or the repository's own files when
that is missing) with the ``go`` kind (Go BestSpeed bytes, what imgpkg pushes), both
with the C encoder (``go-c``, when it is built) and the pure-Python one
(``go-py``), and with the ``zlib`` kind, and prints MB/s.  Each figure is the best of a few runs
of wall-clock time; CPU time is printed too, since other processes on a shared
machine slow the wall clock down.
"""

from __future__ import annotations

import argparse
import gzip
import io
import platform
import random
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from lockresolve.goflate import (
    GzipCompressor,
    PureGoGzipCompressor,
    ZlibGzipCompressor,
    native_available,
)

MB = 1_000_000
REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "fixtures" / "corpus"
_WORD_LIST = (
    "app api backend cache config controller data default deploy envoy frontend gateway "
    "ingress job kafka kube metrics nginx node operator postgres proxy redis registry "
    "router service sidecar storage worker carvel kbld imgpkg bundle image lock digest"
)
_WORDS = _WORD_LIST.split()


def yaml_like(size: int, seed: int = 1) -> bytes:
    """Kubernetes-manifest-like YAML with image digests, ``size`` bytes."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        name = f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}"
        doc = (
            f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n"
            f"  labels:\n    app.kubernetes.io/name: {name}\nspec:\n"
            f"  replicas: {rng.randint(1, 9)}\n  template:\n    spec:\n      containers:\n"
        )
        for _ in range(rng.randint(1, 3)):
            doc += (
                f"      - name: {rng.choice(_WORDS)}\n"
                f"        image: ghcr.io/{rng.choice(_WORDS)}@sha256:{rng.getrandbits(256):064x}\n"
                f"        ports:\n        - containerPort: {rng.randint(80, 9999)}\n"
                f"        env:\n        - name: {rng.choice(_WORDS).upper()}\n"
                f'          value: "{" ".join(rng.choice(_WORDS) for _ in range(4))}"\n'
            )
        parts.append(doc)
        total += len(doc)
    return "".join(parts).encode()[:size]


def real_tar() -> tuple[str, bytes]:
    """An in-memory tar of a real directory tree."""
    root = CORPUS if CORPUS.is_dir() else REPO / "lockresolve"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return f"tar of {root}", raw.getvalue()


def kinds() -> list[tuple[str, Callable[[], GzipCompressor]]]:
    """The compressors to measure: the C one first when it is built."""
    found: list[tuple[str, Callable[[], GzipCompressor]]] = []
    if native_available():
        from lockresolve.goflate.native import NativeGoGzipCompressor

        found.append(("go-c", NativeGoGzipCompressor))
    else:
        print("# the C encoder is not built: go-c skipped")
    found += [("go-py", PureGoGzipCompressor), ("zlib", ZlibGzipCompressor)]
    return found


def measure(
    kind: str, factory: Callable[[], GzipCompressor], data: bytes, repeat: int
) -> tuple[float, float, int]:
    """Best wall and CPU seconds over ``repeat`` runs, and the compressed size."""
    best_wall = best_cpu = float("inf")
    size = 0
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        compressor = factory()
        out = compressor.compress(data) + compressor.flush()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        size = len(out)
    if gzip.decompress(out) != data:
        raise SystemExit(f"{kind}: round trip failed")
    return best_wall, best_cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=5.0, help="MB of YAML and of random bytes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    args = parser.parse_args()
    size = int(args.size * MB)
    tar_name, tar = real_tar()
    inputs = [
        ("YAML-like text", yaml_like(size)),
        ("random bytes", random.Random(2).randbytes(size)),
        (tar_name, tar),
    ]
    # The interpreter matters for the pure-Python encoder.
    print(f"# {platform.python_implementation()} {platform.python_version()}")
    print(f"{'input':<44} {'kind':<5} {'MB':>6} {'ratio':>6} {'MB/s wall':>10} {'MB/s cpu':>9}")
    for name, data in inputs:
        for kind, factory in kinds():
            wall, cpu, out_size = measure(kind, factory, data, args.repeat)
            print(
                f"{name[:44]:<44} {kind:<5} {len(data) / MB:6.2f} {out_size / len(data):6.3f}"
                f" {len(data) / MB / wall:10.1f} {len(data) / MB / cpu:9.1f}"
            )


if __name__ == "__main__":
    main()
