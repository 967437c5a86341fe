"""Safe extraction: round trips, hostile archives refused, -o replaced only on success."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockresolve.bundle.extract import (
    DEFAULT_LIMITS,
    ExtractLimits,
    extract_tar,
    make_staging_dir,
    replace_directory,
    staging_directory,
)
from lockresolve.bundle.formats.tar import iter_tar, plan_layer
from lockresolve.errors import BundleError, UnsafeArchiveError
from tests.support.bundle_cases import BundleCase, load_cases
from tests.support.tars import Member, tar_of

CASES = load_cases()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _expected_mode(mode: int) -> int:
    """What a pull gives a file pushed with ``mode``: owner bits to all, less the umask."""
    owner = mode & 0o700
    return (owner | owner >> 3 | owner >> 6) & ~_umask()


def _pull(
    source: bytes | Iterable[bytes] | BinaryIO,
    out: Path,
    *,
    force: bool = True,
    limits: ExtractLimits = DEFAULT_LIMITS,
    empty_dirs: bool = True,
) -> tuple[str, ...]:
    """What pull does: extract into a staging directory, then move it to ``out``."""
    chunks = [source] if isinstance(source, bytes) else source
    with staging_directory(out) as tmp:
        files = extract_tar(chunks, tmp, limits=limits, empty_dirs=empty_dirs)
        replace_directory(tmp, out, force=force)
    return files


def _snapshot(root: Path) -> dict[str, tuple[str, bytes | str | None, int]]:
    """Everything under ``root``: kind, content (or link target) and permission bits."""
    found: dict[str, tuple[str, bytes | str | None, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st_ = os.lstat(path)
            rel = os.path.relpath(path, root)
            if stat.S_ISLNK(st_.st_mode):
                found[rel] = ("link", os.readlink(path), 0)
            elif stat.S_ISDIR(st_.st_mode):
                found[rel] = ("dir", None, stat.S_IMODE(st_.st_mode))
            else:
                found[rel] = ("file", Path(path).read_bytes(), stat.S_IMODE(st_.st_mode))
    return found


def _tarfile_contents(data: bytes) -> list[tuple[str, bytes | None]]:
    """What Python's own tar reader finds: names and file contents (None for directories)."""
    found: list[tuple[str, bytes | None]] = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            reader = tar.extractfile(member) if member.isfile() else None
            found.append((member.name, reader.read() if reader is not None else None))
    return found


# --- building archives by hand -----------------------------------------------


