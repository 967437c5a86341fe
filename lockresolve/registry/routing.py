"""Trying a routed request's hops in order (see :mod:`.mirrors` for how hops are chosen).

The registry client hands :func:`send_routed` the hops of one read request and a
function that sends to one hop (:meth:`.sender.Sender._send_direct`, with its
retries); this module decides, from each answer, whether to move on. All I/O
and error mapping stays in the client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import httpx

from lockresolve.errors import TransportError

if TYPE_CHECKING:  # mirrors.py is imported only by runs that configure mirrors
    from lockresolve.registry.mirrors import Hop

__all__ = ["MOVE_ON_STATUSES", "hop_scopes", "moves_on", "send_routed"]

log = logging.getLogger("lockresolve.http")

#: answers after which the next host is asked (5xx too, see :func:`moves_on`)
MOVE_ON_STATUSES = frozenset({401, 403, 404, 429})


def moves_on(status: int) -> bool:
    """A 404, 401/403 (no usable credentials there), 429 or 5xx: ask the next host."""
    return status in MOVE_ON_STATUSES or status >= 500


def hop_scopes(scopes: Sequence[str], hop: Hop) -> list[str]:
    """The token scopes for a hop: the repository as it is named on that host."""
    out = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        out.append(f"{kind}:{hop.repository}:{actions}" if kind == "repository" and name else scope)
    return out


async def send_routed(
    plan: Sequence[Hop],
    send: Callable[[Hop], Awaitable[httpx.Response]],
    dead: set[str],
) -> httpx.Response:
    """Send to each hop in turn; the first answer that does not move on is the result.

    A hop whose connection fails (after its retries) is added to ``dead``. When
    the last hop fails to connect, an earlier mirror's 404 is the answer (a
    cache whose upstream is down still knows what it does not have); otherwise
    the last hop's answer or error is.
    """
    not_found: httpx.Response | None = None
    try:
        for index, hop in enumerate(plan):
            last = index == len(plan) - 1
            try:
                response = await send(hop)
            except TransportError as exc:
                dead.add(hop.host)
                if last:
                    if not_found is not None:
                        found, not_found = not_found, None
                        return found
                    raise
                log.debug("%s unreachable (%s); trying %s", hop.host, exc, plan[index + 1].host)
                continue
            status = response.status_code
            if last or not moves_on(status):
                return response
            if status == 404 and not_found is None:
                not_found = response
            else:
                await response.aclose()
            log.debug("%s answered %d; trying %s", hop.host, status, plan[index + 1].host)
    finally:
        if not_found is not None:
            await not_found.aclose()
    raise AssertionError("an empty plan")  # the client raises for one before calling
