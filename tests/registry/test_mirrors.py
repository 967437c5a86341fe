"""Resolving through mirrors with real registries: a pull-through cache in front of the upstream.

The upstream is a plain ``docker-registry``; the mirror is a second one with
``proxy.remoteurl`` pointing at it (distribution's pull-through cache). Each test
proves who served: the upstream is stopped (its port then refuses connections), or
the registries' own access logs are counted. Every lock and stdout is compared byte
for byte with the run against the upstream itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy
from tests.conftest import RegistryFactory
from tests.support.cli import run_cli
from tests.support.images import make_image, push_image
from tests.support.registry import Registry

IMAGES = [("team/app", "v1"), ("team/app", "v2"), ("tools/helper", "1.0")]


def seed(registry: Registry, repositories: list[tuple[str, str]], prefix: str = "") -> None:
    async def run() -> None:
        async with RegistryClient(TransportPolicy()) as client:
            for repo, tag in repositories:
                name = f"{prefix}/{repo}" if prefix else repo
                await push_image(client, registry.host, name, tag, make_image(f"{repo}:{tag}"))

    anyio.run(run)


@dataclass
class Setup:
    upstream: Registry
    mirror: Registry
    manifests: Path
    direct_out: str
    direct_locks: dict[str, bytes]

    def args(self, out_dir: Path) -> list[str]:
        return [
            "-f",
            str(self.manifests),
            "--imgpkg-lock-output",
            str(out_dir / "images.yml"),
        ]


def locks(out_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out_dir.iterdir())}


def write_manifests(path: Path, host: str) -> Path:
    docs = []
    for i, (repo, tag) in enumerate(IMAGES):
        docs.append(
            f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\nspec:\n"
            f"  containers:\n  - name: c\n    image: {host}/{repo}:{tag}\n"
        )
    path.write_text("---\n".join(docs))
    return path


@pytest.fixture
def setup(
    registry_factory: RegistryFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> Iterator[Setup]:
    upstream = registry_factory()
    seed(upstream, IMAGES)
    mirror = registry_factory(proxy_remote=upstream.url)
    manifests = write_manifests(tmp_path / "pods.yml", upstream.host)
    direct = tmp_path / "direct"
    direct.mkdir()
    setup = Setup(upstream, mirror, manifests, "", {})
    code, out, err = run_cli(setup.args(direct), capfd)
    assert code == 0, err
    setup.direct_out, setup.direct_locks = out, locks(direct)
    yield setup


def resolve_via(
    setup: Setup, tmp_path: Path, capfd: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str, str, dict[str, bytes]]:
    out_dir = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    out_dir.mkdir()
    code, out, err = run_cli([*setup.args(out_dir), "-v", *flags], capfd)
    return code, out, err, locks(out_dir)


def same_as_direct(setup: Setup, result: tuple[int, str, str, dict[str, bytes]]) -> str:
    """Assert a :func:`resolve_via` result succeeded with the direct run's output and locks;
    its stderr."""
    code, out, err, written = result
    assert code == 0, err
    assert (out, written) == (setup.direct_out, setup.direct_locks)
    return err


def served_without_upstream(
    setup: Setup, tmp_path: Path, capfd: pytest.CaptureFixture[str], *flags: str
) -> str:
    """Resolve through ``flags`` once (the cache warms), stop the upstream, resolve again:
    the direct run's output and locks (asserted); the second run's stderr."""
    resolve_via(setup, tmp_path, capfd, *flags)
    setup.upstream.stop()
    return same_as_direct(setup, resolve_via(setup, tmp_path, capfd, *flags))


def last_line(err: str) -> str:
    """The closing line of ``-v``'s log (the resolve result lines may follow it)."""
    return [line for line in err.splitlines() if " HTTP requests (" in line][-1]


