"""Auth at the seams with streamed bodies and other hosts (issue 12, items 7 and 10): a
token registry whose token stops being accepted in the middle of a push, upload
locations and tag pages on another host, redirects from https to http."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import FaultProxyFactory, RegistryFactory
from tests.robustness.helpers import run_cli, tally, write_bundle_tree
from tests.support.faultproxy import Fault, FaultPlan
from tests.support.registry import skopeo_inspect_raw


def test_a_token_refused_during_a_streamed_upload_gets_a_new_session_and_a_fresh_body(
    registry_factory: RegistryFactory,
    fault_proxy_factory: FaultProxyFactory,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    reg = registry_factory(auth="token")
    ts = reg.token_server
    assert ts is not None and reg.credentials is not None
    # Tokens the registry accepts for about 5 s (it allows 60 s of leeway on exp), while the
    # client is told they last 300 s: the push's first blob PUT, held back 7 s by the
    # proxy, arrives with a token the registry no longer accepts (a revoked token).
    ts.jwt_lifetime = -55
    plan = FaultPlan(
        sequence=[Fault.delay(7)],
        methods={"PUT"},
        path_contains="/blobs/uploads/",
        content_length_over=20_000,  # the layer (streamed from a file), not the config
    )
    proxy = fault_proxy_factory(reg.url, plan=plan)
    monkeypatch.setenv("LOCKRESOLVE_REGISTRY_HOSTNAME", proxy.host)
    monkeypatch.setenv("LOCKRESOLVE_REGISTRY_USERNAME", reg.credentials[0])
    monkeypatch.setenv("LOCKRESOLVE_REGISTRY_PASSWORD", reg.credentials[1])
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    src = write_bundle_tree(tmp_path / "src")
    (src / "noise.bin").write_bytes(os.urandom(64 * 1024))  # does not compress
    res = run_cli(["push", "-b", f"{proxy.host}/revoked/app:1", "-f", str(src)], capfd)
    assert res.code == 0, res.err
    assert "Traceback" not in res.err and "StreamConsumed" not in res.err
    # The first PUT was refused, the blob then went up in a new session with a fresh token.
    assert proxy.count_requests("PUT", "/blobs/uploads/", status=401) == 1
    assert proxy.count_requests("PUT", "/blobs/uploads/", status=201) >= 1
    assert skopeo_inspect_raw(f"{reg.host}/revoked/app:1", reg)
    tally("streamed uploads re-sent after a token was refused")
