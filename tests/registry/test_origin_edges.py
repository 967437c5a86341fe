"""Credentials go only to the registry's own origin (issue 12, item 10): upload locations and
tag-list pages on another host, and a redirect from https to http, get no Authorization.
pytest-httpx: a real registry does not send these."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from pytest_httpx import HTTPXMock

from lockresolve.errors import AuthError
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.credentials import Credential
from lockresolve.registry.keychain import Keychain
from lockresolve.registry.transport import TransportPolicy

pytestmark = pytest.mark.anyio

BASE = "https://registry.example"
DATA = b"blob bytes" * 50
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
QDIGEST = DIGEST.replace(":", "%3A")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _no_sleep(_: float) -> None:
    return None


def basic_client(httpx_mock: HTTPXMock) -> RegistryClient:
    """A client with Basic credentials, and registry.example asking for them."""
    httpx_mock.add_response(
        method="HEAD",
        url=f"{BASE}/v2/app/blobs/{DIGEST}",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="r"'},
    )
    httpx_mock.add_response(method="HEAD", url=f"{BASE}/v2/app/blobs/{DIGEST}", status_code=404)
    keychain = Keychain.from_environment(
        {}, explicit=Credential(username="u", password="pw-secret")
    )
    return RegistryClient(TransportPolicy(retries=0), keychain, sleep=_no_sleep)


def upload_session_at(httpx_mock: HTTPXMock, location: str) -> None:
    """registry.example starts a blob upload at ``location``."""
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/v2/app/blobs/uploads/",
        status_code=202,
        headers={"Location": location},
    )


def challenge_from(httpx_mock: HTTPXMock, method: str, url: str, optional: bool = False) -> None:
    """``url`` (on another host) asks for credentials with a Basic challenge of its own."""
    httpx_mock.add_response(
        method=method,
        url=url,
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="give me yours"'},
        is_optional=optional,
        is_reusable=True,
    )


def assert_none_sent_to(requests: list[httpx.Request], host: str) -> None:
    """Requests went to ``host``, and none of them carried an Authorization header."""
    to_other = [r for r in requests if r.url.host == host]
    assert to_other and not any("authorization" in r.headers for r in to_other)


async def test_an_upload_location_on_another_host_gets_no_credentials(
    httpx_mock: HTTPXMock,
) -> None:
    # The other host even asks for them with a challenge of its own: it gets none.
    upload_session_at(httpx_mock, "https://uploads.other.example/session/1")
    challenge_from(
        httpx_mock, "PUT", f"https://uploads.other.example/session/1?digest={QDIGEST}", True
    )
    async with basic_client(httpx_mock) as c:
        assert not await c.blob_exists("registry.example", "app", DIGEST)
        with pytest.raises(AuthError):
            await c.upload_blob("registry.example", "app", DIGEST, len(DATA), DATA)
    requests = httpx_mock.get_requests()
    post = next(r for r in requests if r.method == "POST")
    assert "authorization" in post.headers
    assert_none_sent_to(requests, "uploads.other.example")


async def test_an_upload_location_on_the_registry_keeps_its_credentials(
    httpx_mock: HTTPXMock,
) -> None:
    upload_session_at(httpx_mock, "/v2/app/blobs/uploads/u1")
    httpx_mock.add_response(
        method="PUT", url=f"{BASE}/v2/app/blobs/uploads/u1?digest={QDIGEST}", status_code=201
    )
    async with basic_client(httpx_mock) as c:
        assert not await c.blob_exists("registry.example", "app", DIGEST)
        await c.upload_blob("registry.example", "app", DIGEST, len(DATA), DATA)
    put = next(r for r in httpx_mock.get_requests() if r.method == "PUT")
    assert "authorization" in put.headers


async def test_a_tag_page_on_another_host_gets_no_credentials(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/tags/list?n=1000",
        json={"tags": ["a"]},
        headers={"Link": '<https://pages.other.example/v2/app/tags/list?last=a>; rel="next"'},
    )
    challenge_from(httpx_mock, "GET", "https://pages.other.example/v2/app/tags/list?last=a")
    async with basic_client(httpx_mock) as c:
        assert not await c.blob_exists("registry.example", "app", DIGEST)
        with pytest.raises(AuthError):
            await c.list_tags("registry.example", "app")
    gets = [r for r in httpx_mock.get_requests() if r.method == "GET"]
    assert "authorization" in gets[0].headers
    assert_none_sent_to(gets, "pages.other.example")


async def test_a_blob_redirect_from_https_to_http_on_the_same_host_drops_credentials(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/blobs/{DIGEST}",
        status_code=307,
        headers={"Location": "http://registry.example/storage/blob"},
    )
    httpx_mock.add_response(method="GET", url="http://registry.example/storage/blob", content=DATA)
    async with basic_client(httpx_mock) as c:
        assert not await c.blob_exists("registry.example", "app", DIGEST)
        got = b"".join([x async for x in c.get_blob("registry.example", "app", DIGEST)])
    assert got == DATA
    gets = [r for r in httpx_mock.get_requests() if r.method == "GET"]
    assert gets[0].url.scheme == "https" and "authorization" in gets[0].headers
    assert gets[1].url.scheme == "http" and "authorization" not in gets[1].headers
