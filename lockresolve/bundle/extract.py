"""Extract a layer tar safely, into a staging directory moved into place at the end.

imgpkg extracts a pulled layer straight into ``-o`` with no guard against
``..`` or absolute names. lockresolve reads the tar with its own small parser
(bounded memory: extended headers are capped, file data is streamed) into a
fresh directory next to ``-o``; the caller moves it into place with
:func:`replace_directory` only once every entry was read and accepted, so a
bad layer leaves ``-o`` as it was::

    with staging_directory(out) as tmp:
        files = extract_tar(chunks, tmp)
        ...                                   # e.g. rewrite images.yml
        replace_directory(tmp, out, force=force)

Refused with :class:`UnsafeArchiveError` naming the entry: absolute names,
``..`` components, symlinks, hard links, devices, fifos and unknown entry
types, a path through something that is not a directory, a name given twice
(except a directory given again: imgpkg writes one ``.`` per ``-f``
directory), a declared size above the limit, data shorter than declared, and
corrupt headers.

Like imgpkg: a name holding ``\\`` (layers made on Windows by old imgpkg) is
split at ``\\``; directories are created with mode 0o777 and files with the
owner bits copied to group and other unless the archive gave group or other
bits, both less the umask; setuid, setgid and sticky bits are dropped. Unlike
imgpkg, empty directories are recreated (pass ``empty_dirs=False`` to skip
them), so a pull gives back the tree that was pushed. ``preserve_permissions``
(``pull --preserve-permissions``) gives every file and directory exactly the
permission bits of its entry instead, whatever the umask (directories once
their content is written; the root keeps its own).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from lockresolve.errors import BundleError, UnsafeArchiveError

__all__ = [
    "DEFAULT_LIMITS",
    "ExtractLimits",
    "extract_tar",
    "make_staging_dir",
    "replace_directory",
    "staging_directory",
]

_BLOCK: Final = 512
_READ_SIZE: Final = 1 << 20
_GIB: Final = 1 << 30

_REGULAR: Final = frozenset(b"07\0")
_DIRECTORY: Final = b"5"[0]
_PAX_LOCAL: Final = b"x"[0]
_PAX_GLOBAL: Final = b"g"[0]
_GNU_LONGNAME: Final = b"L"[0]
_GNU_LONGLINK: Final = b"K"[0]
_REFUSED_TYPES: Final = {
    b"1"[0]: "a hard link",
    b"2"[0]: "a symbolic link",
    b"3"[0]: "a character device",
    b"4"[0]: "a block device",
    b"6"[0]: "a fifo",
}


@dataclass(frozen=True)
class ExtractLimits:
    """Caps on what a layer may declare; exceeding one refuses the layer."""

    max_file_size: int = 8 * _GIB
    max_total_size: int | None = None
    max_entries: int = 1_000_000
    max_extended_header_size: int = 1 << 20


DEFAULT_LIMITS: Final = ExtractLimits()

# --- reading the stream ------------------------------------------------------


class _Source:
    """Exact-size reads over an iterable of byte chunks or a binary file."""

    def __init__(self, source: Iterable[bytes] | BinaryIO) -> None:
        self._next: Callable[[], bytes | None]
        if hasattr(source, "read"):
            reader: BinaryIO = source  # type: ignore[assignment]
            self._next = lambda: reader.read(_READ_SIZE) or None
        else:
            chunks = iter(source)
            self._next = lambda: next(chunks, None)
        self._buf = memoryview(b"")

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the stream."""
        if len(self._buf) >= size:  # the common case: one copy, no join
            piece = self._buf[:size]
            self._buf = self._buf[size:]
            return bytes(piece)
        parts: list[bytes] = []
        while size > 0:
            if not self._buf and not self._fill():
                break
            piece = self._buf[:size]
            self._buf = self._buf[len(piece) :]
            parts.append(bytes(piece))
            size -= len(piece)
        return b"".join(parts)

    def read_view(self, size: int) -> memoryview:
        """Up to ``size`` bytes as a view of the current chunk (no copy); empty only at the end.

        The view is valid until the next read.
        """
        if not self._buf and not self._fill():
            return memoryview(b"")
        piece = self._buf[:size]
        self._buf = self._buf[len(piece) :]
        return piece

    def _fill(self) -> bool:
        while (chunk := self._next()) is not None:
            if chunk:  # an iterator may hand out empty chunks mid-stream
                # bytes are immutable: viewed as they are; anything else is copied once
                self._buf = memoryview(chunk if isinstance(chunk, bytes) else bytes(chunk))
                return True
        return False


@dataclass(frozen=True)
class _Header:
    name: str
    linkname: str
    typeflag: int
    size: int
    mode: int


