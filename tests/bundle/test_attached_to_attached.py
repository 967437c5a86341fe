"""Beyond imgpkg: ``copy --cosign-signatures --referrers`` also carries what is attached to the
attached artifacts: an SBOM (``sha256-<image>.sbom``) that is itself signed
(``sha256-<sbom>.sig``, cosign's layout, a throwaway key), and a referrer (listed in the
``sha256-<image>`` fallback index) that is signed too. A tag that points back at the SBOM
(``sha256-<sbom signature>.att``) makes a cycle, which ends the walk. Against the real
registry, to a repository, through a tar and through an OCI layout: every manifest arrives
under its tag, byte for byte (skopeo reads them back)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.bundle.test_attached_artifacts import OCI_INDEX, OCI_MANIFEST, _artifact, _put
from tests.fixtures.conformance.signatures.record import cosign_signature_seed
from tests.robustness.helpers import copy_through, repo_tags, run_cli, seed_tags
from tests.support.conformance import SeedItem, push_manifest, seed_items
from tests.support.registry import Registry, skopeo_inspect_raw

REPO = "nest/src"


def _sign(registry: Registry, digest: str) -> tuple[str, bytes]:
    """A cosign ``.sig`` of ``digest`` in REPO: (its tag, its manifest bytes)."""
    items = cosign_signature_seed(REPO, digest, f"{registry.host}/{REPO}")
    seed_items(registry, [SeedItem.from_json(i) for i in items])
    manifest = items[-1]
    return manifest["reference"], base64.b64decode(manifest["data_base64"])


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


@pytest.fixture(scope="module")
def nested(registry: Registry) -> dict[str, Any]:
    image = seed_tags(registry, REPO, ["1"])["1"]
    expected: dict[str, bytes] = {}  # tag -> manifest bytes, at the destination
    sbom = _artifact(json.dumps({"spdxVersion": "SPDX-2.3"}).encode(), "text/spdx+json")
    sbom_tag = f"sha256-{_hex(image)}.sbom"
    sbom_digest = _put(registry, REPO, sbom_tag, sbom)
    expected[sbom_tag] = sbom[2]
    sig_tag, sig = _sign(registry, sbom_digest)
    assert sig_tag == f"sha256-{_hex(sbom_digest)}.sig"
    expected[sig_tag] = sig
    sig_digest = "sha256:" + hashlib.sha256(sig).hexdigest()
    cycle_tag = f"sha256-{_hex(sig_digest)}.att"  # points back at the SBOM
    with registry.client() as client:
        push_manifest(client, REPO, cycle_tag, OCI_MANIFEST, sbom[2])
    expected[cycle_tag] = sbom[2]

    referrer = _artifact(
        b'{"predicate": {}}',
        "application/vnd.in-toto+json",
        artifactType="application/vnd.in-toto+json",
        subject={"mediaType": OCI_MANIFEST, "digest": image, "size": 1},
    )
    referrer_digest = _put(registry, REPO, "referrer-by-digest", referrer)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": referrer_digest, "size": len(referrer[2])}
            ],
        },
        separators=(",", ":"),
    ).encode()
    with registry.client() as client:
        push_manifest(client, REPO, f"sha256-{_hex(image)}", OCI_INDEX, index)
    expected[f"sha256-{_hex(image)}"] = index
    referrer_sig_tag, referrer_sig = _sign(registry, referrer_digest)
    expected[referrer_sig_tag] = referrer_sig
    return {"expected": expected, "referrer": (referrer_digest, referrer[2])}


@pytest.mark.parametrize("route", ["repo", "tar", "oci-layout"])
def test_a_signed_sbom_and_a_signed_referrer_travel(
    route: str,
    nested: dict[str, Any],
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    src = f"{registry.host}/{REPO}:1"
    dst = f"nest/dst-{route}"
    flags = ["--cosign-signatures", "--referrers"]
    copy_through(route, src, f"{registry.host}/{dst}", tmp_path, capfd, flags)

    tags = repo_tags(registry, dst)
    for tag, manifest in nested["expected"].items():
        assert tag in tags, (tag, sorted(tags))
        assert skopeo_inspect_raw(f"{dst}:{tag}", registry) == manifest, tag
    referrer_digest, referrer = nested["referrer"]
    assert skopeo_inspect_raw(f"{dst}@{referrer_digest}", registry) == referrer


def test_the_walk_stops_at_the_depth_bound(
    registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    """A chain of signatures, each signing the one before, one longer than the bound: the
    first ``MAX_ATTACHED_DEPTH`` are copied, the last is not."""
    from lockresolve.bundle.signatures import MAX_ATTACHED_DEPTH

    digest = seed_tags(registry, REPO, ["chain"])["chain"]
    chain: list[str] = []
    for _ in range(MAX_ATTACHED_DEPTH + 1):
        tag, sig = _sign(registry, digest)
        chain.append(tag)
        digest = "sha256:" + hashlib.sha256(sig).hexdigest()
    dst = "nest/dst-chain"
    src = f"{registry.host}/{REPO}:chain"
    res = run_cli(
        ["copy", "-i", src, "--to-repo", f"{registry.host}/{dst}", "--cosign-signatures"], capfd
    )
    assert res.code == 0, res.err
    tags = repo_tags(registry, dst)
    assert [t in tags for t in chain] == [True] * MAX_ATTACHED_DEPTH + [False]
