"""A small Docker registry token server (the ``auth.token.realm`` of a test registry).

Implements the token flow of the distribution "token authentication specification":

* ``GET /token?service=S&scope=repository:NAME:pull,push&scope=...`` with optional Basic
  credentials (and ``offline_token=true`` to also get a refresh token);
* ``POST /token`` with an OAuth2 form (``grant_type=password`` or ``refresh_token``).

Tokens are RS256 JWTs whose header carries ``x5c`` = [the signing certificate], the very
certificate the registry has as its whole ``rootcertbundle``. Every request is recorded
(:attr:`TokenServer.requests`) so tests can assert how many tokens a client fetched and for
which scopes. Faults and delays can be injected (:meth:`TokenServer.fail_next`,
:attr:`TokenServer.delay`).

Runs a threaded stdlib ``http.server`` on loopback in a daemon thread::

    with TokenServer(tmp_path, username="alice", password="s3cret") as ts:
        ts.realm  # "http://127.0.0.1:PORT/token"
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .pki import IssuedCert, SigningCert, make_signing_cert
from .requestlog import RequestLog

__all__ = [
    "AccessEntry",
    "Scope",
    "TokenRequest",
    "TokenServer",
    "b64url",
    "decode_jwt_unverified",
    "parse_scope",
]

DEFAULT_SERVICE = "lockresolve-test-registry"
DEFAULT_ISSUER = "lockresolve-test-token-issuer"
ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})

#: (account or None for anonymous, resource type, resource name) -> actions allowed
Policy = Callable[[str | None, str, str], Iterable[str]]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT, without checking the signature (for assertions)."""
    head, body, _sig = token.split(".")
    header: dict[str, Any] = json.loads(_b64url_decode(head))
    claims: dict[str, Any] = json.loads(_b64url_decode(body))
    return header, claims


@dataclass(frozen=True)
class Scope:
    """One parsed scope, e.g. ``repository:conf/r01/web:pull,push``."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scope(text: str) -> Scope | None:
    """Parse ``type[(class)]:name:actions``; the name may itself contain ``:``."""
    parts = text.split(":")
    if len(parts) < 3:
        return None
    rtype = parts[0].split("(", 1)[0]
    name = ":".join(parts[1:-1])
    actions = tuple(a for a in parts[-1].split(",") if a)
    return Scope(type=rtype, name=name, actions=actions)


@dataclass(frozen=True)
class AccessEntry:
    type: str
    name: str
    actions: tuple[str, ...]

    def as_claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server received."""

    method: str
    path: str
    service: str | None
    #: every scope string requested, in order (space-separated values are split)
    scopes: tuple[str, ...]
    #: the ``account`` parameter, if sent
    account: str | None
    #: the user whose credentials were checked, None when anonymous / refresh grant
    username: str | None
    anonymous: bool
    grant_type: str | None
    status: int
    #: what the issued token grants (empty when no token was issued)
    granted: tuple[AccessEntry, ...]
    offline_token: bool
    time: float = field(default_factory=time.time)


@dataclass
class _Fault:
    status: int
    retry_after: str | None


