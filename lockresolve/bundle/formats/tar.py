"""imgpkg's deterministic layer tar: plan the entries, then stream the bytes.

imgpkg (``pkg/imgpkg/image/tar_image.go``) walks each ``-f`` path with Go's
``filepath.Walk`` and writes every entry with Go's ``archive/tar``; the same
files always give the same bytes, so the same diff_id. This module reproduces
those bytes:

- :func:`plan_layer` walks the paths (no file data is read) and returns a
  :class:`LayerPlan`: the entries in archive order, with the ``dir: <rel>`` /
  ``file: <rel>`` lines imgpkg prints and the exact size of the tar;
- :func:`iter_tar` streams the tar in chunks, reading one file at a time, so
  memory stays flat whatever the size of the bundle.

Header rules (Go's writer with an unspecified format): USTAR when the name is
ASCII and fits in 100 bytes or splits at a ``/`` into prefix (<= 155) and name
(<= 100); otherwise a PAX ``x`` header carrying ``path`` (and ``size`` for a
file of 8 GiB or more) comes first. uid/gid 0, empty user and group names,
mtime 0, directories mode 0o700 and files ``st_mode & 0o700``. The archive ends
with two zero blocks and is not padded to a record.

Differences from imgpkg, all for inputs imgpkg refuses or mishandles: an
excluded symlink, fifo or device is skipped instead of failing the push, an
excluded directory is never read, and duplicate archive paths are looked for
after exclusions (imgpkg also counts excluded files, e.g. two ``.git``).
``--preserve-permissions`` is not implemented.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from lockresolve.errors import BundleError, InputError

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_EXCLUSIONS",
    "EntryKind",
    "LayerEntry",
    "LayerPlan",
    "iter_tar",
    "plan_layer",
    "walk_tree",
]

BLOCK_SIZE: Final = 512
DEFAULT_EXCLUSIONS: Final[tuple[str, ...]] = (".git",)
DEFAULT_CHUNK_SIZE: Final = 1 << 20

_NAME_SIZE: Final = 100
_PREFIX_SIZE: Final = 155
_MAX_OCTAL_SIZE: Final = 8**11  # sizes from here on need a PAX "size" record
_DIR_MODE: Final = 0o700
_END_OF_ARCHIVE: Final = bytes(2 * BLOCK_SIZE)


class EntryKind(enum.Enum):
    """What an archive entry is; the value is the word imgpkg prints."""

    DIR = "dir"
    FILE = "file"


@dataclass(frozen=True)
class LayerEntry:
    """One entry of the layer, in archive order.

    ``name`` is the archive path (``/``-separated, ``.`` for the root of a
    ``-f`` directory); ``source`` the path it is read from; ``size`` and
    ``mode`` are the values written to the header.
    """

    name: str
    kind: EntryKind
    source: str
    size: int
    mode: int

    @property
    def log_line(self) -> str:
        """The line imgpkg prints for this entry, e.g. ``file: config/app.yml``."""
        return f"{self.kind.value}: {self.name}"

    def header(self) -> bytes:
        """The header block(s) of this entry: an optional PAX header, then the entry's."""
        typeflag = b"5" if self.kind is EntryKind.DIR else b"0"
        return _entry_header(_name_bytes(self.name), typeflag, self.size, self.mode)


@dataclass(frozen=True)
class LayerPlan:
    """The ordered entries of a layer, known before any file data is read."""

    entries: tuple[LayerEntry, ...]

    @property
    def log_lines(self) -> tuple[str, ...]:
        """imgpkg's ``dir: ...`` / ``file: ...`` lines, in the order it prints them."""
        return tuple(entry.log_line for entry in self.entries)

    @property
    def tar_size(self) -> int:
        """The exact length in bytes of the tar :func:`iter_tar` will produce."""
        total = len(_END_OF_ARCHIVE)
        for entry in self.entries:
            total += len(entry.header()) + _padded(entry.size)
        return total


# --- walking -----------------------------------------------------------------


def walk_tree(
    root: str, prune: Callable[[str, os.stat_result], bool] | None = None
) -> Iterator[tuple[str, str, os.stat_result]]:
    """Walk ``root`` like Go's ``filepath.Walk``: yield ``(path, rel, lstat)``.

    Depth first, parents before children, children in byte order of their
    names, nothing followed through symlinks; ``rel`` is the path relative to
    ``root`` (``.`` for the root itself). When ``prune(rel, st)`` is true the
    entry is neither yielded nor, for a directory, read. OS failures raise
    :class:`InputError` with Go's wording (``lstat <path>: <reason>``).
    """
    st = _lstat(root)
    stack: list[tuple[str, str, os.stat_result]] = [(root, ".", st)]
    while stack:
        path, rel, st = stack.pop()
        if prune is not None and prune(rel, st):
            continue
        yield path, rel, st
        if not stat.S_ISDIR(st.st_mode):
            continue
        children: list[tuple[str, str, os.stat_result]] = []
        for name in _sorted_names(path):
            child = os.path.join(path, name)
            child_rel = name if rel == "." else f"{rel}/{name}"
            children.append((child, child_rel, _lstat(child)))
        stack.extend(reversed(children))


