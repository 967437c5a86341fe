"""The ``*_REGISTRY_*`` environment groups, read and matched as kbld and imgpkg read them.

``LOCKRESOLVE_REGISTRY_*``, then ``KBLD_REGISTRY_*``, then ``IMGPKG_REGISTRY_*``: each
a set of groups ``{HOSTNAME, USERNAME, PASSWORD, IDENTITY_TOKEN, REGISTRY_TOKEN}[_<suffix>]``.
HOSTNAME is matched as imgpkg's env keychain does (``pkg/imgpkg/registry/auth/
env_keychain.go`` and ``credentialprovider/keyring.go``); see
:mod:`lockresolve.registry.credentials` for where this source stands in the order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from lockresolve.errors import CredentialError
from lockresolve.registry.credentials import Credential
from lockresolve.registry.dockerconfig import _canonical_host_in

__all__ = [
    "ENV_PREFIXES",
    "EnvEntry",
    "check_environment",
    "env_groups",
    "orphan_warnings",
    "urls_match",
]

ENV_PREFIXES: Final = ("LOCKRESOLVE_REGISTRY_", "KBLD_REGISTRY_", "IMGPKG_REGISTRY_")
_ENV_KEYS: Final = ("HOSTNAME", "USERNAME", "PASSWORD", "IDENTITY_TOKEN", "REGISTRY_TOKEN")
# imgpkg reads this one for its Azure keychain; its env keychain skips it.
# LOCKRESOLVE_REGISTRY_MIRRORS is the mirrors setting (issue 16), not a credential group.
_ENV_IGNORED: Final = frozenset({"IMGPKG_REGISTRY_AZURE_CR_CONFIG", "LOCKRESOLVE_REGISTRY_MIRRORS"})


@dataclass(frozen=True)
class EnvEntry:
    variable: str  # the HOSTNAME variable, for messages
    url: str  # host[:port][/path], as imgpkg keys it
    credential: Credential


def env_groups(
    env: Mapping[str, str],
) -> tuple[tuple[EnvEntry, ...], CredentialError | None, tuple[str, ...]]:
    """The env entries, the first error, and the variables of groups without a HOSTNAME."""
    entries: list[EnvEntry] = []
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
        found: list[EnvEntry] = []
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
                EnvEntry(
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
    _entries, error, orphans = env_groups(env)
    if error is not None:
        raise error
    return orphan_warnings(orphans)


def orphan_warnings(orphans: tuple[str, ...]) -> tuple[str, ...]:
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


def urls_match(glob: str, target: str) -> bool:
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