class TokenServer(RequestLog[TokenRequest]):
    """A threaded token server on 127.0.0.1 (see module docs).

    Access control: with no users configured, everyone gets every requested action.
    With users, valid Basic credentials (or a password/refresh grant) get every requested
    action allowed by ``policy`` (default: all); wrong credentials get 401; anonymous
    requests get only ``pull`` when ``anonymous_pull`` is true, else 401.
    """

    def __init__(
        self,
        directory: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        users: dict[str, str] | None = None,
        anonymous_pull: bool = False,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        expires_in: int = 300,
        jwt_lifetime: int | None = None,
        policy: Policy | None = None,
        tls_cert: IssuedCert | None = None,
        signing_cert: SigningCert | None = None,
    ) -> None:
        self.directory = directory
        self.users: dict[str, str] = dict(users or {})
        if username is not None:
            self.users[username] = password or ""
        self.username = username
        self.password = password
        self.anonymous_pull = anonymous_pull
        self.service = service
        self.issuer = issuer
        #: the ``expires_in`` the server answers (seconds); may be changed at any time
        self.expires_in = expires_in
        #: JWT ``exp`` = now + this (default: expires_in). Negative makes expired tokens.
        #: Note the registry allows 60 s of leeway on ``exp`` and ``nbf``.
        self.jwt_lifetime = jwt_lifetime
        self.policy = policy
        #: seconds to sleep before answering each request (e.g. to test single-flight)
        self.delay = 0.0
        self.signing = signing_cert or make_signing_cert(directory)
        self._tls_cert = tls_cert
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []
        self._faults: list[_Fault] = []
        self._refresh_tokens: dict[str, str] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self._tls_cert else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    @property
    def rootcertbundle(self) -> Path:
        """The PEM file to give the registry as ``auth.token.rootcertbundle``."""
        return self.signing.cert_path

    def start(self) -> TokenServer:
        server = self

        class Handler(_TokenHandler):
            token_server = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        if self._tls_cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self._tls_cert.cert_path, self._tls_cert.key_path)
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection ----------------------------------------------------------------

    def count(
        self,
        scope: str | None = None,
        *,
        status: int | None = None,
        scope_contains: str | None = None,
        since: int = 0,
    ) -> int:
        """How many token requests (after ``since``, a :meth:`mark`; since the last
        :meth:`reset`), optionally only those that asked for ``scope`` (exact scope string),
        a scope containing ``scope_contains``, or got ``status``."""
        return self._count_where(
            since,
            lambda req: (
                (scope is None or scope in req.scopes)
                and (scope_contains is None or any(scope_contains in s for s in req.scopes))
                and (status is None or req.status == status)
            ),
        )

    @property
    def tokens_issued(self) -> int:
        return self.count(status=200)

    def scopes_requested(self) -> list[tuple[str, ...]]:
        """The scope tuple of each request, in order."""
        return [r.scopes for r in self.requests]

    def reset(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    def fail_next(self, count: int = 1, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``)."""
        with self._lock:
            self._faults.extend(_Fault(status, retry_after) for _ in range(count))

    # -- tokens --------------------------------------------------------------------

    def mint_token(
        self,
        access: Iterable[str | AccessEntry],
        *,
        subject: str = "",
        audience: str | None = None,
        lifetime: int | None = None,
    ) -> str:
        """Sign a token granting ``access`` (scope strings or entries), as the server would."""
        entries: list[AccessEntry] = []
        for item in access:
            if isinstance(item, AccessEntry):
                entries.append(item)
            else:
                sc = parse_scope(item)
                if sc is None:
                    raise ValueError(f"bad scope {item!r}")
                entries.append(AccessEntry(sc.type, sc.name, sc.actions))
        now = int(time.time())
        life = lifetime if lifetime is not None else (self.jwt_lifetime or self.expires_in)
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience or self.service,
            "exp": now + life,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": [e.as_claim() for e in entries],
        }
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.signing.cert_der).decode("ascii")],
        }
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.signing.key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return signing_input + "." + b64url(signature)

    def _grant(self, account: str | None, scopes: list[Scope]) -> list[AccessEntry]:
        granted: list[AccessEntry] = []
        for sc in scopes:
            if self.policy is not None:
                allowed = set(self.policy(account, sc.type, sc.name))
            elif account is None and self.users:
                allowed = {"pull"} if self.anonymous_pull else set()
            else:
                allowed = set(ALL_ACTIONS)
            actions = tuple(a for a in sc.actions if a in allowed or "*" in allowed)
            if actions:
                granted.append(AccessEntry(sc.type, sc.name, actions))
        return granted

    # -- request handling (called on server threads) --------------------------------

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _record(self, req: TokenRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def _handle(
        self, method: str, path: str, query: dict[str, list[str]], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes, TokenRequest]:
        if self.delay:
            time.sleep(self.delay)

        def first(key: str) -> str | None:
            vals = query.get(key)
            return vals[0] if vals else None

        scope_strings: list[str] = []
        for value in query.get("scope", []):
            scope_strings.extend(s for s in value.split(" ") if s)
        service = first("service")
        account = first("account")
        grant_type = first("grant_type") if method == "POST" else None
        offline = (first("offline_token") or "").lower() == "true" or (
            first("access_type") == "offline"
        )

        def record(
            status: int, username: str | None, anonymous: bool, granted: list[AccessEntry]
        ) -> TokenRequest:
            return TokenRequest(
                method=method,
                path=path,
                service=service,
                scopes=tuple(scope_strings),
                account=account,
                username=username,
                anonymous=anonymous,
                grant_type=grant_type,
                status=status,
                granted=tuple(granted),
                offline_token=offline,
            )

        if path.rstrip("/") not in ("/token", "/auth", "/oauth2/token"):
            return 404, {}, b'{"errors":[{"code":"NOT_FOUND"}]}', record(404, None, True, [])

        fault = self._take_fault()
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            fault_body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "injected"}]})
            return fault.status, headers, fault_body.encode(), record(fault.status, None, True, [])

        # Who is asking?
        username: str | None = None
        anonymous = True
        bad_credentials = False
        if method == "POST" and grant_type == "password":
            username, password = first("username"), first("password") or ""
            anonymous = False
            if username is None or self.users.get(username) != password:
                bad_credentials = True
        elif method == "POST" and grant_type == "refresh_token":
            anonymous = False
            with self._lock:
                username = self._refresh_tokens.get(first("refresh_token") or "")
            if username is None:
                bad_credentials = True
        elif authorization and authorization.lower().startswith("basic "):
            anonymous = False
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, sep, password = decoded.partition(":")
            username = user or None
            if not sep or self.users.get(user) != password:
                bad_credentials = True
        elif method == "POST":
            return 400, {}, b'{"error":"unsupported_grant_type"}', record(400, None, True, [])

        if bad_credentials or (
            anonymous and self.users and not self.anonymous_pull and self.policy is None
        ):
            headers = {"WWW-Authenticate": 'Basic realm="lockresolve-test-token-server"'}
            body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
            return 401, headers, body, record(401, username, anonymous, [])

        scopes = [s for s in (parse_scope(x) for x in scope_strings) if s is not None]
        granted = self._grant(None if anonymous else username, scopes)
        token = self.mint_token(granted, subject=username or "", audience=service or self.service)
        payload: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": dt.datetime.now(dt.UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
        if offline and username is not None and not anonymous:
            refresh = secrets.token_urlsafe(24)
            with self._lock:
                self._refresh_tokens[refresh] = username
            payload["refresh_token"] = refresh
        body = json.dumps(payload).encode()
        return (
            200,
            {"Content-Type": "application/json"},
            body,
            record(200, username, anonymous, granted),
        )


class _TokenHandler(BaseHTTPRequestHandler):
    token_server: TokenServer
    protocol_version = "HTTP/1.1"
    server_version = "lockresolve-test-token-server/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            for key, values in urllib.parse.parse_qs(raw, keep_blank_values=True).items():
                query.setdefault(key, []).extend(values)
        status, headers, body, record = self.token_server._handle(
            method, parsed.path, query, self.headers.get("Authorization")
        )
        self.token_server._record(record)
        self.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")
