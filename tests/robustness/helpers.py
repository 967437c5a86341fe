"""Shared helpers for the end-to-end robustness tests: running the CLI (in process or as a
subprocess), snapshots of directories, seeding images, a scriptable "evil" registry, and the
tally of what was tried."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.conformance import push_blob, push_manifest
from tests.support.registry import Registry
from tests.support.tars import tar_of

#: What the robustness tests tried, printed at the end of a run (see conftest.py).
TALLY: Counter[str] = Counter()

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
BUNDLE_LABEL = "dev.carvel.imgpkg.bundle"

#: an existing ImagesLock that a failing run must leave byte for byte as it is
EXISTING_LOCK = """\
apiVersion: imgpkg.carvel.dev/v1alpha1
images:
- annotations:
    kbld.carvel.dev/id: other.example/app:1
  image: other.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000
kind: ImagesLock
"""


def tally(key: str, n: int = 1) -> None:
    TALLY[key] += n


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- running the CLI -------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def err_lines(self) -> list[str]:
        """The non-empty stderr lines (click ends a ^C line with an empty one)."""
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(args: Iterable[str], capfd: pytest.CaptureFixture[str]) -> CliResult:
    """``lockresolve ARGS`` in process; everything written to fd 1 and 2 is captured."""
    from lockresolve.cli import main

    capfd.readouterr()
    start = time.monotonic()
    with pytest.raises(SystemExit) as info:
        main([*args])
        raise SystemExit(0)
    seconds = time.monotonic() - start
    out, err = capfd.readouterr()
    code = info.value.code
    return CliResult(code if isinstance(code, int) else 1, out, err, seconds)


def copy_through(
    route: str,
    src: str,
    dst: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    flags: Iterable[str] = (),
    second_flags: Iterable[str] = (),
) -> None:
    """``copy -i SRC`` into the repository ``DST`` with ``flags``: directly (``route`` "repo"),
    or through a tar or an OCI layout ("tar", "oci-layout"), whose second leg (``--tar`` /
    ``--oci-layout`` to ``DST``) gets ``second_flags``. Each step must exit 0."""
    flags, second_flags = list(flags), list(second_flags)
    if route == "repo":
        steps = [["copy", "-i", src, "--to-repo", dst, *flags]]
    else:
        files = tmp_path / ("t.tar" if route == "tar" else "layout")
        steps = [
            ["copy", "-i", src, f"--to-{route}", str(files), *flags],
            ["copy", f"--{route}", str(files), "--to-repo", dst, *second_flags],
        ]
    for args in steps:
        res = run_cli(args, capfd)
        assert res.code == 0, res.err


def repo_tags(registry: Registry, repo: str) -> set[str]:
    """The tags of ``repo`` in ``registry`` (one page: the tests' repositories are small)."""
    with registry.client() as client:
        return set(client.get(f"/v2/{repo}/tags/list").json().get("tags") or [])


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lockresolve.cli", *args]


def subprocess_env(tmp: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: its own TMPDIR and HOME, no proxy, no creds."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().endswith("_PROXY")
        and not k.startswith(("LOCKRESOLVE_", "KBLD_", "IMGPKG_", "DOCKER_"))
    }
    (tmp / "tmpdir").mkdir(parents=True, exist_ok=True)
    (tmp / "home").mkdir(parents=True, exist_ok=True)
    env.update(
        TMPDIR=str(tmp / "tmpdir"), HOME=str(tmp / "home"), PYTHONUNBUFFERED="1", NO_COLOR="1"
    )
    env.update(extra or {})
    return env


# --- files and directories ----------------------------------------------------------------


Snapshot = dict[str, tuple[str, bytes | str | None, int]]


def snapshot(root: Path) -> Snapshot:
    """Everything under ``root`` (not following links): kind, content or target, mode."""
    found: Snapshot = {}
    if not root.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path), 0)
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", None, mode)
            else:
                found[rel] = ("file", Path(path).read_bytes(), mode)
    return found


def tree(root: Path) -> dict[str, bytes | None]:
    """Relative path -> bytes (None for a directory), for comparing pulled trees."""
    found: dict[str, bytes | None] = {}
    for rel, (kind, content, _) in snapshot(root).items():
        found[rel] = content if kind == "file" and isinstance(content, bytes) else None
    return found


_TEMP_MARKERS = (".lockresolve-", "lockresolve-old-", "lockresolve-pull-", "lockresolve-push-")


