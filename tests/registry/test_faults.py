"""Retries, Retry-After, throttling and proxies, through the fault-injecting loopback proxy."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import anyio
import pytest

from lockresolve.errors import TransportError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy
from tests.support.faultproxy import Fault, FaultPlan, FaultProxy
from tests.support.images import digest_of, make_image, push_image
from tests.support.registry import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingSleep:
    """Stands in for anyio.sleep and the clock: records the pauses asked for and moves
    a fake clock forward instead of waiting."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds
        await anyio.sleep(0)


def fake_time_client(policy: TransportPolicy, sleep: RecordingSleep) -> RegistryClient:
    return RegistryClient(policy, sleep=sleep, clock=sleep.clock)


async def seed(registry: Registry, repo: str, count: int) -> dict[str, str]:
    digests = {}
    async with RegistryClient() as client:
        for i in range(count):
            digests[f"t{i}"] = await push_image(
                client, registry.host, repo, f"t{i}", make_image(f"{repo}{i}")
            )
    return digests


def proxied_ref(proxy: FaultProxy, repo: str, tag: str) -> Reference:
    return Reference.parse(f"{proxy.host}/{repo}:{tag}")


async def test_retries_each_fault_kind_and_honours_retry_after(
    registry: Registry, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    digests = await seed(registry, "faults/kinds", 1)
    plan = FaultPlan(
        sequence=[
            Fault.unavailable(),
            Fault.too_many_requests(2),
            Fault.close(),
            Fault.reset(),
            Fault.too_many_requests(3, http_date=True),
        ]
    )
    proxy = fault_proxy_factory(registry.url, plan=plan)
    sleep = RecordingSleep()
    async with fake_time_client(TransportPolicy(retries=6), sleep) as client:
        desc = await client.resolve(proxied_ref(proxy, "faults/kinds", "t0"))
        assert desc.digest == digests["t0"]
        assert client.stats.retries == 5
        # The 429s halved the host's concurrency (16 -> 8 -> 4).
        assert client.limiter(proxy.host).total_tokens == 4
    assert proxy.fault_count == 5
    # 503 and the dropped/reset connections back off briefly; the 429s wait what
    # Retry-After says: 2 seconds, then an HTTP-date about 3 seconds ahead.
    assert len(sleep.pauses) == 5
    assert sleep.pauses[1] == 2.0
    assert 2.0 <= sleep.pauses[4] <= 3.0
    assert all(p < 1.0 for p in (sleep.pauses[0], sleep.pauses[2], sleep.pauses[3]))


async def test_random_faults_still_resolve_everything_correctly(
    registry: Registry, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    digests = await seed(registry, "faults/random", 30)
    plan = FaultPlan(
        rate=0.3,
        seed=7,
        choices=[Fault.unavailable(), Fault.too_many_requests(1), Fault.close()],
    )
    proxy = fault_proxy_factory(registry.url, plan=plan)
    results: dict[str, str] = {}

    async def one(client: RegistryClient, tag: str) -> None:
        results[tag] = (await client.resolve(proxied_ref(proxy, "faults/random", tag))).digest

    async with fake_time_client(TransportPolicy(retries=10), RecordingSleep()) as client:
        async with anyio.create_task_group() as tg:
            for tag in digests:
                tg.start_soon(one, client, tag)
    assert results == digests
    assert proxy.fault_count > 0


async def test_a_registry_that_stays_down_fails_after_bounded_attempts(
    registry: Registry, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    proxy = fault_proxy_factory(
        registry.url, plan=FaultPlan(rate=1.0, choices=[Fault.unavailable()])
    )
    sleep = RecordingSleep()
    async with fake_time_client(TransportPolicy(retries=3), sleep) as client:
        with pytest.raises(Exception) as info:
            await client.resolve(proxied_ref(proxy, "faults/down", "1"))
    assert "503" in str(info.value)
    assert proxy.request_count == 4
    assert len(sleep.pauses) == 3


async def test_connection_refused_is_a_transport_error_naming_the_reference() -> None:
    async with fake_time_client(TransportPolicy(retries=1), RecordingSleep()) as client:
        with pytest.raises(TransportError) as info:
            await client.resolve(Reference.parse("127.0.0.1:9/nothing/here:1"))
    assert info.value.subject == "127.0.0.1:9/nothing/here:1"


async def test_http_and_https_proxy_environment_is_honoured(
    registry: Registry,
    fault_proxy_factory: Callable[..., FaultProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digests = await seed(registry, "faults/proxied", 1)
    forward = fault_proxy_factory(None)
    monkeypatch.setenv("HTTP_PROXY", forward.url)
    monkeypatch.setenv("HTTPS_PROXY", forward.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with RegistryClient(TransportPolicy()) as client:
        desc = await client.resolve(Reference.parse(f"{registry.host}/faults/proxied:t0"))
    assert desc.digest == digests["t0"]
    # https was tried first through a CONNECT tunnel, then plain http in absolute form.
    assert forward.connect_count >= 1
    assert forward.absolute_form_count >= 1


async def test_no_proxy_bypasses_the_proxy(
    registry: Registry,
    fault_proxy_factory: Callable[..., FaultProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digests = await seed(registry, "faults/noproxy", 1)
    forward = fault_proxy_factory(None)
    monkeypatch.setenv("HTTP_PROXY", forward.url)
    monkeypatch.setenv("HTTPS_PROXY", forward.url)
    monkeypatch.setenv("NO_PROXY", urlsplit(registry.url).hostname or "")
    async with RegistryClient(TransportPolicy()) as client:
        desc = await client.resolve(Reference.parse(f"{registry.host}/faults/noproxy:t0"))
    assert desc.digest == digests["t0"]
    assert forward.request_count == 0 and forward.connect_count == 0


async def test_a_blob_transfer_cut_short_resumes_with_range(
    registry: Registry, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    image = make_image("resume", layer_size=3 << 20)
    async with RegistryClient() as client:
        await push_image(client, registry.host, "faults/resume", "1", image)
    layer_digest = digest_of(image.layer)
    plan = FaultPlan(sequence=[Fault.truncate(3 << 19)], methods={"GET"}, path_contains="/blobs/")
    proxy = fault_proxy_factory(registry.url, plan=plan)
    async with fake_time_client(TransportPolicy(), RecordingSleep()) as client:
        blob = client.get_blob(proxy.host, "faults/resume", layer_digest, chunk_size=1 << 16)
        chunks = [c async for c in blob]
    assert b"".join(chunks) == image.layer
    gets = [r for r in proxy.requests if r.method == "GET"]
    assert len(gets) == 2
    assert gets[0].fault == "truncate"
    assert gets[1].status == 206  # the rest, asked for with Range
