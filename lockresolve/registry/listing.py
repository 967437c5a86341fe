"""Paged listings for :class:`~lockresolve.registry.client.RegistryClient`: a repository's
tags and a digest's OCI 1.1 referrers, each following ``Link`` pages within fixed bounds."""

from __future__ import annotations

import httpx

from lockresolve.errors import ProtocolError
from lockresolve.registry.errormap import (
    TooLarge,
    error_from_response,
    read_capped,
    served_by,
    transport_error,
)
from lockresolve.registry.protocol import (
    MAX_MANIFEST_BYTES,
    Referrer,
    parse_link_next,
    parse_referrers,
    parse_tag_list,
    redact_url,
    referrers_path,
    repository_scope,
    tags_path,
)
from lockresolve.registry.sender import Sender

__all__ = ["list_referrers", "list_tags"]

_MAX_TAG_PAGES = 10_000
# All pages of one tag listing together (1,000,000 tags of 60 characters fit).
_MAX_TAG_BYTES = 64 * 1024 * 1024
_MAX_REFERRER_PAGES = 100


async def _get_page(
    sender: Sender,
    registry: str,
    repository: str,
    target: str,
    subject: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await sender.send(
        "GET",
        registry,
        target,
        scopes=[repository_scope(repository, "pull")],
        subject=subject,
        headers=headers,
        # A Link to another host (or scheme) is followed without credentials.
        auth=not target.startswith(("http://", "https://")) or sender.same_origin(registry, target),
        stream=True,
    )


async def _read_page(
    sender: Sender, response: httpx.Response, cap: int, limit: int, what: str, subject: str
) -> bytes:
    """The page's body, at most ``cap`` bytes (``limit``: the bound the error names)."""
    url = redact_url(str(response.request.url))
    try:
        return await read_capped(response, cap)
    except TooLarge:
        raise ProtocolError(
            f"{what} larger than {limit} bytes refused", subject=subject, method="GET", url=url
        ) from None
    except httpx.HTTPError as exc:
        raise transport_error(exc, "GET", url, subject) from None
    finally:
        await response.aclose()


async def list_tags(sender: Sender, registry: str, repository: str) -> list[str]:
    """Every tag of a repository, following ``Link`` pagination (bounded)."""
    subject = f"{registry}/{repository}"
    target: str | None = tags_path(repository) + "?n=1000"
    seen: set[str] = set()
    tags: list[str] = []
    budget = _MAX_TAG_BYTES  # all pages together: memory stays bounded
    for _ in range(_MAX_TAG_PAGES):
        if target is None:
            return tags
        if target in seen:
            raise ProtocolError("tag listing pagination loops", subject=subject, method="GET")
        response = await _get_page(sender, registry, repository, target, subject)
        if response.status_code != 200:
            raise await error_from_response(response, subject)
        url = redact_url(str(response.request.url))
        content = await _read_page(sender, response, budget, _MAX_TAG_BYTES, "tag listing", subject)
        budget -= len(content)
        try:
            tags.extend(parse_tag_list(content))
        except ValueError as exc:
            raise ProtocolError(
                f"unreadable tag list: {exc}", subject=subject, method="GET", url=url
            ) from None
        registry = served_by(response, registry)
        seen.add(str(response.request.url))
        target = parse_link_next(response.headers.get("link"), str(response.request.url))
    raise ProtocolError(
        f"tag listing has more than {_MAX_TAG_PAGES} pages", subject=subject, method="GET"
    )


async def list_referrers(
    sender: Sender, registry: str, repository: str, digest: str, artifact_type: str | None = None
) -> tuple[Referrer, ...] | None:
    """The OCI 1.1 referrers of ``digest`` (``GET /v2/<name>/referrers/<digest>``), following
    ``Link`` pages (bounded); ``None`` when the registry does not offer the API (a 404,
    405 or 501, or an answer that is not an OCI image index). Other errors raise; an
    index with malformed entries is a :class:`ProtocolError`."""
    subject = f"{registry}/{repository}@{digest}"
    target: str | None = referrers_path(repository, digest, artifact_type)
    seen: set[str] = set()
    found: list[Referrer] = []
    for _ in range(_MAX_REFERRER_PAGES):
        if target is None:
            return tuple(found)
        if target in seen:
            raise ProtocolError("referrers pagination loops", subject=subject, method="GET")
        response = await _get_page(
            sender,
            registry,
            repository,
            target,
            subject,
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        )
        url = redact_url(str(response.request.url))
        if response.status_code in (404, 405, 501) and not found:
            await response.aclose()
            return None
        if response.status_code != 200:
            raise await error_from_response(response, subject)
        data = await _read_page(
            sender, response, MAX_MANIFEST_BYTES, MAX_MANIFEST_BYTES, "referrers answer", subject
        )
        try:
            page = parse_referrers(data)
        except ValueError as exc:
            raise ProtocolError(
                f"referrers index is malformed: {exc}", subject=subject, method="GET", url=url
            ) from None
        if page is None:
            if found:
                raise ProtocolError(
                    "a referrers page is not an OCI image index",
                    subject=subject,
                    method="GET",
                    url=url,
                )
            return None
        found.extend(page)
        registry = served_by(response, registry)
        seen.add(str(response.request.url))
        target = parse_link_next(response.headers.get("link"), str(response.request.url))
    raise ProtocolError(
        f"referrers listing has more than {_MAX_REFERRER_PAGES} pages",
        subject=subject,
        method="GET",
    )