def _sorted_names(path: str) -> list[str]:
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise _os_error("open", path, exc) from None
    return sorted(names, key=os.fsencode)


def _lstat(path: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except OSError as exc:
        raise _os_error("lstat", path, exc) from None


def _os_error(op: str, path: str, exc: OSError) -> InputError:
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return InputError(f"{op} {path}: {reason[:1].lower()}{reason[1:]}")


# --- planning ----------------------------------------------------------------


def plan_layer(
    paths: Sequence[str | os.PathLike[str]],
    exclusions: Iterable[str] = DEFAULT_EXCLUSIONS,
) -> LayerPlan:
    """Plan the layer for the ``-f`` ``paths`` (in order) and ``--file-exclusion`` list.

    A directory contributes a ``.`` entry and its contents; a file given
    directly is stored under its base name. An exclusion is an exact match on
    the path relative to its ``-f`` root; an excluded directory drops its
    subtree. Raises :class:`BundleError` for a symlink, fifo or device inside
    a walked directory and for two entries with the same archive path,
    :class:`InputError` when a path cannot be read.
    """
    excluded = frozenset(exclusions)
    entries: list[LayerEntry] = []
    for raw in paths:
        path = os.fspath(raw)
        st = _stat(path)
        if stat.S_ISDIR(st.st_mode):
            entries.extend(_plan_directory(path, excluded))
        else:
            name = os.path.basename(path.rstrip("/")) or path
            if name in excluded:
                continue
            if not stat.S_ISREG(st.st_mode):
                raise BundleError(f"Expected file '{path}' to be a regular file")
            entries.append(LayerEntry(name, EntryKind.FILE, path, st.st_size, st.st_mode & 0o700))
    _check_duplicates(entries)
    return LayerPlan(tuple(entries))


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        raise _os_error("stat", path, exc) from None


def _plan_directory(root: str, excluded: frozenset[str]) -> Iterator[LayerEntry]:
    for path, rel, st in walk_tree(root, lambda rel, _st: rel in excluded):
        if stat.S_ISDIR(st.st_mode):
            yield LayerEntry(rel, EntryKind.DIR, path, 0, _DIR_MODE)
        elif stat.S_ISREG(st.st_mode):
            yield LayerEntry(rel, EntryKind.FILE, path, st.st_size, st.st_mode & 0o700)
        else:
            raise BundleError(
                f"Adding file '{root}' to tar: Expected file '{path}' to be a regular file"
            )


def _check_duplicates(entries: Sequence[LayerEntry]) -> None:
    sources: dict[str, list[str]] = {}
    for entry in entries:
        if entry.name != ".":
            sources.setdefault(entry.name, []).append(entry.source)
    repeated = [src for group in sources.values() if len(group) > 1 for src in group]
    if repeated:
        raise BundleError(f"Found duplicate paths: {', '.join(repeated)}")


# --- writing -----------------------------------------------------------------


def iter_tar(plan: LayerPlan, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Stream the layer tar of ``plan`` in chunks of ``chunk_size`` bytes (the last may be shorter).

    Files are read while streaming; one that changed size since it was planned
    raises :class:`BundleError`, one that cannot be read :class:`InputError`.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    buf = bytearray()
    for entry in plan.entries:
        buf += entry.header()
        if entry.kind is EntryKind.FILE:
            for piece in _file_pieces(entry, chunk_size):
                buf += piece
                while len(buf) >= chunk_size:
                    yield bytes(buf[:chunk_size])
                    del buf[:chunk_size]
            buf += bytes(_padded(entry.size) - entry.size)
        while len(buf) >= chunk_size:
            yield bytes(buf[:chunk_size])
            del buf[:chunk_size]
    buf += _END_OF_ARCHIVE
    for start in range(0, len(buf), chunk_size):
        yield bytes(buf[start : start + chunk_size])


def _file_pieces(entry: LayerEntry, chunk_size: int) -> Iterator[bytes]:
    try:
        # O_NONBLOCK: a fifo swapped in since planning must not hang the push.
        fd = os.open(entry.source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BundleError(f"Expected file '{entry.source}' to be a regular file")
            remaining = entry.size
            while remaining:
                piece = fh.read(min(chunk_size, remaining))
                if not piece:
                    break
                remaining -= len(piece)
                yield piece
            if remaining or fh.read(1):
                raise BundleError(f"File '{entry.source}' changed size while it was being archived")
    except OSError as exc:
        raise _os_error("read", entry.source, exc) from None


def _padded(size: int) -> int:
    return -(-size // BLOCK_SIZE) * BLOCK_SIZE


def _name_bytes(name: str) -> bytes:
    return os.fsencode(name)


def _entry_header(name: bytes, typeflag: bytes, size: int, mode: int) -> bytes:
    """Go's ``tar.Writer.WriteHeader`` for a header with no format chosen."""
    needs_pax_path = len(name) > _NAME_SIZE or not name.isascii()
    split = _split_ustar_path(name) if needs_pax_path else None
    size_fits = size < _MAX_OCTAL_SIZE
    if size_fits and (not needs_pax_path or split is not None):
        prefix, short = split if split is not None else (b"", name)
        return _header_block(short, typeflag, size, mode, prefix=prefix)

    records: dict[str, bytes] = {}
    if needs_pax_path:
        records["path"] = name
    if not size_fits:
        records["size"] = str(size).encode()
    data = b"".join(_pax_record(key, records[key]) for key in sorted(records))
    head, _, base = name.rpartition(b"/")
    pax_name = (head + b"/" if head else b"") + b"PaxHeaders.0/" + base
    pax_name = _to_ascii(pax_name)[:_NAME_SIZE].rstrip(b"/")
    pax = _pax_header_block(pax_name, len(data))
    main = _header_block(_to_ascii(name), typeflag, size if size_fits else 0, mode, prefix=b"")
    return pax + data + bytes(_padded(len(data)) - len(data)) + main


def _split_ustar_path(name: bytes) -> tuple[bytes, bytes] | None:
    """Go's ``splitUSTARPath``: (prefix, name) split at a ``/``, or None."""
    length = len(name)
    if length <= _NAME_SIZE or not name.isascii():
        return None
    if length > _PREFIX_SIZE + 1:
        length = _PREFIX_SIZE + 1
    elif name[length - 1 : length] == b"/":
        length -= 1
    i = name.rfind(b"/", 0, length)
    suffix_len = len(name) - i - 1
    if i <= 0 or suffix_len > _NAME_SIZE or suffix_len == 0 or i > _PREFIX_SIZE:
        return None
    return name[:i], name[i + 1 :]


def _to_ascii(name: bytes) -> bytes:
    """Go's ``toASCII``: drop every byte of a non-ASCII rune, and NULs."""
    return bytes(b for b in name if 0 < b < 0x80)


def _pax_record(key: str, value: bytes) -> bytes:
    """Go's ``formatPAXRecord``: ``"<len> key=value\\n"``, len counting itself."""
    body = b" " + key.encode() + b"=" + value + b"\n"
    size = len(body) + len(str(len(body)))
    if len(str(size)) + len(body) != size:
        size = len(str(size)) + len(body)
    return str(size).encode() + body


def _octal(value: int, width: int) -> bytes:
    """Zero-padded octal with a trailing NUL; Go writes 0 when it does not fit."""
    digits = format(value, "o")
    if value < 0 or len(digits) > width - 1:
        digits = "0"
    return digits.rjust(width - 1, "0").encode() + b"\0"


def _string_field(value: bytes, width: int) -> bytes:
    """Go's ``formatString``: copy, cut to the field, NUL-padded."""
    field = bytearray(value[:width].ljust(width, b"\0"))
    if len(value) > width and field[-1:] == b"/":
        # Go replaces trailing slashes of a cut name with NULs.
        kept = len(bytes(field).rstrip(b"/"))
        field[kept:] = bytes(width - kept)
    return bytes(field)


def _header_block(name: bytes, typeflag: bytes, size: int, mode: int, *, prefix: bytes) -> bytes:
    block = bytearray(BLOCK_SIZE)
    block[0:100] = _string_field(name, 100)
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(0, 8)  # uid
    block[116:124] = _octal(0, 8)  # gid
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(0, 12)  # mtime
    block[156:157] = typeflag
    block[329:337] = _octal(0, 8)  # devmajor
    block[337:345] = _octal(0, 8)  # devminor
    block[345:500] = _string_field(prefix, 155)
    return _finish_block(block)


def _pax_header_block(name: bytes, size: int) -> bytes:
    """Go's ``writeRawFile``: only name, mode, uid, gid, size and mtime are set."""
    block = bytearray(BLOCK_SIZE)
    block[0:100] = _string_field(name, 100)
    block[100:108] = _octal(0, 8)
    block[108:116] = _octal(0, 8)
    block[116:124] = _octal(0, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(0, 12)
    block[156:157] = b"x"
    return _finish_block(block)


def _finish_block(block: bytearray) -> bytes:
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[148:156] = b" " * 8
    checksum = sum(block)
    block[148:156] = format(checksum, "o").rjust(6, "0").encode() + b"\0 "
    return bytes(block)
