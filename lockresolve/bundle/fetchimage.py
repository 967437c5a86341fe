"""Download an image's layers and extract them into a (staging) directory, for ``pull``.

A one-layer image (every bundle) is extracted while it downloads: the blob's
chunks go through a small bounded stream from the download task to the safe
extractor in a worker thread, nothing is written to a temporary file, and the
client checks the digest when the last chunk is read. The layers of a
multi-layer image are downloaded to temporary files (concurrently, verified by
the client), then extracted in order and merged (:func:`unpack_layers`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.to_thread

from lockresolve.bundle.progress import Progress
from lockresolve.bundle.remote import RemoteImage
from lockresolve.bundle.unpack import DownloadedLayer, unpack_layers, unpack_stream
from lockresolve.errors import LockresolveError
from lockresolve.registry.client import RegistryClient

__all__ = ["extract_image"]

# Blob chunks between the download and the extractor, and their size: enough
# to keep both busy, little memory.
_STREAM_DEPTH = 4
_STREAM_CHUNK = 256 << 10


@dataclass(frozen=True)
class _Fetch:
    client: RegistryClient
    progress: Progress
    on_line: Callable[[str], None]
    workdir: Path
    preserve_permissions: bool = False


async def _download_layers(
    ctx: _Fetch, image: RemoteImage, directory: Path
) -> list[DownloadedLayer]:
    descriptors = image.layers
    diff_ids = image.diff_ids
    layers = [
        DownloadedLayer(
            path=directory / f"{i}-{d.digest.replace(':', '-')}",
            digest=d.digest,
            media_type=d.media_type,
            diff_id=diff_ids[i] if i < len(diff_ids) else None,
        )
        for i, d in enumerate(descriptors)
    ]
    for d in descriptors:
        ctx.progress.expect(d.size)

    sizes = {d.digest: d.size for d in descriptors}

    async def fetch(layer: DownloadedLayer) -> None:
        async with await anyio.open_file(layer.path, "wb") as fh:
            async for chunk in ctx.client.get_blob(
                image.ref.registry,
                image.ref.repository,
                layer.digest,
                size=sizes[layer.digest] or None,
            ):
                await fh.write(chunk)
                ctx.progress.advance(len(chunk))

    # A few workers, not a task per layer: at most --concurrency layers are open
    # at once, whatever the image holds (the client bounds requests per host,
    # these bound the streams and the temporary files being written).
    pending = iter(layers)

    async def worker() -> None:
        for layer in pending:  # shared: each layer is taken by one worker
            await fetch(layer)

    async with anyio.create_task_group() as tg:
        for _ in range(max(1, min(ctx.client.policy.concurrency, len(layers)))):
            tg.start_soon(worker)
    return layers


async def extract_image(
    client: RegistryClient,
    image: RemoteImage,
    dest: Path,
    *,
    workdir: Path,
    progress: Progress,
    on_line: Callable[[str], None],
    indent: str,
    preserve_permissions: bool = False,
) -> None:
    """Download the layers of ``image`` and extract them into ``dest`` (a staging directory)."""
    ctx = _Fetch(client, progress, on_line, workdir, preserve_permissions)
    if len(image.layers) == 1:
        await _stream_single_layer(ctx, image, dest, indent)
        return
    directory = Path(tempfile.mkdtemp(prefix="layers-", dir=ctx.workdir))
    layers = await _download_layers(ctx, image, directory)
    total = len(layers)
    lines: list[str] = []

    def note(index: int, layer: DownloadedLayer) -> None:
        lines.append(f"{indent}Extracting layer '{layer.digest}' ({index + 1}/{total})")

    dest.mkdir(parents=True, exist_ok=True)
    await anyio.to_thread.run_sync(
        lambda: unpack_layers(
            layers, dest, on_layer=note, preserve_permissions=ctx.preserve_permissions
        )
    )
    for line in lines:
        ctx.on_line(line)
    for layer in layers:
        layer.path.unlink(missing_ok=True)


async def _stream_single_layer(ctx: _Fetch, image: RemoteImage, dest: Path, indent: str) -> None:
    """Download a one-layer image and extract it at the same time (bundles have one layer).

    The download task hands the blob's chunks through a small bounded stream to
    the extractor in a worker thread (gunzip, diff_id hash, file writes release
    the GIL), so nothing is written to a temporary file and the pull takes about
    as long as the slower of the two. The client checks the blob's digest when
    the last chunk has been read; until then (and on any failure) the files are
    only in the staging directory, which the caller throws away on an error. A
    download error wins over the extractor's (which would only see a truncated
    stream).
    """
    (descriptor,) = image.layers
    diff_ids = image.diff_ids
    layer = DownloadedLayer(
        path=ctx.workdir / "unused",
        digest=descriptor.digest,
        media_type=descriptor.media_type,
        diff_id=diff_ids[0] if diff_ids else None,
    )
    ctx.progress.expect(descriptor.size)
    send, receive = anyio.create_memory_object_stream[bytes](max_buffer_size=_STREAM_DEPTH)
    download_error: list[LockresolveError] = []

    async def download() -> None:
        async with send:
            try:
                async for chunk in ctx.client.get_blob(
                    image.ref.registry,
                    image.ref.repository,
                    layer.digest,
                    chunk_size=_STREAM_CHUNK,
                    size=descriptor.size or None,
                ):
                    await send.send(chunk)
                    ctx.progress.advance(len(chunk))
            except anyio.BrokenResourceError:
                pass  # the extractor stopped first: its error is raised
            except LockresolveError as exc:
                download_error.append(exc)

    def blob() -> Iterator[bytes]:
        while True:
            try:
                yield anyio.from_thread.run(receive.receive)
            except anyio.EndOfStream:
                return

    dest.mkdir(parents=True, exist_ok=True)
    extract_error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(download)
        try:
            await anyio.to_thread.run_sync(
                lambda: unpack_stream(
                    blob(), layer, dest, preserve_permissions=ctx.preserve_permissions
                )
            )
        except Exception as exc:
            extract_error = exc
        finally:
            receive.close()
    if download_error:
        raise download_error[0]
    if extract_error is not None:
        raise extract_error
    ctx.on_line(f"{indent}Extracting layer '{layer.digest}' (1/1)")