def _parse_number(field: bytes, what: str, name: str) -> int:
    if field[:1] and field[0] & 0x80:
        # GNU base-256: big-endian two's complement, top bit is the marker.
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        if field[0] & 0x40:
            value -= 1 << (8 * len(field) - 1)
        return value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise UnsafeArchiveError(f"tar entry {name!r}: invalid {what} field {field!r}") from None


def _parse_string(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _decode(name: bytes) -> str:
    # The file system encoding round-trips any byte string (surrogateescape).
    return os.fsdecode(name)


def _checksum_ok(block: bytes) -> bool:
    stored = _parse_string(block[148:156]).strip(b" ")
    try:
        expected = int(stored, 8)
    except ValueError:
        return False
    body = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(body)
    if expected == unsigned:
        return True
    # Some old tar writers summed the bytes as signed chars.
    return expected == unsigned - 256 * sum(1 for b in body if b > 127)


def _parse_pax(data: bytes, name: str) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    rest = data
    while rest:
        length_text, sep, _ = rest.partition(b" ")
        if not sep or not length_text.isdigit():
            raise UnsafeArchiveError(f"tar entry {name!r}: malformed PAX record")
        length = int(length_text)
        record = rest[:length]
        if length <= len(length_text) + 1 or len(record) != length or record[-1:] != b"\n":
            raise UnsafeArchiveError(f"tar entry {name!r}: malformed PAX record")
        key, eq, value = record[len(length_text) + 1 : -1].partition(b"=")
        if not eq:
            raise UnsafeArchiveError(f"tar entry {name!r}: malformed PAX record")
        records[key.decode("utf-8", "replace")] = value
        rest = rest[length:]
    return records


class _TarReader:
    """Go ``archive/tar``'s reader, reduced to what a layer may contain."""

    def __init__(self, source: _Source, limits: ExtractLimits) -> None:
        self._src = source
        self._limits = limits

    def _block(self, what: str) -> bytes | None:
        block = self._src.read(_BLOCK)
        if not block:
            return None
        if len(block) < _BLOCK:
            raise UnsafeArchiveError(f"tar stream ends inside {what}")
        return block

    def _special_data(self, size: int, name: str) -> bytes:
        if size > self._limits.max_extended_header_size:
            raise UnsafeArchiveError(
                f"tar entry {name!r}: extended header of {size} bytes is over the limit"
            )
        data = self._src.read(size)
        if len(data) < size:
            raise UnsafeArchiveError(f"tar entry {name!r}: data shorter than its declared size")
        self.skip_padding(size, name)
        return data

    def skip_padding(self, size: int, name: str) -> None:
        pad = -size % _BLOCK
        if pad and len(self._src.read(pad)) < pad:
            raise UnsafeArchiveError(f"tar entry {name!r}: data shorter than its declared size")

    def read_data(self, size: int) -> bytes:
        return self._src.read(size)

    def read_data_view(self, size: int) -> memoryview:
        """Up to ``size`` bytes of file data without copying them (see ``_Source.read_view``)."""
        return self._src.read_view(size)

    def _header_block(self) -> bytes | None:
        """The next header block; None at the end (EOF, or two zero blocks, as Go reads it)."""
        block = self._block("a header")
        if block is None or block != bytes(_BLOCK):
            return block
        second = self._block("the end-of-archive marker")
        if second is not None and second != bytes(_BLOCK):
            raise UnsafeArchiveError("tar stream has a zero block followed by a header")
        return None

    def next(self) -> _Header | None:
        """The next entry's header, extended headers applied; None at the end."""
        pax: dict[str, bytes] = {}
        long_names: dict[int, bytes] = {}
        while (block := self._header_block()) is not None:
            raw_name = _parse_string(block[0:100])
            shown = _decode(raw_name)
            if not _checksum_ok(block):
                raise UnsafeArchiveError(f"tar entry {shown!r}: bad header checksum")
            typeflag = block[156]
            size = _parse_number(block[124:136], "size", shown)
            if typeflag in (_PAX_LOCAL, _PAX_GLOBAL):
                data = self._special_data(size, shown)
                if typeflag == _PAX_LOCAL:  # global headers are ignored, as imgpkg does
                    pax.update(_parse_pax(data, shown))
            elif typeflag in (_GNU_LONGNAME, _GNU_LONGLINK):
                long_names[typeflag] = _parse_string(self._special_data(size, shown))
            else:
                return _entry_header(block, typeflag, size, pax, long_names)
        if pax or long_names:
            raise UnsafeArchiveError("tar stream ends after an extended header")
        return None


def _entry_header(
    block: bytes, typeflag: int, size: int, pax: dict[str, bytes], long_names: dict[int, bytes]
) -> _Header:
    """Combine an entry's own header block with the extended headers before it."""
    name = _parse_string(block[0:100])
    if block[257:263] == b"ustar\0" and (prefix := _parse_string(block[345:500])):
        name = prefix + b"/" + name
    name = pax.get("path", long_names.get(_GNU_LONGNAME, name))
    link = pax.get("linkpath", long_names.get(_GNU_LONGLINK, _parse_string(block[157:257])))
    shown = _decode(name)
    if any(key.startswith("GNU.sparse") for key in pax):
        raise UnsafeArchiveError(f"tar entry {shown!r}: sparse files are not supported")
    if "size" in pax:
        if not pax["size"].isdigit():
            raise UnsafeArchiveError(f"tar entry {shown!r}: invalid PAX size")
        size = int(pax["size"])
    if size < 0:
        raise UnsafeArchiveError(f"tar entry {shown!r}: negative size")
    if typeflag == 0 and name.endswith(b"/"):
        typeflag = _DIRECTORY  # old tar: a "regular file" with a trailing slash
    mode = _parse_number(block[100:108], "mode", shown)
    return _Header(shown, _decode(link), typeflag, size, mode)


# --- extracting --------------------------------------------------------------


def _components(name: str) -> tuple[str, ...]:
    """The path components of an archive name, refusing anything that escapes."""
    separators = "\\" if "\\" in name else "/"
    if "\0" in name or not name:
        raise UnsafeArchiveError(f"tar entry {name!r}: invalid name")
    if name.startswith(("/", "\\")):
        raise UnsafeArchiveError(f"tar entry {name!r}: absolute path")
    parts = name.replace("\\", "/").split("/") if separators == "\\" else name.split("/")
    if ".." in parts:
        raise UnsafeArchiveError(f"tar entry {name!r}: path contains '..'")
    return tuple(p for p in parts if p not in ("", "."))


def _file_mode(mode: int) -> int:
    """imgpkg: owner bits copied to group and other, unless group/other bits are set."""
    perm = mode & 0o777
    if perm & 0o077:
        return perm
    owner = perm & 0o700
    return owner | owner >> 3 | owner >> 6


def extract_tar(
    source: Iterable[bytes] | BinaryIO,
    dest: str | os.PathLike[str],
    *,
    limits: ExtractLimits = DEFAULT_LIMITS,
    empty_dirs: bool = True,
    preserve_permissions: bool = False,
) -> tuple[str, ...]:
    """Extract the tar read from ``source`` into the empty directory ``dest``.

    ``source`` is an iterable of byte chunks or a binary file object; it is read
    once, front to back. Returns the archive paths (``/``-separated) of the
    regular files written, in archive order. On :class:`UnsafeArchiveError`
    ``dest`` holds a partial tree: extract into a staging directory (see
    :func:`staging_directory`) and throw it away on failure.
    """
    root = os.fspath(dest)
    try:
        dir_modes: dict[tuple[str, ...], int] | None = {} if preserve_permissions else None
        files = _extract(_TarReader(_Source(source), limits), root, limits, empty_dirs, dir_modes)
        for parts in sorted(dir_modes or {}, key=len, reverse=True):  # children first
            os.chmod(os.path.join(root, *parts), (dir_modes or {})[parts])
        return files
    except OSError as exc:
        raise BundleError(f"Extracting layer into '{os.fspath(dest)}': {exc}") from exc


def _extract(
    reader: _TarReader,
    root: str,
    limits: ExtractLimits,
    empty_dirs: bool,
    dir_modes: dict[tuple[str, ...], int] | None = None,
) -> tuple[str, ...]:
    """``dir_modes`` not None: ``--preserve-permissions`` (exact modes; folders' are
    recorded there, to be applied once their content is written)."""
    kinds: dict[tuple[str, ...], str] = {(): "dir"}
    files: list[str] = []
    entries = 0
    total = 0
    while (header := reader.next()) is not None:
        entries += 1
        if entries > limits.max_entries:
            raise UnsafeArchiveError(f"layer has more than {limits.max_entries} entries")
        name = header.name
        parts = _components(name)
        refused = _REFUSED_TYPES.get(header.typeflag)
        if refused is not None:
            raise UnsafeArchiveError(f"tar entry {name!r} is {refused}, which is not allowed")
        is_dir = header.typeflag == _DIRECTORY
        if not is_dir and header.typeflag not in _REGULAR:
            raise UnsafeArchiveError(
                f"tar entry {name!r} has unsupported type {chr(header.typeflag)!r}"
            )
        if not is_dir and not parts:
            raise UnsafeArchiveError(f"tar entry {name!r}: a file cannot be the root")
        for depth in range(1, len(parts)):
            if kinds.get(parts[:depth], "dir") != "dir":
                raise UnsafeArchiveError(
                    f"tar entry {name!r} passes through {'/'.join(parts[:depth])!r}, "
                    "which is not a directory"
                )
        seen = kinds.get(parts)
        if seen is not None and not (is_dir and seen == "dir"):
            raise UnsafeArchiveError(f"tar entry {name!r} appears more than once")
        if is_dir:
            if empty_dirs or not parts:
                _make_dirs(root, parts, kinds)
            kinds[parts] = "dir"
            if dir_modes is not None and parts and empty_dirs:
                dir_modes[parts] = header.mode & 0o777
            continue
        if header.size > limits.max_file_size:
            raise UnsafeArchiveError(
                f"tar entry {name!r} declares {header.size} bytes, "
                f"over the limit of {limits.max_file_size}"
            )
        total += header.size
        if limits.max_total_size is not None and total > limits.max_total_size:
            raise UnsafeArchiveError(
                f"layer declares more than {limits.max_total_size} bytes of files"
            )
        _make_dirs(root, parts[:-1], kinds)
        kinds[parts] = "file"
        _write_file(reader, root, parts, header, exact=dir_modes is not None)
        files.append("/".join(parts))
    return tuple(files)


def _make_dirs(root: str, parts: tuple[str, ...], kinds: dict[tuple[str, ...], str]) -> None:
    for depth in range(1, len(parts) + 1):
        key = parts[:depth]
        path = os.path.join(root, *key)
        if not os.path.isdir(path):
            os.mkdir(path, 0o777)
        kinds.setdefault(key, "dir")


def _write_file(
    reader: _TarReader, root: str, parts: tuple[str, ...], header: _Header, *, exact: bool = False
) -> None:
    path = os.path.join(root, *parts)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600 if exact else _file_mode(header.mode))
    if exact:  # the archive's permission bits, whatever the umask
        os.fchmod(fd, header.mode & 0o777)
    with open(fd, "wb") as out:
        remaining = header.size
        while remaining:
            # Straight from the decompressed chunk to the file: no copy per file.
            data = reader.read_data_view(remaining)
            if not data:
                raise UnsafeArchiveError(
                    f"tar entry {header.name!r}: data shorter than its declared size "
                    f"({header.size - remaining} of {header.size} bytes)"
                )
            out.write(data)
            remaining -= len(data)
    reader.skip_padding(header.size, header.name)


