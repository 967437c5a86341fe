"""Which inputs ``-f`` names, and how their bytes become text (kbld's rules).

* ``-f`` is repeatable and each value is split on commas (pflag's
  ``StringSlice``: a CSV record, so ``"a,b.yml"`` in double quotes is one name).
* ``-`` is stdin; ``http://`` and ``https://`` values are URLs.
* A directory is walked recursively (symlinked directories are not followed)
  keeping files whose extension is exactly ``.yml``, ``.yaml`` or ``.json``;
  the paths are sorted bytewise as full paths. A file named directly is read
  whatever its extension.
* Text must be UTF-8 (a UTF-8 BOM is dropped); NUL bytes mean binary content.

The engine does the reading; everything here is pure except the directory walk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from lockresolve.errors import InputError, UsageError, YAMLInputError

__all__ = ["SourceKind", "SourceSpec", "decode_source", "expand_paths", "split_file_flag"]

_EXTENSIONS = (".json", ".yaml", ".yml")


class SourceKind(Enum):
    FILE = "file"
    STDIN = "stdin"
    URL = "url"


@dataclass(frozen=True)
class SourceSpec:
    """One input to read: a local file, stdin, or an http(s) URL."""

    kind: SourceKind
    location: str  # the path, "-", or the URL

    @property
    def name(self) -> str:
        """How messages name this input (a URL without its user information or tokens)."""
        if self.kind is SourceKind.URL:
            from lockresolve.registry.protocol import redact_url

            return redact_url(self.location)
        return "stdin" if self.kind is SourceKind.STDIN else self.location


def split_file_flag(value: str) -> list[str]:
    """One ``-f`` value as pflag splits it (Go ``encoding/csv``, one record)."""
    if value == "":
        return []
    fields: list[str] = []
    i, n = 0, len(value)
    while True:
        if i < n and value[i] == '"':
            i += 1
            field: list[str] = []
            while True:
                if i >= n:
                    raise UsageError(f'-f {value!r}: extraneous or missing " in quoted-field')
                if value[i] == '"':
                    if i + 1 < n and value[i + 1] == '"':
                        field.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                field.append(value[i])
                i += 1
            if i < n and value[i] != ",":
                raise UsageError(f'-f {value!r}: extraneous or missing " in quoted-field')
            fields.append("".join(field))
        else:
            cut = value.find(",", i)
            end = n if cut < 0 else cut
            raw = value[i:end]
            if '"' in raw:
                raise UsageError(f'-f {value!r}: bare " in non-quoted-field')
            fields.append(raw)
            i = end
        if i >= n:
            return fields
        i += 1  # the comma
        if i == n:
            fields.append("")
            return fields


def _walk(root: str) -> list[str]:
    """``filepath.Walk`` + extension filter + ``sort.Strings``."""
    found: list[str] = []

    def fail(err: OSError) -> None:
        raise InputError(f"Listing files '{root}': {err.strerror or err}", root)

    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        dirnames.sort()
        for name in filenames:
            if os.path.splitext(name)[1] in _EXTENSIONS:
                found.append(os.path.normpath(os.path.join(dirpath, name)))
        # symlinks to directories show up in dirnames but are not walked by
        # os.walk (followlinks=False); Go lists them as files by extension
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and os.path.splitext(name)[1] in _EXTENSIONS:
                found.append(os.path.normpath(full))
    return sorted(found, key=os.fsencode)


def expand_paths(args: Sequence[str]) -> list[SourceSpec]:
    """Every input the ``-f`` values name, in order (directories expanded)."""
    specs: list[SourceSpec] = []
    for arg in args:
        for item in split_file_flag(arg):
            if item == "-":
                specs.append(SourceSpec(SourceKind.STDIN, "-"))
            elif item.startswith(("http://", "https://")):
                specs.append(SourceSpec(SourceKind.URL, item))
            elif os.path.isdir(item):
                specs.extend(SourceSpec(SourceKind.FILE, p) for p in _walk(item))
            elif os.path.lexists(item) or os.path.exists(item):
                specs.append(SourceSpec(SourceKind.FILE, item))
            else:
                raise InputError("Unable to stat file: no such file or directory", item)
    return specs


def decode_source(name: str, data: bytes) -> str:
    """Bytes of an input as text; one-line :class:`YAMLInputError` if not UTF-8 text."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YAMLInputError("file is UTF-16 encoded; only UTF-8 is supported", name, 1)
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise YAMLInputError("binary content (NUL byte), not YAML", name, line)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YAMLInputError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column})", name, line
        ) from None
