"""Reading an ``-f`` URL: streamed, and refused (never cut) above a size limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockresolve.errors import InputError
from lockresolve.resolve.sources import SourceSpec

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_URL_BYTES", "read_url"]

#: the most an ``-f`` URL may hold; a larger one is an error, not a truncated input
MAX_URL_BYTES = 64 * 1024 * 1024


async def read_url(http: httpx.AsyncClient, spec: SourceSpec, limit: int = MAX_URL_BYTES) -> bytes:
    """The body of ``spec``'s URL (redirects followed); :class:`InputError` naming it otherwise."""
    import httpx

    from lockresolve.registry.errormap import TooLarge, read_capped

    too_big = InputError(
        f"larger than {limit // (1024 * 1024)} MiB, refused (not read in part)", source=spec.name
    )
    try:
        async with http.stream("GET", spec.location, follow_redirects=True) as response:
            if not 200 <= response.status_code < 300:
                raise InputError(
                    f"fetching failed: {response.status_code} {response.reason_phrase}",
                    source=spec.name,
                )
            try:
                return await read_capped(response, limit)
            except TooLarge:
                raise too_big from None
    except httpx.HTTPError as exc:
        raise InputError(f"fetching failed: {type(exc).__name__}", source=spec.name) from None
