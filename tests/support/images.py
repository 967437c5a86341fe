"""Small images for tests and benchmarks, pushed through lockresolve's own client."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from lockresolve.registry.client import RegistryClient

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TestImage:
    config: bytes
    layer: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def make_image(seed: str, *, layer_size: int = 64) -> TestImage:
    """A tiny single-layer Docker v2 image whose bytes depend only on ``seed``."""
    layer = (seed.encode() * (layer_size // max(1, len(seed)) + 1))[:layer_size]
    config = (
        json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}},
            sort_keys=True,
        ).encode()
        + seed.encode()
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG,
                "size": len(config),
                "digest": digest_of(config),
            },
            "layers": [{"mediaType": DOCKER_LAYER, "size": len(layer), "digest": digest_of(layer)}],
        },
        separators=(",", ":"),
    ).encode()
    return TestImage(config=config, layer=layer, manifest=manifest)


async def push_image(
    client: RegistryClient, registry: str, repository: str, tag: str, image: TestImage
) -> str:
    """Upload the blobs (skipping present ones) and tag the manifest; returns its digest."""
    for blob in (image.config, image.layer):
        digest = digest_of(blob)
        if not await client.blob_exists(registry, repository, digest):
            await client.upload_blob(registry, repository, digest, len(blob), blob)
    return await client.put_manifest(registry, repository, tag, image.manifest, DOCKER_MANIFEST)
