"""Run the real distribution registry (Debian's ``docker-registry`` 2.8.2) for tests.

:class:`Registry` starts ``docker-registry serve CONFIG.yml`` on a free loopback port with
its storage, config and logs in a folder of its own, waits until it answers, and stops it
on :meth:`Registry.stop`. Variants (``RegistryOptions``): anonymous, ``basic``
(htpasswd, bcrypt), ``token`` (with :class:`~tests.support.tokenserver.TokenServer` as the
realm), each over plain http or ``tls`` (a CA made for the test); with ``tls``,
``client_auth`` demands client certificates (``http.tls.clientcas``; the harness's own
clients present ``Registry.client_cert``); ``proxy_remote`` makes a pull-through cache
of another registry (``proxy.remoteurl``).

Counting requests: the registry writes one combined-log-format access line per request to
stdout (captured in ``access.log``); unlike the ``response completed`` lines on stderr
(``registry.log``), it also covers 401 answers and unrouted paths, so that is what
:meth:`Registry.request_log` parses. Before reading, the log is synchronised with a
sentinel request (excluded from the results), so a count taken right after a client
returns includes all its requests::

    mark = registry.mark()
    ...client does things...
    assert registry.count_requests(method="HEAD", since=mark) == 1

A missing binary makes the fixture *fail* (never skip) with install instructions.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import httpx
import pytest
from ruamel.yaml import YAML

from .pki import CertificateAuthority, IssuedCert, issue_client_cert
from .tokenserver import DEFAULT_ISSUER, DEFAULT_SERVICE, TokenServer

__all__ = [
    "MANIFEST_ACCEPT",
    "AuthMode",
    "ChallengeAuth",
    "LoggedRequest",
    "Registry",
    "RegistryOptions",
    "free_port",
    "parse_challenge",
    "require_binary",
    "skopeo_copy_to_oci",
    "skopeo_inspect_raw",
]

AuthMode = Literal["none", "basic", "token"]

#: Every manifest media type; without the OCI ones the registry answers 404 for OCI manifests.
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    ]
)

_INSTALL_HINTS = {
    "docker-registry": "apt-get install docker-registry (Debian package of distribution 2.8.2)",
    "skopeo": "apt-get install skopeo",
    "htpasswd": "apt-get install apache2-utils",
}

SYNC_PREFIX = "/__lockresolve_sync__/"

_live: weakref.WeakSet[Registry] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:  # pragma: no cover - safety net for interrupted runs
    for reg in list(_live):
        with contextlib.suppress(Exception):
            reg.close()


def require_binary(name: str) -> str:
    """The path of ``name``; fails the test (never skips) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        hint = _INSTALL_HINTS.get(name, f"install {name}")
        pytest.fail(
            f"{name!r} is not installed but the registry tests need it: {hint}. "
            "See README.md (tests).",
            pytrace=False,
        )
    return path


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------
# Access log


_ACCESS_RE = re.compile(
    r"^(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>\S+) (?P<uri>\S+) (?P<proto>[^"]+)" (?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the registry logged it."""

    method: str
    uri: str
    status: int
    size: int
    user_agent: str
    remote: str
    time: str

    @property
    def path(self) -> str:
        return self.uri.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.uri.partition("?")[2])


def _parse_access_line(line: str) -> LoggedRequest | None:
    m = _ACCESS_RE.match(line)
    if m is None:
        return None
    size = m["size"]
    return LoggedRequest(
        method=m["method"],
        uri=m["uri"],
        status=int(m["status"]),
        size=0 if size == "-" else int(size),
        user_agent=m["agent"] or "",
        remote=m["remote"],
        time=m["time"],
    )


# --------------------------------------------------------------------------------------
# Auth for the harness's own httpx clients


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest)}
    for k, v in re.findall(r'(\w+)\s*=\s*([^",\s]+)', rest):
        params.setdefault(k.lower(), v)
    return scheme.lower(), params


_REPO_PATH_RE = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")


