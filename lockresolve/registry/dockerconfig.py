"""The Docker config file: where it is, what its ``auths`` and helper keys say.

Read as go-containerregistry's default keychain and the Docker CLI read it
(the keychain in :mod:`.credentials` decides which entry answers). Keys with a
repository path (``ghcr.io/team-a``) apply to the repositories under it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lockresolve.errors import CredentialError

_DOCKER_HUB: Final = "index.docker.io"
_DOCKER_HUB_ALIASES: Final = frozenset({"index.docker.io", "docker.io", "registry-1.docker.io"})
# The key `docker login` writes for Docker Hub, and ggcr's DefaultAuthKey.
_DOCKER_HUB_AUTH_KEY: Final = "https://index.docker.io/v1/"


def _canonical_host_in(url: str) -> str:
    """Lower-case the host of ``host[:port][/path]`` and fold Docker Hub's aliases."""
    host, slash, path = url.partition("/")
    host = host.lower()
    if host in _DOCKER_HUB_ALIASES:
        host = _DOCKER_HUB
    return host + slash + path


@dataclass(frozen=True)
class _AuthEntry:
    username: str
    password: str
    identity_token: str
    registry_token: str


@dataclass(frozen=True)
class _DockerConfig:
    path: Path
    auths: Mapping[str, _AuthEntry]
    creds_store: str
    cred_helpers: Mapping[str, str]


def _field(obj: Mapping[str, Any], name: str) -> Any:
    """Go's encoding/json field lookup: the exact name, else a case-insensitive match."""
    if name in obj:
        return obj[name]
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    return None


def _load_docker_config(path: Path) -> _DockerConfig:
    def bad(what: str) -> CredentialError:
        return CredentialError(f"cannot use Docker config {path}: {what}")

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return _DockerConfig(path, {}, "", {})
    except OSError as exc:
        raise bad(exc.strerror or type(exc).__name__) from None
    if raw.strip() == b"":
        return _DockerConfig(path, {}, "", {})
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise bad(f"not valid JSON ({reason})") from None
    if not isinstance(data, dict):
        raise bad("the top level is not a JSON object")

    auths_raw = _field(data, "auths")
    auths_raw = {} if auths_raw is None else auths_raw
    if not isinstance(auths_raw, dict):
        raise bad("'auths' is not an object")
    auths: dict[str, _AuthEntry] = {}
    for key, entry in auths_raw.items():
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise bad(f"the 'auths' entry for {key!r} is not an object")
        fields = {
            name: _field(entry, name)
            for name in ("username", "password", "auth", "identitytoken", "registrytoken")
        }
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise bad(f"'{name}' of the 'auths' entry for {key!r} is not a string")
        username = fields["username"] or ""
        password = fields["password"] or ""
        if fields["auth"]:
            decoded = _decode_auth(fields["auth"])
            if decoded is None:
                raise bad(
                    f"the 'auth' value of the 'auths' entry for {key!r} is not base64 'user:password'"
                )
            username, password = decoded
        auths[key] = _AuthEntry(
            username, password, fields["identitytoken"] or "", fields["registrytoken"] or ""
        )

    store = _field(data, "credsStore")
    store = "" if store is None else store
    if not isinstance(store, str):
        raise bad("'credsStore' is not a string")
    helpers = _field(data, "credHelpers")
    helpers = {} if helpers is None else helpers
    if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
        raise bad("'credHelpers' is not an object of strings")
    return _DockerConfig(path, auths, store, helpers)


def _decode_auth(value: str) -> tuple[str, str] | None:
    """The Docker CLI's ``decodeAuth``: base64 ``user:password``; the user must not be empty."""
    try:
        text = base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    username, sep, password = text.decode("utf-8", errors="replace").partition(":")
    if not sep or username == "":
        return None
    return username, password.strip("\x00")


def _hostname_of_key(key: str) -> str:
    """The Docker CLI's ``ConvertToHostname``, plus lower case and Docker Hub's aliases."""
    stripped = key
    for scheme in ("http://", "https://"):
        if stripped.startswith(scheme):
            stripped = stripped[len(scheme) :]
            break
    return _canonical_host_in(stripped.partition("/")[0])


def _key_path(key: str) -> str:
    """The repository path of a Docker config key (``ghcr.io/team-a`` -> ``team-a``).

    A scheme and Docker's API paths (``/v1/``, ``/v2/``, as in
    ``https://index.docker.io/v1/``) are not a repository path.
    """
    for scheme in ("http://", "https://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
            break
    path = key.partition("/")[2].strip("/")
    return "" if path in ("v1", "v2") else path


def _longest_path_key(keys: Mapping[str, Any], registry: str, repository: str) -> str | None:
    """The key with a path that is ``repository`` or a parent of it, the longest; else None."""
    best: str | None = None
    best_len = -1
    for key in keys:
        path = _key_path(key)
        if not path or _hostname_of_key(key) != registry:
            continue
        if (repository == path or repository.startswith(path + "/")) and len(path) > best_len:
            best, best_len = key, len(path)
    return best


def _docker_config_path(env: Mapping[str, str], override: Path | None) -> Path | None:
    """Where ggcr's default keychain reads.

    If ``~/.docker/config.json`` or ``$DOCKER_CONFIG/config.json`` exists, the
    Docker config is ``$DOCKER_CONFIG/config.json`` when that variable is set
    (a missing file then means no credentials), else ``~/.docker/config.json``;
    if neither exists, Podman's ``$XDG_RUNTIME_DIR/containers/auth.json``.
    """
    if override is not None:
        return override / "config.json"
    home = env.get("HOME")
    try:
        home_config: Path | None = (Path(home) if home else Path.home()) / ".docker" / "config.json"
    except RuntimeError:
        home_config = None
    docker_config = env.get("DOCKER_CONFIG")
    env_config = Path(docker_config) / "config.json" if docker_config else None
    if (home_config is not None and home_config.exists()) or (
        env_config is not None and env_config.exists()
    ):
        return env_config if env_config is not None else home_config
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        podman = Path(runtime_dir) / "containers" / "auth.json"
        if podman.exists():
            return podman
    return None
