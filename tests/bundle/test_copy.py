"""copy: bundle to repository, to and from imgpkg's tar, against imgpkg's recorded c01 case."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from lockresolve.bundle.commands.copy import CopySource, copy
from lockresolve.bundle.commands.pull import pull
from lockresolve.bundle.commands.push import PushResult, default_tag, push
from lockresolve.bundle.locations import locations_tag
from lockresolve.errors import BundleError, NotFoundError, UsageError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from tests.support.bundle_cases import write_bundle_dir
from tests.support.conformance import ConformanceCase, get_case, seed_case, substitute
from tests.support.registry import Registry, skopeo_inspect_raw

pytestmark = pytest.mark.anyio

CASE = get_case("copy", "c01")
RECORDED_HOST = "127.0.0.1:5000"  # where imgpkg-export.tar was made
IMG_A = "sha256:162e33d83863200808d8b351a361685d97134f0ed375634a276d81ec444fdb9c"
IMG_A_LAYER = "sha256:0aa62e5c396db6060eab56f966b250266d162d7150703091074016b758ee956d"
INDEX_B = "sha256:98e8fd612a12c48ddf048927a8583bb7a491613a68d327f026c53413a6002c85"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def push_c01(
    client: RegistryClient, registry: Registry, tmp_path: Path, repo: str
) -> PushResult:
    seed_case(registry, CASE)
    tree = CASE.make_tree(tmp_path / f"tree-{repo.replace('/', '-')}", registry.host)
    return await push(client, f"{registry.host}/{repo}:1.0", [tree], bundle=True)


def expected(case: ConformanceCase, key: str, host: str, bundle_digest: str) -> str:
    text = substitute(case.expected[key], host)
    return text.replace(case.expected["bundle_digest"], bundle_digest)


async def test_bundle_to_repo_as_imgpkg(registry: Registry, tmp_path: Path) -> None:
    host = registry.host
    mirror = f"{host}/copy/c01/mirror"
    lock = tmp_path / "lock.yml"
    async with RegistryClient() as client:
        bundle = await push_c01(client, registry, tmp_path, "copy/c01/bundle")
        mark = registry.mark()
        lines: list[str] = []
        result = await copy(
            client,
            CopySource(bundle=f"{host}/copy/c01/bundle:1.0"),
            to_repo=mirror,
            lock_output=lock,
            on_line=lines.append,
        )
        tags = set(await client.list_tags(host, "copy/c01/mirror"))
        loc_ref = Reference.parse(f"{mirror}:{locations_tag(bundle.digest)}")
        loc_digest = (await client.resolve(loc_ref)).digest
    assert result.bundle == f"{mirror}@{bundle.digest}"
    # Every item tagged sha256-<hex>.imgpkg, the original tag re-applied, the locations image.
    assert tags == {
        "1.0",
        default_tag(IMG_A),
        default_tag(INDEX_B),
        default_tag(bundle.digest),
        locations_tag(bundle.digest),
        default_tag(loc_digest),
    }
    if host == RECORDED_HOST:
        assert sorted(tags) == CASE.expected["mirror_tags"]
    # Same registry: blobs are mounted, not sent again.
    assert registry.count_requests("POST", "mount=", since=mark) > 0
    lock_text = expected(CASE, "copy_bundle_lock", host, bundle.digest).replace(
        "conf/c01/mirror", "copy/c01/mirror"
    )
    assert lock.read_text() == lock_text
    # The index is copied whole, byte for byte; skopeo reads it.
    raw = skopeo_inspect_raw(f"copy/c01/mirror@{INDEX_B}", registry)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == INDEX_B
    assert "copy | exporting 3 images..." in lines

    # The locations image holds imgpkg's image-locations.yml, byte for byte.
    async with RegistryClient() as client:
        await pull(
            client, f"{mirror}:{locations_tag(bundle.digest)}", tmp_path / "loc", kind="image"
        )
        # pull sees the images relocated and rewrites images.yml as imgpkg does.
        await pull(client, f"{mirror}:1.0", tmp_path / "pulled", kind="bundle")
        # A second copy finds everything in place: no upload at all.
        mark = registry.mark()
        await copy(client, CopySource(bundle=f"{host}/copy/c01/bundle:1.0"), to_repo=mirror)
    files = CASE.expected["locations_files"]
    for name, text in files.items():
        assert (tmp_path / "loc" / name).read_text() == substitute(text, host)
    pulled = expected(CASE, "pulled_images_yml", host, bundle.digest)
    assert (tmp_path / "pulled" / ".imgpkg" / "images.yml").read_text() == pulled.replace(
        "conf/c01/mirror", "copy/c01/mirror"
    )
    assert registry.count_requests("POST", since=mark) == 0


async def test_imgpkg_tar_imports_with_imgpkgs_digests(registry: Registry, tmp_path: Path) -> None:
    host = registry.host
    repo = f"{host}/copy/imported"
    lock = tmp_path / "lock.yml"
    async with RegistryClient() as client:
        result = await copy(
            client,
            CopySource(tar=CASE.path / "imgpkg-export.tar"),
            to_repo=repo,
            lock_output=lock,
        )
        await pull(client, f"{repo}:1.0", tmp_path / "pulled", kind="bundle")
        tags = set(await client.list_tags(host, "copy/imported"))
    bundle_digest = CASE.expected["bundle_digest"]
    assert result.bundle == f"{repo}@{bundle_digest}"
    assert lock.read_text() == substitute(CASE.expected["copy_bundle_lock"], host).replace(
        f"{host}/conf/c01/mirror", repo
    )
    # The tar was made at 127.0.0.1:5000 and names the images there, so the locations
    # image lockresolve writes is byte for byte imgpkg's: all tags equal the recorded ones.
    assert sorted(tags) == CASE.expected["mirror_tags"]
    pulled = substitute(CASE.expected["pulled_images_yml"], RECORDED_HOST).replace(
        f"{RECORDED_HOST}/conf/c01/mirror", repo
    )
    assert (tmp_path / "pulled" / ".imgpkg" / "images.yml").read_text() == pulled


async def test_to_tar_writes_imgpkgs_format_and_reads_back(
    registry: Registry, tmp_path: Path
) -> None:
    host = registry.host
    out = tmp_path / "bundle.tar"
    async with RegistryClient() as client:
        bundle = await push_c01(client, registry, tmp_path, "copy/tar/bundle")
        result = await copy(client, CopySource(bundle=f"{host}/copy/tar/bundle:1.0"), to_tar=out)
        manifest = await client.get_manifest(Reference.parse(f"{host}/copy/tar/bundle:1.0"))
    bundle_layer = manifest.json()["layers"][0]["digest"]
    recorded_layer = "sha256:fa426916d1f90a7cb8a48550ec311ff3608ca0689f9f9eaa4e4311731a73d831"
    expected_names = [
        n.replace(recorded_layer.replace(":", "-"), bundle_layer.replace(":", "-"))
        for n in CASE.expected["export_tar_names"]
    ]
    with tarfile.open(out) as tar:
        names = tar.getnames()
        ours = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert names[0] == "manifest.json"
    assert sorted(names[1:]) == names[1:]
    assert sorted(names) == sorted(expected_names)
    assert result.tar is not None and list(result.tar.names) == names
    assert out.read_bytes()[-1024:] == bytes(1024)
    # The image and index entries are imgpkg's, field for field; the bundle entry is ours.
    recorded = json.loads(substitute((CASE.path / "imgpkg-export.manifest.json").read_text(), host))
    by_digest = {_entry_digest(e): e for e in recorded}
    for entry in ours:
        digest = _entry_digest(entry)
        if digest == bundle.digest:
            image = entry["Image"]
            assert image["Tag"] == "1.0"
            assert image["Labels"] == {"dev.carvel.imgpkg.copy.root-bundle": ""}
            assert image["Refs"] == [bundle.image.replace("copy/tar/bundle", "copy/tar/bundle")]
            assert image["Manifest"]["Raw"] == manifest.data.decode()
        else:
            assert entry == by_digest[digest]

    # ... and the tar copies into a repository, from where pull relocates.
    async with RegistryClient() as client:
        await copy(client, CopySource(tar=out), to_repo=f"{host}/copy/tar/mirror")
        await pull(client, f"{host}/copy/tar/mirror:1.0", tmp_path / "pulled", kind="bundle")
    images_yml = (tmp_path / "pulled" / ".imgpkg" / "images.yml").read_text()
    assert f"image: {host}/copy/tar/mirror@{IMG_A}" in images_yml
    assert f"image: {host}/copy/tar/mirror@{INDEX_B}" in images_yml


def _entry_digest(entry: dict[str, object]) -> str:
    if entry.get("ImageIndex"):
        return str(entry["ImageIndex"]["Digest"])  # type: ignore[index]
    return str(entry["Image"]["Manifest"]["Digest"])  # type: ignore[index]


async def test_resume_reuses_valid_blobs(registry: Registry, tmp_path: Path) -> None:
    host = registry.host
    out = tmp_path / "resume.tar"
    source = CopySource(bundle=f"{host}/copy/resume/bundle:1.0")
    async with RegistryClient() as client:
        await push_c01(client, registry, tmp_path, "copy/resume/bundle")
        first = await copy(client, source, to_tar=out)
        original = out.read_bytes()
        # Corrupt one layer's bytes: resume must fetch that one again, and only that one.
        name = "sha256-" + IMG_A_LAYER.split(":")[1] + ".tar.gz"
        assert first.tar is not None and name in first.tar.names
        with tarfile.open(out) as tar:
            member = tar.getmember(name)
        data = bytearray(original)
        data[member.offset_data] ^= 0xFF
        out.write_bytes(bytes(data))
        mark = registry.mark()
        again = await copy(client, source, to_tar=out, resume=True)
    assert again.tar is not None
    assert (again.tar.reused, again.tar.downloaded) == (3, 1)
    assert out.read_bytes() == original
    blob_gets = [e for e in registry.request_log(mark) if e.method == "GET" and "/blobs/" in e.uri]
    layer_gets = [e for e in blob_gets if IMG_A_LAYER in e.uri]
    assert len(layer_gets) == 1


async def test_image_copy_and_images_lock_output(registry: Registry, tmp_path: Path) -> None:
    host = registry.host
    seed_case(registry, CASE)
    lock_in = tmp_path / "images.yml"
    lock_in.write_text(
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n"
        f"- annotations:\n    a: b\n  image: {host}/conf/c01/img-a@{IMG_A}\nkind: ImagesLock\n"
    )
    lock_out = tmp_path / "out.yml"
    async with RegistryClient() as client:
        await copy(
            client, CopySource(lock=lock_in), to_repo=f"{host}/copy/lock", lock_output=lock_out
        )
        await copy(
            client, CopySource(image=f"{host}/conf/c01/img-b:2.0"), to_repo=f"{host}/copy/img"
        )
        img_tags = set(await client.list_tags(host, "copy/img"))
    assert lock_out.read_text() == (
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n"
        f"- annotations:\n    a: b\n  image: {host}/copy/lock@{IMG_A}\nkind: ImagesLock\n"
    )
    assert img_tags == {"2.0", default_tag(INDEX_B)}


async def test_copy_refusals(registry: Registry, tmp_path: Path) -> None:
    host = registry.host
    async with RegistryClient() as client:
        bundle = await push_c01(client, registry, tmp_path, "copy/refuse/bundle")
        with pytest.raises(BundleError, match="Use -b instead of -i"):
            await copy(client, CopySource(image=bundle.image), to_repo=f"{host}/x")
        with pytest.raises(BundleError, match="Did you use -i instead of -b"):
            await copy(client, CopySource(bundle=f"{host}/conf/c01/img-a:1.0"), to_repo=f"{host}/x")
        with pytest.raises(UsageError, match="Expected either --to-tar or --to-repo"):
            await copy(client, CopySource(bundle=bundle.image))
        with pytest.raises(UsageError, match="Cannot output lock file with tar destination"):
            await copy(
                client, CopySource(bundle=bundle.image), to_tar=tmp_path / "t", lock_output="l"
            )
        with pytest.raises(UsageError, match="--resume can only be used"):
            await copy(client, CopySource(bundle=bundle.image), to_repo=f"{host}/x", resume=True)
        with pytest.raises(NotFoundError):
            await copy(
                client,
                CopySource(image=f"{host}/copy/missing@sha256:" + "0" * 64),
                to_repo=f"{host}/x",
            )


async def test_nested_bundles_copy_and_pull_recursively(registry: Registry, tmp_path: Path) -> None:
    host = registry.host
    seed_case(registry, CASE)
    inner = write_bundle_dir(
        tmp_path / "inner", [f"{host}/conf/c01/img-a@{IMG_A}"], files={"inner.yml": "inner: true\n"}
    )
    async with RegistryClient() as client:
        inner_b = await push(client, f"{host}/nested/inner:1", [inner], bundle=True)
        outer = write_bundle_dir(
            tmp_path / "outer", [inner_b.image, f"{host}/conf/c01/img-b@{INDEX_B}"]
        )
        outer_b = await push(client, f"{host}/nested/outer:2", [outer], bundle=True)
        result = await copy(
            client, CopySource(bundle=f"{host}/nested/outer:2"), to_repo=f"{host}/nested/mirror"
        )
        tags = set(await client.list_tags(host, "nested/mirror"))
        pulled = await pull(
            client, f"{host}/nested/mirror:2", tmp_path / "out", kind="bundle", recursive=True
        )
    assert {a.digest for a in result.artifacts} == {outer_b.digest, inner_b.digest, IMG_A, INDEX_B}
    # Both bundles got a locations image; only the root's tag is re-applied.
    assert {locations_tag(outer_b.digest), locations_tag(inner_b.digest), "2"} <= tags
    assert "1" not in tags
    assert pulled.bundle is not None and pulled.bundle.relocated
    assert [n.relocated for n in pulled.bundle.nested] == [True]
    nested_dir = tmp_path / "out" / ".imgpkg" / "bundles" / inner_b.digest.replace(":", "-")
    assert (nested_dir / "inner.yml").read_text() == "inner: true\n"
    nested_lock = (nested_dir / ".imgpkg" / "images.yml").read_text()
    assert f"image: {host}/nested/mirror@{IMG_A}" in nested_lock
    root_lock = (tmp_path / "out" / ".imgpkg" / "images.yml").read_text()
    assert f"image: {host}/nested/mirror@{inner_b.digest}" in root_lock
