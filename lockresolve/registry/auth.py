"""Registry authentication as an ``httpx.Auth`` flow: anonymous, Basic and Bearer tokens.

What it does, per registry host:

* The first request to a host goes alone and unauthenticated; its answer
  teaches the challenge (``WWW-Authenticate``) or that none is needed. The
  other requests to that host wait for it, so a cold run sends one 401, not one
  per worker. There is no ``/v2/`` ping.
* Once the challenge is known, every request is authorised up front: Basic
  credentials, a registry token as is, or a Bearer token fetched from the
  challenge's realm for the request's scope. Tokens are cached per
  (realm, service, scopes) until shortly before they expire, and one fetch is
  in flight per key; the token request is yielded from the flow, so it goes
  through the same client (pool, proxies, TLS settings, ``-v`` logging).
* A 401 with ``error="insufficient_scope"`` or after a cached token is
  answered by one retry with a fresh token for the union of scopes.

The client passes the registry name (for credential lookup) and the scopes a
request needs in ``request.extensions`` under :data:`REGISTRY_EXT` and
:data:`SCOPES_EXT`.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
import httpx

from lockresolve.errors import AuthError
from lockresolve.registry.credentials import Credential
from lockresolve.registry.protocol import (
    Challenge,
    load_json,
    parse_www_authenticate,
    redact_url,
)

__all__ = ["REGISTRY_EXT", "SCOPES_EXT", "SENT_EXT", "CredentialSource", "RegistryAuth"]

REGISTRY_EXT = "lockresolve.registry"
SCOPES_EXT = "lockresolve.scopes"

# Refresh a token this many seconds before the registry would stop accepting it.
_EXPIRY_MARGIN = 10.0
_DEFAULT_TOKEN_LIFETIME = 60.0
# A token service's answer is a few kilobytes (a JWT); more is refused unread.
_MAX_TOKEN_ANSWER = 1024 * 1024


#: set on each request: what the flow sent (``Credential.describe()``), for error messages
SENT_EXT = "lockresolve.credentials-sent"


class CredentialSource(Protocol):
    def resolve(self, registry: str, repository: str | None = None) -> Credential: ...


def scope_repository(scopes: tuple[str, ...]) -> str | None:
    """The repository a request is about: its first ``repository:NAME:ACTIONS`` scope
    (for a mount, the target; the source repository comes after it)."""
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name = rest.rpartition(":")[0]
        if kind == "repository" and name:
            return name
    return None


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


# (realm, service, scopes, the credential the token was fetched with): two credentials on
# one host (per repository path) never share a token.
_TokenKey = tuple[str, str, tuple[str, ...], Credential]


class RegistryAuth(httpx.Auth):
    """The auth flow shared by every request of one :class:`RegistryClient`."""

    def __init__(
        self,
        credentials: CredentialSource,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._clock = clock
        self._challenges: dict[str, Challenge | None] = {}
        self._first_contact: dict[str, anyio.Event] = {}
        self._tokens: dict[_TokenKey, _Token] = {}
        self._token_locks: dict[_TokenKey, anyio.Lock] = {}
        self._creds: dict[tuple[str, str | None], Credential] = {}
        self._cred_locks: dict[tuple[str, str | None], anyio.Lock] = {}
        self.token_fetches = 0

    async def _credential(self, registry: str, repository: str | None) -> Credential:
        key = (registry, repository)
        cred = self._creds.get(key)
        if cred is None:
            async with self._cred_locks.setdefault(key, anyio.Lock()):
                cred = self._creds.get(key)
                if cred is None:
                    cred = await anyio.to_thread.run_sync(
                        self._credentials.resolve, registry, repository
                    )
                    self._creds[key] = cred
        return cred

    def _scopes(self, challenge: Challenge, wanted: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(wanted) | set(challenge.scopes))) if wanted else challenge.scopes

    def _valid_token(self, key: _TokenKey) -> _Token | None:
        token = self._tokens.get(key)
        if token is not None and token.expires_at > self._clock():
            return token
        return None

    def _token_request(
        self, challenge: Challenge, scopes: tuple[str, ...], cred: Credential
    ) -> httpx.Request:
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"the registry's token realm {realm!r} is not an http(s) URL")
        if cred.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": cred.identity_token,
                "service": challenge.service,
                "client_id": "lockresolve",
            }
            if scopes:
                form["scope"] = " ".join(scopes)
            return httpx.Request("POST", realm, data=form)
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", s) for s in scopes)
        headers = {}
        if cred.username is not None and cred.password is not None:
            raw = f"{cred.username}:{cred.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        return httpx.Request("GET", realm, params=params, headers=headers)

    def _parse_token(
        self, response: httpx.Response, content: bytes, realm: str, cred: Credential
    ) -> _Token:
        where = redact_url(realm)
        if response.status_code != 200:
            raise AuthError(
                f"token service {where} refused the request ({response.status_code}); "
                f"sent {cred.describe()}",
                status=response.status_code,
            )
        try:
            body = load_json(content)
            if not isinstance(body, dict):
                raise TypeError
            value = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
        except (ValueError, TypeError):
            raise AuthError(f"token service {where} sent an unreadable answer") from None
        if not math.isfinite(lifetime):
            lifetime = _DEFAULT_TOKEN_LIFETIME  # 'nan' would make every token expired
        if not isinstance(value, str) or not value:
            raise AuthError(f"token service {where} sent no token")
        lifetime = max(lifetime, _EXPIRY_MARGIN * 2)
        return _Token(value=value, expires_at=self._clock() + lifetime - _EXPIRY_MARGIN)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        host = request.url.netloc.decode("ascii")
        registry = str(request.extensions.get(REGISTRY_EXT) or host)
        wanted: tuple[str, ...] = tuple(request.extensions.get(SCOPES_EXT, ()))
        repository = scope_repository(wanted)

        # First contact with a host: one request learns the challenge, the rest wait.
        leader = False
        while host not in self._challenges:
            event = self._first_contact.get(host)
            if event is None:
                self._first_contact[host] = anyio.Event()
                leader = True
                break
            await event.wait()

        forced_refresh = False
        try:
            for attempt in range(2):
                challenge = self._challenges.get(host)
                token_key: _TokenKey | None = None
                if challenge is not None:
                    cred = await self._credential(registry, repository)
                    header: str | None = None
                    if challenge.scheme == "basic":
                        if cred.username is not None and cred.password is not None:
                            raw = f"{cred.username}:{cred.password}".encode()
                            header = "Basic " + base64.b64encode(raw).decode("ascii")
                    elif challenge.scheme == "bearer":
                        if cred.registry_token:
                            header = f"Bearer {cred.registry_token}"
                        else:
                            scopes = self._scopes(challenge, wanted)
                            token_key = (challenge.realm, challenge.service, scopes, cred)
                            lock = self._token_locks.setdefault(token_key, anyio.Lock())
                            async with lock:
                                token = None if forced_refresh else self._valid_token(token_key)
                                if token is None:
                                    token_response = yield self._token_request(
                                        challenge, scopes, cred
                                    )
                                    content = await _read_token_answer(
                                        token_response, challenge.realm
                                    )
                                    self.token_fetches += 1
                                    token = self._parse_token(
                                        token_response, content, challenge.realm, cred
                                    )
                                    self._tokens[token_key] = token
                            header = f"Bearer {token.value}"
                    if header is not None:
                        request.headers["Authorization"] = header
                        via = " (for a token from the token service)" if token_key else ""
                        request.extensions[SENT_EXT] = f"sent {cred.describe()}{via}"
                    elif cred.is_anonymous:
                        request.extensions[SENT_EXT] = "no credentials sent" + (
                            f" ({cred.source})" if cred.source else ""
                        )
                    else:
                        request.extensions[SENT_EXT] = (
                            f"no credentials sent: {cred.describe()} cannot answer "
                            f"the registry's {challenge.scheme} challenge"
                        )

                response = yield request

                if leader:
                    # Whatever the answer, the host is known now: 401 -> its challenge.
                    found = None
                    if response.status_code == 401:
                        found = parse_www_authenticate(response.headers.get("www-authenticate", ""))
                    self._challenges[host] = found
                    self._first_contact.pop(host).set()
                    leader = False

                if response.status_code != 401 or attempt == 1:
                    return
                found = parse_www_authenticate(response.headers.get("www-authenticate", ""))
                if found is None or found.scheme not in ("basic", "bearer"):
                    return
                previous = self._challenges.get(host)
                if (
                    previous is not None
                    and previous.scheme == found.scheme == "basic"
                    and "Authorization" in request.headers
                ):
                    return  # the credentials themselves were refused
                if found.params.get("error") == "insufficient_scope" and found.scopes:
                    wanted = tuple(sorted(set(wanted) | set(found.scopes)))
                elif token_key is not None:
                    forced_refresh = True
                self._challenges[host] = Challenge(
                    scheme=found.scheme,
                    params={k: v for k, v in found.params.items() if k in ("realm", "service")},
                )
                if not isinstance(request.stream, httpx.ByteStream):
                    # A streamed body is consumed: it cannot be sent again from here. Forget
                    # the refused token and hand the 401 back; the caller starts over with
                    # a fresh body (a new upload session), which gets a fresh token.
                    if token_key is not None:
                        self._tokens.pop(token_key, None)
                    return
        finally:
            if leader:
                # No answer (connection failed, cancelled): let the next request lead.
                self._first_contact.pop(host).set()


class _CappedStream(httpx.AsyncByteStream):
    """A response body that raises :class:`AuthError` once more than ``cap`` bytes came."""

    def __init__(self, inner: httpx.AsyncByteStream, cap: int, message: str) -> None:
        self._inner, self._cap, self._message = inner, cap, message

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in self._inner:
            total += len(chunk)
            if total > self._cap:
                raise AuthError(self._message)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _read_token_answer(response: httpx.Response, realm: str) -> bytes:
    """The token service's answer, refusing one over 1 MiB (unread past that).

    Read through ``aread`` so that httpx finds the body read when the flow goes on.
    """
    message = f"token service {redact_url(realm)} sent an answer over 1 MiB, refused"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_TOKEN_ANSWER:
        await response.aclose()
        raise AuthError(message)
    if isinstance(response.stream, httpx.AsyncByteStream):
        response.stream = _CappedStream(response.stream, _MAX_TOKEN_ANSWER, message)
    try:
        return await response.aread()
    except AuthError:
        await response.aclose()
        raise
