"""The locations images ``copy`` writes, against the cases recorded with imgpkg v0.42.3
(``tests/fixtures/conformance/locations/``): the same plain images (seeded byte for byte) and
bundles (pushed by lockresolve, whose bundle digests are imgpkg's) are copied to a fresh
repository, straight and through a tar, and each bundle's ``image-locations.yml`` is read
back over plain HTTP and compared with what imgpkg wrote."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.conformance.recording import materialize
from tests.robustness.helpers import run_cli
from tests.support.conformance import SeedItem, conformance_dir, seed_items
from tests.support.registry import Registry

CASES = sorted(
    p for p in (conformance_dir() / "locations").iterdir() if (p / "case.json").is_file()
)
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


def _locations_text(registry: Registry, repo: str, bundle_digest: str) -> str:
    tag = bundle_digest.replace(":", "-") + ".image-locations.imgpkg"
    with httpx.Client(base_url=registry.url) as http:
        manifest = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
        assert manifest.status_code == 200, f"{repo}:{tag}: {manifest.status_code}"
        (layer,) = manifest.json()["layers"]
        blob = http.get(f"/v2/{repo}/blobs/{layer['digest']}", follow_redirects=True).content
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        member = tar.extractfile("image-locations.yml")
        assert member is not None
        return member.read().decode()


def _digest(registry: Registry, ref: str) -> str:
    repo, _, tag = ref.removeprefix(registry.host + "/").rpartition(":")
    r = httpx.head(f"{registry.url}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
    return r.headers["Docker-Content-Digest"]


def _prepare(case_dir: Path, registry: Registry, tmp_path: Path, capfd: Any) -> list[str]:
    seed_items(
        registry, [SeedItem.from_json(i) for i in json.loads((case_dir / "seed.json").read_text())]
    )
    refs = []
    for n, bundle in enumerate(json.loads((case_dir / "bundles.json").read_text())):
        tree = materialize(bundle["files"], tmp_path / f"tree{n}", registry)
        ref = bundle["ref"].replace("${REGISTRY}", registry.host)
        res = run_cli(["push", "-b", ref, "-f", str(tree)], capfd)
        assert res.code == 0, res.err
        refs.append(ref)
    return refs


@pytest.mark.parametrize("route", ["repo", "tar"])
@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_locations_images_are_imgpkgs(
    case_dir: Path,
    route: str,
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    expected = json.loads((case_dir / "expected.json").read_text())
    refs = _prepare(case_dir, registry, tmp_path, capfd)
    root = case["root"].replace("${REGISTRY}", registry.host)
    mirror = f"{case['mirror']}-lockresolve-{route}"
    if route == "repo":
        res = run_cli(["copy", "-b", root, "--to-repo", f"{registry.host}/{mirror}"], capfd)
        assert res.code == 0, res.err
    else:
        tar = tmp_path / "bundle.tar"
        res = run_cli(["copy", "-b", root, "--to-tar", str(tar)], capfd)
        assert res.code == 0, res.err
        res = run_cli(["copy", "--tar", str(tar), "--to-repo", f"{registry.host}/{mirror}"], capfd)
        assert res.code == 0, res.err

    for raw_ref, ref in zip(expected["locations"], refs, strict=True):
        assert raw_ref.replace("${REGISTRY}", registry.host) == ref
        got = _locations_text(registry, mirror, _digest(registry, ref))
        imgpkgs = [
            o["text"].replace("${REGISTRY}", registry.host) for o in expected["locations"][raw_ref]
        ]
        assert got in imgpkgs, f"{ref}: lockresolve wrote\n{got}\nimgpkg wrote one of\n{imgpkgs}"


def test_same_digest_entries_keep_the_first_of_images_yml(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """imgpkg keeps one entry per digest; of the two nested bundles it records either from
    run to run, of the two plain images always the first. lockresolve keeps the first."""
    case_dir = conformance_dir() / "locations" / "l02-same-digest"
    refs = _prepare(case_dir, registry, tmp_path, capfd)
    root = refs[-1]
    res = run_cli(["copy", "-b", root, "--to-repo", f"{registry.host}/l02/first-mirror"], capfd)
    assert res.code == 0, res.err
    text = _locations_text(registry, "l02/first-mirror", _digest(registry, root))
    assert f"{registry.host}/l02/a/nested@" in text and "/l02/b/nested@" not in text
    assert f"{registry.host}/l02/p/img@" in text and "/l02/q/img@" not in text
    assert text.count("- image: ") == 3
