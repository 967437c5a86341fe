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
whole, by digest, with that tag. First the referrers API
(``GET /v2/<repo>/referrers/<digest>``) is asked; where the registry offers it
(an OCI image index comes back), each referrer it lists is copied by digest too.
Where it does not (404, 405, 501, or an answer that is not an index; e.g.
docker-registry 2.8), only the fallback tag is used. A malformed index is an error.
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

    async def api(i: int, meta: RefMeta) -> None:
        ref = Reference.parse(meta.ref)
        if ref.digest is None:
            return
        try:
            listed = await client.referrers(ref.registry, ref.repository, str(ref.digest))
        except AuthError:
            return
        except LockresolveError as exc:
            failures.append(exc)
            return
        repo = Reference(ref.registry, ref.repository)
        for k, referrer in enumerate(listed or ()):
            # after the tag lookups of the same item (j < len(suffixes))
            found[i, len(suffixes) + k] = RefMeta(ref=str(repo.with_digest(referrer.digest)))

    async with anyio.create_task_group() as tg:
        for i, meta in enumerate(metas):
            for j in range(len(suffixes)):
                tg.start_soon(one, i, j, meta)
            if "" in suffixes:
                tg.start_soon(api, i, meta)
    if failures:
        raise failures[0]
    seen = {(m.ref, m.tag) for m in metas}
    by_digest = {m.ref for m in metas}
    out: list[RefMeta] = []
    for key in sorted(found):
        meta = found[key]
        if not meta.tag and meta.ref in by_digest:
            continue  # a referrer already copied (as an item, or under a tag)
        if (meta.ref, meta.tag) not in seen:
            seen.add((meta.ref, meta.tag))
            by_digest.add(meta.ref)
            out.append(meta)
    return tuple(out)
