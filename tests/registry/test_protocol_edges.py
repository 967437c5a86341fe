"""Protocol edge cases a real registry will not produce, with pytest-httpx: lying registries,
hostile redirects, endless pagination, fallbacks."""

from __future__ import annotations

import hashlib
import json

import pytest
from pytest_httpx import HTTPXMock

from lockresolve.errors import (
    AuthError,
    DigestMismatchError,
    ProtocolError,
    RegistryError,
)
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.credentials import Credential
from lockresolve.registry.keychain import Keychain
from lockresolve.registry.protocol import MAX_MANIFEST_BYTES
from lockresolve.registry.transport import TransportPolicy

pytestmark = pytest.mark.anyio

BASE = "https://registry.example"
MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OTHER = "sha256:" + "0" * 64


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _no_sleep(_: float) -> None:
    return None


def client(**policy: object) -> RegistryClient:
    return RegistryClient(TransportPolicy(**policy), sleep=_no_sleep)  # type: ignore[arg-type]


def ref(s: str = "registry.example/app:1") -> Reference:
    return Reference.parse(s)


async def test_head_digest_is_trusted_and_no_get_is_sent(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="HEAD",
        url=f"{BASE}/v2/app/manifests/1",
        headers={
            "Docker-Content-Digest": DIGEST,
            "Content-Type": "application/vnd.oci.image.manifest.v1+json",
        },
    )
    async with client() as c:
        desc = await c.resolve(ref())
    assert desc.digest == DIGEST
    (request,) = httpx_mock.get_requests()
    accept = request.headers["accept"]
    for media_type in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ):
        assert media_type in accept


async def test_cookies_a_registry_sets_are_never_sent_back(httpx_mock: HTTPXMock) -> None:
    # Go's http.Client without a Jar (go-containerregistry, kbld, imgpkg) ignores them.
    for tag in ("1", "2"):
        httpx_mock.add_response(
            method="HEAD",
            url=f"{BASE}/v2/app/manifests/{tag}",
            headers={
                "Docker-Content-Digest": DIGEST,
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                "Set-Cookie": "session=secret; Path=/",
            },
        )
    async with client() as c:
        await c.resolve(ref("registry.example/app:1"))
        await c.resolve(ref("registry.example/app:2"))
    sent = httpx_mock.get_requests()
    assert len(sent) == 2
    assert all("cookie" not in request.headers for request in sent)


@pytest.mark.parametrize("head_status", [200, 405, 501])
async def test_get_only_when_head_gives_no_digest_or_is_not_allowed(
    httpx_mock: HTTPXMock, head_status: int
) -> None:
    # 200 without Docker-Content-Digest, or HEAD not allowed: one GET, hashed.
    httpx_mock.add_response(
        method="HEAD", url=f"{BASE}/v2/app/manifests/1", status_code=head_status
    )
    httpx_mock.add_response(method="GET", url=f"{BASE}/v2/app/manifests/1", content=MANIFEST)
    async with client() as c:
        assert (await c.resolve(ref())).digest == DIGEST


@pytest.mark.parametrize("status", [401, 429, 500, 503])
async def test_head_errors_never_turn_into_a_get(httpx_mock: HTTPXMock, status: int) -> None:
    httpx_mock.add_response(
        method="HEAD", url=f"{BASE}/v2/app/manifests/1", status_code=status, is_reusable=True
    )
    async with client(retries=2) as c:
        with pytest.raises(RegistryError) as info:
            await c.resolve(ref())
    assert info.value.status == status
    assert {r.method for r in httpx_mock.get_requests()} == {"HEAD"}
    if status == 401:
        assert isinstance(info.value, AuthError)


