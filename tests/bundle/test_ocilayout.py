"""OCI image layouts: lockresolve writes what skopeo reads, reads what skopeo writes, round trips."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from lockresolve.bundle.commands.copy import CopySource, copy
from lockresolve.bundle.commands.pull import pull
from lockresolve.bundle.commands.push import default_tag, push
from lockresolve.bundle.formats.ocilayout import read_oci_layout
from lockresolve.reference import Reference
from lockresolve.registry.client import RegistryClient
from tests.support.conformance import get_case, seed_case
from tests.support.registry import Registry, require_binary, skopeo_copy_to_oci

pytestmark = pytest.mark.anyio

CASE = get_case("copy", "c01")
IMG_A = "sha256:162e33d83863200808d8b351a361685d97134f0ed375634a276d81ec444fdb9c"
INDEX_B = "sha256:98e8fd612a12c48ddf048927a8583bb7a491613a68d327f026c53413a6002c85"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def skopeo(*args: str) -> bytes:
    env = dict(os.environ)
    env.setdefault("HOME", "/tmp")
    proc = subprocess.run(
        [require_binary("skopeo"), *args], capture_output=True, timeout=120, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


async def test_layout_of_a_bundle_is_read_by_skopeo_and_copied_back(
    registry: Registry, tmp_path: Path
) -> None:
    host = registry.host
    seed_case(registry, CASE)
    tree = CASE.make_tree(tmp_path / "tree", host)
    layout = tmp_path / "layout"
    async with RegistryClient() as client:
        bundle = await push(client, f"{host}/oci/bundle:1.0", [tree], bundle=True)
        await copy(client, CopySource(bundle=f"{host}/oci/bundle:1.0"), to_oci_layout=layout)
    index = json.loads((layout / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}
    assert {"1.0", default_tag(bundle.digest), default_tag(IMG_A), default_tag(INDEX_B)} <= names
    # The bundle is a Docker v2 manifest, listed with its own media type (skopeo 1.9 looks up
    # only OCI-typed entries by name); its bytes are there, unchanged.
    entry = next(m for m in index["manifests"] if m["digest"] == bundle.digest)
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    blob = (layout / "blobs" / "sha256" / bundle.digest.split(":")[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == bundle.digest
    # skopeo sees the OCI-typed manifests, byte for byte, and can push them on.
    raw = skopeo("inspect", "--raw", f"oci:{layout}:{default_tag(IMG_A)}")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == IMG_A
    raw_index = skopeo("inspect", "--raw", f"oci:{layout}:{default_tag(INDEX_B)}")
    assert "sha256:" + hashlib.sha256(raw_index).hexdigest() == INDEX_B
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    skopeo(
        "copy",
        "--quiet",
        f"--policy={policy}",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{layout}:{default_tag(INDEX_B)}",
        f"docker://{host}/oci/by-skopeo:b",
    )
    # lockresolve reads its layout back: the same bundle, tags, locations and relocation.
    async with RegistryClient() as client:
        result = await copy(client, CopySource(oci_layout=layout), to_repo=f"{host}/oci/back")
        await pull(client, f"{host}/oci/back:1.0", tmp_path / "pulled", kind="bundle")
        by_skopeo = await client.resolve(Reference.parse(f"{host}/oci/by-skopeo:b"))
    assert result.bundle == f"{host}/oci/back@{bundle.digest}"
    assert by_skopeo.digest == INDEX_B
    images_yml = (tmp_path / "pulled" / ".imgpkg" / "images.yml").read_text()
    assert f"image: {host}/oci/back@{IMG_A}" in images_yml
    assert f"image: {host}/oci/back@{INDEX_B}" in images_yml


async def test_reads_a_layout_written_by_skopeo(registry: Registry, tmp_path: Path) -> None:
    host = registry.host
    seed_case(registry, CASE)
    layout = skopeo_copy_to_oci("conf/c01/img-b:2.0", tmp_path / "sk", registry, tag="2.0")
    artifacts, _ = read_oci_layout(layout)
    assert [a.digest for a in artifacts] == [INDEX_B]
    async with RegistryClient() as client:
        await copy(client, CopySource(oci_layout=layout), to_repo=f"{host}/oci/from-skopeo")
        tags = set(await client.list_tags(host, "oci/from-skopeo"))
        got = await client.get_manifest(
            Reference.parse(f"{host}/oci/from-skopeo:{default_tag(INDEX_B)}")
        )
    assert got.digest == INDEX_B
    assert tags == {default_tag(INDEX_B)}


async def test_second_write_keeps_present_blobs(registry: Registry, tmp_path: Path) -> None:
    host = registry.host
    seed_case(registry, CASE)
    layout = tmp_path / "layout"
    async with RegistryClient() as client:
        await copy(client, CopySource(image=f"{host}/conf/c01/img-a:1.0"), to_oci_layout=layout)
        mark = registry.mark()
        await copy(client, CopySource(image=f"{host}/conf/c01/img-a:1.0"), to_oci_layout=layout)
    assert registry.count_requests("GET", "/blobs/sha256:0aa62e", since=mark) == 0
