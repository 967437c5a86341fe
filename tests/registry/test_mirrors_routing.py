"""The hop loop alone (:func:`lockresolve.registry.routing.send_routed`), with made-up answers.

The real registries in ``test_mirrors*.py`` produce most of these answers; these cases
pin the order of decisions, including one a real cache rarely shows on demand: the last
host unreachable after a mirror's 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from lockresolve.errors import TransportError
from lockresolve.registry.mirrors import Hop
from lockresolve.registry.routing import hop_scopes, send_routed

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def hop(host: str, repository: str = "lib/app") -> Hop:
    return Hop(host, f"/v2/{repository}/manifests/1", repository, None, True, "test")


def scripted(
    answers: dict[str, int | None], sent: list[str]
) -> Callable[[Hop], Awaitable[httpx.Response]]:
    async def send(h: Hop) -> httpx.Response:
        sent.append(h.host)
        status = answers[h.host]
        if status is None:
            raise TransportError("ConnectError", url=f"http://{h.host}{h.target}")
        return httpx.Response(status, request=httpx.Request("GET", f"http://{h.host}{h.target}"))

    return send


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 503])
async def test_these_answers_move_on(status: int) -> None:
    sent: list[str] = []
    plan = (hop("m1"), hop("m2"))
    response = await send_routed(plan, scripted({"m1": status, "m2": 200}, sent), set())
    assert (response.status_code, sent) == (200, ["m1", "m2"])


@pytest.mark.parametrize("status", [200, 206, 400, 405])
async def test_other_answers_are_the_result(status: int) -> None:
    sent: list[str] = []
    response = await send_routed((hop("m1"), hop("up")), scripted({"m1": status}, sent), set())
    assert (response.status_code, sent) == (status, ["m1"])


async def test_unreachable_hosts_are_remembered_and_the_last_answer_stands() -> None:
    sent: list[str] = []
    dead: set[str] = set()
    send = scripted({"m1": None, "m2": 500, "up": 404}, sent)
    response = await send_routed((hop("m1"), hop("m2"), hop("up")), send, dead)
    assert (response.status_code, sent, dead) == (404, ["m1", "m2", "up"], {"m1"})


async def test_a_mirrors_404_is_the_answer_when_the_last_host_is_unreachable() -> None:
    dead: set[str] = set()
    response = await send_routed(
        (hop("m1"), hop("up")), scripted({"m1": 404, "up": None}, []), dead
    )
    assert response.status_code == 404 and dead == {"up"}


async def test_the_last_hosts_error_is_raised_without_an_earlier_404() -> None:
    with pytest.raises(TransportError):
        await send_routed((hop("m1"), hop("up")), scripted({"m1": 503, "up": None}, []), set())


def test_scopes_name_the_repository_as_the_host_does() -> None:
    assert hop_scopes(["repository:lib/app:pull"], hop("m", "cache/lib/app")) == [
        "repository:cache/lib/app:pull"
    ]
