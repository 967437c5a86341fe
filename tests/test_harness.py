"""Tests of the test harness itself: registries, token server, TLS, fault proxy, seeding."""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from ruamel.yaml import YAML

from tests.support.conformance import (
    case_params,
    conformance_dir,
    get_case,
    list_cases,
    push_blob,
    push_manifest,
    seed_case,
    substitute,
)
from tests.support.faultproxy import Fault, FaultPlan, FaultProxy
from tests.support.registry import (
    MANIFEST_ACCEPT,
    Registry,
    parse_challenge,
    require_binary,
    skopeo_copy_to_oci,
    skopeo_inspect_raw,
)
from tests.support.tokenserver import decode_jwt_unverified

RegistryFactory = Callable[..., Registry]
FaultProxyFactory = Callable[..., FaultProxy]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_small_image(client: httpx.Client, repo: str, tag: str) -> str:
    """Push a one-layer OCI image; return the manifest digest."""
    layer = f"layer of {repo}:{tag}\n".encode()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]},
        }
    ).encode()
    push_blob(client, repo, layer)
    push_blob(client, repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _sha(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return push_manifest(client, repo, tag, "application/vnd.oci.image.manifest.v1+json", manifest)


# --------------------------------------------------------------------------------------
# Registry variants


def test_anonymous_registry_answers_v2(registry: Registry) -> None:
    assert registry.host.startswith("127.0.0.1:")
    assert registry.url == f"http://{registry.host}"
    assert registry.username is None and registry.ca_path is None and registry.token_server is None
    r = httpx.get(f"{registry.url}/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_basic_registry_requires_credentials(basic_registry: Registry) -> None:
    url = f"{basic_registry.url}/v2/"
    r = httpx.get(url)
    assert r.status_code == 401
    scheme, params = parse_challenge(r.headers["WWW-Authenticate"])
    assert scheme == "basic" and params["realm"]
    assert basic_registry.username and basic_registry.password
    assert (
        httpx.get(url, auth=(basic_registry.username, basic_registry.password)).status_code == 200
    )
    assert httpx.get(url, auth=(basic_registry.username, "wrong")).status_code == 401


def test_token_flow_end_to_end(token_registry: Registry) -> None:
    ts = token_registry.token_server
    assert ts is not None
    assert token_registry.username and token_registry.password
    creds = (token_registry.username, token_registry.password)
    with token_registry.client() as client:
        _push_small_image(client, "harness/token-a", "v1")
        _push_small_image(client, "harness/token-b", "v1")
    before = len(ts.requests)

    r = httpx.get(
        f"{token_registry.url}/v2/harness/token-a/manifests/v1", headers={"Accept": MANIFEST_ACCEPT}
    )
    assert r.status_code == 401
    scheme, params = parse_challenge(r.headers["WWW-Authenticate"])
    assert scheme == "bearer"
    assert params["realm"] == ts.realm
    assert params["service"] == ts.service
    assert params["scope"] == "repository:harness/token-a:pull"

    # Anonymous and wrong-password token requests are refused.
    base = {"service": params["service"], "scope": params["scope"]}
    assert httpx.get(params["realm"], params=base).status_code == 401
    assert httpx.get(params["realm"], params=base, auth=(creds[0], "nope")).status_code == 401

    tr = httpx.get(params["realm"], params=base, auth=creds)
    assert tr.status_code == 200
    body = tr.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == ts.expires_in
    assert body["issued_at"].endswith("Z")
    header, claims = decode_jwt_unverified(body["token"])
    assert header["alg"] == "RS256" and len(header["x5c"]) == 1
    assert claims["iss"] == ts.issuer and claims["aud"] == ts.service and claims["sub"] == creds[0]
    assert {"exp", "nbf", "iat", "jti"} <= claims.keys()
    assert claims["access"] == [
        {"type": "repository", "name": "harness/token-a", "actions": ["pull"]}
    ]

    bearer = {"Authorization": f"Bearer {body['token']}", "Accept": MANIFEST_ACCEPT}
    ok = httpx.get(f"{token_registry.url}/v2/harness/token-a/manifests/v1", headers=bearer)
    assert ok.status_code == 200
    refused = httpx.get(f"{token_registry.url}/v2/harness/token-b/manifests/v1", headers=bearer)
    assert refused.status_code == 401
    _, p2 = parse_challenge(refused.headers["WWW-Authenticate"])
    assert p2["scope"] == "repository:harness/token-b:pull"
    assert p2["error"] == "insufficient_scope"

    reqs = ts.requests[before:]
    assert [r.status for r in reqs] == [401, 401, 200]
    assert reqs[-1].scopes == ("repository:harness/token-a:pull",)
    assert reqs[-1].username == creds[0]
    assert ts.count("repository:harness/token-a:pull", status=200) >= 1


def test_token_server_options(registry_factory: RegistryFactory) -> None:
    reg = registry_factory(auth="token", anonymous_pull=True, token_expires_in=2)
    ts = reg.token_server
    assert ts is not None
    with reg.client() as client:
        _push_small_image(client, "harness/opts", "v1")
    ts.reset()
    realm, service = ts.realm, ts.service
    scope = "repository:harness/opts:pull,push"

    anon = httpx.get(realm, params={"service": service, "scope": scope})
    assert anon.status_code == 200 and anon.json()["expires_in"] == 2
    _, claims = decode_jwt_unverified(anon.json()["token"])
    assert claims["access"][0]["actions"] == ["pull"]  # anonymous: pull only

    # Several scopes, POST password grant with refresh token, then refresh grant.
    form = {
        "grant_type": "password",
        "username": reg.username,
        "password": reg.password,
        "service": service,
        "scope": f"{scope} repository:other:pull",
        "access_type": "offline",
    }
    post = httpx.post(realm, data=form)
    assert post.status_code == 200
    _, claims = decode_jwt_unverified(post.json()["access_token"])
    assert [a["name"] for a in claims["access"]] == ["harness/opts", "other"]
    refresh = httpx.post(
        realm,
        data={
            "grant_type": "refresh_token",
            "refresh_token": post.json()["refresh_token"],
            "service": service,
            "scope": scope,
        },
    )
    assert refresh.status_code == 200

    # Injected failures.
    ts.fail_next(1, status=503, retry_after="1")
    failed = httpx.get(realm, params={"service": service, "scope": scope})
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"

    # An expired token (beyond the registry's 60 s leeway) is refused.
    expired = ts.mint_token([scope], lifetime=-300)
    r = httpx.get(
        f"{reg.url}/v2/harness/opts/tags/list", headers={"Authorization": f"Bearer {expired}"}
    )
    assert r.status_code == 401
    good = ts.mint_token([scope])
    r = httpx.get(
        f"{reg.url}/v2/harness/opts/tags/list", headers={"Authorization": f"Bearer {good}"}
    )
    assert r.status_code == 200 and r.json()["tags"] == ["v1"]
    assert ts.count() == 4
    assert ts.count(scope_contains="repository:other") == 1
    assert ts.tokens_issued == 3


def test_tls_registry_needs_its_ca(tls_registry: Registry) -> None:
    assert tls_registry.url.startswith("https://127.0.0.1:")
    assert tls_registry.ca_path is not None and tls_registry.ca_path.is_file()
    ctx = ssl.create_default_context(cafile=str(tls_registry.ca_path))
    assert httpx.get(f"{tls_registry.url}/v2/", verify=ctx).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_registry.url}/v2/")
    # localhost is in the certificate too
    assert httpx.get(f"https://localhost:{tls_registry.port}/v2/", verify=ctx).status_code == 200


def test_token_over_tls(registry_factory: RegistryFactory) -> None:
    reg = registry_factory(auth="token", tls=True)
    assert reg.token_server is not None and reg.token_server.realm.startswith("https://")
    with reg.client() as client:
        digest = _push_small_image(client, "harness/tls-token", "v1")
        r = client.head("/v2/harness/tls-token/manifests/v1", headers={"Accept": MANIFEST_ACCEPT})
        assert r.headers["Docker-Content-Digest"] == digest
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{reg.url}/v2/")


def test_registry_stop_and_restart_keeps_storage(registry_factory: RegistryFactory) -> None:
    reg = registry_factory()
    with reg.client() as client:
        digest = _push_small_image(client, "harness/restart", "v1")
    port = reg.port
    reg.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{reg.url}/v2/")
    reg.start()
    assert reg.port == port
    r = httpx.head(
        f"{reg.url}/v2/harness/restart/manifests/v1", headers={"Accept": MANIFEST_ACCEPT}
    )
    assert r.headers["Docker-Content-Digest"] == digest


# --------------------------------------------------------------------------------------
# Request counting


def test_request_counter(registry: Registry) -> None:
    with registry.client() as client:
        _push_small_image(client, "harness/count", "v1")
        mark = registry.mark()
        for _ in range(3):
            client.head("/v2/harness/count/manifests/v1", headers={"Accept": MANIFEST_ACCEPT})
        client.get("/v2/harness/count/manifests/v1", headers={"Accept": MANIFEST_ACCEPT})
        client.get("/v2/harness/count/manifests/nope", headers={"Accept": MANIFEST_ACCEPT})
        client.get("/not-a-registry-path")
    assert registry.count_requests(since=mark) == 6
    assert registry.count_requests("HEAD", since=mark) == 3
    assert registry.count_requests("GET", "/manifests/", since=mark) == 2
    assert registry.count_requests(status=404, since=mark) == 2
    log = registry.request_log(mark)
    assert (log[0].method, log[0].path, log[0].status) == (
        "HEAD",
        "/v2/harness/count/manifests/v1",
        200,
    )
    assert log[-1].uri == "/not-a-registry-path"

    registry.reset_log_position()
    assert registry.count_requests() == 0
    httpx.get(f"{registry.url}/v2/")
    assert registry.count_requests() == 1
    assert registry.count_requests("GET", "/v2/") == 1


def test_request_counter_sees_401s(basic_registry: Registry) -> None:
    mark = basic_registry.mark()
    httpx.get(f"{basic_registry.url}/v2/")
    with basic_registry.client() as client:
        assert client.get("/v2/").status_code == 200
    # 401 (no creds), then the client's 401 + retry with Basic
    assert basic_registry.count_requests(since=mark) == 3
    assert basic_registry.count_requests(status=401, since=mark) == 2


# --------------------------------------------------------------------------------------
# Fault proxy


def test_proxy_streams_a_5mb_blob_both_ways(registry: Registry, fault_proxy: FaultProxy) -> None:
    data = os.urandom(5 * 1024 * 1024)
    digest = _sha(data)
    with httpx.Client(base_url=fault_proxy.url, timeout=30) as client:
        assert push_blob(client, "harness/big", data) == digest
        got = client.get(f"/v2/harness/big/blobs/{digest}")
        assert got.status_code == 200
        assert _sha(got.content) == digest
        assert got.headers["Docker-Content-Digest"] == digest

        # A chunked request body (PATCH upload) through the proxy.
        start = client.post("/v2/harness/big/blobs/uploads/")
        chunks = [data[i : i + 1_000_000] for i in range(0, len(data), 1_000_000)]
        patch = client.patch(
            start.headers["Location"],
            content=iter(chunks),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert patch.status_code == 202
        assert patch.request.headers.get("Transfer-Encoding") == "chunked"
        done = client.put(httpx.URL(patch.headers["Location"]).copy_add_param("digest", digest))
        assert done.status_code == 201
    assert fault_proxy.fault_count == 0
    assert fault_proxy.request_count == 6
    assert fault_proxy.connection_count == 1  # keep-alive
    reqs = fault_proxy.requests
    assert reqs[1].request_body_bytes == len(data)
    assert reqs[2].response_body_bytes == len(data)
    assert reqs[4].request_body_bytes == len(data)


def test_proxy_injects_each_fault(registry: Registry, fault_proxy: FaultProxy) -> None:
    with registry.client() as client:
        digest = push_blob(client, "harness/faults", os.urandom(300_000))
    blob = f"/v2/harness/faults/blobs/{digest}"
    fault_proxy.plan = FaultPlan(
        sequence=[
            Fault.unavailable(),
            Fault.too_many_requests(3),
            Fault.too_many_requests(30, http_date=True),
            Fault.close(),
            Fault.reset(),
            Fault.truncate(1000),
            Fault.delay(0.2),
            None,
        ]
    )
    with httpx.Client(base_url=fault_proxy.url, timeout=10) as client:
        r = client.get("/v2/")
        assert r.status_code == 503
        assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
        r = client.get("/v2/")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        r = client.get("/v2/")
        assert r.status_code == 429
        when = email.utils.parsedate_to_datetime(r.headers["Retry-After"])
        assert 20 < when.timestamp() - time.time() <= 31
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/v2/")
        with pytest.raises(httpx.TransportError):
            client.get("/v2/")
        with pytest.raises(httpx.TransportError):
            client.get(blob)
        t0 = time.monotonic()
        assert client.get("/v2/").status_code == 200
        assert time.monotonic() - t0 >= 0.2
        assert client.get(blob).status_code == 200
        assert client.get("/v2/").status_code == 200  # sequence exhausted: pass

    assert fault_proxy.request_count == 9
    assert fault_proxy.fault_count == 7
    assert fault_proxy.faults_by_kind == {
        "status": 3,
        "status:503": 1,
        "status:429": 2,
        "close": 1,
        "reset": 1,
        "truncate": 1,
        "delay": 1,
    }
    truncated = fault_proxy.requests[5]
    assert truncated.fault == "truncate" and truncated.response_body_bytes == 1000


def test_proxy_random_plan_is_seeded_and_filtered(
    registry: Registry, fault_proxy_factory: FaultProxyFactory
) -> None:
    def run() -> list[int]:
        plan = FaultPlan(
            rate=0.5,
            seed=7,
            choices=[Fault.unavailable(), Fault.too_many_requests(1)],
            methods={"HEAD"},
        )
        with FaultProxy(registry.url, plan) as proxy, httpx.Client(base_url=proxy.url) as client:
            statuses = [client.head("/v2/").status_code for _ in range(30)]
            assert client.get("/v2/").status_code == 200  # GETs are not eligible
            assert proxy.fault_count == sum(s != 200 for s in statuses)
            return statuses

    first = run()
    assert first == run()
    assert {200, 503, 429} == set(first)

    proxy = fault_proxy_factory(
        registry.url, FaultPlan(rate=1.0, max_faults=2, path_contains="/tags/")
    )
    with httpx.Client(base_url=proxy.url) as client:
        assert [client.get("/v2/x/tags/list").status_code for _ in range(3)] == [503, 503, 404]
        assert client.get("/v2/").status_code == 200


def test_proxy_delay(fault_proxy: FaultProxy) -> None:
    fault_proxy.delay = 0.05
    with httpx.Client(base_url=fault_proxy.url) as client:
        client.get("/v2/")  # connect
        t0 = time.monotonic()
        for _ in range(4):
            assert client.get("/v2/").status_code == 200
        assert time.monotonic() - t0 >= 0.2
    assert fault_proxy.fault_count == 0


def test_proxy_drops_tls_client_hello_at_once(fault_proxy: FaultProxy) -> None:
    ctx = ssl.create_default_context()
    t0 = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", fault_proxy.port), timeout=5) as sock,
        pytest.raises((ssl.SSLError, ConnectionError)),
    ):
        ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    assert time.monotonic() - t0 < 2
    assert fault_proxy.non_http_count == 1
    assert httpx.get(f"{fault_proxy.url}/v2/").status_code == 200


def test_proxy_as_http_proxy(
    registry: Registry, fault_proxy_factory: FaultProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = fault_proxy_factory()  # forward proxy only, no default upstream
    with httpx.Client(proxy=proxy.url) as client:
        assert client.get(f"{registry.url}/v2/").status_code == 200
    assert proxy.absolute_form_count == 1
    assert proxy.requests[0].target == f"{registry.url}/v2/"
    assert proxy.requests[0].upstream == registry.host

    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with httpx.Client(trust_env=True) as client:
        assert client.get(f"{registry.url}/v2/").status_code == 200
    assert proxy.absolute_form_count == 2


def test_proxy_connect_tunnel(
    tls_registry: Registry, fault_proxy_factory: FaultProxyFactory
) -> None:
    proxy = fault_proxy_factory()
    with httpx.Client(proxy=proxy.url, verify=tls_registry.httpx_verify) as client:
        assert client.get(f"{tls_registry.url}/v2/").status_code == 200
        assert client.get(f"{tls_registry.url}/v2/").status_code == 200
    assert proxy.connect_count == 1
    assert proxy.requests[0].method == "CONNECT" and proxy.requests[0].target == tls_registry.host


# --------------------------------------------------------------------------------------
# Conformance seeding and skopeo


def test_conformance_cases_are_listed() -> None:
    assert conformance_dir().is_dir()
    for kind in ("resolve", "bundle", "copy"):
        cases = list_cases(kind)
        assert cases, kind
        assert all((c.path / "case.json").is_file() for c in cases)
    assert [p.id for p in case_params("resolve")] == [c.name for c in list_cases("resolve")]
    assert get_case("resolve", "r01").name == "r01-basic"


def _images_yml_digest(text: str) -> str:
    data = YAML(typ="safe").load(text)
    image: str = data["images"][0]["image"]
    return image.split("@", 1)[1]


def test_seed_r01_then_head_tag(registry: Registry, tmp_path: Path) -> None:
    case = get_case("resolve", "r01-basic")
    seed_case(registry, case)
    expected = _images_yml_digest(case.expected_text("images.yml", registry.host))
    r = httpx.head(
        f"{registry.url}/v2/conf/r01/web/manifests/1.0", headers={"Accept": MANIFEST_ACCEPT}
    )
    assert r.status_code == 200
    assert r.headers["Docker-Content-Digest"] == expected

    mark = registry.mark()
    seed_case(registry, case)  # idempotent: no requests
    assert registry.count_requests(since=mark) == 0

    copied = case.copy_input(tmp_path / "in", registry.host)
    text = (copied / "deploy.yml").read_text()
    assert f"image: {registry.host}/conf/r01/web:1.0" in text and "${REGISTRY}" not in text
    args = case.cli_args(copied, tmp_path / "out", registry.host)
    assert args == [
        "-f",
        str(copied / "deploy.yml"),
        "--imgpkg-lock-output",
        str(tmp_path / "out" / "images.yml"),
    ]


def test_seed_into_auth_registries(basic_registry: Registry, token_registry: Registry) -> None:
    case = get_case("resolve", "r01-basic")
    expected = _images_yml_digest(case.expected_text("images.yml", "x"))
    for reg in (basic_registry, token_registry):
        seed_case(reg, case)
        with reg.client() as client:
            r = client.head("/v2/conf/r01/web/manifests/1.0", headers={"Accept": MANIFEST_ACCEPT})
            assert r.headers["Docker-Content-Digest"] == expected


def test_seed_every_case(registry: Registry) -> None:
    with registry.client() as client:
        for kind in ("resolve", "copy"):
            for case in list_cases(kind):
                seed_case(registry, case)
                for item in case.seed_items():
                    if item.put == "manifest" and item.media_type:
                        r = client.head(
                            f"/v2/{item.repo}/manifests/{item.reference}",
                            headers={"Accept": item.media_type},
                        )
                        assert r.headers["Docker-Content-Digest"] == item.digest, case.id


def test_bundle_tree_materialised_with_modes(tmp_path: Path) -> None:
    case = get_case("bundle", "b03")
    root = case.make_tree(tmp_path / "b03")
    assert (root / "empty").is_dir()
    assert (root / "bin/run.sh").stat().st_mode & 0o777 == 0o755
    assert (root / "ro.txt").stat().st_mode & 0o777 == 0o444
    copy = get_case("copy", "c01")
    tree = copy.make_tree(tmp_path / "c01", registry="127.0.0.1:1234")
    assert "127.0.0.1:1234/conf/c01/img-a" in (tree / ".imgpkg/images.yml").read_text()
    assert substitute("${REGISTRY}/x ${INPUT}", "h:1", input_dir="/in") == "h:1/x /in"


def test_skopeo_reads_what_seeding_put(
    registry: Registry, basic_registry: Registry, tmp_path: Path
) -> None:
    case = get_case("resolve", "r01-basic")
    manifest = next(i for i in case.seed_items() if i.put == "manifest")
    for reg in (registry, basic_registry):
        seed_case(reg, case)
        assert skopeo_inspect_raw("conf/r01/web:1.0", reg) == manifest.data
    assert skopeo_inspect_raw(f"{registry.host}/conf/r01/web@{manifest.digest}") == manifest.data
    with pytest.raises(RuntimeError, match="skopeo failed"):
        skopeo_inspect_raw("conf/r01/web:1.0", basic_registry, creds=False)

    layout = skopeo_copy_to_oci("conf/r01/web:1.0", tmp_path / "oci", registry, tag="1.0")
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == manifest.digest
    blob = layout / "blobs" / "sha256" / manifest.digest.split(":")[1]
    assert blob.read_bytes() == manifest.data


def test_skopeo_with_tls_ca(tls_registry: Registry) -> None:
    case = get_case("resolve", "r01-basic")
    seed_case(tls_registry, case)
    raw = skopeo_inspect_raw("conf/r01/web:1.0", tls_registry, tls_verify=True)
    assert json.loads(raw)["schemaVersion"] == 2


def test_go_client_through_proxy_falls_back_to_http(
    registry: Registry, fault_proxy: FaultProxy
) -> None:
    """skopeo probes https first on loopback; the proxy must refuse at once, not hang."""
    case = get_case("resolve", "r01-basic")
    seed_case(registry, case)
    t0 = time.monotonic()
    raw = skopeo_inspect_raw(f"{fault_proxy.host}/conf/r01/web:1.0")
    assert time.monotonic() - t0 < 10
    assert _sha(raw) == next(i.digest for i in case.seed_items() if i.put == "manifest")
    assert fault_proxy.non_http_count >= 1
    assert fault_proxy.count_requests("GET", "/manifests/") >= 1


def test_challenge_parser() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://a/token",service="reg",scope="repository:x/y:pull,push",error="insufficient_scope"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://a/token",
        "service": "reg",
        "scope": "repository:x/y:pull,push",
        "error": "insufficient_scope",
    }


def test_missing_binary_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="apt-get install docker-registry"):
        require_binary("docker-registry")
    with pytest.raises(pytest.fail.Exception, match="apt-get install apache2-utils"):
        require_binary("htpasswd")
