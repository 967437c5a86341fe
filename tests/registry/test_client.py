"""The registry core against the real ``docker-registry``: auth variants, TLS, counts, skopeo."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import pytest

from lockresolve.errors import AuthError, NotFoundError, TransportError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.credentials import Credential
from lockresolve.registry.keychain import Keychain
from lockresolve.registry.transport import TransportPolicy
from tests.support.images import make_image, push_image
from tests.support.registry import Registry, skopeo_inspect_raw

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def keychain_for(reg: Registry) -> Keychain:
    env = {}
    if reg.credentials:
        env = {
            "LOCKRESOLVE_REGISTRY_HOSTNAME": reg.host,
            "LOCKRESOLVE_REGISTRY_USERNAME": reg.credentials[0],
            "LOCKRESOLVE_REGISTRY_PASSWORD": reg.credentials[1],
        }
    return Keychain.from_environment(env, docker_config_dir=Path("/nonexistent"))


def client_for(reg: Registry, **policy: object) -> RegistryClient:
    ca = (reg.ca_path,) if reg.ca_path else ()
    return RegistryClient(TransportPolicy(ca_cert_paths=ca, **policy), keychain_for(reg))  # type: ignore[arg-type]


async def test_push_resolve_get_round_trip(registry: Registry) -> None:
    image = make_image("round-trip")
    async with client_for(registry) as client:
        digest = await push_image(client, registry.host, "core/rt", "1.0", image)
        assert digest == image.digest
        ref = Reference.parse(f"{registry.host}/core/rt:1.0")
        desc = await client.resolve(ref)
        assert desc.digest == image.digest
        assert desc.size == len(image.manifest)
        manifest = await client.get_manifest(ref)
        assert manifest.data == image.manifest
        blob = b"".join(
            [
                chunk
                async for chunk in client.get_blob(
                    registry.host, "core/rt", "sha256:" + hashlib.sha256(image.layer).hexdigest()
                )
            ]
        )
        assert blob == image.layer
        assert "1.0" in await client.list_tags(registry.host, "core/rt")


async def test_one_head_per_reference_and_no_ping(registry: Registry) -> None:
    async with client_for(registry) as client:
        for i in range(5):
            await push_image(client, registry.host, "core/count", f"t{i}", make_image(f"c{i}"))
    mark = registry.mark()
    async with client_for(registry) as client:
        async with anyio.create_task_group() as tg:
            for i in range(5):
                ref = Reference.parse(f"{registry.host}/core/count:t{i}")
                tg.start_soon(client.resolve, ref)
    log = registry.request_log(since=mark)
    assert [r.method for r in log] == ["HEAD"] * 5
    assert not any(r.path == "/v2/" for r in log)


async def test_missing_tag_names_reference_and_registry_code(registry: Registry) -> None:
    async with client_for(registry) as client:
        ref = Reference.parse(f"{registry.host}/core/absent:9.9")
        with pytest.raises(NotFoundError) as info:
            await client.resolve(ref)
    err = info.value
    assert err.subject == f"{registry.host}/core/absent:9.9"
    assert "NAME_UNKNOWN" in err.codes or "MANIFEST_UNKNOWN" in err.codes
    assert "/v2/core/absent/manifests/9.9" in str(err)


async def test_basic_auth_with_and_without_credentials(basic_registry: Registry) -> None:
    reg = basic_registry
    image = make_image("basic")
    async with client_for(reg) as client:
        await push_image(client, reg.host, "core/basic", "1", image)
        desc = await client.resolve(Reference.parse(f"{reg.host}/core/basic:1"))
        assert desc.digest == image.digest
    anonymous = RegistryClient(TransportPolicy())
    async with anonymous:
        with pytest.raises(AuthError) as info:
            await anonymous.resolve(Reference.parse(f"{reg.host}/core/basic:1"))
    assert info.value.status == 401
    assert reg.password is not None and reg.password not in str(info.value)


async def test_token_auth_fetches_one_token_per_repository(registry_factory: object) -> None:
    reg: Registry = registry_factory(auth="token")  # type: ignore[operator]
    repos = [f"core/tok{i}" for i in range(4)]
    async with client_for(reg) as client:
        for repo in repos:
            for t in range(3):
                await push_image(client, reg.host, repo, f"v{t}", make_image(f"{repo}{t}"))
    assert reg.token_server is not None
    token_mark = reg.token_server.mark()
    mark = reg.mark()
    async with client_for(reg) as client:
        async with anyio.create_task_group() as tg:
            for repo in repos:
                for t in range(3):
                    tg.start_soon(client.resolve, Reference.parse(f"{reg.host}/{repo}:v{t}"))
        fetched = client.auth.token_fetches
    assert reg.token_server.count(since=token_mark) == len(repos) == fetched
    log = reg.request_log(since=mark)
    heads = [r for r in log if r.method == "HEAD"]
    assert len([r for r in heads if r.status == 200]) == 12
    # One unauthenticated request taught the challenge; everything after it was authorised.
    assert len([r for r in log if r.status == 401]) == 1
    assert len(log) == 13


async def test_expired_token_is_refreshed(registry_factory: object) -> None:
    reg: Registry = registry_factory(auth="token")  # type: ignore[operator]
    image = make_image("expiry")
    async with client_for(reg) as client:
        await push_image(client, reg.host, "core/exp", "1", image)
        assert reg.token_server is not None
        # Tokens the registry already considers expired (beyond its leeway).
        reg.token_server.jwt_lifetime = -120
        desc = await client.resolve(Reference.parse(f"{reg.host}/core/exp:1"))
        assert desc.digest == image.digest


async def test_tls_with_ca_without_ca_and_unverified(tls_registry: Registry) -> None:
    reg = tls_registry
    image = make_image("tls")
    async with client_for(reg) as client:
        await push_image(client, reg.host, "core/tls", "1", image)
    ref = Reference.parse(f"{reg.host}/core/tls:1")
    async with RegistryClient(TransportPolicy(retries=0)) as client:
        with pytest.raises(TransportError) as info:
            await client.resolve(ref)
    assert "--registry-ca-cert-path" in str(info.value)
    async with RegistryClient(TransportPolicy(verify_certs=False)) as client:
        assert (await client.resolve(ref)).digest == image.digest


async def test_plain_http_is_not_used_for_public_hosts() -> None:
    policy = TransportPolicy()
    assert policy.may_use_plain_http("127.0.0.1:5000")
    assert policy.may_use_plain_http("localhost:5000")
    assert policy.may_use_plain_http("registry.local")
    assert policy.may_use_plain_http("kind.localhost:5000")  # is_insecure_default's hosts
    assert policy.may_use_plain_http("192.168.1.4:443")
    assert not policy.may_use_plain_http("ghcr.io")
    assert not policy.may_use_plain_http("172.32.0.1")
    assert TransportPolicy(insecure=True).may_use_plain_http("ghcr.io")


async def test_skopeo_reads_what_the_core_pushed(registry: Registry) -> None:
    image = make_image("skopeo")
    async with client_for(registry) as client:
        digest = await push_image(client, registry.host, "core/skopeo", "1.0", image)
    raw = await anyio.to_thread.run_sync(lambda: skopeo_inspect_raw("core/skopeo:1.0", registry))
    assert raw == image.manifest
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest


async def test_credentials_from_docker_config(basic_registry: Registry, tmp_path: Path) -> None:
    reg = basic_registry
    reg.write_docker_config(tmp_path)
    keychain = Keychain.from_environment({}, docker_config_dir=tmp_path)
    image = make_image("docker-config")
    async with RegistryClient(TransportPolicy(), keychain) as client:
        await push_image(client, reg.host, "core/dcfg", "1", image)
        assert (await client.resolve(Reference.parse(f"{reg.host}/core/dcfg:1"))).digest == (
            image.digest
        )


def test_credential_repr_hides_secrets() -> None:
    cred = Credential(username="u", password="hunter2-secret")
    assert "hunter2-secret" not in repr(cred)
