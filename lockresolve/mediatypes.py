"""Media types of manifests, indexes, configs and layers (Docker v2 and OCI).

The names follow go-containerregistry's ``types`` package, which kbld and
imgpkg use; :data:`MANIFEST_ACCEPT` is the Accept list go-containerregistry
sends for a manifest HEAD or GET. A registry answers 404 for an OCI manifest
unless the Accept header names the OCI types, so always send the whole list.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_FOREIGN_LAYER",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_MANIFEST_SCHEMA1",
    "DOCKER_MANIFEST_SCHEMA1_SIGNED",
    "DOCKER_MANIFEST_SCHEMA2",
    "DOCKER_UNCOMPRESSED_LAYER",
    "IMAGE_MEDIA_TYPES",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_ACCEPT",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "OCI_RESTRICTED_LAYER",
    "OCI_UNCOMPRESSED_LAYER",
    "OCI_UNCOMPRESSED_RESTRICTED_LAYER",
    "OCI_ZSTD_LAYER",
]

# Docker image manifest v2, schema 2.
DOCKER_MANIFEST_SCHEMA2: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_UNCOMPRESSED_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

# Docker image manifest v2, schema 1 (legacy; only ever read).
DOCKER_MANIFEST_SCHEMA1: Final = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_SCHEMA1_SIGNED: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# OCI image spec.
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_UNCOMPRESSED_LAYER: Final = "application/vnd.oci.image.layer.v1.tar"
OCI_RESTRICTED_LAYER: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_UNCOMPRESSED_RESTRICTED_LAYER: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar"

IMAGE_MEDIA_TYPES: Final = (DOCKER_MANIFEST_SCHEMA2, OCI_MANIFEST)
"""Manifests of a single image."""

INDEX_MEDIA_TYPES: Final = (DOCKER_MANIFEST_LIST, OCI_INDEX)
"""Manifests that list other manifests (multi-platform images)."""

MANIFEST_ACCEPT: Final = (
    DOCKER_MANIFEST_SCHEMA1,
    DOCKER_MANIFEST_SCHEMA1_SIGNED,
    DOCKER_MANIFEST_SCHEMA2,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
)
"""Every manifest media type, in go-containerregistry's order: the Accept list
for a manifest HEAD or GET (join with ``", "``)."""
