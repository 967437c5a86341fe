"""``copy --cosign-signatures`` / ``--referrers``: what is attached to every item travels with it.

As imgpkg v0.42.3's ``signature.Signatures.Fetch``: for every item to copy
(bundles, images, indexes; not their children), the tag
``sha256-<hex>.sig`` of the item's repository is looked up (one HEAD); each
found is copied as one more item, by digest, with that tag re-applied at the
destination, so the destination's tags are imgpkg's. Signatures do not appear
in locations images (imgpkg's ``NoteCopy`` lists only the bundle's own images).
A signature that is absent (404) or denied (403) is skipped, as imgpkg skips
them; any other failure (a 401 among them) stops the copy with imgpkg's
``Fetching signature for image '<ref>': <error>``.

Beyond imgpkg (which looks only at the items), what is found is looked up in
turn: a signed signature, a signed SBOM or attestation, a signed referrer (also
one listed in a copied fallback index), level by level, at most
:data:`MAX_ATTACHED_DEPTH` levels deep, each digest once (a tag pointing back
at an item ends the walk). Where nothing is attached to what was found (every
imgpkg-made case), that costs one more HEAD per suffix and copies the same.

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

import re
from collections.abc import Sequence

import anyio

from lockresolve.bundle.imagedesc import RefMeta
from lockresolve.errors import AuthError, BundleError, LockresolveError, NotFoundError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.protocol import parse_referrers

__all__ = [
    "COSIGN_SUFFIXES",
    "MAX_ATTACHED_DEPTH",
    "REFERRERS_SUFFIXES",
    "attached_metas",
    "signature_tag",
]

#: cosign's tags: the signature (what imgpkg copies), attestations, SBOMs
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
#: the OCI 1.1 referrers fallback tag is the digest alone
REFERRERS_SUFFIXES = ("",)


def signature_tag(digest: str, suffix: str = ".sig") -> str:
    """cosign's ``Munge``: ``sha256:<hex>`` -> ``sha256-<hex>.sig`` (or another suffix)."""
    return digest.replace(":", "-") + suffix


#: how many levels of attachments are followed: an item's signature (1), that signature's
#: own signature or an SBOM's signature (2), and so on
MAX_ATTACHED_DEPTH = 4


async def attached_metas(
    client: RegistryClient, metas: Sequence[RefMeta], suffixes: Sequence[str]
) -> tuple[RefMeta, ...]:
    """What is attached to ``metas`` under ``sha256-<hex><suffix>`` tags (and, with the
    fallback suffix ``""``, through the referrers API), as items to copy; then what is
    attached to those, level by level, at most :data:`MAX_ATTACHED_DEPTH` levels deep. Each
    digest is looked up once, so a tag pointing back at an item ends the walk."""
    seen = {(m.ref, m.tag) for m in metas}
    by_digest = {m.ref for m in metas}
    looked_up: set[str] = set()
    frontier = [m.ref for m in metas]
    out: list[RefMeta] = []
    for _ in range(MAX_ATTACHED_DEPTH):
        frontier = [r for r in dict.fromkeys(frontier) if r not in looked_up]
        if not frontier:
            break
        looked_up.update(frontier)
        level: list[RefMeta] = []
        for meta in await _one_level(client, frontier, suffixes):
            if not meta.tag and meta.ref in by_digest:
                continue  # a referrer already copied (as an item, or under a tag)
            if (meta.ref, meta.tag) not in seen:
                seen.add((meta.ref, meta.tag))
                by_digest.add(meta.ref)
                level.append(meta)
        out.extend(level)
        frontier = [m.ref for m in level]
        # the referrers inside a copied fallback index are copied with it: look them up too
        indexes = [m for m in level if _FALLBACK_TAG.match(m.tag)]
        frontier += await _fallback_children(client, indexes)
    return tuple(out)


_FALLBACK_TAG = re.compile(r"^sha256-[0-9a-f]{64}$")


async def _fallback_children(client: RegistryClient, indexes: Sequence[RefMeta]) -> list[str]:
    children: dict[int, list[str]] = {}
    failures: list[LockresolveError] = []

    async def one(i: int, meta: RefMeta) -> None:
        ref = Reference.parse(meta.ref)
        repo = Reference(ref.registry, ref.repository)
        try:
            manifest = await client.get_manifest(ref)
            listed = parse_referrers(manifest.data) or ()
        except ValueError:
            return  # not a well-formed index: copied as it is, nothing to follow
        except LockresolveError as exc:
            failures.append(exc)
            return
        children[i] = [str(repo.with_digest(r.digest)) for r in listed]

    async with anyio.create_task_group() as tg:
        for i, meta in enumerate(indexes):
            tg.start_soon(one, i, meta)
    if failures:
        raise failures[0]
    return [ref for i in sorted(children) for ref in children[i]]


async def _one_level(
    client: RegistryClient, refs: Sequence[str], suffixes: Sequence[str]
) -> list[RefMeta]:
    """The tags ``sha256-<hex><suffix>`` of each of ``refs`` that exist, and (with ``""``)
    the referrers the API lists, in a stable order."""
    found: dict[tuple[int, int], RefMeta] = {}
    failures: list[LockresolveError] = []

    async def one(i: int, j: int, text: str) -> None:
        ref = Reference.parse(text)
        if ref.digest is None:
            return
        tag = signature_tag(str(ref.digest), suffixes[j])
        repo = Reference(ref.registry, ref.repository)
        try:
            descriptor = await client.resolve(repo.with_tag(tag))
        except NotFoundError:
            return
        except LockresolveError as exc:
            if isinstance(exc, AuthError) and exc.status == 403:
                return  # imgpkg's AccessDeniedErr: skipped
            what = "signature" if suffixes[j] == ".sig" else f"'{tag}'"
            failures.append(BundleError(f"Fetching {what} for image '{text}': {exc}"))
            return
        found[i, j] = RefMeta(ref=str(repo.with_digest(descriptor.digest)), tag=tag)

    async def api(i: int, text: str) -> None:
        ref = Reference.parse(text)
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
        for i, text in enumerate(refs):
            for j in range(len(suffixes)):
                tg.start_soon(one, i, j, text)
            if "" in suffixes:
                tg.start_soon(api, i, text)
    if failures:
        raise min(failures, key=str)
    return [found[key] for key in sorted(found)]