class ChallengeAuth(httpx.Auth):
    """A plain, independent httpx auth flow for registries: Basic or Bearer on 401.

    Tokens are fetched through the same client (so TLS settings apply) with the challenge's
    realm/service/scope, cached per scope, and sent up front on later requests to a
    repository that already has one. ``token_fetches`` counts fetches.
    """

    requires_response_body = True

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self.username = username
        self.password = password
        self.token_fetches = 0
        self._lock = threading.Lock()
        self._by_scope: dict[tuple[str, str, str], str] = {}
        self._by_repo: dict[str, str] = {}
        self._basic = False

    def _basic_header(self) -> str:
        raw = f"{self.username or ''}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        match = _REPO_PATH_RE.match(request.url.path)
        with self._lock:
            cached = self._by_repo.get(match["name"]) if match else None
            basic = self._basic
        if cached is not None:
            request.headers["Authorization"] = f"Bearer {cached}"
        elif basic and self.username is not None:
            request.headers["Authorization"] = self._basic_header()
        response = yield request
        if response.status_code != 401:
            return
        header = response.headers.get("www-authenticate")
        if not header:
            return
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            if self.username is None:
                return
            with self._lock:
                self._basic = True
            request.headers["Authorization"] = self._basic_header()
            yield request
            return
        if scheme != "bearer" or "realm" not in params:
            return
        key = (params["realm"], params.get("service", ""), params.get("scope", ""))
        with self._lock:
            token = self._by_scope.get(key)
        if token is None or token == cached:
            query: list[tuple[str, str]] = []
            if params.get("service"):
                query.append(("service", params["service"]))
            if params.get("scope"):
                query.extend(("scope", s) for s in params["scope"].split(" ") if s)
            headers = {}
            if self.username is not None:
                headers["Authorization"] = self._basic_header()
                query.append(("account", self.username))
            token_request = httpx.Request(
                "GET", httpx.URL(params["realm"], params=query), headers=headers
            )
            token_response = yield token_request
            self.token_fetches += 1
            if token_response.status_code != 200:
                return
            data = token_response.json()
            token = data.get("token") or data.get("access_token")
            if not token:
                return
            with self._lock:
                self._by_scope[key] = token
        with self._lock:
            if match:
                self._by_repo[match["name"]] = token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


# --------------------------------------------------------------------------------------
# The registry process


@dataclass
class RegistryOptions:
    """How to run a registry. ``username``/``password`` apply to basic and token auth."""

    auth: AuthMode = "none"
    tls: bool = False
    username: str = "tester"
    password: str = "s3cret-pass"
    #: token auth: let anonymous clients pull
    anonymous_pull: bool = False
    #: token auth: the ``expires_in`` the token server answers
    token_expires_in: int = 300
    #: token auth: serve the token realm over https too (default: same as ``tls``)
    token_tls: bool | None = None
    service: str = DEFAULT_SERVICE
    issuer: str = DEFAULT_ISSUER
    #: TLS only: require client certificates signed by the test CA (``http.tls.clientcas``);
    #: ``Registry.client_cert`` is one, which the harness's own clients present
    client_auth: bool = False
    #: a pull-through cache of this registry URL (``proxy.remoteurl``)
    proxy_remote: str | None = None
    #: extra top-level config, merged (one level deep per section) into the generated YAML
    extra_config: dict[str, Any] = field(default_factory=dict)


