"""``copy --cosign-signatures``: the cosign signature of every item travels with it.

As imgpkg v0.42.3's ``signature.Signatures.Fetch``: for every item to copy
(bundles, images, indexes; not their children), the tag
``sha256-<hex>.sig`` of the item's repository is looked up (one HEAD); each
found is copied as one more item, by digest, with that tag re-applied at the
destination, so the destination's tags are imgpkg's. Signatures are not
looked for again on what is found, and do not appear in locations images
(imgpkg's ``NoteCopy`` lists only the bundle's own images). A signature that
is absent (404) or denied (401, 403) is skipped, as imgpkg skips denied ones.

Only ``.sig`` is copied: imgpkg never copies ``.att`` or ``.sbom``, nor OCI 1.1
referrers (not done here either).
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from lockresolve.bundle.imagedesc import RefMeta
from lockresolve.errors import AuthError, LockresolveError, NotFoundError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = ["signature_metas", "signature_tag"]


def signature_tag(digest: str) -> str:
    """cosign's ``Munge``: ``sha256:<hex>`` -> ``sha256-<hex>.sig``."""
    return digest.replace(":", "-") + ".sig"


async def signature_metas(client: RegistryClient, metas: Sequence[RefMeta]) -> tuple[RefMeta, ...]:
    """The signatures of ``metas`` found in their repositories, as items to copy."""
    found: dict[int, RefMeta] = {}
    failures: list[LockresolveError] = []

    async def one(i: int, meta: RefMeta) -> None:
        ref = Reference.parse(meta.ref)
        if ref.digest is None:
            return
        tag = signature_tag(str(ref.digest))
        repo = Reference(ref.registry, ref.repository)
        try:
            descriptor = await client.resolve(repo.with_tag(tag))
        except (NotFoundError, AuthError):
            return
        except LockresolveError as exc:
            failures.append(exc)
            return
        found[i] = RefMeta(ref=str(repo.with_digest(descriptor.digest)), tag=tag)

    async with anyio.create_task_group() as tg:
        for i, meta in enumerate(metas):
            tg.start_soon(one, i, meta)
    if failures:
        raise failures[0]
    seen = {m.ref for m in metas}
    out: list[RefMeta] = []
    for i in sorted(found):
        if found[i].ref not in seen:
            seen.add(found[i].ref)
            out.append(found[i])
    return tuple(out)