def _archive(*members: Member, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    return tar_of(members, fmt)


def _file(name: str, data: bytes = b"data\n", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def _entry(name: str, kind: bytes, linkname: str = "", size: int = 0) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size
    return info, None


# --- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_conformance_layers_extract_to_the_pushed_files(case: BundleCase, tmp_path: Path) -> None:
    root = tmp_path / "root"
    case.materialise(root)
    exclusions = case.exclusions()
    plan = plan_layer(case.file_paths(root), (".git",) if exclusions is None else exclusions)

    files = _pull(iter_tar(plan, 4096), tmp_path / "out")

    assert files == tuple(e.name for e in plan.entries if e.kind.value == "file")
    for entry in plan.entries:
        target = tmp_path / "out" / entry.name
        if entry.kind.value == "dir":
            assert target.is_dir()
        else:
            assert target.read_bytes() == Path(entry.source).read_bytes()
            assert stat.S_IMODE(target.stat().st_mode) == _expected_mode(entry.mode)


def test_empty_directories_are_recreated_unless_asked_not_to(tmp_path: Path) -> None:
    (tmp_path / "root/empty").mkdir(parents=True)
    (tmp_path / "root/a.txt").write_text("a")
    data = b"".join(iter_tar(plan_layer([tmp_path / "root"])))

    _pull(data, tmp_path / "with")
    _pull([data], tmp_path / "without", empty_dirs=False)

    assert (tmp_path / "with/empty").is_dir()
    assert not (tmp_path / "without/empty").exists()
    assert (tmp_path / "without/a.txt").read_text() == "a"


def test_several_root_entries_from_several_directories(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one/a.txt").write_text("a")
    (tmp_path / "two/b.txt").write_text("b")
    plan = plan_layer([tmp_path / "one", tmp_path / "two"])

    assert _pull(iter_tar(plan), tmp_path / "out") == ("a.txt", "b.txt")


def test_file_modes_follow_imgpkg(tmp_path: Path) -> None:
    data = _archive(
        _file("owner-rw", mode=0o600),
        _file("owner-rwx", mode=0o700),
        _file("group-set", mode=0o640),
        _file("setuid", mode=0o4755),
        _file("none", mode=0o000),
    )
    _pull(data, tmp_path / "out")

    modes = {
        n: stat.S_IMODE((tmp_path / "out" / n).stat().st_mode) for n in os.listdir(tmp_path / "out")
    }
    umask = _umask()
    assert modes == {
        "owner-rw": 0o666 & ~umask,
        "owner-rwx": 0o777 & ~umask,
        "group-set": 0o640 & ~umask,
        "setuid": 0o755 & ~umask,  # setuid/setgid/sticky are dropped
        "none": 0o000,
    }


def test_reads_file_objects_and_odd_chunks(tmp_path: Path) -> None:
    data = _archive(_file("a/b.txt", b"x" * 1000), _file("c.txt", b"y"))

    assert _pull(io.BytesIO(data), tmp_path / "fileobj") == ("a/b.txt", "c.txt")
    odd = [data[i : i + 7] for i in range(0, len(data), 7)]
    odd.insert(3, b"")
    assert _pull(odd, tmp_path / "chunks") == ("a/b.txt", "c.txt")
    assert (tmp_path / "chunks/a/b.txt").read_bytes() == b"x" * 1000


def test_gnu_long_names_and_a_missing_end_marker_are_accepted(tmp_path: Path) -> None:
    name = "d" * 120 + "/" + "f" * 120
    data = _archive(_file(name, b"long"), fmt=tarfile.GNU_FORMAT)
    without_end = data[: 512 * 4]  # GNU long name header + name + entry + data, no zero blocks

    assert _pull(without_end, tmp_path / "out") == (name,)
    assert (tmp_path / "out" / name).read_bytes() == b"long"


def test_backslash_names_are_split_like_imgpkg(tmp_path: Path) -> None:
    _pull(_archive(_file("dir\\sub\\file.txt", b"w")), tmp_path / "out")

    assert (tmp_path / "out/dir/sub/file.txt").read_bytes() == b"w"


_name_chars = st.characters(exclude_categories=["Cs"], exclude_characters="/\\\x00")
_short_names = st.text(_name_chars, min_size=1, max_size=30)
_long_names = st.text(st.sampled_from("abé日x"), min_size=90, max_size=110)
_names = st.one_of(_short_names, _long_names).filter(
    lambda n: n not in (".", "..") and len(n.encode()) <= 255
)
_items = st.lists(
    st.tuples(
        st.lists(_names, min_size=1, max_size=8),
        st.binary(max_size=700),
        st.sampled_from([0o644, 0o600, 0o755, 0o700, 0o400, 0o640]),
        st.booleans(),
    ),
    max_size=10,
)


def _build_tree(root: Path, items: list[tuple[list[str], bytes, int, bool]]) -> None:
    kinds: dict[tuple[str, ...], str] = {}
    for parts, data, mode, is_dir in items:
        key = tuple(parts)
        prefixes = [key[:i] for i in range(1, len(key))]
        if key in kinds or any(kinds.get(p) == "file" for p in prefixes):
            continue
        if not is_dir and any(k[: len(key)] == key for k in kinds):
            continue
        path = root.joinpath(*parts)
        if is_dir:
            path.mkdir(parents=True, exist_ok=True)
            kinds[key] = "dir"
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
            kinds[key] = "file"
        for p in prefixes:
            kinds[p] = "dir"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_items, st.sampled_from([7, 97, 512, 1 << 16]))
def test_round_trip_property(items: list[tuple[list[str], bytes, int, bool]], chunk: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        _build_tree(root, items)
        plan = plan_layer([root], ())
        data = b"".join(iter_tar(plan, chunk))
        assert len(data) == plan.tar_size

        # An independent reader sees the same names and bytes.
        assert _tarfile_contents(data) == [
            (e.name, Path(e.source).read_bytes() if e.kind.value == "file" else None)
            for e in plan.entries
        ]

        out = Path(tmp) / "out"
        _pull([data[i : i + chunk] for i in range(0, len(data), chunk)], out)

        source = _snapshot(root)
        expected = {
            rel: (kind, content, _expected_mode(mode) if kind == "file" else 0)
            for rel, (kind, content, mode) in source.items()
        }
        pulled = {
            rel: (kind, content, mode if kind == "file" else 0)
            for rel, (kind, content, mode) in _snapshot(out).items()
        }
        assert pulled == expected


# --- hostile archives ----------------------------------------------------------


def _hostile(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    victim = str(tmp_path / "victim.txt")
    return {
        "dotdot": (_archive(_file("../evil")), "'../evil'"),
        "dotdot-nested": (_archive(_file("a/../../evil")), "'a/../../evil'"),
        "dotdot-backslash": (_archive(_file("..\\evil")), "'..\\\\evil'"),
        "absolute": (_archive(_file(str(tmp_path / "evil"))), str(tmp_path / "evil")),
        "symlink-out": (
            _archive(_entry("link", tarfile.SYMTYPE, str(tmp_path)), _file("link/evil")),
            "'link' is a symbolic link",
        ),
        "symlink-relative": (
            _archive(_entry("up", tarfile.SYMTYPE, "..")),
            "'up' is a symbolic link",
        ),
        "hardlink-out": (
            _archive(_entry("hl", tarfile.LNKTYPE, victim)),
            "'hl' is a hard link",
        ),
        "char-device": (_archive(_entry("null", tarfile.CHRTYPE)), "'null' is a character"),
        "block-device": (_archive(_entry("sda", tarfile.BLKTYPE)), "'sda' is a block device"),
        "fifo": (_archive(_entry("pipe", tarfile.FIFOTYPE)), "'pipe' is a fifo"),
        "through-a-file": (
            _archive(_file("a"), _file("a/b")),
            "'a/b' passes through 'a', which is not a directory",
        ),
        "duplicate-file": (
            _archive(_file("same.txt", b"one"), _file("same.txt", b"two")),
            "'same.txt' appears more than once",
        ),
        "file-then-dir": (
            _archive(_file("x"), _entry("x", tarfile.DIRTYPE)),
            "'x/' appears more than once",  # tarfile writes directory names with a slash
        ),
        "dir-then-file": (
            _archive(_entry("x", tarfile.DIRTYPE), _file("x")),
            "'x' appears more than once",
        ),
        "huge-declared-size": (
            _archive(_entry("huge.bin", tarfile.REGTYPE, size=9 << 30)),
            "'huge.bin' declares 9663676416 bytes",
        ),
        "shorter-than-declared": (
            _archive(_file("short.bin", b"z" * 2000))[: 512 * 3 + 100],
            "'short.bin': data shorter than its declared size",
        ),
        "unknown-type": (_archive(_entry("odd", b"Z")), "'odd' has unsupported type"),
        "root-as-file": (_archive(_file(".")), "a file cannot be the root"),
    }


HOSTILE = sorted(_hostile(Path("/placeholder")))


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_archive_is_refused_and_nothing_changes(kind: str, tmp_path: Path) -> None:
    data, message = _hostile(tmp_path)[kind]
    (tmp_path / "victim.txt").write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old content")
    before = _snapshot(tmp_path)

    with pytest.raises(UnsafeArchiveError) as err:
        _pull(data, out, force=True)

    assert message in str(err.value)
    assert _snapshot(tmp_path) == before  # -o unchanged, nothing outside, no staging left
    assert not (tmp_path.parent / "evil").exists()


def test_corrupt_header_is_refused(tmp_path: Path) -> None:
    data = bytearray(_archive(_file("a.txt")))
    data[0] ^= 0x01  # the name changes, the checksum no longer matches

    with pytest.raises(UnsafeArchiveError, match="bad header checksum"):
        _pull(bytes(data), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_header_with_a_signed_checksum_is_read(tmp_path: Path) -> None:
    # Old tar writers summed the header bytes as signed chars; tar readers (Go's
    # archive/tar, Python's tarfile) accept both sums, so extraction does too.
    name = "caf\u00e9-\u00fc.txt"
    data = bytearray(_archive(_file(name), fmt=tarfile.USTAR_FORMAT))
    header = data[:512]
    body = header[:148] + b" " * 8 + header[156:]
    signed = sum(b - 256 if b > 127 else b for b in body)
    assert signed != sum(body)  # the name's UTF-8 bytes are above 127
    data[148:156] = b"%06o\0 " % signed

    _pull(bytes(data), tmp_path / "out")
    assert (tmp_path / "out" / name).read_bytes() == b"data\n"


def test_stream_ending_inside_a_header_is_refused(tmp_path: Path) -> None:
    data = _archive(_file("a.txt"))[: 1024 + 100]

    with pytest.raises(UnsafeArchiveError, match="ends inside a header"):
        _pull(data, tmp_path / "out")


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (ExtractLimits(max_file_size=10), "declares 11 bytes, over the limit of 10"),
        (ExtractLimits(max_entries=2), "more than 2 entries"),
        (ExtractLimits(max_total_size=15), "more than 15 bytes of files"),
        (ExtractLimits(max_extended_header_size=64), "extended header of"),
    ],
)
def test_limits_are_configurable(limits: ExtractLimits, message: str, tmp_path: Path) -> None:
    data = _archive(_file("a", b"x" * 11), _file("b", b"y" * 11), _file("c" * 200, b"z"))

    with pytest.raises(UnsafeArchiveError, match=message):
        _pull(data, tmp_path / "out", limits=limits)
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path) == []


# --- staging and the final move -------------------------------------------------


def test_staging_dir_is_next_to_the_target_and_cleaned_up(tmp_path: Path) -> None:
    out = tmp_path / "deep/out"
    with staging_directory(out) as tmp:
        assert tmp.parent == out.parent
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o777 & ~_umask()
        (tmp / "f").write_text("x")
    assert os.listdir(out.parent) == []


def test_missing_or_empty_target_is_replaced(tmp_path: Path) -> None:
    for out in (tmp_path / "new", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        staging = make_staging_dir(out)
        (staging / "f.txt").write_text("new")
        replace_directory(staging, out, force=False)
        assert (out / "f.txt").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["empty", "new"]


def test_non_empty_target_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")

    with pytest.raises(BundleError, match="not empty"):
        _pull(_archive(_file("new.txt")), out, force=False)
    assert os.listdir(out) == ["old.txt"]
    assert os.listdir(tmp_path) == ["out"]

    _pull(_archive(_file("new.txt")), out, force=True)
    assert os.listdir(out) == ["new.txt"]
    assert os.listdir(tmp_path) == ["out"]


def test_file_in_place_of_the_target_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("a file")

    with pytest.raises(BundleError, match="not a directory"):
        _pull(_archive(_file("new.txt")), out, force=False)
    assert out.read_text() == "a file"

    _pull(_archive(_file("new.txt")), out, force=True)
    assert (out / "new.txt").is_file()
    assert os.listdir(tmp_path) == ["out"]


def test_symlinked_target_is_replaced_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "precious.txt").write_text("keep")
    out = tmp_path / "out"
    out.symlink_to(real)

    _pull(_archive(_file("new.txt")), out, force=True)

    assert not out.is_symlink()
    assert (out / "new.txt").is_file()
    assert (real / "precious.txt").read_text() == "keep"