def leftovers(*roots: Path) -> list[str]:
    """Temporary files or directories lockresolve may create, found under ``roots``."""
    found = []
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                if (
                    any(m in name for m in _TEMP_MARKERS)
                    or (name.startswith(".") and name.endswith(".tmp"))
                    or name.endswith((".partial", ".partial.new"))
                ):
                    found.append(os.path.join(dirpath, name))
    return found


def write_bundle_tree(root: Path, *, files: int = 3) -> Path:
    """A small bundle directory: ``.imgpkg/images.yml`` (no images) and a few files."""
    (root / ".imgpkg").mkdir(parents=True, exist_ok=True)
    (root / ".imgpkg" / "images.yml").write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n"
    )
    (root / "config").mkdir(exist_ok=True)
    for i in range(files):
        (root / "config" / f"f{i}.yml").write_text(f"kind: ConfigMap\nindex: {i}\n" * (i + 1))
    (root / "README.md").write_bytes(os.urandom(2048).hex().encode())
    return root


# --- images in a registry -----------------------------------------------------------------


def image_manifest(config: bytes, layer: bytes, *, annotation: str | None = None) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": digest_of(config)},
        "layers": [{"mediaType": DOCKER_LAYER, "size": len(layer), "digest": digest_of(layer)}],
    }
    if annotation is not None:
        doc["annotations"] = {"robustness": annotation}
    return json.dumps(doc, separators=(",", ":")).encode()


def seed_tags(registry: Registry, repo: str, tags: Iterable[str]) -> dict[str, str]:
    """Push one small image per tag (shared blobs, distinct manifests); tag -> digest."""
    layer = gzip.compress(b"robust", mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "repo": repo}).encode()
    digests: dict[str, str] = {}
    with registry.client() as client:
        push_blob(client, repo, config)
        push_blob(client, repo, layer)

        def put(tag: str) -> None:
            manifest = image_manifest(config, layer, annotation=f"{repo}:{tag}")
            digests[tag] = push_manifest(client, repo, tag, DOCKER_MANIFEST, manifest)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, tags))
    return digests


def layer_tar(members: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    return tar_of(members)


def push_layer_image(
    registry: Registry, repo: str, tag: str, tar: bytes, *, bundle: bool = False
) -> str:
    """Push a one-layer image whose layer is ``tar`` (gzipped), with the right diff_id."""
    layer = gzip.compress(tar, mtime=0)
    config_doc: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest_of(tar)]},
    }
    if bundle:
        config_doc["config"] = {"Labels": {BUNDLE_LABEL: "true"}}
    config = json.dumps(config_doc).encode()
    with registry.client() as client:
        push_blob(client, repo, config)
        push_blob(client, repo, layer)
        return push_manifest(client, repo, tag, DOCKER_MANIFEST, image_manifest(config, layer))


# --- a registry that lies -------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: send the body chunked, without a Content-Length
    chunked: bool = False


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


Route = Callable[[str, dict[str, str]], Reply]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hangs up on purpose (a refused answer) is not news


class EvilRegistry:
    """A scriptable HTTP/1.1 server on 127.0.0.1: ``routes[(METHOD, path)]`` is a
    :class:`Reply` or a function of (path with query, headers) giving one. Unknown
    routes get a registry-style 404. ``basic_auth`` makes every route answer 401 with a
    Basic challenge until an ``Authorization`` header arrives. ``requests`` records
    everything received (TLS probes are answered 400 by the stdlib and not recorded)."""

    def __init__(self, *, basic_auth: bool = False) -> None:
        self.routes: dict[tuple[str, str], Reply | Route] = {}
        self.requests: list[SeenRequest] = []
        self.basic_auth = basic_auth
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per answer
            wbufsize = -1  # head and body in one write; flushed after each request

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with owner._lock:
                    owner.requests.append(SeenRequest(self.command, self.path, headers))
                reply = owner._reply(self.command, self.path, headers)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.chunked and self.command != "HEAD":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(reply.body), 1 << 16):
                        piece = reply.body[i : i + (1 << 16)]
                        try:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        except OSError:
                            return
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if "Content-Length" not in reply.headers:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        self.wfile.write(reply.body)
                    except OSError:
                        return

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _serve

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _reply(self, method: str, path: str, headers: dict[str, str]) -> Reply:
        if self.basic_auth and "authorization" not in headers:
            return Reply(401, {"WWW-Authenticate": 'Basic realm="evil"'})
        route = self.routes.get((method, path)) or self.routes.get((method, path.split("?")[0]))
        if route is None:
            body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}'
            return Reply(404, {"Content-Type": "application/json"}, body)
        return route(path, headers) if callable(route) else route

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> EvilRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def seen(self, method: str | None = None) -> list[SeenRequest]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]
