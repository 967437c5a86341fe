"""tag ls / tag resolve against a real registry, printed as imgpkg prints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockresolve.bundle.commands.push import default_tag, push
from lockresolve.bundle.commands.tags import TagInfo, format_tag_table, list_tags, resolve_tag
from lockresolve.errors import NotFoundError
from lockresolve.registry.client import RegistryClient
from tests.support.registry import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_list_hides_internal_tags_and_resolves_digests(
    registry: Registry, tmp_path: Path
) -> None:
    (tmp_path / "a.yml").write_text("a: 1\n")
    repo = f"{registry.host}/tags/list"
    async with RegistryClient() as client:
        one = await push(client, f"{repo}:1.0", [tmp_path / "a.yml"], bundle=False)
        (tmp_path / "a.yml").write_text("a: 2\n")
        two = await push(client, f"{repo}:2.0", [tmp_path / "a.yml"], bundle=False)
        visible = await list_tags(client, f"{repo}:ignored")
        everything = await list_tags(client, repo, internal=True)
        with_digests = await list_tags(client, repo, digests=True)
        resolved = await resolve_tag(client, f"{repo}:2.0")
        with pytest.raises(NotFoundError):
            await resolve_tag(client, f"{repo}:missing")
    assert sorted(t.tag for t in visible) == ["1.0", "2.0"]
    assert sorted(t.tag for t in everything) == sorted(
        ["1.0", "2.0", default_tag(one.digest), default_tag(two.digest)]
    )
    assert {t.tag: t.digest for t in with_digests} == {"1.0": one.digest, "2.0": two.digest}
    assert resolved == two.image


def test_table_is_go_cli_uis() -> None:
    tags = [TagInfo("latest", "sha256:bb"), TagInfo("1.0", "sha256:aaaa")]
    assert format_tag_table(tags, digests=False) == ("Tags\n\nName  \n1.0  \nlatest  \n\n2 tags\n")
    assert format_tag_table(tags, digests=True) == (
        "Tags\n\nName    Digest  \n1.0     sha256:aaaa  \nlatest  sha256:bb  \n\n2 tags\n"
    )
    assert format_tag_table([], digests=False) == "Tags\n\nName  \n\n0 tags\n"
