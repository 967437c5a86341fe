"""Rate limits through the fault proxy: Docker Hub's ``RateLimit-*`` headers and lasting 429s.

The fault proxy stands in front of a real registry and adds what Docker Hub sends:
``RateLimit-Limit: 100;w=21600``, ``RateLimit-Remaining: N;w=21600``,
``docker-ratelimit-source``, and ``429 TOOMANYREQUESTS`` with ``Retry-After``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import FaultProxyFactory
from tests.registry.test_mirrors import seed
from tests.support.cli import run_cli
from tests.support.faultproxy import Fault, FaultPlan
from tests.support.registry import Registry


def manifests(path: Path, host: str, repos: list[str]) -> Path:
    path.write_text("".join(f"---\nimage: {host}/{repo}:1\n" for repo in repos))
    return path


def test_verbose_ends_with_the_lowest_remaining_per_host(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    repos = [f"ratelimit/seen-{i}" for i in range(3)]
    seed(registry, [(r, "1") for r in repos])
    plan = FaultPlan(
        sequence=[Fault.rate_limit_headers(r) for r in (60, 57, 58)], path_contains="/manifests/"
    )
    proxy = fault_proxy_factory(registry.url, plan=plan)
    code, _, err = run_cli(
        ["-f", str(manifests(tmp_path / "a.yml", proxy.host, repos)), "-v", "--concurrency=1"],
        capfd,
    )
    assert code == 0, err
    closing = [line for line in err.splitlines() if " HTTP requests (" in line][-1]
    assert closing.endswith(f"; rate limit lowest: {proxy.host} 57 of 100 per 21600s left")


def test_without_rate_limit_headers_the_closing_line_says_nothing_of_them(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    seed(registry, [("ratelimit/none", "1")])
    code, _, err = run_cli(
        ["-f", str(manifests(tmp_path / "a.yml", registry.host, ["ratelimit/none"])), "-v"], capfd
    )
    assert code == 0, err
    assert "rate limit" not in err


def test_a_long_429_is_one_line_naming_host_limit_window_remaining_and_reset(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    seed(registry, [("ratelimit/hub", "1")])
    proxy = fault_proxy_factory(
        registry.url, plan=FaultPlan(rate=1.0, choices=[Fault.rate_limited(retry_after=3600)])
    )
    started = time.monotonic()
    code, out, err = run_cli(
        ["-f", str(manifests(tmp_path / "a.yml", proxy.host, ["ratelimit/hub"]))], capfd
    )
    # A reset an hour away is not waited for: one request, no retries.
    assert time.monotonic() - started < 10
    assert proxy.request_count == 1
    assert code == 1
    assert out == ""
    lines = [line for line in err.splitlines() if "rate limit" in line]
    where = tmp_path / "a.yml"
    assert lines == [
        f"- Resolving image '{proxy.host}/ratelimit/hub:1' ({where}:2): "
        f"HEAD http://{proxy.host}/v2/ratelimit/hub/manifests/1: rate limit of {proxy.host} "
        "reached, 100 requests per 6h00m (21600s), 0 remaining, resets in 60m; pull through a "
        "mirror (--registry-mirror) or log in to get a higher limit"
    ]


def test_a_short_429_that_outlasts_the_retries(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    seed(registry, [("ratelimit/short", "1")])
    proxy = fault_proxy_factory(
        registry.url,
        plan=FaultPlan(
            rate=1.0,
            choices=[Fault.rate_limited(retry_after=1, remaining="0;w=60", limit="10;w=60")],
        ),
    )
    code, _, err = run_cli(
        [
            "-f",
            str(manifests(tmp_path / "a.yml", proxy.host, ["ratelimit/short"])),
            "--registry-retry-count=1",
        ],
        capfd,
    )
    assert code == 1
    assert proxy.request_count == 2
    assert (
        f"rate limit of {proxy.host} reached, 10 requests per 60s (60s), 0 remaining, resets in 1s"
        in err
    )


def test_a_rate_limited_mirror_falls_back_to_the_upstream(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    seed(registry, [("ratelimit/mirrored", "1")])
    limited = fault_proxy_factory(
        registry.url, plan=FaultPlan(rate=1.0, choices=[Fault.rate_limited(retry_after=3600)])
    )
    code, out, err = run_cli(
        [
            "-f",
            str(manifests(tmp_path / "a.yml", registry.host, ["ratelimit/mirrored"])),
            f"--registry-mirror={registry.host}={limited.host}",
            "-v",
        ],
        capfd,
    )
    assert code == 0, err
    assert f"{registry.host}/ratelimit/mirrored@sha256:" in out
    assert f"{limited.host} answered 429; trying {registry.host}" in err