async def test_manifest_body_that_does_not_match_the_digest_asked_for(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(method="GET", url=f"{BASE}/v2/app/manifests/{OTHER}", content=MANIFEST)
    async with client() as c:
        with pytest.raises(DigestMismatchError) as info:
            await c.get_manifest(ref(f"registry.example/app@{OTHER}"))
    assert DIGEST in str(info.value)


async def test_announced_digest_that_disagrees_with_the_body(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/manifests/1",
        content=MANIFEST,
        headers={"Docker-Content-Digest": OTHER},
    )
    async with client() as c:
        with pytest.raises(DigestMismatchError):
            await c.get_manifest(ref())


async def test_oversized_manifest_is_refused(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET", url=f"{BASE}/v2/app/manifests/1", content=b"{" + b" " * MAX_MANIFEST_BYTES
    )
    async with client() as c:
        with pytest.raises(ProtocolError, match="larger than"):
            await c.get_manifest(ref())


async def test_blob_redirect_to_another_host_carries_no_registry_credentials(
    httpx_mock: HTTPXMock,
) -> None:
    data = b"layer bytes" * 100
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/blobs/{digest}",
        status_code=307,
        headers={"Location": "https://storage.example/blob?sig=abc"},
    )
    httpx_mock.add_response(method="GET", url="https://storage.example/blob?sig=abc", content=data)
    keychain = Keychain.from_environment(
        {}, explicit=Credential(username="u", password="pw-secret")
    )
    policy = TransportPolicy()
    async with RegistryClient(policy, keychain, sleep=_no_sleep) as c:
        # Teach the client that registry.example wants Basic auth.
        httpx_mock.add_response(
            method="HEAD",
            url=f"{BASE}/v2/app/blobs/{digest}",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="r"'},
        )
        httpx_mock.add_response(method="HEAD", url=f"{BASE}/v2/app/blobs/{digest}")
        assert await c.blob_exists("registry.example", "app", digest)
        got = b"".join([chunk async for chunk in c.get_blob("registry.example", "app", digest)])
    assert got == data
    requests = httpx_mock.get_requests()
    to_registry = [r for r in requests if r.url.host == "registry.example" and r.method == "GET"]
    to_storage = [r for r in requests if r.url.host == "storage.example"]
    assert "authorization" in to_registry[0].headers
    assert "authorization" not in to_storage[0].headers


async def test_blob_whose_bytes_do_not_match_its_digest(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", url=f"{BASE}/v2/app/blobs/{OTHER}", content=b"evil")
    async with client() as c:
        with pytest.raises(DigestMismatchError):
            async for _ in c.get_blob("registry.example", "app", OTHER):
                pass


async def test_endless_link_pagination_is_refused(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/tags/list?n=1000",
        json={"name": "app", "tags": ["a"]},
        headers={"Link": '</v2/app/tags/list?last=a&n=1000>; rel="next"'},
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/tags/list?last=a&n=1000",
        json={"name": "app", "tags": ["b"]},
        headers={"Link": '</v2/app/tags/list?n=1000>; rel="next"'},
    )
    async with client() as c:
        with pytest.raises(ProtocolError, match="loops"):
            await c.list_tags("registry.example", "app")


async def test_tag_listing_follows_pages(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/tags/list?n=1000",
        json={"tags": ["a", "b"]},
        headers={"Link": '</v2/app/tags/list?last=b&n=1000>; rel="next"'},
    )
    httpx_mock.add_response(
        method="GET", url=f"{BASE}/v2/app/tags/list?last=b&n=1000", json={"tags": ["c"]}
    )
    async with client() as c:
        assert await c.list_tags("registry.example", "app") == ["a", "b", "c"]


async def test_monolithic_upload_refused_falls_back_to_chunks(httpx_mock: HTTPXMock) -> None:
    data = b"x" * 300
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/v2/app/blobs/uploads/",
        status_code=202,
        headers={"Location": "/v2/app/blobs/uploads/u1"},
        is_reusable=True,
    )
    httpx_mock.add_response(
        method="PUT",
        url=f"{BASE}/v2/app/blobs/uploads/u1?digest={digest.replace(':', '%3A')}",
        status_code=405,
        match_headers={"Content-Length": "300"},
    )
    httpx_mock.add_response(
        method="PATCH",
        url=f"{BASE}/v2/app/blobs/uploads/u1",
        status_code=202,
        headers={"Location": "/v2/app/blobs/uploads/u2"},
    )
    httpx_mock.add_response(
        method="PUT",
        url=f"{BASE}/v2/app/blobs/uploads/u2?digest={digest.replace(':', '%3A')}",
        status_code=201,
    )
    async with client() as c:
        await c.upload_blob("registry.example", "app", digest, len(data), data)
    patch = next(r for r in httpx_mock.get_requests() if r.method == "PATCH")
    assert patch.content == data
    assert patch.headers["content-range"] == "0-299"


async def test_registry_error_names_reference_and_code(httpx_mock: HTTPXMock) -> None:
    body = {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/manifests/1",
        status_code=403,
        content=json.dumps(body).encode(),
    )
    async with client() as c:
        with pytest.raises(AuthError) as info:
            await c.get_manifest(ref())
    assert info.value.subject == "registry.example/app:1"
    assert "DENIED: requested access to the resource is denied" in str(info.value)
