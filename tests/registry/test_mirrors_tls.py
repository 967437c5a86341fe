"""Client certificates: mutual TLS with a registry that requires them (``http.tls.clientcas``).

The registry is the real ``docker-registry`` over https with a test CA, configured to
demand a client certificate signed by that CA. The certificate is given with
``--registry-client-cert``/``--registry-client-key``, or per host with a
``hosts.toml`` ``client`` (and ``ca``) entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy
from tests.conftest import FaultProxyFactory, RegistryFactory
from tests.support.cli import run_cli
from tests.support.images import make_image, push_image
from tests.support.registry import Registry


@pytest.fixture
def mtls(registry_factory: RegistryFactory) -> Iterator[Registry]:
    reg = registry_factory(tls=True, client_auth=True)
    assert reg.ca_path is not None and reg.client_cert is not None
    cert, ca = reg.client_cert, reg.ca_path

    async def seed() -> None:
        policy = TransportPolicy(
            ca_cert_paths=(ca,), client_cert=cert.cert_path, client_key=cert.key_path
        )
        async with RegistryClient(policy) as client:
            await push_image(client, reg.host, "mtls/app", "1", make_image("mtls"))

    anyio.run(seed)
    yield reg


def pods(tmp_path: Path, host: str) -> Path:
    path = tmp_path / "pod.yml"
    path.write_text(f"image: {host}/mtls/app:1\n")
    return path


def test_client_certificate_flags(
    mtls: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert mtls.client_cert is not None
    args = ["-f", str(pods(tmp_path, mtls.host)), f"--registry-ca-cert-path={mtls.ca_path}"]
    code, out, err = run_cli(args, capfd)
    assert code == 1  # without a certificate the registry refuses the handshake
    assert out == ""
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith("(the registry wants a client certificate: --registry-client-cert)")
    )
    code, out, err = run_cli(
        [
            *args,
            f"--registry-client-cert={mtls.client_cert.cert_path}",
            f"--registry-client-key={mtls.client_cert.key_path}",
        ],
        capfd,
    )
    assert code == 0, err
    assert f"image: {mtls.host}/mtls/app@{make_image('mtls').digest}" in out


def test_client_certificate_with_its_key_in_the_same_file(
    mtls: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert mtls.client_cert is not None
    both = tmp_path / "client.pem"
    both.write_bytes(
        mtls.client_cert.cert_path.read_bytes() + mtls.client_cert.key_path.read_bytes()
    )
    code, out, err = run_cli(
        [
            "-f",
            str(pods(tmp_path, mtls.host)),
            f"--registry-ca-cert-path={mtls.ca_path}",
            f"--registry-client-cert={both}",
        ],
        capfd,
    )
    assert code == 0, err
    assert f"image: {mtls.host}/mtls/app@{make_image('mtls').digest}" in out


def test_client_certificate_per_host_from_hosts_toml(
    mtls: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert mtls.client_cert is not None and mtls.ca_path is not None
    hosts = tmp_path / "certs.d" / f"127.0.0.1_{mtls.port}_"
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(
        f'server = "https://{mtls.host}"\n'
        f'ca = "{mtls.ca_path}"\n'
        f'client = [["{mtls.client_cert.cert_path}", "{mtls.client_cert.key_path}"]]\n'
    )
    code, out, err = run_cli(
        [
            "-f",
            str(pods(tmp_path, mtls.host)),
            f"--registry-hosts-dir={tmp_path / 'certs.d'}",
        ],
        capfd,
    )
    assert code == 0, err
    assert f"image: {mtls.host}/mtls/app@{make_image('mtls').digest}" in out


def test_unloadable_client_certificate_is_one_usage_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "client.pem"
    bad.write_text("not a certificate\n")
    (tmp_path / "pod.yml").write_text("image: 127.0.0.1:1/x/y:1\n")
    code, out, err = run_cli(
        ["-f", str(tmp_path / "pod.yml"), f"--registry-client-cert={bad}"], capfd
    )
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"lockresolve: error: --registry-client-cert: client certificate {bad}"
    )


def test_docker_certificate_directory_without_hosts_toml(
    mtls: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """containerd's fallback: ``*.crt`` CAs and ``*.cert``/``*.key`` pairs in the host's folder."""
    assert mtls.client_cert is not None and mtls.ca_path is not None
    certs = tmp_path / "certs.d" / mtls.host
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(mtls.ca_path.read_bytes())
    (certs / "client.cert").write_bytes(mtls.client_cert.cert_path.read_bytes())
    (certs / "client.key").write_bytes(mtls.client_cert.key_path.read_bytes())
    code, out, err = run_cli(
        ["-f", str(pods(tmp_path, mtls.host)), f"--registry-hosts-dir={tmp_path / 'certs.d'}"],
        capfd,
    )
    assert code == 0, err
    assert f"image: {mtls.host}/mtls/app@{make_image('mtls').digest}" in out


def test_per_host_client_certificate_through_an_https_proxy(
    mtls: Registry,
    fault_proxy_factory: FaultProxyFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host with its own TLS settings still goes through HTTPS_PROXY (a CONNECT tunnel)."""
    assert mtls.client_cert is not None and mtls.ca_path is not None
    forward = fault_proxy_factory(None)
    monkeypatch.setenv("HTTPS_PROXY", forward.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    hosts = tmp_path / "certs.d" / mtls.host
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(
        f'ca = "{mtls.ca_path}"\n'
        f'client = [["{mtls.client_cert.cert_path}", "{mtls.client_cert.key_path}"]]\n'
    )
    code, out, err = run_cli(
        ["-f", str(pods(tmp_path, mtls.host)), f"--registry-hosts-dir={tmp_path / 'certs.d'}"],
        capfd,
    )
    assert code == 0, err
    assert f"image: {mtls.host}/mtls/app@{make_image('mtls').digest}" in out
    assert forward.connect_count >= 1
