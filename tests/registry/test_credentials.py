"""Credential sources: the three env prefixes, the command line, Docker's config and helpers."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from lockresolve.errors import CredentialError
from lockresolve.registry.credentials import Credential
from lockresolve.registry.keychain import MAX_HELPER_OUTPUT, Keychain

PREFIXES = ["LOCKRESOLVE_REGISTRY_", "KBLD_REGISTRY_", "IMGPKG_REGISTRY_"]
SECRETS = ("hub-secret", "gcr-secret", "refresh-secret", "leak-secret", "env-secret", "b64-secret")


def keychain(
    env: Mapping[str, str] | None = None,
    *,
    config: object | None = None,
    tmp_path: Path | None = None,
    explicit: Credential | None = None,
    timeout: float = 5.0,
) -> Keychain:
    """A keychain over exactly ``env``; ``config`` (a JSON value) becomes the Docker config."""
    environ = dict(env or {})
    config_dir = None
    if tmp_path is not None:
        config_dir = tmp_path / "docker"
        config_dir.mkdir(exist_ok=True)
        if config is not None:
            text = config if isinstance(config, str) else json.dumps(config)
            (config_dir / "config.json").write_text(text)
        environ.setdefault("PATH", os.environ.get("PATH", os.defpath))
    return Keychain.from_environment(
        environ, explicit=explicit, docker_config_dir=config_dir, helper_timeout=timeout
    )


def env_group(prefix: str, suffix: str = "", **fields: str) -> dict[str, str]:
    """One credential group's variables: ``env_group("IMGPKG_REGISTRY_", "0", hostname="h")``
    is ``{"IMGPKG_REGISTRY_HOSTNAME_0": "h"}``."""
    end = f"_{suffix}" if suffix else ""
    return {f"{prefix}{field.upper()}{end}": value for field, value in fields.items()}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- Credential ------------------------------------------------------------------------


def test_credential_normalises_empty_values() -> None:
    assert Credential() == Credential("", "", "", "") == Credential.anonymous()
    assert Credential().is_anonymous
    basic = Credential(username="bob")
    assert (basic.username, basic.password) == ("bob", "")  # Basic "bob:", as ggcr sends
    assert not basic.is_anonymous
    assert Credential(password="p").username == ""
    assert Credential(registry_token="t").registry_token == "t"


def test_credential_repr_and_str_hide_secrets() -> None:
    cred = Credential("bob", "env-secret", "refresh-secret", "gcr-secret")
    for text in (repr(cred), str(cred), f"{cred}", repr([cred])):
        assert "bob" in text
        for secret in SECRETS:
            assert secret not in text
    assert "password='***'" in repr(cred)
    assert "identity_token=None" in repr(Credential("bob", "x"))


# -- the environment ---------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_env_default_group(prefix: str) -> None:
    kc = keychain(env_group(prefix, hostname="gcr.io", username="bob", password="env-secret"))
    assert kc.resolve("gcr.io") == Credential("bob", "env-secret")
    assert kc.resolve("gcr.io", "proj/img") == Credential("bob", "env-secret")
    assert kc.resolve("quay.io").is_anonymous


@pytest.mark.parametrize("prefix", PREFIXES)
def test_env_suffix_groups(prefix: str) -> None:
    kc = keychain(
        env_group(prefix, hostname="gcr.io", username="default", password="p0")
        | env_group(prefix, "0", hostname="quay.io", username="zero", password="p1")
        | env_group(prefix, "FOO", hostname="localhost:5000", identity_token="refresh-secret")
        | env_group(prefix, "BAR", hostname="registry.example.com", registry_token="gcr-secret")
    )
    assert kc.resolve("gcr.io") == Credential("default", "p0")
    assert kc.resolve("quay.io") == Credential("zero", "p1")
    assert kc.resolve("localhost:5000") == Credential(identity_token="refresh-secret")
    assert kc.resolve("registry.example.com") == Credential(registry_token="gcr-secret")
    assert kc.resolve("localhost").is_anonymous  # ports must match


def test_env_hostname_forms_imgpkg_accepts() -> None:
    for hostname in (
        "gcr.io",
        "https://gcr.io",
        "http://gcr.io/",
        "gcr.io/v2/",
        "https://gcr.io/v1/",
    ):
        kc = keychain({"IMGPKG_REGISTRY_HOSTNAME": hostname, "IMGPKG_REGISTRY_USERNAME": "u"})
        assert kc.resolve("gcr.io") == Credential("u", ""), hostname


def test_env_docker_hub_aliases() -> None:
    for hostname in (
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
    ):
        kc = keychain({"KBLD_REGISTRY_HOSTNAME": hostname, "KBLD_REGISTRY_USERNAME": "u"})
        assert kc.resolve("index.docker.io", "library/nginx") == Credential("u", ""), hostname
        assert kc.resolve("docker.io") == Credential("u", ""), hostname


def test_env_hostname_with_path_is_repository_specific_and_longest_first() -> None:
    kc = keychain(
        env_group("IMGPKG_REGISTRY_", "0", hostname="quay.io", username="all")
        | env_group("IMGPKG_REGISTRY_", "1", hostname="quay.io/coreos", username="coreos")
    )
    assert kc.resolve("quay.io", "coreos/etcd").username == "coreos"
    assert kc.resolve("quay.io", "other/etcd").username == "all"
    assert kc.resolve("quay.io").username == "all"
    # imgpkg compares paths as strings: "/coreos" is a prefix of "/coreos-extra".
    assert kc.resolve("quay.io", "coreos-extra/x").username == "coreos"


def test_env_globbing_per_label() -> None:
    groups = [
        ("*.docker.io", "glob"),
        ("foo.docker.io", "exact"),
        ("*.*.gcr.io:5000", "two-labels"),
        ("reg[0-9].example.com", "class"),
    ]
    env: dict[str, str] = {}
    for n, (hostname, username) in enumerate(groups):
        env |= env_group("IMGPKG_REGISTRY_", str(n), hostname=hostname, username=username)
    kc = keychain(env)
    assert kc.resolve("foo.docker.io").username == "exact"  # documented by imgpkg
    assert kc.resolve("bar.docker.io").username == "glob"
    assert kc.resolve("a.b.docker.io").is_anonymous  # one label per '*'
    assert kc.resolve("a.b.gcr.io:5000").username == "two-labels"
    assert kc.resolve("a.b.gcr.io").is_anonymous  # the port is part of the match
    assert kc.resolve("reg7.example.com").username == "class"
    assert kc.resolve("rega.example.com").is_anonymous


@pytest.mark.parametrize("prefix", PREFIXES)
def test_env_unknown_names_are_errors(prefix: str) -> None:
    kc = keychain({f"{prefix}HOSTNAME": "gcr.io", f"{prefix}PASSWD": "env-secret"})
    with pytest.raises(CredentialError) as info:
        kc.resolve("gcr.io")
    assert f"'{prefix}PASSWD'" in str(info.value)
    assert "env-secret" not in str(info.value)


def test_env_other_names_are_left_alone() -> None:
    kc = keychain(
        {
            "IMGPKG_REGISTRY_AZURE_CR_CONFIG": "/etc/azure.json",  # imgpkg skips it
            "IMGPKG_USERNAME": "flag-env",  # the flags' env, not this source
            "KBLD_REGISTRY": "x",  # no '_' after the prefix
            "MY_KBLD_REGISTRY_HOSTNAME": "x",
        }
    )
    assert kc.resolve("gcr.io").is_anonymous


def test_env_group_without_hostname_matches_nothing() -> None:
    kc = keychain({"IMGPKG_REGISTRY_USERNAME_0": "u", "IMGPKG_REGISTRY_PASSWORD_0": "p"})
    assert kc.resolve("gcr.io").is_anonymous


def test_env_empty_hostname_kbld_refuses_imgpkg_ignores() -> None:
    with pytest.raises(CredentialError, match="KBLD_REGISTRY_HOSTNAME is empty"):
        keychain({"KBLD_REGISTRY_HOSTNAME": "", "KBLD_REGISTRY_USERNAME": "u"}).resolve("gcr.io")
    kc = keychain({"IMGPKG_REGISTRY_HOSTNAME": "", "IMGPKG_REGISTRY_USERNAME": "u"})
    assert kc.resolve("gcr.io").is_anonymous


def test_env_bad_hostname_is_an_error() -> None:
    kc = keychain({"IMGPKG_REGISTRY_HOSTNAME_X": "gcr.io:abc", "IMGPKG_REGISTRY_USERNAME_X": "u"})
    with pytest.raises(CredentialError, match="IMGPKG_REGISTRY_HOSTNAME_X"):
        kc.resolve("gcr.io")


def test_env_prefix_precedence() -> None:
    env = {
        "IMGPKG_REGISTRY_HOSTNAME": "gcr.io",
        "IMGPKG_REGISTRY_USERNAME": "imgpkg",
        "KBLD_REGISTRY_HOSTNAME": "gcr.io",
        "KBLD_REGISTRY_USERNAME": "kbld",
    }
    assert keychain(env).resolve("gcr.io").username == "kbld"
    env |= {"LOCKRESOLVE_REGISTRY_HOSTNAME": "gcr.io", "LOCKRESOLVE_REGISTRY_USERNAME": "ours"}
    assert keychain(env).resolve("gcr.io").username == "ours"


def test_env_match_without_secrets_is_anonymous_and_final(tmp_path: Path) -> None:
    """As in kbld/imgpkg: a matching env group answers, even with nothing but a hostname."""
    config = {"auths": {"gcr.io": {"auth": b64("bob:b64-secret")}}}
    kc = keychain(
        {"IMGPKG_REGISTRY_HOSTNAME": "gcr.io"},
        config=config,
        tmp_path=tmp_path,
        explicit=Credential("flag", "x"),
    )
    assert kc.resolve("gcr.io").is_anonymous


def test_env_error_does_not_leak_values() -> None:
    kc = keychain({"KBLD_REGISTRY_TOKEN": "env-secret"})
    with pytest.raises(CredentialError) as info:
        kc.resolve("gcr.io")
    assert "env-secret" not in str(info.value)
    assert "env-secret" not in repr(info.value)


# -- explicit credentials (flags) --------------------------------------------------------


def test_explicit_comes_after_env_and_before_docker_config(tmp_path: Path) -> None:
    config = {"auths": {"quay.io": {"auth": b64("docker:b64-secret")}}}
    env = {"IMGPKG_REGISTRY_HOSTNAME": "gcr.io", "IMGPKG_REGISTRY_USERNAME": "env"}
    kc = keychain(env, config=config, tmp_path=tmp_path, explicit=Credential("flag", "pw"))
    assert kc.resolve("gcr.io").username == "env"
    assert kc.resolve("quay.io").username == "flag"
    anon = keychain(env, config=config, tmp_path=tmp_path, explicit=Credential.anonymous())
    assert anon.resolve("quay.io").is_anonymous  # --registry-anon skips Docker's config
    none = keychain(env, config=config, tmp_path=tmp_path)
    assert none.resolve("quay.io") == Credential("docker", "b64-secret")


# -- the Docker config ----------------------------------------------------------------------


def test_docker_config_entry_forms(tmp_path: Path) -> None:
    config = {
        "auths": {
            "a.example.com": {"auth": b64("alice:b64-secret")},
            "b.example.com": {"username": "bob", "password": "pw"},
            "c.example.com": {"identitytoken": "refresh-secret"},
            "d.example.com": {"registrytoken": "gcr-secret"},
            "e.example.com": {"auth": b64("user:pa:ss\x00")},  # first ':' splits; NULs trimmed
            "f.example.com": {"Username": "carol", "Password": "pw"},  # Go JSON: any case
            "g.example.com": {},
            "h.example.com": {"auth": b64("eve:one"), "username": "ignored", "password": "x"},
        }
    }
    kc = keychain(config=config, tmp_path=tmp_path)
    assert kc.resolve("a.example.com") == Credential("alice", "b64-secret")
    assert kc.resolve("b.example.com") == Credential("bob", "pw")
    assert kc.resolve("c.example.com") == Credential(identity_token="refresh-secret")
    assert kc.resolve("d.example.com") == Credential(registry_token="gcr-secret")
    assert kc.resolve("e.example.com") == Credential("user", "pa:ss")
    assert kc.resolve("f.example.com") == Credential("carol", "pw")
    assert kc.resolve("g.example.com").is_anonymous
    assert kc.resolve("h.example.com") == Credential("eve", "one")
    assert kc.resolve("unknown.example.com").is_anonymous


@pytest.mark.parametrize(
    "key",
    [
        "https://index.docker.io/v1/",
        "index.docker.io",
        "docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v2/",
        "https://registry-1.docker.io",
    ],
)
def test_docker_hub_keys(tmp_path: Path, key: str) -> None:
    kc = keychain(config={"auths": {key: {"auth": b64("hub:hub-secret")}}}, tmp_path=tmp_path)
    for registry in ("index.docker.io", "docker.io", "registry-1.docker.io"):
        assert kc.resolve(registry, "library/nginx") == Credential("hub", "hub-secret")


def test_docker_hub_prefers_docker_login_key(tmp_path: Path) -> None:
    config = {
        "auths": {
            "docker.io": {"auth": b64("other:x")},
            "https://index.docker.io/v1/": {"auth": b64("hub:hub-secret")},
        }
    }
    assert keychain(config=config, tmp_path=tmp_path).resolve("index.docker.io").username == "hub"


@pytest.mark.parametrize("key", ["gcr.io", "https://gcr.io", "http://gcr.io/v2/", "GCR.io"])
def test_docker_config_keys_with_scheme_and_path(tmp_path: Path, key: str) -> None:
    kc = keychain(config={"auths": {key: {"auth": b64("g:gcr-secret")}}}, tmp_path=tmp_path)
    assert kc.resolve("gcr.io") == Credential("g", "gcr-secret")
    assert kc.resolve("us.gcr.io").is_anonymous
    assert kc.resolve("gcr.io:5000").is_anonymous


def test_docker_config_repository_key_first(tmp_path: Path) -> None:
    config = {
        "auths": {
            "gcr.io": {"auth": b64("registry:x")},
            "gcr.io/team/app": {"auth": b64("team:y")},
        }
    }
    kc = keychain(config=config, tmp_path=tmp_path)
    assert kc.resolve("gcr.io", "team/app").username == "team"
    assert kc.resolve("gcr.io", "team/other").username == "registry"
    assert kc.resolve("gcr.io").username == "registry"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        ('{"auths": []}', "'auths' is not an object"),
        ('{"auths": {"gcr.io": {"auth": "%%%"}}}', "'gcr.io'"),
        ('{"auths": {"gcr.io": {"auth": "' + b64("no-colon-b64-secret") + '"}}}', "'gcr.io'"),
        ('{"auths": {"gcr.io": {"auth": "' + b64(":b64-secret") + '"}}}', "'gcr.io'"),
        ('{"auths": {"gcr.io": {"password": 5}}}', "not a string"),
        ('{"credHelpers": {"gcr.io": 1}}', "credHelpers"),
    ],
)
def test_broken_docker_config(tmp_path: Path, text: str, message: str) -> None:
    kc = keychain(config=text, tmp_path=tmp_path)
    with pytest.raises(CredentialError) as info:
        kc.resolve("quay.io")
    assert message in str(info.value)
    assert str(tmp_path / "docker" / "config.json") in str(info.value)
    assert "b64-secret" not in str(info.value)
    assert b64(":b64-secret") not in str(info.value)


def test_missing_or_empty_docker_config_is_anonymous(tmp_path: Path) -> None:
    assert keychain(tmp_path=tmp_path).resolve("gcr.io").is_anonymous
    assert keychain(config="", tmp_path=tmp_path).resolve("gcr.io").is_anonymous


def test_docker_config_location_from_env(tmp_path: Path) -> None:
    home, elsewhere, runtime = tmp_path / "home", tmp_path / "elsewhere", tmp_path / "run"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(
        json.dumps({"auths": {"gcr.io": {"auth": b64("home:x")}}})
    )
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(json.dumps({"auths": {"gcr.io": {"auth": b64("dc:x")}}}))
    (runtime / "containers").mkdir(parents=True)
    (runtime / "containers" / "auth.json").write_text(
        json.dumps({"auths": {"gcr.io": {"auth": b64("podman:x")}}})
    )
    base = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    assert Keychain.from_environment(base).resolve("gcr.io").username == "home"
    with_dc = base | {"DOCKER_CONFIG": str(elsewhere)}
    assert Keychain.from_environment(with_dc).resolve("gcr.io").username == "dc"
    # ggcr: with a Docker config present, $DOCKER_CONFIG wins even when its file is missing.
    missing = base | {"DOCKER_CONFIG": str(tmp_path / "nowhere")}
    assert Keychain.from_environment(missing).resolve("gcr.io").is_anonymous
    # No Docker config at all: Podman's auth file.
    no_home = {"HOME": str(tmp_path / "nohome"), "XDG_RUNTIME_DIR": str(runtime)}
    assert Keychain.from_environment(no_home).resolve("gcr.io").username == "podman"
    assert (
        Keychain.from_environment({"HOME": str(tmp_path / "nohome")}).resolve("gcr.io").is_anonymous
    )


# -- credential helpers -------------------------------------------------------------------------

HELPER_TEST = r"""#!/bin/sh
server=$(cat)
echo "$server" >> "$HELPER_LOG"
[ "$1" = get ] || { echo "unexpected action $1"; exit 1; }
case "$server" in
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hubuser","Secret":"hub-secret"}' ;;
  gcr.io) printf '{"ServerURL":"gcr.io","Username":"gcruser","Secret":"gcr-secret"}' ;;
  tok.example.com) echo '{"Username":"<token>","Secret":"refresh-secret"}' ;;
  garbage.example.com) echo 'this is not json' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"""

HELPER_FAIL = """#!/bin/sh
cat >/dev/null
echo "error getting credentials: keychain is locked"
exit 3
"""

HELPER_LEAKY = """#!/bin/sh
cat >/dev/null
echo '{"Username":"x","Secret":"leak-secret"}'
echo 'password leak-secret' >&2
exit 1
"""

HELPER_BARE = """#!/bin/sh
cat >/dev/null
echo 'ghp_0123456789abcdefghijklmnopqrstuvwxyzAB'
exit 2
"""

# A child process keeps stdout open: killing only the shell would not end the wait.
HELPER_HANG = """#!/bin/sh
sleep 30
echo '{}'
"""


@pytest.fixture
def helper_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {
        "test": HELPER_TEST,
        "fail": HELPER_FAIL,
        "leaky": HELPER_LEAKY,
        "bare": HELPER_BARE,
        "hang": HELPER_HANG,
    }.items():
        script = bin_dir / f"docker-credential-{name}"
        script.write_text(body)
        script.chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "HELPER_LOG": str(tmp_path / "helper.log"),
    }


def helper_calls(env: Mapping[str, str]) -> list[str]:
    log = Path(env["HELPER_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def test_creds_store(tmp_path: Path, helper_env: dict[str, str]) -> None:
    config = {"credsStore": "test", "auths": {"https://index.docker.io/v1/": {}}}
    kc = keychain(helper_env, config=config, tmp_path=tmp_path)
    assert kc.resolve("index.docker.io", "library/nginx") == Credential("hubuser", "hub-secret")
    assert kc.resolve("docker.io") == Credential("hubuser", "hub-secret")
    assert kc.resolve("gcr.io") == Credential("gcruser", "gcr-secret")
    assert kc.resolve("tok.example.com") == Credential(identity_token="refresh-secret")
    assert kc.resolve("quay.io").is_anonymous  # "credentials not found"
    assert helper_calls(helper_env) == [
        "index.docker.io/library/nginx",  # the repository first, as ggcr and newer Docker
        "https://index.docker.io/v1/",  # asked once, though two keys needed its answer
        "gcr.io",
        "tok.example.com",
        "quay.io",
    ]


def test_results_are_cached(tmp_path: Path, helper_env: dict[str, str]) -> None:
    kc = keychain(helper_env, config={"credsStore": "test"}, tmp_path=tmp_path)
    for _ in range(3):
        assert kc.resolve("gcr.io").username == "gcruser"
        assert kc.resolve("quay.io").is_anonymous
    assert helper_calls(helper_env) == ["gcr.io", "quay.io"]


def test_cred_helpers_per_registry_beat_creds_store(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    config = {
        "credsStore": "fail",
        "credHelpers": {"gcr.io": "test", "docker.io": "test"},
        "auths": {"quay.io": {"auth": b64("q:x")}},
    }
    kc = keychain(helper_env, config=config, tmp_path=tmp_path)
    assert kc.resolve("gcr.io").username == "gcruser"
    assert kc.resolve("index.docker.io").username == "hubuser"  # docker.io key, Hub alias
    with pytest.raises(CredentialError):
        kc.resolve("quay.io")  # the store answers for everything else, even with an auths entry


def test_helper_overlays_file_entry_but_keeps_registry_token(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    config = {
        "credsStore": "test",
        "auths": {
            "gcr.io": {"auth": b64("file:x"), "registrytoken": "file-token"},
            "quay.io": {"auth": b64("file:x")},
        },
    }
    kc = keychain(helper_env, config=config, tmp_path=tmp_path)
    assert kc.resolve("gcr.io") == Credential("gcruser", "gcr-secret", registry_token="file-token")
    # The Docker CLI's native store: the helper's (empty) answer replaces the file's user/password.
    assert kc.resolve("quay.io").is_anonymous


def test_failing_helper(tmp_path: Path, helper_env: dict[str, str]) -> None:
    kc = keychain(helper_env, config={"credHelpers": {"gcr.io": "fail"}}, tmp_path=tmp_path)
    with pytest.raises(CredentialError) as info:
        kc.resolve("gcr.io")
    message = str(info.value)
    assert "docker-credential-fail" in message
    assert "gcr.io" in message
    assert "exit status 3" in message
    assert "keychain is locked" in message


def test_failing_helper_output_with_secrets_is_not_repeated(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    kc = keychain(helper_env, config={"credsStore": "leaky"}, tmp_path=tmp_path)
    with pytest.raises(CredentialError) as info:
        kc.resolve("gcr.io")
    assert "docker-credential-leaky" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(info.value.args)):
        assert "leak-secret" not in text


def test_failing_helper_printing_a_bare_token_is_not_repeated(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    kc = keychain(helper_env, config={"credsStore": "bare"}, tmp_path=tmp_path)
    with pytest.raises(CredentialError) as info:
        kc.resolve("gcr.io")
    assert "exit status 2" in str(info.value)
    assert "ghp_0123456789" not in str(info.value)


def test_helper_answer_not_json(tmp_path: Path, helper_env: dict[str, str]) -> None:
    kc = keychain(helper_env, config={"credsStore": "test"}, tmp_path=tmp_path)
    with pytest.raises(CredentialError, match="not JSON"):
        kc.resolve("garbage.example.com")


def test_helper_not_installed(tmp_path: Path, helper_env: dict[str, str]) -> None:
    kc = keychain(helper_env, config={"credsStore": "nosuch"}, tmp_path=tmp_path)
    with pytest.raises(
        CredentialError, match=r"docker-credential-nosuch \(for registry gcr.io\): not found"
    ):
        kc.resolve("gcr.io")


def test_hanging_helper_times_out(tmp_path: Path, helper_env: dict[str, str]) -> None:
    kc = keychain(helper_env, config={"credsStore": "hang"}, tmp_path=tmp_path, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(CredentialError) as info:
        kc.resolve("gcr.io")
    assert time.monotonic() - started < 10
    assert "docker-credential-hang" in str(info.value)
    assert "gcr.io" in str(info.value)
    assert "0.5 s" in str(info.value)


def _one_helper(tmp_path: Path, name: str, script: str) -> dict[str, str]:
    """An environment whose PATH starts with a folder holding ``docker-credential-<name>``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text(script)
    helper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}


