"""The OCI 1.1 referrers API (``GET /v2/<name>/referrers/<digest>``), which docker-registry
2.8 does not offer, so its answers are played with pytest-httpx: an index is read and
validated, a 404 or an answer that is not an index means "not offered" (the fallback tag
is used, tested against the real registry in tests/bundle/test_attached_artifacts.py), and
``copy --referrers`` (``attached_metas``) copies every referrer the API lists."""

from __future__ import annotations

import json

import pytest
from pytest_httpx import HTTPXMock

from lockresolve.bundle.imagedesc import RefMeta
from lockresolve.bundle.signatures import REFERRERS_SUFFIXES, attached_metas
from lockresolve.errors import ProtocolError
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy

pytestmark = pytest.mark.anyio

BASE = "https://registry.example"
SUBJECT = "sha256:" + "a" * 64
SBOM = "sha256:" + "b" * 64
SIG = "sha256:" + "c" * 64
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
API = f"{BASE}/v2/app/referrers/{SUBJECT}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _no_sleep(_: float) -> None:
    return None


def client() -> RegistryClient:
    return RegistryClient(TransportPolicy(retries=0), sleep=_no_sleep)


def _index(*entries: dict[str, object]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": list(entries)}).encode()


def _entry(digest: str, artifact_type: str = "application/spdx+json") -> dict[str, object]:
    return {"mediaType": MANIFEST, "digest": digest, "size": 500, "artifactType": artifact_type}


async def test_an_index_answer_lists_the_referrers(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", url=API, content=_index(_entry(SBOM), _entry(SIG)))
    async with client() as c:
        found = await c.referrers("registry.example", "app", SUBJECT)
    assert found is not None
    assert [(r.digest, r.artifact_type, r.size) for r in found] == [
        (SBOM, "application/spdx+json", 500),
        (SIG, "application/spdx+json", 500),
    ]
    (request,) = httpx_mock.get_requests()
    assert INDEX in request.headers["accept"]


async def test_the_artifact_type_filter_is_sent_as_a_query(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET", url=f"{API}?artifactType=application%2Fspdx%2Bjson", content=_index()
    )
    async with client() as c:
        assert await c.referrers("registry.example", "app", SUBJECT, "application/spdx+json") == ()


async def test_link_pages_are_followed(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="GET",
        url=API,
        content=_index(_entry(SBOM)),
        headers={"Link": f'</v2/app/referrers/{SUBJECT}?last=1>; rel="next"'},
    )
    httpx_mock.add_response(method="GET", url=f"{API}?last=1", content=_index(_entry(SIG)))
    async with client() as c:
        found = await c.referrers("registry.example", "app", SUBJECT)
    assert [r.digest for r in found or ()] == [SBOM, SIG]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, b'{"errors":[{"code":"NOT_FOUND"}]}'),
        (405, b""),
        (200, b"<html>not here</html>"),
        (200, json.dumps({"schemaVersion": 2, "mediaType": MANIFEST}).encode()),
    ],
)
async def test_a_404_or_an_answer_that_is_not_an_index_means_not_offered(
    httpx_mock: HTTPXMock, status: int, body: bytes
) -> None:
    httpx_mock.add_response(method="GET", url=API, status_code=status, content=body)
    async with client() as c:
        assert await c.referrers("registry.example", "app", SUBJECT) is None


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        ({"mediaType": MANIFEST, "size": 1}, "manifests[0] has no valid sha256 digest"),
        (
            {"mediaType": MANIFEST, "digest": "sha256:../../etc", "size": 1},
            "manifests[0] has no valid sha256 digest",
        ),
        ({"mediaType": MANIFEST, "digest": SBOM, "size": -1}, "manifests[0] has an invalid size"),
        ("not an object", "manifests[0] is not an object"),
    ],
)
async def test_a_malformed_index_is_refused_naming_the_entry(
    httpx_mock: HTTPXMock, entry: object, what: str
) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}).encode()
    httpx_mock.add_response(method="GET", url=API, content=body)
    async with client() as c:
        with pytest.raises(ProtocolError) as info:
            await c.referrers("registry.example", "app", SUBJECT)
    assert what in str(info.value)
    assert f"registry.example/v2/app/referrers/{SUBJECT}" in str(info.value)


async def test_copy_referrers_takes_each_referrer_the_api_lists(httpx_mock: HTTPXMock) -> None:
    # The registry offers the API and has no fallback tag: both referrers become items.
    fallback = f"{BASE}/v2/app/manifests/sha256-{'a' * 64}"
    httpx_mock.add_response(method="HEAD", url=fallback, status_code=404)
    httpx_mock.add_response(method="GET", url=fallback, status_code=404)
    httpx_mock.add_response(method="GET", url=API, content=_index(_entry(SBOM), _entry(SIG)))
    for found in (SBOM, SIG):  # what is attached to them is looked up in turn: nothing
        tag = f"{BASE}/v2/app/manifests/{found.replace(':', '-')}"
        httpx_mock.add_response(method="HEAD", url=tag, status_code=404)
        httpx_mock.add_response(method="GET", url=tag, status_code=404)
        httpx_mock.add_response(
            method="GET", url=f"{BASE}/v2/app/referrers/{found}", status_code=404
        )
    async with client() as c:
        metas = await attached_metas(
            c, [RefMeta(ref=f"registry.example/app@{SUBJECT}")], REFERRERS_SUFFIXES
        )
    assert metas == (
        RefMeta(ref=f"registry.example/app@{SBOM}"),
        RefMeta(ref=f"registry.example/app@{SIG}"),
    )
