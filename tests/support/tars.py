"""Tar archives built member by member, hostile ones included."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable

#: a member's header and its data; ``None`` writes the header alone
Member = tuple[tarfile.TarInfo, bytes | None]


def tar_of(members: Iterable[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar of ``members``, in order.

    A member without data gets its header alone: that is how a hostile archive
    declares a size it never delivers.  ``TarFile.addfile`` wrote such headers
    before Python 3.13 and refuses them since, so they are written here
    directly (the bytes are the same).
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            if data is None:
                header = info.tobuf(tar.format, tar.encoding, tar.errors)
                buf.write(header)
                tar.offset += len(header)
            else:
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
