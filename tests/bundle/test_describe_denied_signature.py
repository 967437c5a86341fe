"""imgpkg v0.42.3 lists a signature the registry denies (403) as an entry keyed by its tag
reference, ``{imageType: Signature, error: access denied}``; docker-registry never answers
403 for one tag only, so the answer is played with pytest-httpx."""

from __future__ import annotations

import pytest
from pytest_httpx import HTTPXMock

from lockresolve.bundle.commands.describe import _Walk, description_text
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy

pytestmark = pytest.mark.anyio
IMAGE = "sha256:" + "a" * 64


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _no_sleep(_: float) -> None:
    return None


async def test_a_denied_signature_is_listed_with_its_error(httpx_mock: HTTPXMock) -> None:
    tag = "sha256-" + "a" * 64 + ".sig"
    httpx_mock.add_response(
        url=f"https://registry.example/v2/app/manifests/{tag}", status_code=403, is_reusable=True
    )
    images: dict[str, dict[str, object]] = {}
    async with RegistryClient(TransportPolicy(retries=0), sleep=_no_sleep) as c:
        await _Walk(c, layers=True).signatures([f"registry.example/app@{IMAGE}"], images)
    assert images == {
        f"registry.example/app:{tag}": {"imageType": "Signature", "error": "access denied"}
    }
    text = description_text(
        {"image": f"registry.example/app@{IMAGE}", "content": {"images": images}}
    )
    assert text.splitlines()[2:] == ["Images:", "  - Image: ", "    Type: Signature"]
