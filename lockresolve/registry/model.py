"""Values the registry client returns: descriptors and fetched manifests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Descriptor", "Manifest", "sha256_digest"]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """What a registry says of a manifest or blob: digest, media type, size."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A manifest's raw bytes (verified against ``digest``) and its media type."""

    data: bytes
    media_type: str
    digest: str

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(digest=self.digest, media_type=self.media_type, size=len(self.data))

    def json(self) -> Any:
        return json.loads(self.data)
