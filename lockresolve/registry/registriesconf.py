"""podman/CRI-O ``registries.conf`` version 2 (``--registries-conf FILE``), as containers/image reads it.

Each ``[[registry]]`` table covers the image names that start with its ``prefix``
(``host[:port][/namespace…]``, or ``*.domain``; ``location`` when absent); the
longest match is used. Its ``[[registry.mirror]]`` entries are tried in order,
then ``location`` (the prefix itself when absent), with the matched prefix
replaced by each ``location``. ``insecure`` allows plain http and unverified
TLS; ``blocked`` forbids contacting that location (its mirrors are still used);
``mirror-by-digest-only`` (or a mirror's ``pull-from-mirror = "digest-only"``)
keeps tags away from the mirrors, ``pull-from-mirror = "tag-only"`` digests.
Version 1 tables (``[registries.search]`` …) and the search and alias settings
are not about mirrors and are ignored.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from lockresolve.errors import InputError
from lockresolve.registry.mirrors import Endpoint, MirrorRule, canonical_registry, mask_userinfo
from lockresolve.registry.transport import HostTLS

__all__ = ["load_registries_conf"]

_REGISTRY_KEYS = frozenset(
    {"prefix", "location", "insecure", "blocked", "mirror", "mirror-by-digest-only"}
)
_MIRROR_KEYS = frozenset({"location", "insecure", "pull-from-mirror"})
_PULL_FROM = frozenset({"all", "digest-only", "tag-only"})
_LOCATION_RE = re.compile(r"^[A-Za-z0-9.\[\]:-]+(?:/[a-z0-9._/-]+)?$")


def load_registries_conf(path: str | Path) -> tuple[MirrorRule, ...]:
    """The ``[[registry]]`` tables of ``path``; a bad file raises :class:`InputError` naming it."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"TOML error: {exc}", source=source) from None
    tables = data.get("registry", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise InputError("registry must be an array of [[registry]] tables", source=source)
    rules: list[MirrorRule] = []
    seen: set[str] = set()
    for index, table in enumerate(tables, start=1):
        rule = _rule(table, source, index)
        key = f"{rule.upstream}/{rule.path}"
        if key in seen:
            raise InputError(
                f"[[registry]] #{index}: prefix {_shown(rule)!r} is defined twice", source=source
            )
        seen.add(key)
        rules.append(rule)
    return tuple(rules)


def _shown(rule: MirrorRule) -> str:
    return f"{rule.upstream}/{rule.path}" if rule.path else rule.upstream


def _rule(table: dict[str, Any], source: str, index: int) -> MirrorRule:
    where = f"[[registry]] #{index}"
    for key in table:
        if key not in _REGISTRY_KEYS:
            raise InputError(f"{where}: unknown key {key!r}", source=source)
    location = _string(table, "location", source, where)
    prefix = _string(table, "prefix", source, where) or location
    if not prefix:
        raise InputError(f"{where}: needs a prefix or a location", source=source)
    where = f"[[registry]] prefix={prefix!r}"
    prefix_host, _, prefix_path = _strip_reference(prefix).partition("/")
    if not prefix_host or not (
        _LOCATION_RE.match(prefix_host) or re.match(r"^\*\.[A-Za-z0-9.-]+$", prefix_host)
    ):
        raise InputError(f"{where}: {prefix!r} is not a registry prefix", source=source)
    insecure = _bool(table, "insecure", source, where)
    blocked = _bool(table, "blocked", source, where)
    digest_only = _bool(table, "mirror-by-digest-only", source, where)
    mirrors = table.get("mirror", [])
    if not isinstance(mirrors, list) or not all(isinstance(m, dict) for m in mirrors):
        raise InputError(f"{where}: mirror must be an array of [[registry.mirror]]", source=source)
    endpoints: list[Endpoint] = []
    for number, mirror in enumerate(mirrors, start=1):
        mwhere = f"{where} [[registry.mirror]] #{number}"
        for key in mirror:
            if key not in _MIRROR_KEYS:
                raise InputError(f"{mwhere}: unknown key {key!r}", source=source)
        mlocation = _string(mirror, "location", source, mwhere)
        if not mlocation:
            raise InputError(f"{mwhere}: needs a location", source=source)
        pull_from = _string(mirror, "pull-from-mirror", source, mwhere) or "all"
        if pull_from not in _PULL_FROM:
            raise InputError(
                f"{mwhere}: pull-from-mirror must be all, digest-only or tag-only", source=source
            )
        if digest_only:
            pull_from = "digest-only"
        endpoints.append(
            _endpoint(
                mlocation,
                _bool(mirror, "insecure", source, mwhere),
                source,
                mwhere,
                resolve=pull_from != "digest-only",
                pull=pull_from != "tag-only",
            )
        )
    if location and location != prefix:
        endpoints.append(_endpoint(location, insecure, source, where, primary=True))
    elif insecure and "*" not in prefix_host:
        endpoints.append(_endpoint(prefix, insecure, source, where, primary=True))
    return MirrorRule(
        upstream=canonical_registry(prefix_host),
        path=prefix_path.strip("/"),
        endpoints=tuple(endpoints),
        blocked=blocked,
        origin=f"{source} {where}",
    )


def _strip_reference(prefix: str) -> str:
    """A prefix may name one image with a tag or digest; only its repository part routes."""
    head = prefix.partition("@")[0]
    host, slash, rest = head.partition("/")
    if slash and ":" in rest.rsplit("/", 1)[-1]:
        rest = rest.rsplit(":", 1)[0]
    return f"{host}/{rest}" if slash else host


def _endpoint(
    location: str,
    insecure: bool,
    source: str,
    where: str,
    *,
    resolve: bool = True,
    pull: bool = True,
    primary: bool = False,
) -> Endpoint:
    if "://" in location or not _LOCATION_RE.match(location):
        shown = mask_userinfo(location)
        raise InputError(f"{where}: location {shown!r} is not host[:port][/path]", source=source)
    host, _, path = location.partition("/")
    tls = (
        HostTLS(skip_verify=True, plain_http=True, origin=f"{source} {where}") if insecure else None
    )
    return Endpoint(
        host=host,
        prefix=path.strip("/"),
        resolve=resolve,
        pull=pull,
        primary=primary,
        tls=tls,
        origin=f"{source} {where}",
    )


def _string(table: dict[str, Any], key: str, source: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise InputError(f"{where}: {key} must be a string", source=source)
    return value


def _bool(table: dict[str, Any], key: str, source: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"{where}: {key} must be true or false", source=source)
    return value
