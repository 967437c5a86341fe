"""A small OCI 1.1 referrers API in front of a real registry (docker-registry 2.8 has none).

:class:`ReferrersShim` listens on 127.0.0.1 and forwards every request to a plain-http
upstream registry unchanged (method, path, headers, body; the answer streamed back), except
``GET /v2/<name>/referrers/<digest>``, which it answers itself, as the distribution spec 1.1
says: an OCI image index (``application/vnd.oci.image.index.v1+json``) of the descriptors
:meth:`ReferrersShim.add` registered for that repository and subject (an empty index when
none). The manifests themselves live in the real registry (pushed by digest by the test);
the shim only plays the index a registry offering the API would compute::

    with ReferrersShim(registry.url) as shim:
        shim.add("app", image_digest, descriptor)
        httpx.get(f"{shim.url}/v2/app/referrers/{image_digest}")
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ReferrersShim"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class ReferrersShim:
    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self._upstream = (parts.hostname, parts.port)
        self._referrers: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self._lock = threading.Lock()
        #: (method, path) of every request answered by the shim itself
        self.answered: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        assert self._server is not None, "not started"
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def add(self, repository: str, subject: str, descriptor: Mapping[str, Any]) -> None:
        """List ``descriptor`` among the referrers of ``subject`` in ``repository``."""
        with self._lock:
            self._referrers.setdefault((repository, subject), []).append(dict(descriptor))

    def index(self, repository: str, subject: str) -> bytes:
        with self._lock:
            manifests = list(self._referrers.get((repository, subject), []))
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return json.dumps(body, separators=(",", ":")).encode()

    def start(self) -> ReferrersShim:
        shim = self

        class Handler(_Handler):
            owner = shim

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ReferrersShim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    owner: ReferrersShim
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _serve(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        match = _REFERRERS.match(path)
        if match and self.command == "GET":
            body = self.owner.index(match["name"], match["digest"])
            with self.owner._lock:
                self.owner.answered.append((self.command, path))
            self.send_response(200)
            self.send_header("Content-Type", OCI_INDEX)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body_in = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        conn = http.client.HTTPConnection(*self.owner._upstream, timeout=60)
        try:
            conn.request(self.command, self.path, body=body_in, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            self.send_response(answer.status, answer.reason)
            head = self.command == "HEAD"
            for key, value in answer.getheaders():
                if key.lower() not in _HOP and (head or key.lower() != "content-length"):
                    self.send_header(key, value)
            if not head:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)
        finally:
            conn.close()

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()
