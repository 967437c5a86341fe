"""An ``-f`` URL larger than 64 MiB is refused with one line, never cut to a prefix that may
still parse (issue 12, item 10). A local HTTP server sends valid YAML followed by
comment lines, with and without a Content-Length."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lockresolve.resolve.urlinput import MAX_URL_BYTES
from tests.robustness.helpers import run_cli, tally

HEAD = b"a: b\n"
LINE = b"#" * 1023 + b"\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # without Content-Length: the body ends at close

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        lines = (MAX_URL_BYTES // len(LINE)) + 1  # one line over the limit
        total = len(HEAD) + lines * len(LINE)
        self.send_response(200)
        self.send_header("Content-Type", "application/yaml")
        if self.path == "/declared.yml":
            self.send_header("Content-Length", str(total))
        self.end_headers()
        try:
            self.wfile.write(HEAD)
            block = LINE * 1024
            sent = 0
            while sent + 1024 <= lines:
                self.wfile.write(block)
                sent += 1024
            self.wfile.write(LINE * (lines - sent))
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def big_yaml_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/streamed.yml", "/declared.yml"])
def test_a_url_input_over_64_mib_is_an_error_not_a_cut(
    big_yaml_server: str, capfd: pytest.CaptureFixture[str], path: str
) -> None:
    url = big_yaml_server + path
    res = run_cli(["-f", url], capfd)
    assert res.code == 1, res.err[:300]
    assert res.out == ""  # nothing of the cut text was written
    assert res.err_lines == [
        f"lockresolve: error: {url}: larger than 64 MiB, refused (not read in part)"
    ]
    tally("oversized URL inputs refused")