def test_pull_through_cache_serves_with_the_upstream_stopped_and_the_lock_is_identical(
    setup: Setup, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    flag = f"--registry-mirror={setup.upstream.host}={setup.mirror.host}"
    # Warm the cache (the mirror fetches from the upstream), then take the upstream away.
    code, out, err, written = resolve_via(setup, tmp_path, capfd, flag)
    assert code == 0, err
    assert setup.mirror.count_requests("HEAD", "/manifests/") >= len(IMAGES)
    setup.upstream.stop()

    code, out, err, written = resolve_via(setup, tmp_path, capfd, flag)
    assert code == 0, err
    assert out == setup.direct_out
    assert written == setup.direct_locks
    for data in (out.encode(), *written.values()):
        assert setup.mirror.host.encode() not in data
    # -v names the host of every request and counts them per host at the end.
    assert f"HEAD http://{setup.mirror.host}/v2/team/app/manifests/v1 200" in err
    summary = last_line(err)
    assert f"by host: {setup.mirror.host} {len(IMAGES)}" in summary
    assert setup.upstream.host not in summary


def test_a_mirrors_404_falls_back_to_the_upstream(
    setup: Setup,
    registry_factory: RegistryFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    empty = registry_factory()  # a mirror that has none of the images
    mark = setup.upstream.mark()
    err = same_as_direct(
        setup,
        resolve_via(
            setup, tmp_path, capfd, f"--registry-mirror={setup.upstream.host}={empty.host}"
        ),
    )
    assert empty.count_requests("HEAD", "/manifests/", status=404) == len(IMAGES)
    assert setup.upstream.count_requests("HEAD", "/manifests/", since=mark) == len(IMAGES)
    assert f"{empty.host} answered 404; trying {setup.upstream.host}" in err


def test_mirror_only_does_not_fall_back(
    setup: Setup,
    registry_factory: RegistryFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    empty = registry_factory()
    mark = setup.upstream.mark()
    code, _out, err, written = resolve_via(
        setup,
        tmp_path,
        capfd,
        f"--registry-mirror={setup.upstream.host}={empty.host}",
        "--registry-mirror-only",
    )
    assert code == 1
    assert written == {}
    assert setup.upstream.count_requests(since=mark) == 0
    assert f"GET http://{empty.host}/v2/team/app/manifests/v1: MANIFEST_UNKNOWN" in err


def test_an_unreachable_mirror_falls_back_and_is_not_tried_again(
    setup: Setup, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    setup.mirror.stop()  # its port now refuses connections
    err = same_as_direct(
        setup,
        resolve_via(
            setup,
            tmp_path,
            capfd,
            f"--registry-mirror={setup.upstream.host}={setup.mirror.host}",
            "--registry-retry-count=1",
        ),
    )
    assert f"{setup.mirror.host} unreachable" in err
    assert f"by host: {setup.upstream.host} {len(IMAGES)}" in last_line(err)


def test_environment_variable_names_mirrors(
    setup: Setup,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "LOCKRESOLVE_REGISTRY_MIRRORS",
        f"ghcr.io=127.0.0.1:1,{setup.upstream.host}={setup.mirror.host}",
    )
    served_without_upstream(setup, tmp_path, capfd)


def test_a_path_prefixed_mirror(
    setup: Setup,
    registry_factory: RegistryFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """As a Harbor proxy project: the upstream's repositories live under ``cache/`` there."""
    prefixed = registry_factory()
    seed(prefixed, IMAGES, prefix="cache/upstream")
    setup.upstream.stop()
    same_as_direct(
        setup,
        resolve_via(
            setup,
            tmp_path,
            capfd,
            f"--registry-mirror={setup.upstream.host}={prefixed.host}/cache/upstream",
        ),
    )
    assert prefixed.count_requests("HEAD", "/v2/cache/upstream/team/app/manifests/v1") == 1


def test_hosts_toml_directory(
    setup: Setup, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    port = setup.upstream.port
    hosts = tmp_path / "certs.d" / f"127.0.0.1_{port}_"
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(
        f'server = "http://{setup.upstream.host}"\n\n'
        f'[host."http://{setup.mirror.host}"]\n  capabilities = ["pull", "resolve"]\n'
    )
    flag = f"--registry-hosts-dir={tmp_path / 'certs.d'}"
    served_without_upstream(setup, tmp_path, capfd, flag)
    # containerd names the registry to a mirror with ?ns=
    assert any(
        e.query.get("ns") == [setup.upstream.host]
        for e in setup.mirror.request_log()
        if "/manifests/" in e.path
    )


def test_hosts_toml_pull_only_mirror_does_not_resolve_tags(
    setup: Setup, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    hosts = tmp_path / "certs.d" / setup.upstream.host
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(
        f'[host."http://{setup.mirror.host}"]\n  capabilities = ["pull"]\n'
    )
    mark = setup.upstream.mark()
    same_as_direct(
        setup, resolve_via(setup, tmp_path, capfd, f"--registry-hosts-dir={tmp_path / 'certs.d'}")
    )
    assert setup.mirror.count_requests("HEAD", "/manifests/") == 0
    assert setup.upstream.count_requests("HEAD", "/manifests/", since=mark) == len(IMAGES)


def test_registries_conf(setup: Setup, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text(
        'unqualified-search-registries = ["docker.io"]\n\n'
        f'[[registry]]\nprefix = "{setup.upstream.host}"\nlocation = "{setup.upstream.host}"\n\n'
        f'[[registry.mirror]]\nlocation = "{setup.mirror.host}"\ninsecure = true\n'
    )
    flag = f"--registries-conf={conf}"
    served_without_upstream(setup, tmp_path, capfd, flag)


def test_registries_conf_blocked_upstream_uses_only_its_mirrors(
    setup: Setup,
    registry_factory: RegistryFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    empty = registry_factory()
    conf = tmp_path / "registries.conf"
    conf.write_text(
        f'[[registry]]\nprefix = "{setup.upstream.host}/team"\nblocked = true\n\n'
        f'[[registry.mirror]]\nlocation = "{empty.host}/team"\n'
    )
    mark = setup.upstream.mark()
    code, _out, err, _written = resolve_via(setup, tmp_path, capfd, f"--registries-conf={conf}")
    assert code == 1
    assert f"GET http://{empty.host}/v2/team/app/manifests/v1: MANIFEST_UNKNOWN" in err
    # tools/helper is outside the blocked prefix and resolved from the upstream
    assert setup.upstream.count_requests("HEAD", "/v2/team/", since=mark) == 0
    assert setup.upstream.count_requests("HEAD", "/v2/tools/helper/", since=mark) == 1
    assert empty.count_requests("HEAD", "/v2/team/app/manifests/") == 2


def test_credentials_are_those_of_the_mirror_contacted(
    setup: Setup,
    registry_factory: RegistryFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A mirror with Basic auth: its own Docker config entry is used; without one, its 401
    moves on to the (anonymous) upstream."""
    guarded = registry_factory(auth="basic", proxy_remote=setup.upstream.url)
    flag = f"--registry-mirror={setup.upstream.host}={guarded.host}"
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-config"))
    err = same_as_direct(setup, resolve_via(setup, tmp_path, capfd, flag))
    assert f"{guarded.host} answered 401; trying {setup.upstream.host}" in err

    guarded.write_docker_config(tmp_path / "docker")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    err = served_without_upstream(setup, tmp_path, capfd, flag)
    assert guarded.count_requests("HEAD", "/manifests/", status=200) == 2 * len(IMAGES)
    assert guarded.password is not None and guarded.password not in err


@pytest.mark.parametrize("trust", ["skip_verify = true", "ca = {ca!r}"])
def test_hosts_toml_tls_settings_of_a_mirror(
    setup: Setup,
    registry_factory: RegistryFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    trust: str,
) -> None:
    """An https cache with its own test CA: trusted for that host by its hosts.toml entry."""
    secure = registry_factory(tls=True, proxy_remote=setup.upstream.url)
    hosts = tmp_path / "certs.d" / f"127.0.0.1_{setup.upstream.port}_"
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(
        f'[host."https://{secure.host}"]\n  {trust.format(ca=str(secure.ca_path))}\n'
    )
    flag = f"--registry-hosts-dir={tmp_path / 'certs.d'}"
    err = served_without_upstream(setup, tmp_path, capfd, flag)
    assert f"HEAD https://{secure.host}/v2/team/app/manifests/v1" in err
