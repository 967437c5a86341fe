"""The layer tar: byte-identical to imgpkg's for every recorded case, streamed in chunks."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from lockresolve.bundle.formats.image import (
    BUNDLE_LABEL,
    config_json,
    manifest_json,
    parse_label_flags,
)
from lockresolve.bundle.formats.tar import (
    DEFAULT_EXCLUSIONS,
    EntryKind,
    LayerEntry,
    LayerPlan,
    iter_tar,
    plan_layer,
)
from lockresolve.errors import BundleError, InputError
from tests.support.bundle_cases import BundleCase, load_cases

CASES = load_cases()


def _tar(plan: LayerPlan, chunk_size: int = 1 << 16) -> bytes:
    return b"".join(iter_tar(plan, chunk_size))


def _case_plan(case: BundleCase, root: Path) -> LayerPlan:
    case.materialise(root)
    exclusions = case.exclusions()
    return plan_layer(
        case.file_paths(root), DEFAULT_EXCLUSIONS if exclusions is None else exclusions
    )


def _tarfile_contents(data: bytes) -> dict[str, bytes | None]:
    """What Python's own tar reader finds: file contents, None for directories."""
    found: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            reader = tar.extractfile(member) if member.isfile() else None
            found[member.name] = reader.read() if reader is not None else None
    return found


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes = b"x\n", mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_conformance_cases_are_present() -> None:
    assert len(CASES) >= 7, "conformance/bundle cases not found"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tar_matches_imgpkg(case: BundleCase, tmp_path: Path) -> None:
    plan = _case_plan(case, tmp_path / "root")
    data = _tar(plan)

    assert _sha256(data) == case.expected["diff_id"]
    assert len(data) == case.expected["tar_size"]
    assert plan.tar_size == case.expected["tar_size"]
    assert list(plan.log_lines) == case.log_lines()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_config_from_our_tar_matches_imgpkg(case: BundleCase, tmp_path: Path) -> None:
    plan = _case_plan(case, tmp_path / "root")
    labels = parse_label_flags(case.labels())
    if case.mode == "-b":
        labels[BUNDLE_LABEL] = "true"

    assert config_json(_sha256(_tar(plan)), labels).decode() == case.expected["config_json"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gzip_layer_and_manifest_match_imgpkg(case: BundleCase, tmp_path: Path) -> None:
    goflate = pytest.importorskip("lockresolve.goflate")
    plan = _case_plan(case, tmp_path / "root")
    layer = goflate.go_gzip(_tar(plan))
    labels = parse_label_flags(case.labels())
    if case.mode == "-b":
        labels[BUNDLE_LABEL] = "true"
    config = config_json(_sha256(_tar(plan)), labels)

    assert _sha256(layer) == case.expected["layer_digest"]
    assert len(layer) == case.expected["layer_size"]
    manifest = manifest_json(_sha256(config), len(config), _sha256(layer), len(layer))
    assert manifest.decode() == case.expected["manifest_json"]
    assert _sha256(manifest) == case.expected["manifest_digest"]


def test_headers_carry_imgpkg_fixed_fields(tmp_path: Path) -> None:
    _write(tmp_path / "root/bin/run.sh", b"#!/bin/sh\n", 0o755)
    _write(tmp_path / "root/ro.txt", b"ro\n", 0o444)
    (tmp_path / "root/empty").mkdir(mode=0o755)
    data = _tar(plan_layer([tmp_path / "root"]))

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar}
    assert list(members) == [".", "bin", "bin/run.sh", "empty", "ro.txt"]
    assert {name: oct(m.mode) for name, m in members.items()} == {
        ".": "0o700",
        "bin": "0o700",
        "bin/run.sh": "0o700",
        "empty": "0o700",
        "ro.txt": "0o400",
    }
    for member in members.values():
        assert (member.uid, member.gid, member.mtime, member.uname, member.gname) == (
            0,
            0,
            0,
            "",
            "",
        )
    first = data[:512]
    assert first[257:265] == b"ustar\x0000"
    assert first[100:108] == b"0000700\x00"
    assert first[124:136] == b"00000000000\x00"
    assert first[154:156] == b"\x00 "
    # Two zero blocks end the archive, and there is no padding to a 10240-byte record.
    assert data.endswith(bytes(1024))
    assert not data[:-1024].endswith(bytes(512))
    assert len(data) % 10240 != 0


