"""The keychain: which credential a registry (or one repository in it) gets, and from where.

For each registry the first source with an answer wins: the environment groups
(:mod:`.envcreds`), the command line's credential, then the Docker config
(:mod:`.dockerconfig`) with its credential helpers, run here with a timeout. The
order and what each source means are in :mod:`lockresolve.registry.credentials`.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from lockresolve.errors import CredentialError
from lockresolve.registry.credentials import Credential
from lockresolve.registry.dockerconfig import (
    _DOCKER_HUB,
    _DOCKER_HUB_AUTH_KEY,
    _AuthEntry,
    _canonical_host_in,
    _docker_config_path,
    _DockerConfig,
    _field,
    _hostname_of_key,
    _key_path,
    _load_docker_config,
    _longest_path_key,
)
from lockresolve.registry.envcreds import EnvEntry, env_groups, orphan_warnings, urls_match

__all__ = ["DEFAULT_HELPER_TIMEOUT", "Keychain"]

DEFAULT_HELPER_TIMEOUT: Final = 30.0
#: the most a credential helper may print (stdout and stderr each): an answer is a few
#: hundred bytes; a helper that prints without end is stopped instead of read into memory
MAX_HELPER_OUTPUT: Final = 1024 * 1024

_TOKEN_USERNAME: Final = "<token>"
_NOT_FOUND: Final = "credentials not found"


class Keychain:
    """Answers "which credential for this registry?"; thread-safe, cached per registry.

    Build it with :meth:`from_environment`. :meth:`resolve` raises
    :class:`CredentialError` when a source is broken (an unknown
    ``*_REGISTRY_*`` variable, an unreadable Docker config, a credential helper
    that fails or hangs); messages name the source and the registry, never a
    secret.
    """

    def __init__(
        self,
        *,
        env_entries: tuple[EnvEntry, ...] = (),
        env_error: CredentialError | None = None,
        env_orphans: tuple[str, ...] = (),
        explicit: Credential | None = None,
        docker_config: Path | None = None,
        helper_env: Mapping[str, str] | None = None,
        helper_timeout: float = DEFAULT_HELPER_TIMEOUT,
    ) -> None:
        self._env_entries = env_entries
        self._env_error = env_error
        self._env_orphans = env_orphans
        self._explicit = explicit
        self._docker_config_path = docker_config
        self._docker_config: _DockerConfig | None = None
        self._helper_env = dict(os.environ if helper_env is None else helper_env)
        self._helper_timeout = helper_timeout
        self._cache: dict[tuple[str, str | None], Credential] = {}
        self._lock = threading.Lock()  # guards the dicts and the Docker config load
        self._key_locks: dict[tuple[str, str | None], threading.Lock] = {}
        self._helper_answers: dict[tuple[str, str], Credential | None] = {}

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        explicit: Credential | None = None,
        docker_config_dir: Path | None = None,
        helper_timeout: float = DEFAULT_HELPER_TIMEOUT,
    ) -> Keychain:
        """A keychain over ``env`` (default ``os.environ``), the flags' credential and Docker's config.

        ``explicit`` is what the command line gave: ``Credential()`` for
        ``--registry-anon``, a registry token, or a username and password;
        ``None`` when none was given (then the Docker config is consulted).
        ``docker_config_dir`` replaces ``$DOCKER_CONFIG`` / ``~/.docker``.
        ``env`` is also the environment credential helpers run with (and
        where their ``PATH`` comes from).
        """
        environ: Mapping[str, str] = os.environ if env is None else env
        entries, error, orphans = env_groups(environ)
        return cls(
            env_entries=entries,
            env_error=error,
            env_orphans=orphans,
            explicit=explicit,
            docker_config=_docker_config_path(environ, docker_config_dir),
            helper_env=environ,
            helper_timeout=helper_timeout,
        )

    def check_environment(self) -> tuple[str, ...]:
        """:func:`check_environment` for this keychain's environment."""
        if self._env_error is not None:
            raise self._env_error
        return orphan_warnings(self._env_orphans)

    def resolve(self, registry: str, repository: str | None = None) -> Credential:
        """The credential for ``registry`` (``host[:port]``), optionally for one repository in it.

        A repository matters for environment entries whose HOSTNAME has a path,
        Docker config ``auths`` and ``credHelpers`` keys with a path (the
        longest prefix of the repository wins), and credential helpers, which
        are asked for ``registry/repository`` first, then for the registry.
        The answer's ``source`` says where it came from (or why there was none).
        """
        registry = _canonical_host_in(registry)
        key = (registry, repository)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        # One lookup per key at a time; lookups for other repositories (a helper run
        # each) go on in parallel.
        with key_lock:
            with self._lock:
                cached = self._cache.get(key)
            if cached is None:
                cached = self._resolve(registry, repository)
                with self._lock:
                    self._cache[key] = cached
            return cached

    def _resolve(self, registry: str, repository: str | None) -> Credential:
        if self._env_error is not None:
            raise self._env_error
        target = registry if repository is None else f"{registry}/{repository}"
        for entry in self._env_entries:
            if urls_match(entry.url, target):
                cred = entry.credential
                if cred.is_anonymous:
                    return cred.with_source(f"{cred.source} matched, which holds no secret")
                return cred
        if self._explicit is not None:
            return self._explicit
        if self._docker_config_path is None:
            return self._none_found(target, None)
        with self._lock:
            if self._docker_config is None:
                self._docker_config = _load_docker_config(self._docker_config_path)
            config = self._docker_config
        found = self._from_docker_config(config, registry, repository)
        return self._none_found(target, config.path) if found is None else found

    def _none_found(self, target: str, config: Path | None) -> Credential:
        """The anonymous answer, saying what was looked at (names only)."""
        looked = ["no environment group matched"]
        if self._env_entries:
            hosts = sorted({e.url for e in self._env_entries})
            looked[0] += f" (they name {', '.join(hosts[:5])}{', …' if len(hosts) > 5 else ''})"
        looked.append("no --registry-* flag")
        looked.append(
            f"nothing in Docker config {config}" if config is not None else "no Docker config"
        )
        return Credential.ANONYMOUS.with_source(f"none found for {target}: {'; '.join(looked)}")

    def _from_docker_config(
        self, config: _DockerConfig, registry: str, repository: str | None
    ) -> Credential | None:
        """The Docker config's answer; None when it has nothing for the registry."""
        where = f"Docker config {config.path}"
        # ggcr's default keychain tries "registry/repository" first, then the registry
        # ("https://index.docker.io/v1/" for Docker Hub); keys with a path apply to the
        # repositories under them, the longest first.
        if repository is not None:
            full = f"{registry}/{repository}"
            key = _longest_path_key(config.cred_helpers, registry, repository)
            if key is not None:
                helper = config.cred_helpers[key]
                found = self._run_helper(helper, full, registry)
                if found is None and key != full:
                    found = self._run_helper(helper, key, registry)
                return _overlay(config.auths.get(key), found, helper, where)
            key = _longest_path_key(config.auths, registry, repository)
            if key is not None and not _entry_credential(config.auths[key]).is_anonymous:
                return _entry_credential(config.auths[key]).with_source(f"{where} (auths {key!r})")

        server = _DOCKER_HUB_AUTH_KEY if registry == _DOCKER_HUB else registry
        entry = self._auth_entry(config, server, registry)
        helper = self._helper_for(config, server, registry)
        if helper:
            found = None
            if repository is not None:
                found = self._run_helper(helper, f"{registry}/{repository}", registry)
            if found is None:
                found = self._run_helper(helper, server, registry)
            return _overlay(entry, found, helper, where)
        if entry is None:
            return None
        return _entry_credential(entry).with_source(where)

    @staticmethod
    def _auth_entry(config: _DockerConfig, server: str, registry: str) -> _AuthEntry | None:
        if server in config.auths:
            return config.auths[server]
        for key in sorted(config.auths):
            if _hostname_of_key(key) == registry and _key_path(key) == "":
                return config.auths[key]
        return None

    @staticmethod
    def _helper_for(config: _DockerConfig, server: str, registry: str) -> str:
        if server in config.cred_helpers:
            return config.cred_helpers[server]
        for key in sorted(config.cred_helpers):
            if _hostname_of_key(key) == registry and _key_path(key) == "":
                return config.cred_helpers[key]
        return config.creds_store

    def _run_helper(self, helper: str, server: str, registry: str) -> Credential | None:
        """``docker-credential-<helper> get`` for ``server``, run once per (helper, server)."""
        answer_key = (helper, server)
        with self._lock:
            if answer_key in self._helper_answers:
                return self._helper_answers[answer_key]
        answer = self._call_helper(helper, server, registry)
        with self._lock:
            self._helper_answers[answer_key] = answer
        return answer

    def _call_helper(self, helper: str, server: str, registry: str) -> Credential | None:
        """Run ``docker-credential-<helper> get``; None when it has no credentials."""
        program = f"docker-credential-{helper}"
        where = f"credential helper {program} (for registry {registry})"
        executable = shutil.which(program, path=self._helper_env.get("PATH", os.defpath))
        if executable is None:
            raise CredentialError(f"{where}: not found on PATH")
        try:
            proc = subprocess.Popen(
                [executable, "get"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._helper_env,
                start_new_session=True,
            )
        except OSError as exc:
            raise CredentialError(f"{where}: cannot run: {exc.strerror}") from None
        try:
            out, err = _communicate_capped(proc, server.encode(), self._helper_timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise CredentialError(
                f"{where}: no answer after {self._helper_timeout:g} s, stopped it"
            ) from None
        except _TooMuch:
            _kill_group(proc)
            raise CredentialError(
                f"{where}: answered more than {MAX_HELPER_OUTPUT} bytes, stopped it"
            ) from None
        text = out.decode("utf-8", errors="replace").strip()
        if proc.returncode != 0:
            if _NOT_FOUND in text.lower():
                return None
            said = _safe_excerpt(text) or _safe_excerpt(err.decode("utf-8", errors="replace"))
            raise CredentialError(
                f"{where}: failed with exit status {proc.returncode}"
                + (f": {said}" if said else "")
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise CredentialError(f"{where}: answered something that is not JSON") from None
        if not isinstance(data, dict):
            raise CredentialError(f"{where}: answered JSON that is not an object")
        username = _field(data, "Username")
        secret = _field(data, "Secret")
        if not isinstance(username, str | None) or not isinstance(secret, str | None):
            raise CredentialError(f"{where}: 'Username' and 'Secret' must be strings")
        if username == _TOKEN_USERNAME:
            return Credential(identity_token=secret)
        return Credential(username, secret)


def _entry_credential(entry: _AuthEntry) -> Credential:
    return Credential(entry.username, entry.password, entry.identity_token, entry.registry_token)


def _overlay(
    entry: _AuthEntry | None, found: Credential | None, helper: str, where: str
) -> Credential:
    """The Docker CLI's native store: the helper's answer over the file entry, keeping its registrytoken."""
    registry_token = entry.registry_token if entry is not None else None
    source = f"credential helper docker-credential-{helper} (named in {where})"
    if found is None:
        if registry_token:
            return Credential(registry_token=registry_token, source=where)
        return Credential(source=f"{source}, which has none")
    return Credential(
        found.username,
        found.password,
        found.identity_token,
        registry_token or found.registry_token,
        source=source,
    )


class _TooMuch(Exception):
    """A helper printed more than :data:`MAX_HELPER_OUTPUT` bytes."""


def _communicate_capped(
    proc: subprocess.Popen[bytes], data: bytes, timeout: float
) -> tuple[bytes, bytes]:
    """``proc.communicate(data, timeout)``, reading at most :data:`MAX_HELPER_OUTPUT`
    bytes from each of stdout and stderr (:class:`_TooMuch` past that)."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout
    try:
        proc.stdin.write(data)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the helper did not read its input: its answer still counts
    proc.stdin = None  # done with: communicate() (in _kill_group) must not flush it
    stdout, stderr = bytearray(), bytearray()
    out = {proc.stdout.fileno(): stdout, proc.stderr.fileno(): stderr}
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            sel.register(stream, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buffer = out[key.fd]
                buffer += chunk
                if len(buffer) > MAX_HELPER_OUTPUT:
                    raise _TooMuch
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return bytes(stdout), bytes(stderr)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a helper we started and anything it started (its own session), then reap it."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - not POSIX
            proc.kill()
    except ProcessLookupError:
        pass
    proc.communicate()


def _safe_excerpt(text: str) -> str:
    """A helper's error message, short, and only if it does not look like it carries credentials."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not line or "{" in line or "secret" in line.lower() or "password" in line.lower():
        return ""
    if re.search(r"[A-Za-z0-9+/=_.:-]{20,}", line):
        return ""  # a long unbroken run could be a token or password printed bare
    return line[:200]
