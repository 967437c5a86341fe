"""``copy --cosign-signatures`` / ``--referrers``: what is attached to every item travels with it.

As imgpkg v0.42.3's ``signature.Signatures.Fetch``: for every item to copy
(bundles, images, indexes; not their children), the tag
``sha256-<hex>.sig`` of the item's repository is looked up (one HEAD); each
found is copied as one more item, by digest, with that tag re-applied at the
destination, so the destination's tags are imgpkg's. Signatures are not
looked for again on what is found, and do not appear in locations images
(imgpkg's ``NoteCopy`` lists only the bundle's own images). A signature that
is absent (404) or denied (401, 403) is skipped, as imgpkg skips denied ones.

Beyond imgpkg, ``--cosign-signatures`` also copies cosign's attestations and
SBOMs (``sha256-<hex>.att``, ``.sbom``; imgpkg never does), and ``--referrers``
copies the OCI 1.1 referrers through their fallback tag ``sha256-<hex>`` (an
index of the manifests whose ``subject`` is the item): the index is copied
whole, by digest, with that tag. The referrers API (``/v2/<repo>/referrers/``)
is not asked (docker-registry 2.8 does not offer it).
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from lockresolve.bundle.imagedesc import RefMeta
from lockresolve.errors import AuthError, LockresolveError, NotFoundError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient

__all__ = ["COSIGN_SUFFIXES", "REFERRERS_SUFFIXES", "attached_metas", "signature_tag"]

#: cosign's tags: the signature (what imgpkg copies), attestations, SBOMs
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
#: the OCI 1.1 referrers fallback tag is the digest alone
REFERRERS_SUFFIXES = ("",)


def signature_tag(digest: str, suffix: str = ".sig") -> str:
    """cosign's ``Munge``: ``sha256:<hex>`` -> ``sha256-<hex>.sig`` (or another suffix)."""
    return digest.replace(":", "-") + suffix


async def attached_metas(
    client: RegistryClient, metas: Sequence[RefMeta], suffixes: Sequence[str]
) -> tuple[RefMeta, ...]:
    """What is attached to ``metas`` under ``sha256-<hex><suffix>`` tags, as items to copy."""
    found: dict[tuple[int, int], RefMeta] = {}
    failures: list[LockresolveError] = []

    async def one(i: int, j: int, meta: RefMeta) -> None:
        ref = Reference.parse(meta.ref)
        if ref.digest is None:
            return
        tag = signature_tag(str(ref.digest), suffixes[j])
        repo = Reference(ref.registry, ref.repository)
        try:
            descriptor = await client.resolve(repo.with_tag(tag))
        except (NotFoundError, AuthError):
            return
        except LockresolveError as exc:
            failures.append(exc)
            return
        found[i, j] = RefMeta(ref=str(repo.with_digest(descriptor.digest)), tag=tag)

    async with anyio.create_task_group() as tg:
        for i, meta in enumerate(metas):
            for j in range(len(suffixes)):
                tg.start_soon(one, i, j, meta)
    if failures:
        raise failures[0]
    seen = {(m.ref, m.tag) for m in metas}
    out: list[RefMeta] = []
    for key in sorted(found):
        meta = found[key]
        if (meta.ref, meta.tag) not in seen:
            seen.add((meta.ref, meta.tag))
            out.append(meta)
    return tuple(out)
