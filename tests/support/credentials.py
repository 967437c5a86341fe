"""Credentials for CLI tests: a clean environment, Docker config files, credential helpers.

Used by the tests that check which credentials reach the registry and what a refusal
says about them (tests/registry/test_path_credentials.py,
tests/robustness/test_auth_messages.py).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

__all__ = [
    "basic_auth_entry",
    "install_credential_helper",
    "isolate_credentials",
    "set_env",
    "write_docker_config",
    "write_image_inputs",
]


def isolate_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, docker_config: str = "docker"
) -> Path:
    """No credentials from the test machine: no credential variables, an empty HOME, and
    ``DOCKER_CONFIG`` at ``tmp_path / docker_config`` (not created). Returns ``tmp_path``."""
    for name in list(os.environ):
        if name.startswith(("LOCKRESOLVE_", "KBLD_", "IMGPKG_", "DOCKER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / docker_config))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    return tmp_path


def set_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def write_docker_config(docker_config: Path, content: object) -> Path:
    """``content`` as ``docker_config/config.json`` (the folder created); the file's path."""
    config = docker_config / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(content))
    return config


def basic_auth_entry(username: str, password: str) -> dict[str, str]:
    """A Docker config ``auths`` entry: ``{"auth": base64(username:password)}``."""
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def install_credential_helper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, script: str
) -> Path:
    """``docker-credential-<name>`` (the shell ``script``) in ``tmp_path/bin``, put first
    on ``PATH``; the helper's path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text(script)
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return helper


def write_image_inputs(tmp_path: Path, refs: list[str]) -> Path:
    """``tmp_path/in.yml``: one document ``i<n>: {image: <ref>}`` per reference."""
    src = tmp_path / "in.yml"
    src.write_text("".join(f"i{n}: {{image: {ref}}}\n---\n" for n, ref in enumerate(refs)))
    return src
