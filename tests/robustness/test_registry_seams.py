"""The seams where the registry core met hostile or unusual answers and crashed (issue 12):
a copy within one registry whose mounts are declined, an error page over 64 KiB, hosts that
cannot be put in a URL. Each runs the CLI against the real registry, through the fault proxy
where the registry itself would not produce the answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FaultProxyFactory, RegistryFactory
from tests.robustness.helpers import run_cli, seed_tags, tally
from tests.support.faultproxy import Fault, FaultPlan
from tests.support.registry import Registry, skopeo_inspect_raw


def one_line_error(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    assert lines and lines[0].startswith("lockresolve: error:"), err
    return lines


@pytest.mark.parametrize("concurrency", ["16", "1"])
def test_copy_within_one_registry_uploads_when_the_mount_is_declined(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    capfd: pytest.CaptureFixture[str],
    concurrency: str,
) -> None:
    src = f"seams/mount-c{concurrency}/src"
    dst = f"seams/mount-c{concurrency}/dst"
    digests = seed_tags(registry, src, ["1", "2"])
    proxy = fault_proxy_factory(registry.url, decline_mounts=True)
    for tag in ("1", "2"):
        res = run_cli(
            [
                "copy",
                "-i",
                f"{proxy.host}/{src}:{tag}",
                "--to-repo",
                f"{proxy.host}/{dst}",
                "--concurrency",
                concurrency,
            ],
            capfd,
        )
        assert res.code == 0, res.err
        assert "Traceback" not in res.err
        # The copy is really there, as an independent client reads it.
        raw = skopeo_inspect_raw(f"{dst}@{digests[tag]}", registry)
        assert raw
    # The mounts were declined and the blobs uploaded (the blobs of the first copy).
    assert proxy.mounts_declined >= 1
    assert proxy.count_requests("PUT", "/blobs/uploads/", status=201) >= proxy.mounts_declined
    tally("copies within one registry with declined mounts")


def test_an_error_page_over_64_kib_fails_that_image_only(
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    digests = seed_tags(registry, "seams/bigerror/ok", ["1"])
    seed_tags(registry, "seams/bigerror/cdn", ["1"])
    plan = FaultPlan(
        sequence=[Fault.error(404, html_size=100_000)] * 4,
        path_contains="/seams/bigerror/cdn/",
    )
    proxy = fault_proxy_factory(registry.url, plan=plan)
    src = tmp_path / "in.yml"
    src.write_text(
        f"a: {{image: {proxy.host}/seams/bigerror/ok:1}}\n"
        f"---\nb: {{image: {proxy.host}/seams/bigerror/cdn:1}}\n"
    )
    res = run_cli(["-f", str(src), "--registry-retry-count", "0"], capfd)
    assert res.code == 1
    lines = one_line_error(res.err)
    cdn = [line for line in lines if "seams/bigerror/cdn" in line]
    assert cdn and any("404" in line for line in lines), res.err
    assert not any("seams/bigerror/ok" in line and "Resolving" in line for line in lines)
    assert proxy.count_requests(path_contains="/seams/bigerror/ok/", status=200) >= 1
    assert digests["1"]
    tally("error pages over 64 KiB mapped to that image's error")


@pytest.mark.parametrize("host", ["☃.example", "xn--zz.com"])
def test_a_host_that_cannot_be_put_in_a_url_fails_that_reference_only(
    registry: Registry, capfd: pytest.CaptureFixture[str], tmp_path: Path, host: str
) -> None:
    digests = seed_tags(registry, "seams/badhost/ok", ["1"])
    src = tmp_path / "in.yml"
    src.write_text(
        f"a: {{image: {registry.host}/seams/badhost/ok:1}}\n---\nb: {{image: {host}/x:1}}\n",
        encoding="utf-8",
    )
    res = run_cli(["-f", str(src), "--registry-retry-count", "0"], capfd)
    assert res.code == 1
    lines = one_line_error(res.err)
    bad = [line for line in lines if host in line]
    assert bad, res.err
    # The good reference was resolved (not cancelled): it is not among the failures.
    assert not any("seams/badhost/ok" in line for line in lines[1:]), res.err
    assert digests["1"]
    tally("references with hosts no URL can hold")


def test_a_refused_connection_fails_at_once_and_says_so(
    registry_factory: RegistryFactory, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reg = registry_factory()
    reg.stop()  # nothing listens on its port now
    src = tmp_path / "in.yml"
    src.write_text("".join(f"i{n}: {{image: {reg.host}/down/app{n}:1}}\n---\n" for n in range(5)))
    res = run_cli(["-f", str(src)], capfd)  # the default 5 retries
    assert res.code == 1
    lines = one_line_error(res.err)
    # kbld gives up in about 0.05 s; the retries used to take 3.1 s.
    assert res.seconds < 1.5, res.seconds
    assert len(lines) == 1 + 5, res.err
    for line in lines[1:]:
        assert line.endswith(f"connection refused ({reg.host})"), line
    tally("refused connections reported at once")
