"""Beyond imgpkg: ``copy --cosign-signatures`` also carries cosign's attestation (``.att``, a
DSSE envelope) and SBOM (``.sbom``); ``copy --referrers`` carries the OCI 1.1 referrers of an
image through their fallback tag ``sha256-<hex>`` (docker-registry 2.8 has no referrers API).
Against the real registry, to a repository, through a tar and through an OCI layout: every
attached manifest arrives under its tag with its digest unchanged (skopeo reads it back)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from tests.robustness.helpers import copy_through, repo_tags, run_cli, seed_tags
from tests.support.conformance import push_blob, push_manifest
from tests.support.registry import Registry, skopeo_inspect_raw

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _d(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _artifact(layer: bytes, layer_type: str, **extra: object) -> tuple[bytes, bytes, bytes]:
    config = b"{}"
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": 2,
            "digest": _d(config),
        },
        "layers": [{"mediaType": layer_type, "size": len(layer), "digest": _d(layer)}],
        **extra,
    }
    return config, layer, json.dumps(doc, separators=(",", ":")).encode()


def _put(registry: Registry, repo: str, tag: str, parts: tuple[bytes, bytes, bytes]) -> str:
    config, layer, manifest = parts
    with registry.client() as client:
        push_blob(client, repo, config)
        push_blob(client, repo, layer)
        return push_manifest(client, repo, tag, OCI_MANIFEST, manifest)


@pytest.fixture(scope="module")
def attached(registry: Registry) -> dict[str, tuple[str, bytes]]:
    """An image with an .att, an .sbom and one referrer; tag -> (digest, manifest bytes)."""
    repo = "attach/src"
    image = seed_tags(registry, repo, ["1"])["1"]
    hex_ = image.split(":", 1)[1]
    statement = json.dumps(
        {"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": {"sha256": hex_}}]}
    )
    envelope = json.dumps(
        {
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(statement.encode()).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(b"throwaway").decode()}],
        }
    ).encode()
    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": "app"}).encode()
    made: dict[str, tuple[str, bytes]] = {}
    for tag, parts in {
        f"sha256-{hex_}.att": _artifact(envelope, "application/vnd.dsse.envelope.v1+json"),
        f"sha256-{hex_}.sbom": _artifact(sbom, "text/spdx+json"),
    }.items():
        made[tag] = (_put(registry, repo, tag, parts), parts[2])
    referrer = _artifact(
        sbom,
        "application/spdx+json",
        artifactType="application/spdx+json",
        subject={
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": image,
            "size": 1,
        },
    )
    ref_digest = _put(registry, repo, "referrer-by-digest", referrer)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": ref_digest,
                    "size": len(referrer[2]),
                    "artifactType": "application/spdx+json",
                }
            ],
        },
        separators=(",", ":"),
    ).encode()
    with registry.client() as client:
        made[f"sha256-{hex_}"] = (
            push_manifest(client, repo, f"sha256-{hex_}", OCI_INDEX, index),
            index,
        )
    made["referrer"] = (ref_digest, referrer[2])
    made["image"] = (image, b"")
    return made


@pytest.mark.parametrize("route", ["repo", "tar", "oci-layout"])
def test_att_sbom_and_referrers_travel_with_digests_unchanged(
    route: str,
    attached: dict[str, tuple[str, bytes]],
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    src = f"{registry.host}/attach/src:1"
    dst = f"attach/dst-{route}"
    flags = ["--cosign-signatures", "--referrers"]
    copy_through(route, src, f"{registry.host}/{dst}", tmp_path, capfd, flags)

    hex_ = attached["image"][0].split(":", 1)[1]
    tags = repo_tags(registry, dst)
    for tag in (f"sha256-{hex_}.att", f"sha256-{hex_}.sbom", f"sha256-{hex_}"):
        assert tag in tags, (tag, tags)
        assert skopeo_inspect_raw(f"{dst}:{tag}", registry) == attached[tag][1]
    referrer_digest, referrer = attached["referrer"]
    assert skopeo_inspect_raw(f"{dst}@{referrer_digest}", registry) == referrer


def test_without_the_flags_nothing_attached_is_copied(
    attached: dict[str, tuple[str, bytes]], registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    res = run_cli(
        [
            "copy",
            "-i",
            f"{registry.host}/attach/src:1",
            "--to-repo",
            f"{registry.host}/attach/plain",
        ],
        capfd,
    )
    assert res.code == 0, res.err
    hex_ = attached["image"][0].split(":", 1)[1]
    assert not {
        t for t in repo_tags(registry, "attach/plain") if t.startswith(f"sha256-{hex_}")
    } - {f"sha256-{hex_}.imgpkg"}