def test_chunking_gives_the_same_bytes(tmp_path: Path) -> None:
    _write(tmp_path / "root/a.bin", os.urandom(3000))
    _write(tmp_path / "root/b/c.txt", b"hello\n" * 100)
    plan = plan_layer([tmp_path / "root"])
    reference = _tar(plan, 1 << 20)

    for size in (1, 100, 511, 512, 513, 4096):
        chunks = list(iter_tar(plan, size))
        assert b"".join(chunks) == reference
        assert all(len(c) == size for c in chunks[:-1])
        assert 0 < len(chunks[-1]) <= size


def test_streaming_keeps_memory_flat(tmp_path: Path) -> None:
    big = tmp_path / "root/big.bin"
    big.parent.mkdir()
    with big.open("wb") as fh:
        fh.truncate(100 * 1024 * 1024)  # sparse: cheap to make, read as zeros
    plan = plan_layer([tmp_path / "root"])
    digest = hashlib.sha256()
    total = 0

    tracemalloc.start()
    try:
        for chunk in iter_tar(plan, 1 << 20):
            digest.update(chunk)
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert total == plan.tar_size
    assert peak < 8 * 1024 * 1024


def test_long_and_unicode_names_round_trip_through_tarfile(tmp_path: Path) -> None:
    root = tmp_path / "root"
    names = [
        "x" * 100,  # fits the name field exactly
        "d" * 60 + "/" + "e" * 60,  # splits into prefix/name
        "f" * 150,  # cannot split: PAX
        "g" * 120 + "/" + "h" * 130,  # over 255 bytes
        "café/日本語.yml",  # non-ASCII: PAX
    ]
    for name in names:
        _write(root / name, name.encode())
    data = _tar(plan_layer([root]))

    assert _tarfile_contents(data) == {name: name.encode() for name in names} | {
        ".": None,
        "d" * 60: None,
        "g" * 120: None,
        "café": None,
    }


def test_pax_header_is_named_like_go(tmp_path: Path) -> None:
    name = "日本/設定.yml"
    header = LayerEntry(name, EntryKind.FILE, "unused", 5, 0o600).header()

    assert len(header) == 3 * 512  # PAX header, its records, the entry
    assert header[:100].rstrip(b"\0") == b"/PaxHeaders.0/.yml"
    assert header[156:157] == b"x"
    record = b" path=" + name.encode() + b"\n"  # 24 bytes, so the length prefix says 26
    assert header[512:1024] == (b"26" + record).ljust(512, b"\0")
    assert header[1024 : 1024 + 100].rstrip(b"\0") == b"/.yml"
    assert header[1024 + 156 : 1024 + 157] == b"0"


def test_file_of_8_gib_or_more_gets_a_pax_size_record() -> None:
    size = 8**11
    header = LayerEntry("huge.bin", EntryKind.FILE, "unused", size, 0o600).header()

    assert header[156:157] == b"x"
    assert f" size={size}\n".encode() in header[512:1024]
    assert header[1024 + 124 : 1024 + 136] == b"00000000000\x00"
    small = LayerEntry("small.bin", EntryKind.FILE, "unused", size - 1, 0o600).header()
    assert len(small) == 512


def test_directory_contents_without_its_own_name_and_a_file_by_base_name(tmp_path: Path) -> None:
    _write(tmp_path / "dir1/a.yml")
    _write(tmp_path / "elsewhere/single.yml")
    plan = plan_layer([tmp_path / "dir1", tmp_path / "elsewhere/single.yml"])

    assert plan.log_lines == ("dir: .", "file: a.yml", "file: single.yml")


def test_two_directories_each_write_a_root_entry(tmp_path: Path) -> None:
    _write(tmp_path / "one/a.yml")
    _write(tmp_path / "two/b.yml")
    plan = plan_layer([tmp_path / "one", tmp_path / "two"])

    assert plan.log_lines == ("dir: .", "file: a.yml", "dir: .", "file: b.yml")


def test_children_sorted_by_bytes_depth_first(tmp_path: Path) -> None:
    for name in ["b/z", "B", "a.txt", "a/x", "é", "_"]:
        _write(tmp_path / "root" / name)
    plan = plan_layer([tmp_path / "root"])

    assert [e.name for e in plan.entries] == [".", "B", "_", "a", "a/x", "a.txt", "b", "b/z", "é"]