class Registry:
    """One ``docker-registry`` process. See the module docs.

    Attributes: ``host`` ("127.0.0.1:PORT"), ``url`` ("http(s)://127.0.0.1:PORT"),
    ``port``, ``scheme``, ``auth``, ``tls``, ``username``/``password`` (None when
    anonymous), ``ca_path`` (PEM of the CA, None without TLS), ``token_server`` (None
    unless token auth), ``directory``, ``storage_dir``, ``config_path``,
    ``access_log_path``, ``log_path``, ``instance_id``.
    """

    def __init__(self, directory: Path, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.storage_dir = directory / "storage"
        self.config_path = directory / "config.yml"
        self.access_log_path = directory / "access.log"
        self.log_path = directory / "registry.log"
        self.instance_id = uuid.uuid4().hex
        self.auth: AuthMode = self.options.auth
        self.tls = self.options.tls
        self.port = 0
        self.ca: CertificateAuthority | None = None
        self.ca_path: Path | None = None
        self.client_cert: IssuedCert | None = None
        self.token_server: TokenServer | None = None
        self.htpasswd_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_files: list[IO[bytes]] = []
        self._log_start = 0
        self._parsed: list[LoggedRequest] = []
        self._parse_offset = 0
        self._parse_lock = threading.Lock()
        self._sync_client: httpx.Client | None = None
        self._verify_ctx: ssl.SSLContext | None = None

    # -- public attributes -------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def username(self) -> str | None:
        return None if self.auth == "none" else self.options.username

    @property
    def password(self) -> str | None:
        return None if self.auth == "none" else self.options.password

    @property
    def credentials(self) -> tuple[str, str] | None:
        if self.auth == "none":
            return None
        return (self.options.username, self.options.password)

    @property
    def pid(self) -> int | None:
        """The registry process (benchmarks read its CPU time)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting this registry's CA (None without TLS)."""
        if self.ca_path is None:
            return None
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        if self.client_cert is not None:
            ctx.load_cert_chain(str(self.client_cert.cert_path), str(self.client_cert.key_path))
        return ctx

    @property
    def httpx_verify(self) -> ssl.SSLContext:
        """What to pass as httpx's ``verify=`` to talk to this registry: a context that
        trusts its CA (TLS) or the default one; made once, as contexts are slow to build."""
        if self.tls and self.ca_path is None:
            return _default_ssl_context()  # not started yet: no CA to trust
        if self._verify_ctx is None:
            self._verify_ctx = self.ssl_context() or _default_ssl_context()
        return self._verify_ctx

    def client(self, *, authenticate: bool = True, **kwargs: Any) -> httpx.Client:
        """A plain httpx client for this registry (base_url set, CA trusted, and, when
        ``authenticate``, a :class:`ChallengeAuth` with the registry's credentials)."""
        kwargs.setdefault("base_url", self.url)
        kwargs.setdefault("verify", self.httpx_verify)
        kwargs.setdefault("timeout", 30.0)
        if authenticate and self.auth != "none":
            kwargs.setdefault("auth", ChallengeAuth(self.username, self.password))
        return httpx.Client(**kwargs)

    def write_docker_config(self, directory: Path) -> Path:
        """Write ``directory/config.json`` with this registry's credentials (DOCKER_CONFIG)."""
        directory.mkdir(parents=True, exist_ok=True)
        auths: dict[str, Any] = {}
        if self.credentials is not None:
            raw = f"{self.options.username}:{self.options.password}".encode()
            auths[self.host] = {"auth": base64.b64encode(raw).decode("ascii")}
        path = directory / "config.json"
        path.write_text(json.dumps({"auths": auths}, indent=2))
        return path

    # -- lifecycle -----------------------------------------------------------------

    def _write_config(self) -> None:
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "lockresolve-test-secret"},
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.tls:
            assert self.ca is not None
            cert = self.ca.issue_server_cert(self.directory / "pki")
            config["http"]["tls"] = {
                "certificate": str(cert.cert_path),
                "key": str(cert.key_path),
            }
            if self.options.client_auth:
                config["http"]["tls"]["clientcas"] = [str(self.ca.cert_path)]
        if self.options.proxy_remote is not None:
            config["proxy"] = {"remoteurl": self.options.proxy_remote}
        if self.auth == "basic":
            assert self.htpasswd_path is not None
            config["auth"] = {
                "htpasswd": {"realm": "lockresolve-test", "path": str(self.htpasswd_path)}
            }
        elif self.auth == "token":
            assert self.token_server is not None
            config["auth"] = {
                "token": {
                    "realm": self.token_server.realm,
                    "service": self.token_server.service,
                    "issuer": self.token_server.issuer,
                    "rootcertbundle": str(self.token_server.rootcertbundle),
                }
            }
        for section, value in self.options.extra_config.items():
            if isinstance(value, dict) and isinstance(config.get(section), dict):
                config[section].update(value)
            else:
                config[section] = value
        yaml = YAML()
        yaml.default_flow_style = False
        with self.config_path.open("w") as fh:
            yaml.dump(config, fh)

    def _prepare(self) -> None:
        """One-time setup: PKI, htpasswd file, token server."""
        if self.tls and self.ca is None:
            ca_dir = self.directory / "ca"
            self.ca = CertificateAuthority.create(self.directory / "pki")
            # A folder holding only the CA: usable as a docker/skopeo --cert-dir.
            ca_dir.mkdir(exist_ok=True)
            self.ca_path = ca_dir / "ca.crt"
            self.ca_path.write_bytes(self.ca.cert_pem)
            if self.options.client_auth:
                self.client_cert = issue_client_cert(self.ca, self.directory / "client")
        if self.auth == "basic" and self.htpasswd_path is None:
            htpasswd = require_binary("htpasswd")
            out = subprocess.run(
                [htpasswd, "-Bbn", self.options.username, self.options.password],
                check=True,
                capture_output=True,
            ).stdout
            self.htpasswd_path = self.directory / "htpasswd"
            self.htpasswd_path.write_bytes(out.strip() + b"\n")
        if self.auth == "token" and self.token_server is None:
            token_tls = self.options.token_tls if self.options.token_tls is not None else self.tls
            tls_cert = None
            if token_tls:
                if self.ca is None:
                    self.ca = CertificateAuthority.create(self.directory / "pki")
                tls_cert = self.ca.issue_server_cert(self.directory / "pki", basename="token")
            self.token_server = TokenServer(
                self.directory / "token",
                username=self.options.username,
                password=self.options.password,
                anonymous_pull=self.options.anonymous_pull,
                service=self.options.service,
                issuer=self.options.issuer,
                expires_in=self.options.token_expires_in,
                tls_cert=tls_cert,
            ).start()

    def start(self, timeout: float = 15.0) -> Registry:
        """Start the process (again, on the same port and storage, after :meth:`stop`)."""
        if self.running:
            return self
        binary = require_binary("docker-registry")
        self._prepare()
        reuse_port = self.port != 0
        last_error = ""
        for _attempt in range(5):
            if not reuse_port:
                self.port = free_port()
            self._write_config()
            self._spawn(binary)
            try:
                self._wait_ready(timeout)
            except _StartFailed as exc:
                last_error = str(exc)
                self._terminate()
                if "address already in use" in last_error and not reuse_port:
                    continue
                if "address already in use" in last_error and reuse_port:
                    time.sleep(0.2)
                    continue
                break
            if not reuse_port:
                self._log_start = self.mark()
            return self
        self._terminate()
        pytest.fail(f"docker-registry did not start: {last_error}", pytrace=False)

    def _spawn(self, binary: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env.pop("OTEL_TRACES_EXPORTER", None)
        access = self.access_log_path.open("ab")
        errors = self.log_path.open("ab")
        self._log_files = [access, errors]
        self._proc = subprocess.Popen(
            [binary, "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=access,
            stderr=errors,
            env=env,
            cwd=self.directory,
        )
        _live.add(self)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        verify = self.httpx_verify
        with httpx.Client(verify=verify, timeout=2.0) as client:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise _StartFailed(self._log_tail())
                try:
                    # Any HTTP answer means ready; a sync-prefixed path keeps the probe
                    # out of request_log().
                    client.get(f"{self.url}{SYNC_PREFIX}ready")
                    return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise _StartFailed(f"not ready after {timeout}s\n{self._log_tail()}")
                time.sleep(0.03)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for fh in self._log_files:
            fh.close()
        self._log_files = []

    def stop(self) -> None:
        """Stop the registry process (the token server keeps running; see :meth:`close`)."""
        if self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None
        self._terminate()

    def close(self) -> None:
        """Stop everything: the registry and its token server."""
        self.stop()
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request log -----------------------------------------------------------------

    def _read_new_lines(self) -> None:
        with self._parse_lock:
            try:
                with self.access_log_path.open("rb") as fh:
                    fh.seek(self._parse_offset)
                    data = fh.read()
            except FileNotFoundError:
                return
            end = data.rfind(b"\n")
            if end < 0:
                return
            chunk = data[: end + 1]
            self._parse_offset += len(chunk)
            for raw in chunk.splitlines():
                entry = _parse_access_line(raw.decode("utf-8", "replace"))
                if entry is not None:
                    self._parsed.append(entry)

    def sync_log(self, timeout: float = 5.0) -> None:
        """Send a sentinel request and wait until the registry has logged it, so every
        request answered before now is in the log."""
        if not self.running:
            self._read_new_lines()
            return
        token = uuid.uuid4().hex
        if self._sync_client is None:
            self._sync_client = httpx.Client(verify=self.httpx_verify, timeout=5.0)
        try:
            self._sync_client.get(f"{self.url}{SYNC_PREFIX}{token}")
        except httpx.TransportError:
            self._read_new_lines()
            return
        needle = SYNC_PREFIX + token
        deadline = time.monotonic() + timeout
        while True:
            self._read_new_lines()
            with self._parse_lock:
                if any(e.uri == needle for e in reversed(self._parsed[-50:])):
                    return
            if time.monotonic() > deadline:
                return
            time.sleep(0.003)

    def _all_requests(self, sync: bool) -> list[LoggedRequest]:
        if sync:
            self.sync_log()
        else:
            self._read_new_lines()
        with self._parse_lock:
            return list(self._parsed)

    def mark(self) -> int:
        """A position in the request log; pass it as ``since=`` to count only later ones."""
        return len(self._all_requests(sync=True))

    def reset_log_position(self) -> None:
        """Make ``request_log()``/``count_requests()`` without ``since`` start from now."""
        self._log_start = self.mark()

    def request_log(self, since: int | None = None, *, sync: bool = True) -> list[LoggedRequest]:
        """Requests the registry logged after ``since`` (default: the last
        :meth:`reset_log_position`, or startup), excluding readiness and sync probes."""
        entries = self._all_requests(sync)
        start = self._log_start if since is None else since
        return [e for e in entries[start:] if not e.uri.startswith(SYNC_PREFIX)]

    def count_requests(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        *,
        status: int | None = None,
        since: int | None = None,
    ) -> int:
        """How many requests (optionally with ``method``, a URI containing
        ``path_contains``, or answered with ``status``) the registry received."""
        n = 0
        for entry in self.request_log(since):
            if method is not None and entry.method != method.upper():
                continue
            if path_contains is not None and path_contains not in entry.uri:
                continue
            if status is not None and entry.status != status:
                continue
            n += 1
        return n

    def __repr__(self) -> str:
        return f"<Registry {self.url} auth={self.auth} tls={self.tls}>"


class _StartFailed(Exception):
    pass


# --------------------------------------------------------------------------------------
# skopeo: an independent client to check what is in the registry


def _skopeo_creds(registry: Registry | None, creds: tuple[str, str] | bool | None) -> list[str]:
    if creds is None or creds is True:
        if registry is None or registry.credentials is None:
            return []
        creds = registry.credentials
    if creds is False:
        return []
    return [f"--creds={creds[0]}:{creds[1]}"]


def _docker_ref(registry: Registry | None, ref: str) -> str:
    if ref.startswith("docker://"):
        return ref
    if registry is not None and not ref.startswith(registry.host + "/"):
        ref = f"{registry.host}/{ref}"
    return f"docker://{ref}"


def skopeo_inspect_raw(
    ref: str,
    registry: Registry | None = None,
    *,
    creds: tuple[str, str] | bool | None = None,
    tls_verify: bool = False,
    timeout: float = 60.0,
) -> bytes:
    """``skopeo inspect --raw docker://REF``: the manifest bytes exactly as stored.

    ``ref`` is ``HOST/REPO:TAG`` (or ``@digest``), or ``REPO:TAG`` relative to
    ``registry``. ``creds``: None = the registry's credentials if it has any, a (user,
    password) pair, or False for none. With ``tls_verify`` the registry's CA is trusted
    via ``--cert-dir``; otherwise TLS is not verified (and plain http is allowed).
    """
    args = [require_binary("skopeo"), "inspect", "--raw"]
    args += _tls_args(registry, tls_verify, "")
    args += _skopeo_creds(registry, creds)
    args.append(_docker_ref(registry, ref))
    return _run_skopeo(args, timeout)


def skopeo_copy_to_oci(
    ref: str,
    dest_dir: Path,
    registry: Registry | None = None,
    *,
    tag: str = "latest",
    creds: tuple[str, str] | bool | None = None,
    tls_verify: bool = False,
    all_images: bool = True,
    preserve_digests: bool = True,
    timeout: float = 120.0,
) -> Path:
    """``skopeo copy docker://REF oci:DEST_DIR:TAG`` (all platforms of an index by
    default, manifests kept byte for byte with ``preserve_digests``); returns
    ``dest_dir``, an OCI image layout."""
    policy = dest_dir.parent / f".{dest_dir.name}-policy.json"
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    args = [require_binary("skopeo"), "copy", "--quiet", f"--policy={policy}"]
    if all_images:
        args.append("--all")
    if preserve_digests:
        args.append("--preserve-digests")
    args += _tls_args(registry, tls_verify, "src-")
    creds_args = _skopeo_creds(registry, creds)
    args += [a.replace("--creds=", "--src-creds=") for a in creds_args]
    args += [_docker_ref(registry, ref), f"oci:{dest_dir}:{tag}"]
    _run_skopeo(args, timeout)
    return dest_dir


def _tls_args(registry: Registry | None, tls_verify: bool, prefix: str) -> list[str]:
    if not tls_verify:
        return [f"--{prefix}tls-verify=false"]
    args = [f"--{prefix}tls-verify=true"]
    if registry is not None and registry.ca_path is not None:
        args.append(f"--{prefix}cert-dir={registry.ca_path.parent}")
    return args


def _run_skopeo(args: list[str], timeout: float) -> bytes:
    env = dict(os.environ)
    env.setdefault("HOME", "/tmp")
    proc = subprocess.run(args, capture_output=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        shown = [re.sub(r"(--(?:src-)?creds=)\S+", r"\1***", a) for a in args]
        raise RuntimeError(
            f"skopeo failed ({proc.returncode}): {' '.join(shown)}\n"
            f"{proc.stderr.decode(errors='replace')}"
        )
    return proc.stdout


def iter_registry_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON lines of a registry's ``registry.log`` (for debugging assertions)."""
    with path.open(errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue
