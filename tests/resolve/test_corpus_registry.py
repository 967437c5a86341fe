"""The real-world corpus resolved end to end against the real registry.

For each corpus case without kbld configuration of its own, every reference an
independent walk finds (ruamel's plain loader, kbld's default rule) is pointed
at an image in the test registry with a kbld override, given as one more
``-f`` input; the corpus files themselves are read as they are. The run must
succeed, the lock must hold exactly the references of the independent walk,
and each must be pinned to the digest of the image pushed for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from lockresolve.lock import read_images_lock
from lockresolve.registry.client import RegistryClient
from tests.resolve.pipeline import CORPUS, UNPARSABLE
from tests.resolve.test_corpus import independent_walk
from tests.support.cli import run_cli
from tests.support.images import DOCKER_MANIFEST, digest_of, make_image
from tests.support.registry import Registry

YAML_SUFFIXES = (".yml", ".yaml", ".json")


def case_files(case: Path) -> list[Path]:
    return sorted(p for p in case.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)


def config_free_cases() -> list[Path]:
    cases = []
    for case in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        files = case_files(case)
        if any(f.name in UNPARSABLE for f in files):
            continue
        if any(independent_walk(f)[1] or _has_config(f) for f in files):
            continue
        cases.append(case)
    return cases


def _has_config(path: Path) -> bool:
    text = path.read_text(encoding="utf-8-sig")
    return "kbld.k14s.io/v1alpha1" in text or "kind: ImagesLock" in text


async def push_images(registry: Registry, repo: str, count: int) -> list[str]:
    """``count`` distinct images sharing one layer; returns their digests in order."""
    base = make_image(repo)
    async with RegistryClient() as client:
        layer_digest = digest_of(base.layer)
        await client.upload_blob(registry.host, repo, layer_digest, len(base.layer), base.layer)
        digests: list[str] = [""] * count

        async def one(i: int) -> None:
            image = make_image(f"{repo}#{i}")
            config = image.config
            manifest = image.manifest.replace(
                digest_of(image.layer).encode(), layer_digest.encode()
            ).replace(f'"size":{len(image.layer)}'.encode(), f'"size":{len(base.layer)}'.encode())
            await client.upload_blob(registry.host, repo, digest_of(config), len(config), config)
            digests[i] = await client.put_manifest(
                registry.host, repo, f"t{i}", manifest, DOCKER_MANIFEST
            )

        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(one, i)
    return digests


@pytest.mark.parametrize("case", config_free_cases(), ids=lambda p: p.name)
def test_corpus_case_resolves_end_to_end(
    case: Path, registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    files = case_files(case)
    expected = list(dict.fromkeys(r for f in files for r in independent_walk(f)[0]))
    # kbld cannot override or resolve a blank value (openshift-origin-testdata has "" and
    # " "): the run must fail naming them, and write no lock.
    blank = [r for r in expected if not r.strip()]
    expected = [r for r in expected if r.strip()]
    repo = f"corpus/{case.name}"
    digests = anyio.run(push_images, registry, repo, len(expected)) if expected else []
    overrides = [
        {"image": ref, "newImage": f"{registry.host}/{repo}:t{i}"} for i, ref in enumerate(expected)
    ]
    config = tmp_path / "overrides.json"
    config.write_text(
        json.dumps(
            {"apiVersion": "kbld.k14s.io/v1alpha1", "kind": "Config", "overrides": overrides}
        )
    )
    lock = tmp_path / "images.yml"
    args = [a for f in files for a in ("-f", str(f))]
    code, out, err = run_cli([*args, "-f", str(config), "--imgpkg-lock-output", str(lock)], capfd)
    if blank:
        assert code == 1
        assert out == ""
        assert not lock.exists()
        for ref in blank:
            assert f"Resolving image '{ref}'" in err
        return
    assert code == 0, err
    assert out.startswith("---") or not expected
    got = {
        e.annotations["kbld.carvel.dev/id"]: e.image
        for e in read_images_lock(lock.read_text(), str(lock)).images
    }
    assert got == {ref: f"{registry.host}/{repo}@{digests[i]}" for i, ref in enumerate(expected)}


def test_most_of_the_corpus_is_covered() -> None:
    cases = config_free_cases()
    refs = sum(len(independent_walk(f)[0]) for c in cases for f in case_files(c))
    # A guard against the filter above silently dropping most of the corpus.
    assert len(cases) >= 20
    assert refs >= 200
