"""push: imgpkg's exact layer, config and manifest for every recorded case, against a real registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lockresolve.bundle.commands.push import default_tag, push
from lockresolve.bundle.formats.image import parse_label_flags
from lockresolve.bundle.formats.tar import DEFAULT_EXCLUSIONS, plan_layer
from lockresolve.bundle.layer import build_layer
from lockresolve.errors import BundleError, UsageError
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from tests.support.bundle_cases import BundleCase, load_cases
from tests.support.registry import Registry, skopeo_inspect_raw

CASES = load_cases()
CASE_IDS = [c.name for c in CASES]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _paths(case: BundleCase, root: Path) -> list[str]:
    return case.file_paths(root)


def test_all_recorded_cases_are_present() -> None:
    assert len(CASES) == 7


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_layer_and_config_equal_imgpkgs(case: BundleCase, tmp_path: Path) -> None:
    from lockresolve.bundle.formats.image import BUNDLE_LABEL, config_json

    root = tmp_path / "tree"
    case.materialise(root)
    plan = plan_layer(_paths(case, root), case.exclusions() or DEFAULT_EXCLUSIONS)
    layer = build_layer(plan, tmp_path)
    expected = case.expected
    assert layer.diff_id == expected["diff_id"]
    assert layer.tar_size == expected["tar_size"]
    assert layer.digest == expected["layer_digest"]
    assert layer.size == expected["layer_size"]
    labels = parse_label_flags(case.labels())
    if case.mode == "-b":
        labels[BUNDLE_LABEL] = "true"
    assert config_json(layer.diff_id, labels).decode() == expected["config_json"]


@pytest.mark.anyio
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_push_gives_imgpkgs_manifest_digest(
    case: BundleCase, registry: Registry, tmp_path: Path
) -> None:
    root = tmp_path / "tree"
    case.materialise(root)
    target = f"{registry.host}/conf/{case.name}"
    lines: list[str] = []
    async with RegistryClient() as client:
        result = await push(
            client,
            target,
            _paths(case, root),
            bundle=case.mode == "-b",
            exclusions=case.exclusions(),
            labels=parse_label_flags(case.labels()),
            on_line=lines.append,
        )
        expected = case.expected
        assert result.digest == expected["manifest_digest"]
        assert result.image == f"{target}@{expected['manifest_digest']}"
        assert lines == case.log_lines()
        manifest = await client.get_manifest(Reference.parse(f"{target}:latest"))
        assert manifest.data.decode() == expected["manifest_json"]
        tags = await client.list_tags(registry.host, f"conf/{case.name}")
    assert set(tags) == {"latest", default_tag(result.digest)}


@pytest.mark.anyio
async def test_second_push_uploads_no_blob_and_skopeo_reads_it(
    registry: Registry, tmp_path: Path
) -> None:
    case = next(c for c in CASES if c.mode == "-b")
    root = tmp_path / "tree"
    case.materialise(root)
    target = f"{registry.host}/push/again:1.0"
    async with RegistryClient() as client:
        first = await push(client, target, _paths(case, root), bundle=True)
        mark = registry.mark()
        second = await push(client, target, _paths(case, root), bundle=True)
    assert first.uploaded_blobs == 2
    assert second.uploaded_blobs == 0
    assert second.digest == first.digest
    assert registry.count_requests("POST", "/blobs/uploads/", since=mark) == 0
    raw = skopeo_inspect_raw(f"push/again:{default_tag(first.digest)}", registry)
    assert hashlib.sha256(raw).hexdigest() == first.digest.split(":")[1]
    assert json.loads(raw)["layers"][0]["digest"] == first.layer


@pytest.mark.anyio
async def test_lock_output_is_imgpkgs_bundle_lock(registry: Registry, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.mode == "-b")
    root = tmp_path / "tree"
    case.materialise(root)
    lock = tmp_path / "out" / "bundle.lock.yml"
    async with RegistryClient() as client:
        result = await push(
            client,
            f"{registry.host}/push/lock:1.0",
            _paths(case, root),
            bundle=True,
            lock_output=lock,
        )
    assert lock.read_text() == (
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nbundle:\n"
        f'  image: {result.image}\n  tag: "1.0"\nkind: BundleLock\n'
    )
    assert lock.stat().st_mode & 0o777 == 0o600


@pytest.mark.anyio
async def test_zlib_gzip_keeps_the_tar_but_not_the_digest(
    registry: Registry, tmp_path: Path
) -> None:
    case = next(c for c in CASES if c.name.startswith("b07"))
    root = tmp_path / "tree"
    case.materialise(root)
    async with RegistryClient() as client:
        result = await push(
            client, f"{registry.host}/push/zlib", _paths(case, root), bundle=False, gzip="zlib"
        )
    assert result.diff_id == case.expected["diff_id"]
    assert result.digest != case.expected["manifest_digest"]


@pytest.mark.anyio
async def test_refusals_use_imgpkgs_messages(tmp_path: Path) -> None:
    bundle_dir = tmp_path / "b"
    (bundle_dir / ".imgpkg").mkdir(parents=True)
    (bundle_dir / ".imgpkg" / "images.yml").write_text("---\n")
    plain = tmp_path / "p"
    plain.mkdir()
    (plain / "a.yml").write_text("a: 1\n")
    # No request is sent for any of these: the client is never used.
    async with RegistryClient() as client:
        with pytest.raises(BundleError, match="consider using --bundle"):
            await push(client, "127.0.0.1:1/x:1", [bundle_dir], bundle=False)
        with pytest.raises(BundleError, match="This directory is not a bundle"):
            await push(client, "127.0.0.1:1/x:1", [plain], bundle=True)
        with pytest.raises(BundleError, match="Lock output is not compatible with image"):
            await push(client, "127.0.0.1:1/x:1", [plain], bundle=False, lock_output="l.yml")
        with pytest.raises(UsageError, match="is reserved"):
            await push(
                client,
                "127.0.0.1:1/x:1",
                [plain],
                bundle=False,
                labels={"dev.carvel.imgpkg.bundle": "x"},
            )
        with pytest.raises(BundleError, match="Parsing"):
            await push(client, "127.0.0.1:1/x@sha256:" + "a" * 64, [plain], bundle=False)
