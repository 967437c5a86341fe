"""``copy --referrers`` to a registry without the OCI referrers API (Debian's docker-registry
2.8 answers 404) writes the spec 1.1 referrers tag schema there: the ``sha256-<hex>`` tag is an
OCI image index listing every copied referrer (``mediaType``, ``digest``, ``size``,
``artifactType``, ``annotations``), merged with an index already at that tag (its entries kept,
none twice). The source offers the referrers API through a small shim in front of the real
registry (``tests/support/referrersshim.py``), or only the fallback tag; the destination is
the real registry; skopeo reads the index back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bundle.test_attached_artifacts import OCI_INDEX, OCI_MANIFEST, _artifact
from tests.robustness.helpers import copy_through, run_cli, seed_tags
from tests.support.conformance import push_blob, push_manifest
from tests.support.referrersshim import ReferrersShim
from tests.support.registry import Registry, skopeo_inspect_raw

SPDX = "application/spdx+json"


def _referrer(registry: Registry, repo: str, subject: str, name: str) -> dict[str, Any]:
    """A referrer of ``subject`` pushed by digest (no tag); its descriptor as the spec lists it."""
    parts = _artifact(
        json.dumps({"spdxVersion": "SPDX-2.3", "name": name}).encode(),
        SPDX,
        artifactType=SPDX,
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
        annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z", "n": name},
    )
    config, layer, manifest = parts
    with registry.client() as client:
        push_blob(client, repo, config)
        push_blob(client, repo, layer)
        digest = push_manifest(client, repo, _digest_of(manifest), OCI_MANIFEST, manifest)
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(manifest),
        "artifactType": SPDX,
        "annotations": {"n": name, "org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }


def _digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _index(*descriptors: dict[str, Any]) -> bytes:
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(descriptors)}
    return json.dumps(body, separators=(",", ":")).encode()


def _listed(registry: Registry, repo: str, subject: str) -> dict[str, Any]:
    raw = skopeo_inspect_raw(f"{repo}:{subject.replace(':', '-')}", registry)
    doc: dict[str, Any] = json.loads(raw)
    return doc


@pytest.fixture(scope="module")
def shim(registry: Registry) -> Iterator[ReferrersShim]:
    with ReferrersShim(registry.url) as s:
        yield s


@pytest.fixture(scope="module")
def api_source(registry: Registry, shim: ReferrersShim) -> dict[str, Any]:
    """``rtag/src:1`` with one referrer, listed only by the (shimmed) referrers API."""
    image = seed_tags(registry, "rtag/src", ["1"])["1"]
    desc = _referrer(registry, "rtag/src", image, "from-api")
    shim.add("rtag/src", image, desc)
    return {"image": image, "referrer": desc}


def test_the_destination_has_no_referrers_api(
    registry: Registry, api_source: dict[str, Any]
) -> None:
    with registry.client() as client:
        assert client.get(f"/v2/rtag/src/referrers/{api_source['image']}").status_code == 404


@pytest.mark.parametrize("existing", [False, True])
def test_api_referrers_get_a_fallback_index_at_the_destination(
    existing: bool,
    api_source: dict[str, Any],
    shim: ReferrersShim,
    registry: Registry,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dst = f"rtag/dst-api-{str(existing).lower()}"
    image = api_source["image"]
    kept: list[dict[str, Any]] = []
    if existing:  # another tool already listed a referrer there
        kept = [_referrer(registry, dst, image, "already-there")]
        with registry.client() as client:
            push_manifest(client, dst, image.replace(":", "-"), OCI_INDEX, _index(*kept))
    src = f"{shim.host}/rtag/src:1"
    args = ["copy", "-i", src, "--to-repo", f"{registry.host}/{dst}", "--referrers"]
    res = run_cli(args, capfd)
    assert res.code == 0, res.err
    assert ("GET", f"/v2/rtag/src/referrers/{image}") in shim.answered

    index = _listed(registry, dst, image)
    assert index["mediaType"] == OCI_INDEX
    assert index["manifests"] == [*kept, api_source["referrer"]]
    referrer = api_source["referrer"]["digest"]
    assert _digest_of(skopeo_inspect_raw(f"{dst}@{referrer}", registry)) == referrer

    # a second copy adds nothing: no duplicate entry, the tag's digest unchanged
    before = skopeo_inspect_raw(f"{dst}:{image.replace(':', '-')}", registry)
    res = run_cli(args, capfd)
    assert res.code == 0, res.err
    assert skopeo_inspect_raw(f"{dst}:{image.replace(':', '-')}", registry) == before


@pytest.mark.parametrize("existing", [False, True])
def test_a_fallback_only_source_merges_into_the_destinations_index(
    existing: bool, registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    repo = f"rtag/fb-{str(existing).lower()}"
    image = seed_tags(registry, repo, ["1"])["1"]
    desc = _referrer(registry, repo, image, "in-fallback")
    source_index = _index(desc)
    with registry.client() as client:
        push_manifest(client, repo, image.replace(":", "-"), OCI_INDEX, source_index)
    dst = f"{repo}-dst"
    kept: list[dict[str, Any]] = []
    if existing:
        kept = [_referrer(registry, dst, image, "already-there")]
        with registry.client() as client:
            push_manifest(client, dst, image.replace(":", "-"), OCI_INDEX, _index(*kept))
    args = ["copy", "-i", f"{registry.host}/{repo}:1", "--to-repo", f"{registry.host}/{dst}"]
    res = run_cli([*args, "--referrers"], capfd)
    assert res.code == 0, res.err
    raw = skopeo_inspect_raw(f"{dst}:{image.replace(':', '-')}", registry)
    if existing:
        assert json.loads(raw)["manifests"] == [*kept, desc]
    else:  # nothing there: the source's index, byte for byte
        assert raw == source_index


def test_a_tag_that_is_not_an_index_is_reported_and_left_alone(
    api_source: dict[str, Any],
    shim: ReferrersShim,
    registry: Registry,
    capfd: pytest.CaptureFixture[str],
) -> None:
    dst = "rtag/dst-not-index"
    image = api_source["image"]
    squatter = seed_tags(registry, dst, [image.replace(":", "-")])[image.replace(":", "-")]
    args = ["copy", "-i", f"{shim.host}/rtag/src:1", "--to-repo", f"{registry.host}/{dst}"]
    res = run_cli([*args, "--referrers"], capfd)
    assert res.code == 1
    assert f"{dst}:{image.replace(':', '-')} is not an OCI image index" in res.err
    assert "Traceback" not in res.err
    head = httpx.head(
        f"{registry.url}/v2/{dst}/manifests/{image.replace(':', '-')}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert head.headers["Docker-Content-Digest"] == squatter


@pytest.mark.parametrize("form", ["tar", "oci-layout"])
def test_api_referrers_through_a_tar_or_layout_get_the_fallback_index(
    form: str,
    api_source: dict[str, Any],
    shim: ReferrersShim,
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    src = f"{shim.host}/rtag/src:1"
    dst = f"rtag/dst-through-{form}"
    flags = ["--referrers"]
    copy_through(form, src, f"{registry.host}/{dst}", tmp_path, capfd, flags, flags)
    index = _listed(registry, dst, api_source["image"])
    assert index["manifests"] == [api_source["referrer"]]
