"""``--verify-digests``: every digest the run writes or keeps exists in its registry.

A lockresolve extension (kbld #27, #53, #18). Pins from an existing lock, digests
written in the YAML and ``preresolved`` overrides are trusted without a request by
default; with this check each distinct ``repo@sha256:…`` of the results costs one
``HEAD`` (a registry that answers 404 is asked once more, with a GET, for its own
error message). The checks run concurrently, one task each, each catching its own
error, so every missing digest is reported.
"""

from __future__ import annotations

from collections.abc import Mapping

import anyio

from lockresolve.errors import InvalidReferenceError, LockresolveError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from lockresolve.resolve.model import ResolvedImage

__all__ = ["verify_digests"]


async def verify_digests(
    client: RegistryClient, resolved: Mapping[str, ResolvedImage]
) -> dict[str, str]:
    """Reference as written -> why its digest could not be verified (only the failures)."""
    by_url: dict[str, list[str]] = {}
    for ref, image in resolved.items():
        by_url.setdefault(image.url, []).append(ref)
    problems: dict[str, str] = {}

    async def check(url: str) -> None:
        try:
            await client.resolve(Reference.parse(url))
        except (LockresolveError, InvalidReferenceError) as exc:
            reason = f"--verify-digests: {url} is not in its registry: {exc}"
            for ref in by_url[url]:
                problems[ref] = reason

    async with anyio.create_task_group() as tg:
        for url in by_url:
            tg.start_soon(check, url)
    return problems