# --- staging and the final move ----------------------------------------------


def make_staging_dir(out: str | os.PathLike[str]) -> Path:
    """Create a fresh, empty directory next to ``out`` (same file system, so a rename works).

    Created with mode 0o777 less the umask, like ``-o`` itself would be; the
    parents of ``out`` are created when missing.
    """
    target = Path(os.path.abspath(os.fspath(out)))
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        candidate = target.parent / f".{target.name}.lockresolve-{secrets.token_hex(6)}"
        try:
            candidate.mkdir(0o777)
        except FileExistsError:
            continue
        return candidate


@contextlib.contextmanager
def staging_directory(out: str | os.PathLike[str]) -> Iterator[Path]:
    """A staging directory for ``out``, removed on exit unless it was moved into place."""
    staging = make_staging_dir(out)
    try:
        yield staging
    finally:
        if os.path.lexists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def replace_directory(
    staging: str | os.PathLike[str], out: str | os.PathLike[str], *, force: bool
) -> None:
    """Move ``staging`` to ``out``.

    A missing or empty ``out`` is replaced at once. A non-empty directory (or
    anything else at ``out``) is refused with :class:`BundleError` unless
    ``force``; then it is moved aside, ``staging`` is moved in, and the old
    content is deleted. On failure ``out`` is left as it was.
    """
    src = os.fspath(staging)
    dst = os.path.abspath(os.fspath(out))
    try:
        st = os.lstat(dst)
    except FileNotFoundError:
        _rename(src, dst)
        return
    except OSError as exc:
        raise BundleError(f"Checking output directory '{dst}': {exc.strerror}") from None
    is_dir = stat.S_ISDIR(st.st_mode)
    if is_dir and _is_empty_dir(dst):
        _rename(src, dst)
        return
    if not force:
        what = "directory is not empty" if is_dir else "path exists and is not a directory"
        raise BundleError(f"Output {what}: '{dst}' (use --force to replace it)")
    aside = f"{dst}.lockresolve-old-{secrets.token_hex(6)}"
    _rename(dst, aside)
    try:
        _rename(src, dst)
    except BaseException:
        os.rename(aside, dst)
        raise
    if is_dir:
        shutil.rmtree(aside, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(aside)


def _is_empty_dir(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except OSError as exc:
        raise BundleError(f"Reading output directory '{path}': {exc.strerror}") from None


def _rename(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except OSError as exc:
        raise BundleError(f"Moving '{src}' to '{dst}': {exc.strerror}") from None
