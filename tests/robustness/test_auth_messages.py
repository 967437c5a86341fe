"""Errors a user can act on (issue 15): a refused request says whether credentials were
sent and where they came from, never the secret; misspelt or orphaned credential
variables are reported once, at start-up. Against the real htpasswd registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.helpers import CliResult, run_cli, seed_tags, tally
from tests.support.credentials import (
    basic_auth_entry,
    install_credential_helper,
    isolate_credentials,
    set_env,
    write_docker_config,
    write_image_inputs,
)
from tests.support.registry import Registry

WRONG = "wrong-pass-0xDEADBEEF"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credentials from the test machine: an empty HOME and no Docker config."""
    return isolate_credentials(monkeypatch, tmp_path, "no-docker-config")


def _failing_run(
    tmp_path: Path, refs: list[str], capfd: pytest.CaptureFixture[str], *flags: str
) -> CliResult:
    """``lockresolve -f`` over ``refs`` (and ``flags``), which must exit 1."""
    src = write_image_inputs(tmp_path, refs)
    res = run_cli(["-f", str(src), *flags], capfd)
    assert res.code == 1
    return res


def _failure_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("- Resolving image")]


CASES = {
    "none": ({}, [], "no credentials sent (none found for {host}/msg/app: "),
    "env group, wrong password": (
        {
            "LOCKRESOLVE_REGISTRY_HOSTNAME_CI": "{host}",
            "LOCKRESOLVE_REGISTRY_USERNAME_CI": "tester",
            "LOCKRESOLVE_REGISTRY_PASSWORD_CI": WRONG,
        },
        [],
        "(sent username 'tester' and a password from environment group "
        "LOCKRESOLVE_REGISTRY_HOSTNAME_CI)",
    ),
    "flags, wrong password": (
        {},
        ["--registry-username", "tester", "--registry-password", WRONG],
        "(sent username 'tester' and a password from --registry-username/--registry-password)",
    ),
    "group for another host": (
        {
            "IMGPKG_REGISTRY_HOSTNAME": "other.example",
            "IMGPKG_REGISTRY_USERNAME": "tester",
            "IMGPKG_REGISTRY_PASSWORD": WRONG,
        },
        [],
        "no credentials sent (none found for {host}/msg/app: no environment group matched "
        "(they name other.example)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_refusal_says_what_was_sent_and_from_where(
    basic_registry: Registry,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    case: str,
) -> None:
    env, flags, expected = CASES[case]
    host = basic_registry.host
    seed_tags(basic_registry, "msg/app", ["1"])
    set_env(monkeypatch, {name: value.format(host=host) for name, value in env.items()})
    res = _failing_run(clean_env, [f"{host}/msg/app:1"], capfd, *flags)
    (line,) = _failure_lines(res.err)
    assert "401 Unauthorized" in line
    assert expected.format(host=host) in line, line
    assert WRONG not in res.err + res.out
    tally("refusals that say which credentials were sent")


def test_a_refusal_names_the_docker_config_file(
    basic_registry: Registry, clean_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    host = basic_registry.host
    seed_tags(basic_registry, "msg/app", ["1"])
    entry = basic_auth_entry("tester", WRONG)
    raw = entry["auth"]
    config = write_docker_config(clean_env / "no-docker-config", {"auths": {host: entry}})
    res = _failing_run(clean_env, [f"{host}/msg/app:1"], capfd)
    (line,) = _failure_lines(res.err)
    assert f"(sent username 'tester' and a password from Docker config {config})" in line, line
    assert WRONG not in res.err and raw not in res.err


def test_a_refusal_names_the_credential_helper(
    basic_registry: Registry,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    host = basic_registry.host
    seed_tags(basic_registry, "msg/app", ["1"])
    install_credential_helper(
        monkeypatch,
        clean_env,
        "wrongpw",
        f'#!/bin/sh\ncat >/dev/null\necho \'{{"Username":"tester","Secret":"{WRONG}"}}\'\n',
    )
    write_docker_config(clean_env / "no-docker-config", {"credHelpers": {host: "wrongpw"}})
    res = _failing_run(clean_env, [f"{host}/msg/app:1"], capfd)
    (line,) = _failure_lines(res.err)
    assert "from credential helper docker-credential-wrongpw" in line, line
    assert WRONG not in res.err


def test_a_misspelt_credential_variable_is_one_error_before_any_request(
    basic_registry: Registry,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    host = basic_registry.host
    seed_tags(basic_registry, "msg/app", ["1", "2", "3"])
    monkeypatch.setenv("LOCKRESOLVE_REGISTRY_HOSTNAME", host)
    monkeypatch.setenv("LOCKRESOLVE_REGISTRY_USER", "tester")  # USERNAME, misspelt
    monkeypatch.setenv("LOCKRESOLVE_REGISTRY_PASSWORD", basic_registry.password or "")
    mark = basic_registry.mark()
    res = _failing_run(clean_env, [f"{host}/msg/app:{t}" for t in ("1", "2", "3")], capfd)
    assert res.err_lines == [
        "lockresolve: error: Unknown env variable 'LOCKRESOLVE_REGISTRY_USER' (expected "
        "LOCKRESOLVE_REGISTRY_{HOSTNAME,USERNAME,PASSWORD,IDENTITY_TOKEN,REGISTRY_TOKEN} "
        "with an optional _<suffix>)"
    ]
    assert basic_registry.count_requests(since=mark) == 0
    tally("misspelt credential variables refused at start-up")


def test_an_orphaned_group_is_one_warning_at_start_up(
    basic_registry: Registry,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    host = basic_registry.host
    seed_tags(basic_registry, "msg/app", ["1", "2", "3"])
    monkeypatch.setenv("KBLD_REGISTRY_USERNAME_PROD", "tester")  # no HOSTNAME_PROD
    monkeypatch.setenv("KBLD_REGISTRY_PASSWORD_PROD", WRONG)
    res = _failing_run(clean_env, [f"{host}/msg/app:{t}" for t in ("1", "2", "3")], capfd)
    warnings = [line for line in res.err_lines if "warning" in line]
    assert warnings == [
        "lockresolve: warning: ignoring KBLD_REGISTRY_PASSWORD_PROD, KBLD_REGISTRY_USERNAME_PROD: "
        "no matching *_HOSTNAME variable says which registry they are for"
    ]
    assert res.err_lines[0] == warnings[0]  # before any request was made
    assert len(_failure_lines(res.err)) == 3
    assert WRONG not in res.err
    tally("orphaned credential groups warned about once")


def test_a_token_that_cannot_be_a_header_is_never_printed(
    token_registry: Registry, clean_env: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A Docker config `registrytoken` written with a trailing newline (echo > file): the
    # HTTP library refuses the header 'Bearer TOKEN\r\n' and its message quotes the value.
    # Before: '... LocalProtocolError: Illegal header value b'Bearer tok-SECRET-4711\r\n''
    # on stderr. Now the refusal names no value, and the run still fails with one line.
    host = token_registry.host
    seed_tags(token_registry, "msg/tok", ["1"])
    auths = {host: {"registrytoken": "tok-SECRET-4711\r\n"}}
    write_docker_config(clean_env / "no-docker-config", {"auths": auths})
    res = _failing_run(clean_env, [f"{host}/msg/tok:1"], capfd)
    (line,) = _failure_lines(res.err)
    assert "LocalProtocolError (a header value the HTTP library refuses" in line, line
    assert "SECRET" not in res.err and "SECRET" not in res.out
