"""The two pieces of image-reference parsing the resolver needs without a registry.

* :func:`url_repo`: kbld's *approximate* repository of a reference, used by
  ``imageRepo`` matchers and overrides. It is deliberately not normalised
  (``nginx:1`` has repository ``nginx``, not ``index.docker.io/library/nginx``).
* :func:`normalize_digest_reference`: go-containerregistry's
  ``name.NewDigest(ref).Name()`` (weak validation), which imgpkg applies to
  every ``image`` of an ImagesLock it reads.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["normalize_digest_reference", "url_repo"]

# kbld pkg/kbld/image/matcher.go: \A(.+?)(:[A-Za-z0-9_\-\.]+)?(@.+:.+)?\z
_APPROXIMATE_REF = re.compile(r"(.+?)(:[A-Za-z0-9_\-\.]+)?(@.+:.+)?")

_DEFAULT_REGISTRY = "index.docker.io"
_REPOSITORY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-./")
_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_HEX = frozenset("0123456789abcdef")


def url_repo(url: str) -> tuple[str, bool]:
    """kbld's ``URLRepo``: the part before ``:tag`` / ``@digest``, and whether it matched."""
    m = _APPROXIMATE_REF.fullmatch(url)
    if m is None:
        return url, False
    return m.group(1), True


def _check_registry(name: str) -> None:
    if not name:
        return
    try:
        netloc = urlsplit("//" + name).netloc
    except ValueError:
        netloc = ""
    if netloc != name or "@" in name:
        raise ValueError(f"registries must be valid RFC 3986 URI authorities: {name}")


def _repository_name(base: str) -> str:
    """``name.NewRepository(base).Name()`` with weak validation."""
    if not base:
        raise ValueError("a repository name must be specified")
    registry = ""
    repo = base
    head, sep, rest = base.partition("/")
    if sep and ("." in head or ":" in head):
        registry, repo = head, rest
    if not 2 <= len(repo) <= 255 or any(c not in _REPOSITORY_CHARS for c in repo):
        raise ValueError(
            f"repository can only contain the characters `{''.join(sorted(_REPOSITORY_CHARS))}`: {repo}"
        )
    _check_registry(registry)
    if registry in ("", "docker.io"):
        registry = _DEFAULT_REGISTRY
    if registry == _DEFAULT_REGISTRY and "/" not in repo:
        repo = "library/" + repo
    return f"{registry}/{repo}"


def normalize_digest_reference(ref: str) -> str:
    """``name.NewDigest(ref).Name()``: ``registry/repo@sha256:<hex>``; ValueError if not a digest.

    A tag between the repository and the digest is dropped.
    """
    parts = ref.split("@")
    if len(parts) != 2:
        raise ValueError(
            f"a digest must contain exactly one '@' separator (e.g. registry/repository@digest) saw: {ref}"
        )
    base, dig = parts
    if not dig.startswith("sha256:"):
        raise ValueError(f"unsupported digest algorithm: {dig}")
    hex_part = dig[len("sha256:") :]
    if len(hex_part) != 64 or any(c not in _HEX for c in hex_part):
        raise ValueError(f"invalid checksum digest format: {dig}")
    # name.NewTag(base): a trailing ":<tag>" (not a port) is dropped when valid
    pieces = base.split(":")
    if len(pieces) > 1 and "/" not in pieces[-1]:
        tag = pieces[-1]
        if tag and len(tag) <= 128 and all(c in _TAG_CHARS for c in tag):
            base = ":".join(pieces[:-1])
    return f"{_repository_name(base)}@{dig}"
