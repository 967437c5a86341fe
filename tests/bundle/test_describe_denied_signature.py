"""imgpkg v0.42.3 lists a signature the registry denies (403) as an entry keyed by its tag
reference, ``{imageType: Signature, error: access denied}``; docker-registry never answers
403 for one tag only, so the answer is played with pytest-httpx. A 401 for the signature
(the real registry with Basic auth, behind the fault proxy) stops describe, as in imgpkg."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from lockresolve.bundle.commands.describe import _Walk, description_text
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy
from tests.conftest import FaultProxyFactory
from tests.robustness.helpers import run_cli
from tests.support.faultproxy import Fault, FaultPlan
from tests.support.registry import Registry

IMAGE = "sha256:" + "a" * 64


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _no_sleep(_: float) -> None:
    return None


@pytest.mark.anyio
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


def test_a_signature_refused_with_401_stops_describe_as_imgpkg(
    basic_registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The real registry with Basic auth, behind a proxy that answers 401 for the bundle's
    ``.sig`` (a registry whose policy refuses that tag): imgpkg v0.42.3 stops with
    ``Retrieving Images from bundle: Fetching signature for image '<ref>': <error>``, and so
    does lockresolve, on one line, exit 1, the password nowhere."""
    reg = basic_registry
    assert reg.username and reg.password
    monkeypatch.setenv("LOCKRESOLVE_USERNAME", reg.username)
    monkeypatch.setenv("LOCKRESOLVE_PASSWORD", reg.password)
    refuse = Fault.error(401, code="UNAUTHORIZED")
    proxy = fault_proxy_factory(
        reg.url, FaultPlan(rate=1.0, choices=(refuse,), path_contains=".sig")
    )
    (tmp_path / "b" / ".imgpkg").mkdir(parents=True)
    (tmp_path / "b" / ".imgpkg" / "images.yml").write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n"
    )
    (tmp_path / "b" / "a.yml").write_text("a: 1\n")
    ref = f"{proxy.host}/d401/bundle:1"
    assert run_cli(["push", "-b", ref, "-f", str(tmp_path / "b")], capfd).code == 0
    digest = httpx.head(
        f"{reg.url}/v2/d401/bundle/manifests/1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        auth=reg.credentials,
    ).headers["Docker-Content-Digest"]

    res = run_cli(["describe", "-b", ref], capfd)

    assert res.code == 1
    assert res.out == ""
    sig_url = f"http://{proxy.host}/v2/d401/bundle/manifests/{digest.replace(':', '-')}.sig"
    assert res.err.startswith(
        "lockresolve: error: Retrieving Images from bundle: Fetching signature for image "
        f"'{proxy.host}/d401/bundle@{digest}': GET {sig_url}: UNAUTHORIZED: injected 401"
    ), res.err
    assert res.err.count("\n") == 1
    assert "Traceback" not in res.err
    assert reg.password not in res.err
    # --cosign-artifacts=false does not look the signature up: the describe works
    assert run_cli(["describe", "-b", ref, "--cosign-artifacts=false"], capfd).code == 0
