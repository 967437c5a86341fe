"""Build a pushed image's one layer on disk: tar, gzip, and both digests in one pass.

The tar is streamed from :func:`lockresolve.bundle.formats.tar.iter_tar` through the
chosen gzip encoder into a file, hashing the tar (the ``diff_id``) and the
gzip (the layer digest) on the way, so memory stays flat whatever the size of
the bundle. The registry needs the digest before the upload, hence the file.

The three steps run as a pipeline of threads joined by bounded queues
(:class:`lockresolve.bundle.stages.Threaded`): reading the files and hashing the
tar; gzip; hashing the gzip and writing it. Each releases the GIL for its
heavy part (file I/O, ``hashlib``, the C encoder of
:mod:`lockresolve.goflate.native`), so on several cores a push takes about as
long as its slowest step, not their sum; memory is a few chunks per queue.
With the pure-Python encoder the gzip step holds the GIL and dominates.

Call :func:`build_layer` in a worker thread (``anyio.to_thread.run_sync``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lockresolve.bundle.formats.tar import LayerPlan, iter_tar
from lockresolve.bundle.stages import Threaded
from lockresolve.errors import InputError
from lockresolve.goflate import gzip_compressor

__all__ = ["GzipKind", "LayerFile", "build_layer"]

GzipKind = Literal["go", "zlib"]

# Bytes of tar per chunk: large enough that per-chunk Python work is noise,
# small enough that the queues hold little (memory is flat in the bundle size).
_CHUNK = 256 << 10
_DEPTH = 4  # chunks per queue between two steps


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

    def tar_chunks() -> Iterator[bytes]:
        """Step 1: read and tar the files, hash the tar."""
        nonlocal tar_size
        for chunk in iter_tar(plan, _CHUNK):
            tar_hash.update(chunk)
            tar_size += len(chunk)
            yield chunk

    def gzip_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
        """Step 2: gzip."""
        for chunk in chunks:
            data = compressor.compress(chunk)
            if on_tar_bytes is not None:
                on_tar_bytes(len(chunk))
            if data:
                yield data
        yield compressor.flush()

    try:
        fd, name = tempfile.mkstemp(prefix="layer-", suffix=".tar.gz", dir=directory)
    except OSError as exc:
        raise InputError(f"cannot create a layer file in {os.fspath(directory)}: {exc}") from None
    path = Path(name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            Threaded(tar_chunks(), depth=_DEPTH, name="tar") as tars,
            Threaded(gzip_chunks(tars), depth=_DEPTH, name="gzip") as gzipped,
        ):
            # Step 3, here: hash and write the gzip.
            for data in gzipped:
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