def test_git_is_excluded_by_default(tmp_path: Path) -> None:
    _write(tmp_path / "root/.git/HEAD")
    _write(tmp_path / "root/sub/.git")  # a file named .git deeper down is kept
    _write(tmp_path / "root/app.yml")
    plan = plan_layer([tmp_path / "root"])

    assert [e.name for e in plan.entries] == [".", "app.yml", "sub", "sub/.git"]


def test_given_exclusions_replace_the_default(tmp_path: Path) -> None:
    _write(tmp_path / "root/.git/HEAD")
    _write(tmp_path / "root/skip.txt")
    _write(tmp_path / "root/sub/skip.txt")
    plan = plan_layer([tmp_path / "root"], ["skip.txt"])

    assert [e.name for e in plan.entries] == [".", ".git", ".git/HEAD", "sub", "sub/skip.txt"]


def test_excluded_directory_drops_its_subtree(tmp_path: Path) -> None:
    _write(tmp_path / "root/vendor/a/b.txt")
    _write(tmp_path / "root/keep.txt")
    os.mkfifo(tmp_path / "root/vendor/a/pipe")  # never looked at
    plan = plan_layer([tmp_path / "root"], ["vendor"])

    assert [e.name for e in plan.entries] == [".", "keep.txt"]


def test_nested_path_exclusion_is_exact(tmp_path: Path) -> None:
    _write(tmp_path / "root/config/secret.yml")
    _write(tmp_path / "root/secret.yml")
    plan = plan_layer([tmp_path / "root"], ["config/secret.yml"])

    assert [e.name for e in plan.entries] == [".", "config", "secret.yml"]


def test_file_given_directly_is_excluded_by_base_name(tmp_path: Path) -> None:
    _write(tmp_path / "notes.txt")
    _write(tmp_path / "root/a.yml")
    plan = plan_layer([tmp_path / "root", tmp_path / "notes.txt"], ["notes.txt"])

    assert [e.name for e in plan.entries] == [".", "a.yml"]


def test_symlink_inside_a_directory_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "root/a.yml")
    (tmp_path / "root/link").symlink_to("a.yml")

    with pytest.raises(BundleError) as err:
        plan_layer([tmp_path / "root"])
    assert str(err.value) == (
        f"Adding file '{tmp_path / 'root'}' to tar: "
        f"Expected file '{tmp_path / 'root/link'}' to be a regular file"
    )


def test_fifo_inside_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    os.mkfifo(tmp_path / "root/pipe")

    with pytest.raises(BundleError, match="pipe' to be a regular file"):
        plan_layer([tmp_path / "root"])


def test_symlinked_root_directory_is_refused_like_imgpkg(tmp_path: Path) -> None:
    _write(tmp_path / "real/a.yml")
    (tmp_path / "link").symlink_to("real")

    with pytest.raises(BundleError, match="to be a regular file"):
        plan_layer([tmp_path / "link"])


def test_symlinked_file_given_directly_is_followed(tmp_path: Path) -> None:
    _write(tmp_path / "real.yml", b"data\n")
    (tmp_path / "alias.yml").symlink_to("real.yml")
    plan = plan_layer([tmp_path / "alias.yml"])

    assert plan.log_lines == ("file: alias.yml",)
    assert plan.entries[0].size == 5


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^stat .*/nope: no such file or directory$"):
        plan_layer([tmp_path / "nope"])


def test_duplicate_archive_paths_are_refused(tmp_path: Path) -> None:
    _write(tmp_path / "one/config.yml")
    _write(tmp_path / "two/config.yml")

    with pytest.raises(BundleError, match=r"^Found duplicate paths: ") as err:
        plan_layer([tmp_path / "one", tmp_path / "two"])
    assert str(tmp_path / "one/config.yml") in str(err.value)
    assert str(tmp_path / "two/config.yml") in str(err.value)


def test_file_that_changes_size_while_streaming_is_refused(tmp_path: Path) -> None:
    target = _write(tmp_path / "root/grow.txt", b"short")
    plan = plan_layer([tmp_path / "root"])
    target.write_bytes(b"much longer now")

    with pytest.raises(BundleError, match="changed size"):
        _tar(plan)
