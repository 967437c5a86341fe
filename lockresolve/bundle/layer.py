"""Build a pushed image's one layer on disk: tar, gzip, and both digests in one pass.

The tar is streamed from :func:`lockresolve.bundle.formats.tar.iter_tar` through the
chosen gzip encoder into a file, hashing the tar (the ``diff_id``) and the
gzip (the layer digest) on the way, so memory stays flat whatever the size of
the bundle. The registry needs the digest before the upload, hence the file.

The work is CPU-bound (the Go-identical gzip is pure Python): call
:func:`build_layer` in a worker thread (``anyio.to_thread.run_sync``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lockresolve.bundle.formats.tar import LayerPlan, iter_tar
from lockresolve.errors import InputError
from lockresolve.goflate import gzip_compressor

__all__ = ["GzipKind", "LayerFile", "build_layer"]

GzipKind = Literal["go", "zlib"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerFile:
    """A gzipped layer written to ``path``: its digest, size and uncompressed digest."""

    path: Path
    digest: str
    size: int
    diff_id: str
    tar_size: int


def build_layer(
    plan: LayerPlan,
    directory: str | os.PathLike[str],
    *,
    gzip: GzipKind = "go",
    on_tar_bytes: Callable[[int], None] | None = None,
) -> LayerFile:
    """Write the gzipped tar of ``plan`` to a new file in ``directory``.

    ``on_tar_bytes(n)`` is called as uncompressed bytes are encoded (for a
    progress bar). Raises what :func:`iter_tar` raises, or :class:`InputError`
    when the file cannot be written.
    """
    tar_hash = hashlib.sha256()
    gz_hash = hashlib.sha256()
    compressor = gzip_compressor(gzip)
    tar_size = 0
    size = 0
    try:
        fd, name = tempfile.mkstemp(prefix="layer-", suffix=".tar.gz", dir=directory)
    except OSError as exc:
        raise InputError(f"cannot create a layer file in {os.fspath(directory)}: {exc}") from None
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter_tar(plan, _CHUNK):
                tar_hash.update(chunk)
                tar_size += len(chunk)
                data = compressor.compress(chunk)
                if data:
                    gz_hash.update(data)
                    out.write(data)
                    size += len(data)
                if on_tar_bytes is not None:
                    on_tar_bytes(len(chunk))
            data = compressor.flush()
            gz_hash.update(data)
            out.write(data)
            size += len(data)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise InputError(f"cannot write layer file {path}: {exc}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return LayerFile(
        path=path,
        digest="sha256:" + gz_hash.hexdigest(),
        size=size,
        diff_id="sha256:" + tar_hash.hexdigest(),
        tar_size=tar_size,
    )
