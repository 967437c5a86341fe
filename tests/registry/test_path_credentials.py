"""Credentials per repository path (issue 16; issue 12 item 3): several credentials on one
host, chosen by the longest matching path prefix, from environment groups, Docker config
``auths`` keys and credential helpers. The real registry with the token server granting
different repositories to different users."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.conftest import RegistryFactory
from tests.robustness.helpers import run_cli, seed_tags
from tests.support.credentials import (
    basic_auth_entry,
    install_credential_helper,
    isolate_credentials,
    set_env,
    write_docker_config,
    write_image_inputs,
)
from tests.support.registry import Registry, skopeo_inspect_raw

USERS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "dave": "dave-pw-3", "carol": "carol-pw-4"}
GRANTS = {"alice": "team-a/", "bob": "team-b/", "dave": "team-a/special/"}
THREE_REPOS = ["team-a/app", "team-a/special/app", "team-b/app"]
#: who asked for each of THREE_REPOS when every path has its own credential
EACH_BY_ITS_OWNER = {"team-a/app": {"alice"}, "team-a/special/app": {"dave"}, "team-b/app": {"bob"}}


def _policy(account: str | None, kind: str, name: str) -> Iterable[str]:
    if account == "tester":
        return ["*"]
    prefix = GRANTS.get(account or "")
    return ["pull", "push"] if prefix and name.startswith(prefix) else []


@pytest.fixture
def team_registry(registry_factory: RegistryFactory) -> Registry:
    reg = registry_factory(auth="token")
    ts = reg.token_server
    assert ts is not None
    ts.users.update(USERS)
    ts.policy = _policy
    for repo in ("team-a/app", "team-a/special/app", "team-b/app"):
        seed_tags(reg, repo, ["1"])
    ts.reset()
    return reg


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_credentials(monkeypatch, tmp_path)


def _resolve(
    reg: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str], repos: list[str]
) -> None:
    src = write_image_inputs(tmp_path, [f"{reg.host}/{r}:1" for r in repos])
    res = run_cli(["-f", str(src)], capfd)
    assert res.code == 0, res.err
    assert not any(secret in res.err + res.out for secret in USERS.values())


def _who_asked(reg: Registry) -> dict[str, set[str | None]]:
    """repository -> the users whose token requests named it."""
    assert reg.token_server is not None
    seen: dict[str, set[str | None]] = {}
    for req in reg.token_server.requests:
        for scope in req.scopes:
            repo = scope.split(":")[1]
            seen.setdefault(repo, set()).add(req.username)
    return seen


def test_environment_groups_with_paths_longest_prefix_first(
    team_registry: Registry,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    host = team_registry.host
    env = {
        "LOCKRESOLVE_REGISTRY_HOSTNAME_A": f"{host}/team-a",
        "LOCKRESOLVE_REGISTRY_USERNAME_A": "alice",
        "LOCKRESOLVE_REGISTRY_PASSWORD_A": USERS["alice"],
        "LOCKRESOLVE_REGISTRY_HOSTNAME_S": f"{host}/team-a/special",
        "LOCKRESOLVE_REGISTRY_USERNAME_S": "dave",
        "LOCKRESOLVE_REGISTRY_PASSWORD_S": USERS["dave"],
        "KBLD_REGISTRY_HOSTNAME_B": f"{host}/team-b",
        "KBLD_REGISTRY_USERNAME_B": "bob",
        "KBLD_REGISTRY_PASSWORD_B": USERS["bob"],
        "IMGPKG_REGISTRY_HOSTNAME": host,  # the whole host: carol, who may read nothing
        "IMGPKG_REGISTRY_USERNAME": "carol",
        "IMGPKG_REGISTRY_PASSWORD": USERS["carol"],
    }
    set_env(monkeypatch, env)
    _resolve(team_registry, clean_env, capfd, THREE_REPOS)
    assert _who_asked(team_registry) == EACH_BY_ITS_OWNER


def test_imgpkg_hostname_with_a_path_is_used(
    team_registry: Registry,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Issue 12 item 3, as reported: this got a 401 with no Authorization sent.
    monkeypatch.setenv("IMGPKG_REGISTRY_HOSTNAME", f"{team_registry.host}/team-b")
    monkeypatch.setenv("IMGPKG_REGISTRY_USERNAME", "bob")
    monkeypatch.setenv("IMGPKG_REGISTRY_PASSWORD", USERS["bob"])
    _resolve(team_registry, clean_env, capfd, ["team-b/app"])
    assert _who_asked(team_registry) == {"team-b/app": {"bob"}}


def test_docker_config_auths_keys_with_paths(
    team_registry: Registry, clean_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    host = team_registry.host

    def auth(user: str) -> dict[str, str]:
        return basic_auth_entry(user, USERS[user])

    auths = {
        host: auth("carol"),
        f"{host}/team-a": auth("alice"),
        f"{host}/team-a/special": auth("dave"),
        f"{host}/team-b": auth("bob"),
    }
    write_docker_config(clean_env / "docker", {"auths": auths})
    _resolve(team_registry, clean_env, capfd, THREE_REPOS)
    assert _who_asked(team_registry) == EACH_BY_ITS_OWNER


def test_credential_helpers_are_asked_for_the_repository_first(
    team_registry: Registry,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    host = team_registry.host
    log = clean_env / "helper.log"
    install_credential_helper(
        monkeypatch,
        clean_env,
        "paths",
        "#!/bin/sh\n"
        "read server\n"
        f'echo "$server" >> {log}\n'
        'case "$server" in\n'
        f'  {host}/team-a/*) echo \'{{"Username":"alice","Secret":"{USERS["alice"]}"}}\' ;;\n'
        f'  {host}/team-b/*) echo \'{{"Username":"bob","Secret":"{USERS["bob"]}"}}\' ;;\n'
        "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
        "esac\n",
    )
    write_docker_config(clean_env / "docker", {"credsStore": "paths"})
    _resolve(team_registry, clean_env, capfd, ["team-a/app", "team-b/app"])
    assert _who_asked(team_registry) == {"team-a/app": {"alice"}, "team-b/app": {"bob"}}
    assert sorted(log.read_text().split()) == [f"{host}/team-a/app", f"{host}/team-b/app"]


def test_copy_between_paths_reads_with_one_credential_and_writes_with_another(
    team_registry: Registry,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    host = team_registry.host
    for suffix, user, path in (("A", "alice", "team-a"), ("B", "bob", "team-b")):
        monkeypatch.setenv(f"LOCKRESOLVE_REGISTRY_HOSTNAME_{suffix}", f"{host}/{path}")
        monkeypatch.setenv(f"LOCKRESOLVE_REGISTRY_USERNAME_{suffix}", user)
        monkeypatch.setenv(f"LOCKRESOLVE_REGISTRY_PASSWORD_{suffix}", USERS[user])
    # bob may not read team-a, so the registry cannot mount: the blobs stream from a GET
    # with alice's token into a PUT with bob's.
    res = run_cli(["copy", "-i", f"{host}/team-a/app:1", "--to-repo", f"{host}/team-b/copy"], capfd)
    assert res.code == 0, res.err
    seen = _who_asked(team_registry)
    assert "alice" in seen["team-a/app"]
    assert seen["team-b/copy"] == {"bob"}
    assert skopeo_inspect_raw(f"{host}/team-b/copy:1", team_registry)
