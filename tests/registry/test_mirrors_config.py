"""Mirror settings without a registry: the routes each source gives, and one clear line for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockresolve.errors import InputError, UsageError
from lockresolve.registry.hoststoml import directory_registry, load_hosts_dir
from lockresolve.registry.mirrors import MirrorConfig, parse_mirror_spec
from lockresolve.registry.registriesconf import load_registries_conf
from tests.support.cli import run_cli


def hosts_of(config: MirrorConfig, registry: str, target: str) -> list[tuple[str, str]]:
    plan = config.plan(registry, target)
    assert plan is not None
    return [(hop.host, hop.target) for hop in plan]


# -- flags ---------------------------------------------------------------------


def test_flag_mirrors_are_tried_in_order_then_the_upstream() -> None:
    config = MirrorConfig(
        flags=(
            parse_mirror_spec("docker.io=mirror.gcr.io"),
            parse_mirror_spec("registry-1.docker.io=harbor.example.com/proxy-cache"),
        )
    )
    assert hosts_of(config, "index.docker.io", "/v2/library/nginx/manifests/1.25") == [
        ("mirror.gcr.io", "/v2/library/nginx/manifests/1.25"),
        ("harbor.example.com", "/v2/proxy-cache/library/nginx/manifests/1.25"),
        ("index.docker.io", "/v2/library/nginx/manifests/1.25"),
    ]
    # another registry is not routed at all
    assert config.plan("ghcr.io", "/v2/a/b/manifests/1") is None
    # nor are uploads or the ping
    assert config.plan("index.docker.io", "/v2/library/nginx/blobs/uploads/") is not None
    assert config.plan("index.docker.io", "/v2/") is None


def test_mirror_only_drops_the_upstream() -> None:
    config = MirrorConfig(
        flags=(parse_mirror_spec("ghcr.io=127.0.0.1:5000/ghcr"),), mirror_only=True
    )
    assert hosts_of(config, "ghcr.io", "/v2/o/app/tags/list?n=1000") == [
        ("127.0.0.1:5000", "/v2/ghcr/o/app/tags/list?n=1000")
    ]
    # a registry without mirrors is contacted as usual
    assert config.plan("quay.io", "/v2/o/app/manifests/1") is None


@pytest.mark.parametrize(
    "spec",
    ["docker.io", "=mirror", "docker.io=", "docker.io/x=mirror", "docker.io=ftp://m", "a=b/UPPER"],
)
def test_malformed_mirror_spec_is_one_usage_line(spec: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_mirror_spec(spec)
    message = str(info.value)
    assert message.startswith(f"--registry-mirror {spec!r}: ")
    assert "\n" not in message


def test_malformed_mirror_flag_on_the_command_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yml").write_text("image: nginx:1\n")
    code, out, err = run_cli(["-f", str(tmp_path), "--registry-mirror", "docker.io"], capfd)
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "lockresolve: error: --registry-mirror 'docker.io': not of the form UPSTREAM=MIRROR "
        "(expected UPSTREAM=MIRROR[/PREFIX])"
    ]


def test_malformed_environment_names_the_variable(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yml").write_text("image: nginx:1\n")
    monkeypatch.setenv("LOCKRESOLVE_REGISTRY_MIRRORS", "docker.io=m.example,oops")
    code, _, err = run_cli(["-f", str(tmp_path)], capfd)
    assert code == 2
    assert err.strip().startswith("lockresolve: error: LOCKRESOLVE_REGISTRY_MIRRORS 'oops': ")
    assert len(err.strip().splitlines()) == 1


# -- hosts.toml ----------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_hosts_toml_hosts_then_server_capabilities_and_paths(tmp_path: Path) -> None:
    write(tmp_path / "docker.io" / "mirror.crt", "not read until a connection needs it")
    write(
        tmp_path / "docker.io" / "hosts.toml",
        'server = "https://registry-1.docker.io"\n'
        '[host."https://public-mirror.example.com"]\n  capabilities = ["pull"]\n'
        '[host."https://docker-mirror.internal"]\n  capabilities = ["pull", "resolve"]\n'
        '  ca = "mirror.crt"\n'
        '[host."https://harbor.example.com/v2/proxy"]\n  override_path = true\n'
        '[host."http://plain.example.com/api"]\n',
    )
    config = MirrorConfig(hosts=load_hosts_dir(tmp_path))
    tag = "/v2/library/nginx/manifests/1.25"
    ns = "?ns=docker.io"
    assert hosts_of(config, "index.docker.io", tag) == [
        ("docker-mirror.internal", tag + ns),
        ("harbor.example.com", "/v2/proxy/library/nginx/manifests/1.25" + ns),
        ("plain.example.com", "/api/v2/library/nginx/manifests/1.25" + ns),
        ("index.docker.io", tag),
    ]
    blob = "/v2/library/nginx/blobs/sha256:" + "a" * 64
    assert [h for h, _ in hosts_of(config, "index.docker.io", blob)][:2] == [
        "public-mirror.example.com",
        "docker-mirror.internal",
    ]
    plan = config.plan("index.docker.io", tag)
    assert plan is not None and plan[2].scheme == "http"
    tls = dict(config.tls_hosts())["docker-mirror.internal"]
    assert tls.ca_files == (tmp_path / "docker.io" / "mirror.crt",)


def test_hosts_toml_default_and_port_directories(tmp_path: Path) -> None:
    assert directory_registry("myregistry.io_5000_") == "myregistry.io:5000"
    assert directory_registry("_default") == "*"
    write(tmp_path / "_default" / "hosts.toml", '[host."https://registry.example.com"]\n')
    write(tmp_path / "127.0.0.1_5000_" / "hosts.toml", 'server = "https://only-mirror.example"\n')
    config = MirrorConfig(hosts=load_hosts_dir(tmp_path))
    assert hosts_of(config, "quay.io", "/v2/a/manifests/1") == [
        ("registry.example.com", "/v2/a/manifests/1?ns=quay.io"),
        ("quay.io", "/v2/a/manifests/1"),
    ]
    # server set to a mirror: the registry itself is never contacted
    assert hosts_of(config, "127.0.0.1:5000", "/v2/a/manifests/1") == [
        ("only-mirror.example", "/v2/a/manifests/1?ns=127.0.0.1%3A5000")
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('server = "https://x\n', "TOML error: "),
        ('[host."https://m"]\n  capabilities = ["pull", "fetch"]\n', "unknown capability 'fetch'"),
        ('[host."https://m"]\n  ca = "missing.pem"\n', "ca file "),
        ('[host."https://m"]\n  client = [["c.pem", "nokey.pem"]]\n', "client "),
        ('[host."https://m"]\n  skip-verify = true\n', "unknown key 'skip-verify'"),
    ],
)
def test_bad_hosts_toml_is_one_line_naming_the_file_and_entry(
    tmp_path: Path, text: str, expected: str
) -> None:
    write(tmp_path / "d" / "c.pem", "x")
    path = write(tmp_path / "d" / "hosts.toml", text)
    with pytest.raises(InputError) as info:
        load_hosts_dir(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message.strip()
    if "host." in text and "TOML" not in expected:
        assert '[host."https://m"]' in message


def test_bad_hosts_toml_on_the_command_line_exits_1(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yml").write_text("image: nginx:1\n")
    path = write(
        tmp_path / "certs.d" / "docker.io" / "hosts.toml",
        '[host."https://m.example"]\n  capabilities = ["pul"]\n',
    )
    code, out, err = run_cli(
        ["-f", str(tmp_path / "a.yml"), "--registry-hosts-dir", str(tmp_path / "certs.d")], capfd
    )
    assert code == 1
    assert out == ""
    assert err.strip().splitlines() == [
        f"lockresolve: error: {path}: [host.\"https://m.example\"]: unknown capability 'pul' "
        "(expected pull, resolve or push)"
    ]


# -- registries.conf -----------------------------------------------------------


def test_registries_conf_longest_prefix_location_and_digest_only(tmp_path: Path) -> None:
    path = write(
        tmp_path / "registries.conf",
        'unqualified-search-registries = ["docker.io"]\n'
        '[[registry]]\nprefix = "example.com/foo"\n'
        'location = "internal-registry-for-example.com/bar"\n'
        '[[registry.mirror]]\nlocation = "example-mirror-0.local/mirror-for-foo"\n'
        '[[registry.mirror]]\nlocation = "example-mirror-1.local/mirrors/foo"\ninsecure = true\n'
        '[[registry]]\nprefix = "example.com"\nmirror-by-digest-only = true\n'
        '[[registry.mirror]]\nlocation = "digests.example"\n',
    )
    config = MirrorConfig(registries_conf=load_registries_conf(path))
    assert hosts_of(config, "example.com", "/v2/foo/image/manifests/latest") == [
        ("example-mirror-0.local", "/v2/mirror-for-foo/image/manifests/latest"),
        ("example-mirror-1.local", "/v2/mirrors/foo/image/manifests/latest"),
        ("internal-registry-for-example.com", "/v2/bar/image/manifests/latest"),
    ]
    # the shorter prefix: its mirror serves digests only, so a tag goes as without mirrors
    assert config.plan("example.com", "/v2/other/manifests/latest") is None
    digest = "/v2/other/manifests/sha256:" + "b" * 64
    assert [h for h, _ in hosts_of(config, "example.com", digest)] == [
        "digests.example",
        "example.com",
    ]
    assert "example-mirror-1.local" in config.plain_http_hosts()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[registry]\nprefix = 'x'\n", "TOML error: "),
        ('[[registry]]\nprefix = "x.io"\nmirrors = []\n', "unknown key 'mirrors'"),
        (
            '[[registry]]\nprefix = "x.io"\n[[registry.mirror]]\nlocation = "https://m"\n',
            "[[registry]] prefix='x.io' [[registry.mirror]] #1: location 'https://m'",
        ),
        (
            '[[registry]]\nprefix = "x.io"\n[[registry.mirror]]\nlocation = "m"\n'
            'pull-from-mirror = "sometimes"\n',
            "pull-from-mirror must be",
        ),
        ('[[registry]]\nprefix = "x.io"\nblocked = "yes"\n', "blocked must be true or false"),
    ],
)
def test_bad_registries_conf_is_one_line_naming_the_file_and_entry(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path / "registries.conf", text)
    with pytest.raises(InputError) as info:
        load_registries_conf(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message.strip()


def test_missing_client_key_file_is_one_usage_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yml").write_text("image: nginx:1\n")
    cert = write(tmp_path / "client.pem", "x")
    code, _, err = run_cli(
        [
            "-f",
            str(tmp_path / "a.yml"),
            "--registry-client-cert",
            str(cert),
            "--registry-client-key",
            str(tmp_path / "missing.key"),
        ],
        capfd,
    )
    assert code == 2
    assert err.strip().splitlines() == [
        f"lockresolve: error: --registry-client-key {tmp_path / 'missing.key'}: file not found"
    ]


def test_mirror_only_without_any_mirror_is_a_usage_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yml").write_text("image: nginx:1\n")
    code, _, err = run_cli(["-f", str(tmp_path / "a.yml"), "--registry-mirror-only"], capfd)
    assert code == 2
    assert err.strip().splitlines() == [
        "lockresolve: error: --registry-mirror-only needs mirrors to use"
    ]


def test_credentials_in_mirror_settings_are_refused_without_being_shown(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as flag:
        parse_mirror_spec("docker.io=robot:s3cret-pw@mirror.example")
    write(
        tmp_path / "d" / "hosts.toml",
        '[host."https://robot:s3cret-pw@mirror.example"]\n  capabilities = ["pull"]\n',
    )
    with pytest.raises(InputError) as hosts:
        load_hosts_dir(tmp_path / "d" / "..")
    conf = write(
        tmp_path / "registries.conf",
        '[[registry]]\nprefix = "x.io"\n[[registry.mirror]]\nlocation = "robot:s3cret-pw@m.io"\n',
    )
    with pytest.raises(InputError) as registries:
        load_registries_conf(conf)
    for error in (flag, hosts, registries):
        assert "s3cret-pw" not in str(error.value)
        assert "***@" in str(error.value) or "credentials do not belong" in str(error.value)
