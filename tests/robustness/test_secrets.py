"""No credential or token in any output: representative commands against a Basic-auth and a
token-auth registry, with right and wrong credentials given every way lockresolve takes
them (flags, LOCKRESOLVE_* and LOCKRESOLVE_REGISTRY_* variables, a Docker config file, a
credential helper that works and ones that fail), all with ``-v``. Every byte written to
stdout and stderr and every log record is searched for the known secrets: the passwords,
their Basic ``user:password`` base64 forms, the bearer tokens the token server issued,
and the tokens given on the command line."""

from __future__ import annotations

import base64
import logging
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.robustness.helpers import (
    cli_command,
    run_cli,
    seed_tags,
    subprocess_env,
    tally,
    write_bundle_tree,
)
from tests.support.registry import Registry, RegistryOptions

RegistryFactory = Callable[..., Registry]

USER = "robot-user"
PASSWORD = "Pw-7c1f0e93b2-basic"
TOKEN_PASSWORD = "Pw-58aa41d7c6-token"
WRONG = "Pw-wrong-0d9e2b7f11"
FAKE_BEARER = "bearer-given-on-the-command-line-5f0c2a9e"
FAKE_IDENTITY = "identity-token-from-the-environment-c3b18e"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Transcript:
    """Everything the runs printed or logged, and the secrets that must not be in it."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.secrets: set[str] = {PASSWORD, TOKEN_PASSWORD, WRONG, FAKE_BEARER, FAKE_IDENTITY}
        for user in (USER, "wrong-user"):
            for password in (PASSWORD, TOKEN_PASSWORD, WRONG):
                self.secrets.add(b64(f"{user}:{password}"))
        self.issued: list[str] = []
        self.commands = 0

    def add(self, *texts: str) -> None:
        self.chunks.extend(texts)

    def check(self) -> None:
        everything = "\n".join(self.chunks)
        secrets = set(self.secrets)
        for token in self.issued:
            secrets.add(token)
            secrets.add(token.rsplit(".", 1)[-1])  # the signature alone
        leaked = sorted(s for s in secrets if s in everything)
        assert leaked == [], f"secrets in the output: {leaked}"
        tally("secret-scan: commands run", self.commands)
        tally("secret-scan: bytes of output searched", len(everything))
        tally("secret-scan: distinct secrets searched for", len(secrets))
        tally("secret-scan: bearer tokens issued during the runs", len(self.issued))


@pytest.fixture
def transcript(caplog: pytest.LogCaptureFixture) -> Iterator[Transcript]:
    caplog.set_level(logging.DEBUG, logger="lockresolve")
    t = Transcript()
    yield t
    t.add(caplog.text)
    t.add(*(r.getMessage() for r in caplog.records))
    t.check()


def helper_dir(tmp_path: Path, scripts: dict[str, str]) -> Path:
    d = tmp_path / "helpers"
    d.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = d / f"docker-credential-{name}"
        path.write_text("#!/bin/sh\ncat > /dev/null\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return d


def docker_config(tmp_path: Path, name: str, content: str) -> Path:
    d = tmp_path / "docker" / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(content)
    return d


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith(("LOCKRESOLVE_", "KBLD_", "IMGPKG_", "DOCKER_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def _scenario(
    reg: Registry,
    password: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    env: pytest.MonkeyPatch,
    transcript: Transcript,
    *,
    as_process: bool,
) -> None:
    host = reg.host
    bundle = f"{host}/robust/secret/bundle:1"
    src = write_bundle_tree(tmp_path / "src")
    seed_tags(reg, "robust/secret/app", ["1"])
    (tmp_path / "in.yml").write_text(f"kind: Pod\nimage: {host}/robust/secret/app:1\n")
    flags = ["--registry-username", USER, "--registry-password", password]
    wrong = ["--registry-username", USER, "--registry-password", WRONG]

    def run(args: list[str], expect: int, **set_env: str) -> None:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in set_env.items():
                mp.setenv(key, value)
            res = run_cli([*args, "-v", "--registry-retry-count", "0"], capfd)
        transcript.add(res.out, res.err)
        transcript.commands += 1
        assert res.code == expect, (args, res.err)

    # Right credentials, every way they can be given.
    run(["push", "-b", bundle, "-f", str(src), *flags], 0)
    run(
        ["-f", str(tmp_path / "in.yml")],
        0,
        LOCKRESOLVE_REGISTRY_HOSTNAME=host,
        LOCKRESOLVE_REGISTRY_USERNAME=USER,
        LOCKRESOLVE_REGISTRY_PASSWORD=password,
    )
    run(
        ["-f", str(tmp_path / "in.yml")],
        0,
        KBLD_REGISTRY_HOSTNAME_0=host,
        KBLD_REGISTRY_USERNAME_0=USER,
        KBLD_REGISTRY_PASSWORD_0=password,
    )
    run(
        ["pull", "-b", bundle, "-o", str(tmp_path / "pulled")],
        0,
        DOCKER_CONFIG=str(reg.write_docker_config(tmp_path / "docker" / "plain").parent),
    )
    run(
        ["copy", "-b", bundle, "--to-repo", f"{host}/robust/secret/copy"],
        0,
        LOCKRESOLVE_USERNAME=USER,
        LOCKRESOLVE_PASSWORD=password,
    )
    run(["copy", "-b", bundle, "--to-tar", str(tmp_path / "b.tar"), *flags], 0)
    run(["tag", "ls", "-i", f"{host}/robust/secret/app", "--digests", *flags], 0)
    run(["tag", "resolve", "-i", f"{host}/robust/secret/app:1", *flags], 0)
    helpers = helper_dir(
        tmp_path,
        {
            "good": f'printf \'{{"Username":"{USER}","Secret":"{password}"}}\'\n',
            "json-fail": f'printf \'{{"Username":"{USER}","Secret":"{password}"}}\'\nexit 1\n',
            "stderr-fail": 'echo "vault sealed: cannot read the credentials" >&2\nexit 3\n',
        },
    )
    path = f"{helpers}:{os.environ.get('PATH', '')}"
    for helper, expect in (("good", 0), ("json-fail", 1), ("stderr-fail", 1)):
        config = docker_config(tmp_path, helper, f'{{"credHelpers": {{"{host}": "{helper}"}}}}')
        run(
            ["pull", "-b", bundle, "-o", str(tmp_path / f"pulled-{helper}")],
            expect,
            DOCKER_CONFIG=str(config),
            PATH=path,
        )

    # Wrong credentials, every way.
    run(["-f", str(tmp_path / "in.yml"), *wrong], 1)
    run(["pull", "-b", bundle, "-o", str(tmp_path / "w1"), *wrong], 1)
    run(["push", "-b", bundle, "-f", str(src), *wrong], 1)
    run(
        ["tag", "ls", "-i", f"{host}/robust/secret/app"],
        1,
        LOCKRESOLVE_REGISTRY_HOSTNAME=host,
        LOCKRESOLVE_REGISTRY_USERNAME=USER,
        LOCKRESOLVE_REGISTRY_PASSWORD=WRONG,
    )
    run(
        ["copy", "-b", bundle, "--to-repo", f"{host}/robust/secret/copy2"],
        1,
        LOCKRESOLVE_USERNAME="wrong-user",
        LOCKRESOLVE_PASSWORD=WRONG,
    )
    auth = b64(f"{USER}:{WRONG}")
    config = docker_config(tmp_path, "wrong", f'{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}')
    run(["pull", "-b", bundle, "-o", str(tmp_path / "w2")], 1, DOCKER_CONFIG=str(config))
    run(["-f", str(tmp_path / "in.yml"), "--registry-token", FAKE_BEARER], 1)
    run(
        ["-f", str(tmp_path / "in.yml")],
        1,
        LOCKRESOLVE_REGISTRY_HOSTNAME=host,
        LOCKRESOLVE_REGISTRY_IDENTITY_TOKEN=FAKE_IDENTITY,
    )
    # An input URL with user information or a token in its query.
    run(["-f", f"http://{USER}:{password}@127.0.0.1:9/in.yml"], 1)
    run(["-f", f"http://127.0.0.1:9/in.yml?token={FAKE_BEARER}"], 1)
    # A misspelt variable is an error naming the variable, never its value.
    run(["-f", str(tmp_path / "in.yml")], 1, LOCKRESOLVE_REGISTRY_PASWORD=password)

    if not as_process:
        return
    # And once as a real process, everything it writes to its file descriptors.
    proc = subprocess.run(
        cli_command("pull", "-b", bundle, "-o", str(tmp_path / "pulled-sub"), "-v"),
        capture_output=True,
        env=subprocess_env(
            tmp_path / "sub",
            {
                "LOCKRESOLVE_REGISTRY_HOSTNAME": host,
                "LOCKRESOLVE_REGISTRY_USERNAME": USER,
                "LOCKRESOLVE_REGISTRY_PASSWORD": password,
            },
        ),
        timeout=60,
        check=False,
    )
    transcript.add(proc.stdout.decode(), proc.stderr.decode())
    transcript.commands += 1
    assert proc.returncode == 0, proc.stderr.decode()
    assert "HEAD" in proc.stderr.decode() or "GET" in proc.stderr.decode()  # -v did log


def test_basic_auth_registry_never_shows_a_secret(
    registry_factory: RegistryFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    clean_env: pytest.MonkeyPatch,
    transcript: Transcript,
) -> None:
    reg = registry_factory(RegistryOptions(auth="basic", username=USER, password=PASSWORD))
    _scenario(reg, PASSWORD, tmp_path, capfd, clean_env, transcript, as_process=False)


def test_token_auth_registry_never_shows_a_secret_or_token(
    registry_factory: RegistryFactory,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    clean_env: pytest.MonkeyPatch,
    transcript: Transcript,
) -> None:
    reg = registry_factory(RegistryOptions(auth="token", username=USER, password=TOKEN_PASSWORD))
    server = reg.token_server
    assert server is not None
    mint = server.mint_token

    def recording_mint(*args: object, **kwargs: object) -> str:
        token = mint(*args, **kwargs)  # type: ignore[arg-type]
        transcript.issued.append(token)
        return token

    clean_env.setattr(server, "mint_token", recording_mint)
    _scenario(reg, TOKEN_PASSWORD, tmp_path, capfd, clean_env, transcript, as_process=True)
    assert len(transcript.issued) >= 5
