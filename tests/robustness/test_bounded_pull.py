"""``pull`` of an image with many layers keeps at most ``--concurrency`` layer downloads
open at once. A registry cannot show this (its blobs arrive too fast to overlap), so a
small server on loopback serves one image whose blob bodies trickle out, and counts how
many blob bodies are being sent at the same moment."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.robustness.helpers import run_cli, tally

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer_tar(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = name.encode() * 100
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class SlowBlobServer:
    """One image at ``/v2/slow/img``, tag ``1``; each blob body is sent in 4 pieces
    with a pause between them. ``peak`` is the most blob bodies in flight at once."""

    def __init__(self, layers: int, pause: float) -> None:
        tars = [_layer_tar(f"f{i}.txt") for i in range(layers)]
        blobs = [gzip.compress(t, mtime=0) for t in tars]
        config = json.dumps(
            {"os": "linux", "rootfs": {"type": "layers", "diff_ids": [_digest(t) for t in tars]}}
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(config),
                    "digest": _digest(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(b),
                        "digest": _digest(b),
                    }
                    for b in blobs
                ],
            }
        ).encode()
        self.blobs = {_digest(b): b for b in [config, *blobs]}
        self.layer_digests = {_digest(b) for b in blobs}
        self.manifest = manifest
        self.pause = pause
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_HEAD(self) -> None:
                owner.serve(self, body=False)

            def do_GET(self) -> None:
                owner.serve(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def serve(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = handler.path.split("?")[0]
        if path == "/v2/":
            self._reply(handler, 200, b"{}", "application/json", body)
        elif path in (
            "/v2/slow/img/manifests/1",
            f"/v2/slow/img/manifests/{_digest(self.manifest)}",
        ):
            self._reply(handler, 200, self.manifest, MANIFEST, body)
        elif path.startswith("/v2/slow/img/blobs/") and path.rsplit("/", 1)[1] in self.blobs:
            digest = path.rsplit("/", 1)[1]
            if body and digest in self.layer_digests:
                self._trickle(handler, self.blobs[digest])
            else:
                self._reply(handler, 200, self.blobs[digest], "application/octet-stream", body)
        else:
            self._reply(
                handler, 404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "application/json", body
            )

    def _reply(
        self, handler: BaseHTTPRequestHandler, status: int, data: bytes, kind: str, body: bool
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        if status == 200:
            handler.send_header("Docker-Content-Digest", _digest(data))
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def _trickle(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.flush()
            step = -(-len(data) // 4)
            for i in range(0, len(data), step):
                time.sleep(self.pause)
                handler.wfile.write(data[i : i + step])
                handler.wfile.flush()
        finally:
            with self._lock:
                self.in_flight -= 1

    def __enter__(self) -> SlowBlobServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def slow_server() -> Iterator[SlowBlobServer]:
    with SlowBlobServer(layers=8, pause=0.05) as server:
        yield server


@pytest.mark.parametrize("concurrency", [1, 2])
def test_pull_opens_at_most_concurrency_layer_downloads(
    concurrency: int,
    slow_server: SlowBlobServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    res = run_cli(
        [
            "pull",
            "-i",
            f"{slow_server.host}/slow/img:1",
            "-o",
            str(out),
            "--concurrency",
            str(concurrency),
        ],
        capfd,
    )
    assert res.code == 0, res.err
    assert sorted(p.name for p in out.iterdir()) == [f"f{i}.txt" for i in range(8)]
    assert 1 <= slow_server.peak <= concurrency, slow_server.peak
    tally("layer downloads bounded by --concurrency (pull)")
