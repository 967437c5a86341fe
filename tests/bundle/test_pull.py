"""pull: round trips through a real registry, imgpkg's refusals, safety, relocation, nesting."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from lockresolve.bundle.commands.pull import (
    BUNDLE_FLAG_HINT,
    INDEX_REFUSED,
    NOT_BUNDLE_HINT,
    PullResult,
    pull,
    pull_lock,
)
from lockresolve.bundle.commands.push import push
from lockresolve.bundle.formats.image import parse_label_flags
from lockresolve.bundle.formats.tar import DEFAULT_EXCLUSIONS, EntryKind, plan_layer
from lockresolve.errors import BundleError, UnsafeArchiveError, UsageError
from lockresolve.lock import BundleLock
from lockresolve.registry.client import RegistryClient
from tests.support.bundle_cases import BundleCase, load_cases, write_bundle_dir
from tests.support.conformance import get_case, seed_case, substitute
from tests.support.images import TestImage as Image
from tests.support.images import push_image
from tests.support.registry import Registry

pytestmark = pytest.mark.anyio

CASES = load_cases()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tree_of(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: file bytes, or None for a directory."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = None if path.is_dir() else path.read_bytes()
    return out


def expected_tree(case: BundleCase, root: Path) -> dict[str, bytes | None]:
    plan = plan_layer(case.file_paths(root), case.exclusions() or DEFAULT_EXCLUSIONS)
    out: dict[str, bytes | None] = {}
    for entry in plan.entries:
        if entry.name == ".":
            continue
        out[entry.name] = None if entry.kind is EntryKind.DIR else Path(entry.source).read_bytes()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_push_pull_round_trip_restores_the_tree(
    case: BundleCase, registry: Registry, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    case.materialise(root)
    target = f"{registry.host}/roundtrip/{case.name}:v1"
    kind = "bundle" if case.mode == "-b" else "image"
    out = tmp_path / "out"
    lines: list[str] = []
    async with RegistryClient() as client:
        pushed = await push(
            client,
            target,
            case.file_paths(root),
            bundle=kind == "bundle",
            exclusions=case.exclusions(),
            labels=parse_label_flags(case.labels()),
        )
        result = await pull(client, target, out, kind=kind, on_line=lines.append)  # type: ignore[arg-type]
    assert result.image == pushed.image
    expected = expected_tree(case, root)
    if kind == "bundle":
        # Like imgpkg, pull rewrites a lock whose (zero) images all are in the bundle's repo.
        assert expected[".imgpkg/images.yml"] == (
            b"---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages: []\nkind: ImagesLock\n"
        )
        expected[".imgpkg/images.yml"] = (
            b"---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n"
        )
    assert tree_of(out) == expected
    assert f"Pulling {'bundle' if kind == 'bundle' else 'image'} '{pushed.image}'" in lines
    if case.name.startswith("b03"):
        assert os.stat(out / "bin" / "run.sh").st_mode & stat.S_IXUSR
        assert not os.stat(out / "ro.txt").st_mode & stat.S_IWUSR
        assert (out / "empty").is_dir()
    if case.name.startswith("b05"):
        assert not (out / "skip.txt").exists()
        assert (out / "sub" / "skip.txt").read_bytes() == b"kept\n"


async def test_wrong_kind_and_index_are_refused_with_imgpkgs_hints(
    registry: Registry, tmp_path: Path
) -> None:
    case = next(c for c in CASES if c.mode == "-b")
    root = tmp_path / "tree"
    case.materialise(root)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.yml").write_text("a: 1\n")
    seed_case(registry, get_case("copy", "c01"))
    async with RegistryClient() as client:
        await push(client, f"{registry.host}/kinds/b", case.file_paths(root), bundle=True)
        await push(client, f"{registry.host}/kinds/i", [tmp_path / "plain"], bundle=False)
        with pytest.raises(BundleError) as err:
            await pull(client, f"{registry.host}/kinds/i", tmp_path / "o1", kind="bundle")
        assert str(err.value) == NOT_BUNDLE_HINT
        with pytest.raises(BundleError) as err:
            await pull(client, f"{registry.host}/kinds/b", tmp_path / "o2", kind="image")
        assert str(err.value) == BUNDLE_FLAG_HINT
        with pytest.raises(BundleError) as err:
            await pull(client, f"{registry.host}/conf/c01/img-b:2.0", tmp_path / "o3", kind="image")
        assert str(err.value) == INDEX_REFUSED
        # --image-is-bundle-check=false pulls a bundle's files as an image
        await pull(
            client,
            f"{registry.host}/kinds/b",
            tmp_path / "o4",
            kind="image",
            image_is_bundle_check=False,
        )
    assert (tmp_path / "o4" / ".imgpkg" / "images.yml").is_file()
    assert not any((tmp_path / name).exists() for name in ("o1", "o2", "o3"))


async def test_output_guards(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.yml").write_text("a: 1\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    async with RegistryClient() as client:
        for bad in ("", "/", ".", ".."):
            with pytest.raises(UsageError):
                await pull(client, "x/y", bad, kind="image")
        await push(client, f"{registry.host}/guards/i", [tmp_path / "plain"], bundle=False)
        mark = registry.mark()
        with pytest.raises(BundleError, match="use --force"):
            await pull(client, f"{registry.host}/guards/i", out, kind="image")
        assert registry.count_requests(since=mark) == 0  # refused before any download
        assert tree_of(out) == {"keep.txt": b"mine\n"}
        await pull(client, f"{registry.host}/guards/i", out, kind="image", force=True)
    assert tree_of(out) == {"a.yml": b"a: 1\n"}


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _image(tar: bytes, *, diff_id: str | None = None, gz: bool = True) -> Image:
    layer = gzip.compress(tar, mtime=0) if gz else tar
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": [diff_id or "sha256:" + hashlib.sha256(tar).hexdigest()],
            },
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": len(config),
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                }
            ],
        }
    ).encode()
    return Image(config=config, layer=layer, manifest=manifest)


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, None


@pytest.mark.parametrize(
    "entries",
    [
        [_file("ok.txt", b"ok\n"), _file("../escape.txt", b"x")],
        [_file("ok.txt", b"ok\n"), _file("/abs.txt", b"x")],
        [_symlink("link", "/etc"), _file("link/passwd", b"x")],
    ],
    ids=["dotdot", "absolute", "through-symlink"],
)
async def test_hostile_layer_is_refused_and_out_is_untouched(
    entries: list[tuple[tarfile.TarInfo, bytes | None]], registry: Registry, tmp_path: Path
) -> None:
    image = _image(_tar(entries))
    out = tmp_path / "deep" / "out"
    async with RegistryClient() as client:
        await push_image(client, registry.host, "hostile/img", "1", image)
        with pytest.raises(UnsafeArchiveError):
            await pull(client, f"{registry.host}/hostile/img:1", out, kind="image")
    assert not out.exists()
    assert not (tmp_path / "deep" / "escape.txt").exists()
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == []


async def test_layer_whose_diff_id_does_not_match_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    image = _image(_tar([_file("a.txt", b"a\n")]), diff_id="sha256:" + "0" * 64)
    async with RegistryClient() as client:
        await push_image(client, registry.host, "hostile/diffid", "1", image)
        with pytest.raises(UnsafeArchiveError, match="diff_id"):
            await pull(client, f"{registry.host}/hostile/diffid:1", tmp_path / "o", kind="image")
    assert not (tmp_path / "o").exists()


async def pull_bundle(
    client: RegistryClient, ref: str, out: Path, *, recursive: bool = False
) -> tuple[PullResult, list[str]]:
    """``pull -b ref -o out``: the result and the lines it reported."""
    lines: list[str] = []
    result = await pull(client, ref, out, kind="bundle", recursive=recursive, on_line=lines.append)
    return result, lines


async def _push_c01_bundle(
    client: RegistryClient, registry: Registry, tmp_path: Path, repo: str
) -> str:
    case = get_case("copy", "c01")
    seed_case(registry, case)
    tree = case.make_tree(tmp_path / "c01-tree", registry.host)
    result = await push(client, f"{registry.host}/{repo}:1.0", [tree], bundle=True)
    return result.image


async def test_not_relocated_keeps_images_yml(registry: Registry, tmp_path: Path) -> None:
    async with RegistryClient() as client:
        await _push_c01_bundle(client, registry, tmp_path, "reloc/none")
        result, lines = await pull_bundle(
            client, f"{registry.host}/reloc/none:1.0", tmp_path / "out"
        )
    assert result.bundle is not None and not result.bundle.relocated
    original = (tmp_path / "c01-tree" / ".imgpkg" / "images.yml").read_bytes()
    assert (tmp_path / "out" / ".imgpkg" / "images.yml").read_bytes() == original
    assert "One or more images not found in bundle repo; skipping lock file update" in lines


async def test_relocated_by_heads_rewrites_images_yml_as_imgpkg(
    registry: Registry, tmp_path: Path
) -> None:
    from lockresolve.reference import Reference

    case = get_case("copy", "c01")
    async with RegistryClient() as client:
        await _push_c01_bundle(client, registry, tmp_path, "reloc/heads")
        # Put both images (the image and the whole index) into the bundle's repository.
        for src, tag in (("conf/c01/img-a", "1.0"), ("conf/c01/img-b", "2.0")):
            manifest = await client.get_manifest(Reference.parse(f"{registry.host}/{src}:{tag}"))
            doc = manifest.json()
            children = [m["digest"] for m in doc.get("manifests", [])]
            for child in children:
                cm = await client.get_manifest(Reference.parse(f"{registry.host}/{src}@{child}"))
                await _copy_blobs(client, registry.host, src, "reloc/heads", cm.json())
                await client.put_manifest(
                    registry.host, "reloc/heads", child, cm.data, cm.media_type
                )
            await _copy_blobs(client, registry.host, src, "reloc/heads", doc)
            await client.put_manifest(
                registry.host, "reloc/heads", manifest.digest, manifest.data, manifest.media_type
            )
        result, lines = await pull_bundle(
            client, f"{registry.host}/reloc/heads:1.0", tmp_path / "out"
        )
    assert result.bundle is not None and result.bundle.relocated
    expected = substitute(case.expected["pulled_images_yml"], registry.host).replace(
        "conf/c01/mirror", "reloc/heads"
    )
    assert (tmp_path / "out" / ".imgpkg" / "images.yml").read_text() == expected
    assert (
        f"The bundle repo ({registry.host}/reloc/heads) is hosting every image specified in "
        "the bundle's Images Lock file (.imgpkg/images.yml)"
    ) in lines


async def _copy_blobs(
    client: RegistryClient, host: str, src: str, dst: str, doc: dict[str, object]
) -> None:
    descs = [doc["config"]] if "config" in doc else []
    descs += list(doc.get("layers", []))  # type: ignore[call-overload]
    for desc in descs:
        digest = desc["digest"]  # type: ignore[index]
        if not await client.blob_exists(host, dst, digest):
            assert await client.mount_blob(host, dst, digest, src) is None


async def test_recursive_pull_puts_nested_bundles_flat(registry: Registry, tmp_path: Path) -> None:
    inner = write_bundle_dir(tmp_path / "inner", files={"inner.yml": "inner: true\n"})
    async with RegistryClient() as client:
        inner_push = await push(client, f"{registry.host}/nest/inner:1", [inner], bundle=True)
        outer = write_bundle_dir(
            tmp_path / "outer", [inner_push.image], files={"outer.yml": "outer: true\n"}
        )
        await push(client, f"{registry.host}/nest/outer:1", [outer], bundle=True)
        result, lines = await pull_bundle(
            client, f"{registry.host}/nest/outer:1", tmp_path / "out", recursive=True
        )
        plain = await pull(
            client, f"{registry.host}/nest/outer:1", tmp_path / "out2", kind="bundle"
        )
    nested_dir = tmp_path / "out" / ".imgpkg" / "bundles" / inner_push.digest.replace(":", "-")
    assert (nested_dir / "inner.yml").read_text() == "inner: true\n"
    assert (tmp_path / "out" / "outer.yml").read_text() == "outer: true\n"
    assert result.bundle is not None
    assert [n.image for n in result.bundle.nested] == [inner_push.image]
    assert "Nested bundles" in lines
    assert not (tmp_path / "out2" / ".imgpkg" / "bundles").exists()
    assert plain.bundle is not None and plain.bundle.nested == ()


async def test_pull_from_a_bundle_lock(registry: Registry, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.mode == "-b")
    root = tmp_path / "tree"
    case.materialise(root)
    lock = tmp_path / "bundle.lock.yml"
    async with RegistryClient() as client:
        pushed = await push(
            client,
            f"{registry.host}/lockpull/b:1",
            case.file_paths(root),
            bundle=True,
            lock_output=lock,
        )
        result = await pull_lock(client, lock, tmp_path / "out")
    assert BundleLock.from_path(lock).image == pushed.image
    assert result.image == pushed.image
    assert (tmp_path / "out" / ".imgpkg" / "bundle.yml").is_file()


def test_later_layers_override_and_whiteouts_remove(tmp_path: Path) -> None:
    from lockresolve.bundle.unpack import DownloadedLayer, unpack_layers

    def layer(name: str, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> DownloadedLayer:
        tar = _tar(entries)
        path = tmp_path / name
        path.write_bytes(gzip.compress(tar))
        return DownloadedLayer(
            path,
            "sha256:x",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "sha256:" + hashlib.sha256(tar).hexdigest(),
        )

    first = layer("l1", [_file("a.txt", b"old\n"), _file("gone.txt", b"x"), _file("d/k.txt", b"k")])
    second = layer(
        "l2", [_file("a.txt", b"new\n"), _file(".wh.gone.txt", b""), _file("d/.wh..wh..opq", b"")]
    )
    out = tmp_path / "out"
    out.mkdir()
    unpack_layers([first, second], out)
    assert tree_of(out) == {"a.txt": b"new\n", "d": None}
