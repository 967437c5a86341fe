"""Where registry credentials come from, in kbld's and imgpkg's order.

For each registry, the first source that has an answer wins:

1. The environment: ``LOCKRESOLVE_REGISTRY_*``, then ``KBLD_REGISTRY_*``, then
   ``IMGPKG_REGISTRY_*``, each a set of groups ``{HOSTNAME, USERNAME, PASSWORD,
   IDENTITY_TOKEN, REGISTRY_TOKEN}[_<suffix>]`` (no suffix is one group, every
   distinct suffix another). HOSTNAME is matched as imgpkg's env keychain does
   (``pkg/imgpkg/registry/auth/env_keychain.go`` and ``credentialprovider/
   keyring.go``): a scheme and a leading ``/v1/`` or ``/v2/`` are dropped, a
   path makes the entry specific to repositories under it, ``*`` (Go
   ``filepath.Match``) globs one DNS label, ports must be equal, and the
   longest key (in reverse byte order) is tried first. A group whose HOSTNAME
   matches answers even when it holds no secret (anonymous), as in both tools.
   Any other name under these prefixes is an error, as in both tools
   (:func:`check_environment` reports it once at start-up).
2. The explicit credential from the command line (``--registry-username`` /
   ``--registry-password``, ``--registry-token``, ``--registry-anon``): it
   applies to every registry the environment did not name.
3. The Docker config (``$DOCKER_CONFIG/config.json``, else
   ``~/.docker/config.json``, else Podman's ``$XDG_RUNTIME_DIR/containers/
   auth.json``), read as go-containerregistry's default keychain and the
   Docker CLI read it: ``credHelpers`` for the registry, else ``credsStore``,
   else ``auths``. Keys with a repository path apply under that path, the
   longest first, and helpers are asked for ``host/repository`` first.

Additions to what kbld/imgpkg do, none of which change an answer they give:
Docker Hub's names (``docker.io``, ``index.docker.io``, ``registry-1.docker.io``,
``https://index.docker.io/v1/``) are one registry in every source; host names
compare case-insensitively; credential helpers run with a timeout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Final

from lockresolve.errors import CredentialError
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

__all__ = [
    "DEFAULT_HELPER_TIMEOUT",
    "ENV_PREFIXES",
    "Credential",
    "Keychain",
    "check_environment",
]

ENV_PREFIXES: Final = ("LOCKRESOLVE_REGISTRY_", "KBLD_REGISTRY_", "IMGPKG_REGISTRY_")
_ENV_KEYS: Final = ("HOSTNAME", "USERNAME", "PASSWORD", "IDENTITY_TOKEN", "REGISTRY_TOKEN")
# imgpkg reads this one for its Azure keychain; its env keychain skips it.
# LOCKRESOLVE_REGISTRY_MIRRORS is the mirrors setting (issue 16), not a credential group.
_ENV_IGNORED: Final = frozenset({"IMGPKG_REGISTRY_AZURE_CR_CONFIG", "LOCKRESOLVE_REGISTRY_MIRRORS"})

DEFAULT_HELPER_TIMEOUT: Final = 30.0

_TOKEN_USERNAME: Final = "<token>"
_NOT_FOUND: Final = "credentials not found"


@dataclass(frozen=True)
class Credential:
    """What to authenticate with. Every field unset means anonymous.

    ``identity_token`` is an OAuth2 refresh token (Docker's ``identitytoken``),
    exchanged at the token service; ``registry_token`` is a bearer token sent as
    is. Empty strings count as unset; a username without a password gets the
    empty password (Basic ``user:``), as ggcr sends it.

    ``repr`` and ``str`` show the username and which secrets are set, never a
    secret.
    """

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    registry_token: str | None = None
    #: where it came from, for messages ("environment group LOCKRESOLVE_REGISTRY_HOSTNAME_1",
    #: "Docker config /home/u/.docker/config.json", "credential helper docker-credential-x",
    #: a flag); for an anonymous answer, why none was found. Never a secret; not compared.
    source: str = field(default="", compare=False)

    ANONYMOUS: ClassVar[Credential]

    def __post_init__(self) -> None:
        if not self.username and not self.password:
            object.__setattr__(self, "username", None)
            object.__setattr__(self, "password", None)
        else:
            object.__setattr__(self, "username", self.username or "")
            object.__setattr__(self, "password", self.password or "")
        if not self.identity_token:
            object.__setattr__(self, "identity_token", None)
        if not self.registry_token:
            object.__setattr__(self, "registry_token", None)

    @classmethod
    def anonymous(cls) -> Credential:
        return cls.ANONYMOUS

    @property
    def is_anonymous(self) -> bool:
        return self == Credential.ANONYMOUS

    def with_source(self, source: str) -> Credential:
        """The same credential, saying where it came from."""
        return replace(self, source=source)

    def describe(self) -> str:
        """What would be sent and from where, never a secret: for error messages."""
        if self.registry_token:
            what = "a registry token"
        elif self.identity_token:
            what = "an identity token"
        elif self.username is not None:
            what = f"username {self.username!r} and a password"
        else:
            return "no credentials" + (f" ({self.source})" if self.source else "")
        return what + (f" from {self.source}" if self.source else "")

    def __repr__(self) -> str:
        def secret(value: str | None) -> str:
            return "None" if value is None else "'***'"

        return (
            f"Credential(username={self.username!r}, password={secret(self.password)}, "
            f"identity_token={secret(self.identity_token)}, "
            f"registry_token={secret(self.registry_token)})"
        )

    __str__ = __repr__


Credential.ANONYMOUS = Credential()


# -- the environment --------------------------------------------------------------


@dataclass(frozen=True)
class _EnvEntry:
    variable: str  # the HOSTNAME variable, for messages
    url: str  # host[:port][/path], as imgpkg keys it
    credential: Credential


def _env_entries(env: Mapping[str, str]) -> tuple[tuple[_EnvEntry, ...], CredentialError | None]:
    entries, error, _orphans = _env_groups(env)
    return entries, error


def _env_groups(
    env: Mapping[str, str],
) -> tuple[tuple[_EnvEntry, ...], CredentialError | None, tuple[str, ...]]:
    """The env entries, the first error, and the variables of groups without a HOSTNAME."""
    entries: list[_EnvEntry] = []
    orphans: list[str] = []
    for prefix in ENV_PREFIXES:
        groups: dict[str, dict[str, str]] = {}
        for name in sorted(env):
            if not name.startswith(prefix) or name in _ENV_IGNORED:
                continue
            for key in _ENV_KEYS:
                if name == prefix + key:
                    groups.setdefault("", {})[key] = env[name]
                    break
                if name.startswith(prefix + key + "_"):
                    suffix = name[len(prefix + key + "_") :]
                    # A trailing '_' is a group of its own, distinct from none.
                    groups.setdefault("_" + suffix, {})[key] = env[name]
                    break
            else:
                return (
                    (),
                    CredentialError(
                        f"Unknown env variable '{name}' (expected {prefix}"
                        f"{{{','.join(_ENV_KEYS)}}} with an optional _<suffix>)"
                    ),
                    (),
                )
        found: list[_EnvEntry] = []
        for group in sorted(groups):
            values = groups[group]
            variable = f"{prefix}HOSTNAME{group}"
            if "HOSTNAME" not in values:
                # No host: matches nothing, in both tools; said once at start-up.
                orphans.extend(f"{prefix}{key}{group}" for key in sorted(values))
                continue
            try:
                url = _env_url(values["HOSTNAME"], variable, strict=prefix == "KBLD_REGISTRY_")
            except CredentialError as exc:
                return (), exc, ()
            if url == "":
                continue
            found.append(
                _EnvEntry(
                    variable,
                    url,
                    Credential(
                        values.get("USERNAME"),
                        values.get("PASSWORD"),
                        values.get("IDENTITY_TOKEN"),
                        values.get("REGISTRY_TOKEN"),
                        source=f"environment group {variable}",
                    ),
                )
            )
        # imgpkg: reverse order of the key, so quay.io/coreos is tried before quay.io.
        found.sort(key=lambda e: e.url, reverse=True)
        entries.extend(found)
    return tuple(entries), None, tuple(orphans)


def check_environment(env: Mapping[str, str]) -> tuple[str, ...]:
    """The start-up check of the ``*_REGISTRY_*`` variables, done once per run.

    Raises :class:`CredentialError` for what is an error in kbld and imgpkg
    too (an unknown name such as ``LOCKRESOLVE_REGISTRY_USER``, an unusable
    HOSTNAME); returns one warning line for the groups that have no HOSTNAME
    (they are ignored, as in both tools). Names only, never values.
    """
    _entries, error, orphans = _env_groups(env)
    if error is not None:
        raise error
    return _orphan_warnings(orphans)


def _orphan_warnings(orphans: tuple[str, ...]) -> tuple[str, ...]:
    if not orphans:
        return ()
    return (
        f"ignoring {', '.join(orphans)}: no matching *_HOSTNAME variable says which "
        "registry they are for",
    )


def _env_url(value: str, variable: str, *, strict: bool) -> str:
    """imgpkg's HOSTNAME handling: drop the scheme and a ``/v1/`` or ``/v2/`` prefix."""
    if value.strip() == "":
        if strict:  # kbld parses it with name.NewRegistry(..., StrictValidation)
            raise CredentialError(f"{variable} is empty (e.g. gcr.io, index.docker.io)")
        return ""
    raw = value if value.startswith(("https://", "http://")) else "https://" + value
    host, path = _split_url(raw)
    if host is None:
        raise CredentialError(
            f"{variable}: cannot parse registry hostname {value!r} (e.g. gcr.io, index.docker.io)"
        )
    if path.startswith(("/v2/", "/v1/")):
        path = path[3:]
    key = host + path if path not in ("", "/") else host
    return _canonical_host_in(key)


_GO_HOST_PUNCTUATION: Final = frozenset("-_.~!$&'()*+,;=:[]<>\"")


def _split_url(url: str) -> tuple[str | None, str]:
    """(host[:port], path) of ``scheme://authority/path`` as Go's ``url.Parse`` reads it.

    None for the host when Go would refuse it: control characters, a bad
    port, or a character a host may not have. (Python's ``urlsplit`` differs:
    it refuses ``[`` in globs such as ``reg[0-9].example.com``.)
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None, ""
    rest = url.partition("#")[0].partition("?")[0].partition("://")[2]
    authority, slash, path = rest.partition("/")
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0 or not _valid_optional_port(host[end + 1 :]):
            return None, ""
    elif ":" in host and not _valid_optional_port(host[host.rfind(":") :]):
        return None, ""
    for ch in host:
        if ch.isascii() and not ch.isalnum() and ch not in _GO_HOST_PUNCTUATION:
            return None, ""
    return host, slash + path


def _valid_optional_port(colon_port: str) -> bool:
    digits = colon_port[1:]
    return colon_port == "" or (
        colon_port[0] == ":" and (digits == "" or (digits.isascii() and digits.isdigit()))
    )


def _split_host_port(host: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort``, falling back to (host, "") when it fails, as keyring.go does."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0 or not host[end + 1 :].startswith(":"):
            return host, ""
        return host[1:end], host[end + 2 :]
    if host.count(":") != 1:
        return host, ""
    name, _, port = host.partition(":")
    return name, port


def _urls_match(glob: str, target: str) -> bool:
    """imgpkg's ``URLsMatch``: same port, same number of labels, path prefix, per-label glob."""
    g_host, g_path = _split_url("https://" + glob)
    t_host, t_path = _split_url("https://" + target)
    if g_host is None or t_host is None:
        return False
    g_name, g_port = _split_host_port(g_host)
    t_name, t_port = _split_host_port(t_host)
    if g_port != t_port:
        return False
    g_labels, t_labels = g_name.split("."), t_name.split(".")
    if len(g_labels) != len(t_labels):
        return False
    if not t_path.startswith(g_path):
        return False
    return all(_glob(p).fullmatch(t) is not None for p, t in zip(g_labels, t_labels, strict=True))


def _glob(pattern: str) -> re.Pattern[str]:
    """Go ``filepath.Match`` syntax as a regex: ``*``, ``?``, ``[^a-z]``, ``\\`` escapes.

    A malformed pattern matches nothing (Go reports ErrBadPattern, which makes
    imgpkg fail the lookup; a glob that cannot match is the closer harmless reading).
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    try:
        while i < n:
            c = pattern[i]
            if c == "*":
                out.append("[^/]*")
            elif c == "?":
                out.append("[^/]")
            elif c == "\\":
                i += 1
                out.append(re.escape(pattern[i]))
            elif c == "[":
                i += 1
                negate = pattern[i] == "^"
                if negate:
                    i += 1
                items: list[str] = []
                while True:
                    if pattern[i] == "]" and items:
                        break
                    lo = pattern[i]
                    if lo == "\\":
                        i += 1
                        lo = pattern[i]
                    if pattern[i + 1] == "-" and pattern[i + 2] != "]":
                        i += 2
                        hi = pattern[i]
                        if hi == "\\":
                            i += 1
                            hi = pattern[i]
                        if hi < lo:
                            raise IndexError
                        items.append(f"{re.escape(lo)}-{re.escape(hi)}")
                    else:
                        items.append(re.escape(lo))
                    i += 1
                out.append(("[^" if negate else "[") + "".join(items) + "]")
            else:
                out.append(re.escape(c))
            i += 1
    except IndexError:
        return re.compile(r"(?!)")
    return re.compile("".join(out), re.DOTALL)


# -- the keychain --------------------------------------------------------------------


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
        env_entries: tuple[_EnvEntry, ...] = (),
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
        entries, error, orphans = _env_groups(environ)
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
        return _orphan_warnings(self._env_orphans)

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
            if _urls_match(entry.url, target):
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
            out, err = proc.communicate(server.encode(), timeout=self._helper_timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise CredentialError(
                f"{where}: no answer after {self._helper_timeout:g} s, stopped it"
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