def test_helper_printing_without_end_is_stopped(tmp_path: Path) -> None:
    # A broken (or hostile) helper that never stops printing: its output is not read
    # into memory without bound, and the error says why it was stopped.
    env = _one_helper(
        tmp_path, "chatty", "#!/bin/sh\ncat >/dev/null\nexec yes password-like-output\n"
    )
    kc = keychain(env, config={"credsStore": "chatty"}, tmp_path=tmp_path, timeout=20)
    started = time.monotonic()
    with pytest.raises(CredentialError) as info:
        kc.resolve("gcr.io")
    assert time.monotonic() - started < 15  # stopped at the cap, not at the timeout
    message = str(info.value)
    assert "docker-credential-chatty (for registry gcr.io)" in message
    assert f"answered more than {MAX_HELPER_OUTPUT} bytes, stopped it" in message
    assert "password-like-output" not in message


def test_helper_answer_on_stdout_with_noise_on_stderr(tmp_path: Path) -> None:
    # Both pipes are read as the helper writes: 200 kB on stderr (more than a pipe
    # holds) does not block it before its answer.
    env = _one_helper(
        tmp_path,
        "noisy",
        "#!/bin/sh\ncat >/dev/null\nhead -c 200000 /dev/zero | tr '\\0' w >&2\n"
        'echo \'{"Username": "u", "Secret": "s"}\'\n',
    )
    kc = keychain(env, config={"credsStore": "noisy"}, tmp_path=tmp_path)
    assert kc.resolve("gcr.io") == Credential("u", "s")


def test_failures_are_not_cached(tmp_path: Path, helper_env: dict[str, str]) -> None:
    kc = keychain(helper_env, config={"credsStore": "fail"}, tmp_path=tmp_path)
    for _ in range(2):
        with pytest.raises(CredentialError):
            kc.resolve("gcr.io")


def test_helper_lookups_for_different_repositories_run_in_parallel(tmp_path: Path) -> None:
    """Each repository asks the helper for host/repository: those runs must not queue."""
    from concurrent.futures import ThreadPoolExecutor

    env = _one_helper(
        tmp_path,
        "slow",
        "#!/bin/sh\ncat >/dev/null\nsleep 0.5\necho 'credentials not found'\nexit 1\n",
    )
    kc = keychain(env, config={"credsStore": "slow"}, tmp_path=tmp_path)
    kc.resolve("gcr.io")  # the host's own answer, once
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda n: kc.resolve("gcr.io", f"team/app{n}"), range(6)))
    assert all(a.is_anonymous for a in answers)
    assert time.monotonic() - start < 2.0  # six 0.5 s runs, not one after another (3 s)
