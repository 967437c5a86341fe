"""Plain functions for the distribution protocol: build URLs, parse headers and bodies.

Nothing here does I/O; the client in :mod:`lockresolve.registry.client` calls
these and keeps every network call in one place.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

from lockresolve.errors import RegistryErrorDetail

__all__ = [
    "Challenge",
    "is_sha256_digest",
    "load_json",
    "parse_error_body",
    "parse_link_next",
    "parse_referrers",
    "parse_retry_after",
    "parse_tag_list",
    "parse_www_authenticate",
    "redact_url",
    "referrers_path",
    "repository_scope",
]

# A manifest larger than this is refused (containerd and ggcr use 4 MiB too).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` challenge: ``Bearer`` or ``Basic`` and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> tuple[str, ...]:
        scope = self.params.get("scope", "")
        return tuple(s for s in scope.split(" ") if s)


_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_www_authenticate(header: str) -> Challenge | None:
    """Parse the first challenge of a ``WWW-Authenticate`` header.

    >>> parse_www_authenticate('Bearer realm="https://a/token",service="reg"').service
    'reg'
    """
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else (m.group(3) or "")
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return Challenge(scheme=scheme.lower(), params=params)


def repository_scope(repository: str, actions: str) -> str:
    """The token scope for a repository, e.g. ``repository:library/nginx:pull``."""
    return f"repository:{repository}:{actions}"


_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")


def is_sha256_digest(value: str) -> bool:
    """Whether ``value`` is a well-formed ``sha256:`` digest (64 lower-case hex digits)."""
    return _SHA256.fullmatch(value) is not None


def load_json(content: bytes | str) -> object:
    """``json.loads`` for bodies from the network: any failure is a :class:`ValueError`.

    Nesting deep enough to exhaust the interpreter's stack (``[[[[…``, a few
    kilobytes) raises ``RecursionError`` in ``json``; that is unreadable JSON too.
    """
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def parse_tag_list(content: bytes) -> list[str]:
    """The ``tags`` of one tag-list page; :class:`ValueError` when it is not a list of strings.

    ``"tags": null`` (an empty repository, as distribution answers) is no tags.
    """
    data = load_json(content)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    tags = data.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise ValueError("'tags' is not a list")
    if not all(isinstance(t, str) for t in tags):
        raise ValueError("'tags' holds a value that is not a string")
    return tags


def parse_error_body(content: bytes) -> list[RegistryErrorDetail]:
    """The registry's ``{"errors": [{"code", "message", "detail"}]}`` body, best effort."""
    try:
        data = load_json(content)
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    details: list[RegistryErrorDetail] = []
    for item in errors[:20]:
        if not isinstance(item, dict):
            continue
        detail = item.get("detail")
        detail_text: str | None
        if detail is None or detail == {} or detail == []:
            detail_text = None
        elif isinstance(detail, str):
            detail_text = detail
        else:
            detail_text = json.dumps(detail, sort_keys=True)
        details.append(
            RegistryErrorDetail(
                code=str(item.get("code", "UNKNOWN")),
                message=str(item.get("message", "")),
                detail=detail_text[:500] if detail_text else None,
            )
        )
    return details


_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


def parse_link_next(header: str | None, base_url: str) -> str | None:
    """The absolute URL of the ``rel="next"`` page of a ``Link`` header, if any."""
    if not header:
        return None
    m = _LINK.search(header)
    if not m:
        return None
    return str(urljoin(base_url, m.group(1)))


def same_origin(a: str, b: str) -> bool:
    """Whether two absolute URLs have the same scheme, host and port (default ports filled in).

    Credentials go only to the origin they were meant for: an https to http
    redirect, or another host, gets none.
    """
    sa, sb = urlsplit(a), urlsplit(b)
    try:
        pa = sa.port or _DEFAULT_PORTS.get(sa.scheme.lower())
        pb = sb.port or _DEFAULT_PORTS.get(sb.scheme.lower())
    except ValueError:
        return False
    return (
        sa.scheme.lower() == sb.scheme.lower()
        and (sa.hostname or "") == (sb.hostname or "")
        and pa == pb
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def redact_url(url: str) -> str:
    """A URL safe to print: userinfo removed and secret-looking query values masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        masked = []
        for item in query.split("&"):
            key, sep, _value = item.partition("=")
            if key.lower() in {"token", "access_token", "password", "refresh_token", "secret"}:
                masked.append(f"{key}{sep}REDACTED")
            else:
                masked.append(item)
        query = "&".join(masked)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def manifest_path(repository: str, reference: str) -> str:
    return f"/v2/{repository}/manifests/{quote(reference, safe=':')}"


def blob_path(repository: str, digest: str) -> str:
    return f"/v2/{repository}/blobs/{digest}"


def upload_path(repository: str) -> str:
    return f"/v2/{repository}/blobs/uploads/"


def tags_path(repository: str) -> str:
    return f"/v2/{repository}/tags/list"


OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def referrers_path(repository: str, digest: str, artifact_type: str | None = None) -> str:
    """The OCI 1.1 referrers API: ``/v2/<name>/referrers/<digest>[?artifactType=...]``."""
    path = f"/v2/{repository}/referrers/{digest}"
    if artifact_type:
        path += "?" + urlencode({"artifactType": artifact_type})
    return path


@dataclass(frozen=True)
class Referrer:
    """One ``manifests`` entry of a referrers answer: a manifest whose subject is the digest."""

    digest: str
    media_type: str
    size: int
    artifact_type: str = ""


def parse_referrers(data: bytes) -> tuple[Referrer, ...] | None:
    """The referrers of a referrers API answer, or ``None`` when it is not an OCI image index
    (the registry does not offer the API). An index whose entries are malformed (not an
    object, no sha256 digest, a size that is not a non-negative integer, a mediaType or
    artifactType that is not a string) raises :class:`ValueError` naming the entry."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("mediaType") != OCI_INDEX_MEDIA_TYPE:
        return None
    items = body.get("manifests")
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ValueError("manifests is not an array")
    out: list[Referrer] = []
    for i, item in enumerate(items):
        where = f"manifests[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} is not an object")
        digest = item.get("digest")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ValueError(f"{where} has no valid sha256 digest: {str(digest)[:80]!r}")
        size = item.get("size", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"{where} has an invalid size")
        media_type = item.get("mediaType", "")
        artifact_type = item.get("artifactType", "")
        if not isinstance(media_type, str) or not isinstance(artifact_type, str):
            raise ValueError(f"{where} has a mediaType or artifactType that is not a string")
        out.append(Referrer(digest, media_type, size, artifact_type))
    return tuple(out)
