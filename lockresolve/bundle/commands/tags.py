"""``tag ls`` and ``tag resolve``, printed as imgpkg prints them.

``tag ls -i REPO`` lists a repository's tags, hiding imgpkg's internal
``*.imgpkg`` tags unless asked; ``--digests`` resolves each shown tag with
one HEAD (concurrently, under the per-host limit; imgpkg resolves every tag,
hidden ones included, one by one). The table is go-cli-ui's: a title, the
header, rows sorted by name, every cell followed by two spaces, the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from lockresolve.errors import LockresolveError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = ["TagInfo", "format_tag_table", "list_tags", "resolve_tag"]

INTERNAL_SUFFIX = ".imgpkg"


@dataclass(frozen=True)
class TagInfo:
    tag: str
    digest: str | None = None


async def list_tags(
    client: RegistryClient, image: str, *, digests: bool = False, internal: bool = False
) -> list[TagInfo]:
    """The tags of ``image``'s repository (any tag or digest in ``image`` is ignored)."""
    ref = Reference.parse(image)
    tags = await client.list_tags(ref.registry, ref.repository)
    shown = [t for t in tags if internal or not t.endswith(INTERNAL_SUFFIX)]
    if not digests:
        return [TagInfo(t) for t in shown]
    found: dict[str, str] = {}
    failures: list[LockresolveError] = []

    async def resolve(tag: str) -> None:
        try:
            found[tag] = (await client.resolve(ref.with_tag(tag))).digest
        except LockresolveError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        for tag in shown:
            tg.start_soon(resolve, tag)
    if failures:
        raise failures[0]
    return [TagInfo(t, found[t]) for t in shown]


async def resolve_tag(client: RegistryClient, image: str) -> str:
    """``<registry>/<repo>@<digest>`` for ``image`` (a tag or digest reference)."""
    ref = Reference.parse(image)
    descriptor = await client.resolve(ref)
    return f"{ref.context}@{descriptor.digest}"


def format_tag_table(tags: Sequence[TagInfo], *, digests: bool) -> str:
    """go-cli-ui's table, as ``imgpkg tag ls`` prints it (without the final ``Succeeded``)."""
    header = ["Name", "Digest"] if digests else ["Name"]
    rows = sorted(
        ([t.tag, t.digest or "-"] if digests else [t.tag] for t in tags),
        key=lambda row: row[0].encode(),
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["Tags", ""]
    for row in [header, *rows]:
        cells = [cell if i == len(row) - 1 else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells) + "  ")
    lines += ["", f"{len(rows)} tags"]
    return "\n".join(lines) + "\n"
