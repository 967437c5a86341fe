"""``copy --cosign-signatures`` against ``imgpkg copy --cosign-signatures`` v0.42.3
(``tests/fixtures/conformance/signatures/``): a cosign-signed image (the ``.sig`` manifest laid
out as cosign writes it, signed with a throwaway key) and an unsigned one, copied alone and in
a bundle to the real registry; the destination's tags and digests are imgpkg's. The signature
also survives a tar and an OCI layout byte for byte (skopeo reads it back)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.conformance.recording import push_bundles_with_lockresolve
from tests.fixtures.conformance.signatures.record import tags_with_digests
from tests.robustness.helpers import run_cli
from tests.support.conformance import SeedItem, conformance_dir, seed_items
from tests.support.registry import Registry, skopeo_inspect_raw

CASE = conformance_dir() / "signatures" / "s01-signed-image"


@pytest.fixture(scope="module")
def seeded(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:

    seed = json.loads((CASE / "seed.json").read_text())
    seed_items(registry, [SeedItem.from_json(i) for i in seed])
    values: dict[str, Any] = {"${REGISTRY}": registry.host}
    bundles = json.loads((CASE / "bundles.json").read_text())
    pushed = push_bundles_with_lockresolve(registry, bundles, tmp_path_factory.mktemp("sig"))
    for name, digest in pushed.items():
        values["${DIGEST:" + name + "}"] = digest
    values["seed_digests"] = {i["digest"] for i in seed if i["put"] == "manifest"}
    sig = next(i for i in seed if i["put"] == "manifest" and i["reference"].endswith(".sig"))
    values["sig"] = sig
    return values


def _expected(name: str, values: dict[str, Any], locations: str) -> dict[str, str]:
    recorded: dict[str, str] = json.loads((CASE / "expected.json").read_text())["tags"][name]
    known = (
        set(values["seed_digests"])
        | {"${LOCATIONS}"}
        | {k for k in values if k.startswith("${DIGEST")}
    )
    out = {}
    for tag, digest in recorded.items():
        if digest not in known:  # the locations image's own tag: its digest names the registry
            tag, digest = locations.replace(":", "-") + ".imgpkg", locations
        for placeholder, value in values.items():
            if placeholder.startswith("${DIGEST"):
                tag = tag.replace(placeholder, value.replace(":", "-"))
                digest = digest.replace(placeholder, value)
        out[tag] = locations if digest == "${LOCATIONS}" else digest
    return out


@pytest.mark.parametrize("name", ["bundle", "image"])
def test_destination_tags_are_imgpkgs(
    name: str, seeded: dict[str, Any], registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    copy = json.loads((CASE / "case.json").read_text())["copies"][name]
    to = copy["to"] + "-lockresolve"
    args = [a.replace("${REGISTRY}", registry.host) for a in copy["args"]]
    res = run_cli([*args, "--to-repo", f"{registry.host}/{to}", "--cosign-signatures"], capfd)
    assert res.code == 0, res.err
    got = tags_with_digests(registry, to)
    locations = next((d for t, d in got.items() if t.endswith(".image-locations.imgpkg")), "")
    assert got == _expected(name, seeded, locations)


def test_signatures_are_not_copied_by_default(
    seeded: dict[str, Any], registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    res = run_cli(
        ["copy", "-i", f"{registry.host}/s01/img:1", "--to-repo", f"{registry.host}/s01/nosig"],
        capfd,
    )
    assert res.code == 0, res.err
    assert not [t for t in tags_with_digests(registry, "s01/nosig") if t.endswith(".sig")]


@pytest.mark.parametrize("form", ["tar", "oci-layout"])
def test_a_signature_survives_a_tar_and_a_layout_unchanged(
    form: str,
    seeded: dict[str, Any],
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    files = tmp_path / ("t.tar" if form == "tar" else "layout")
    src = f"{registry.host}/s01/img:1"
    res = run_cli(["copy", "-i", src, f"--to-{form}", str(files), "--cosign-signatures"], capfd)
    assert res.code == 0, res.err
    dst = f"s01/through-{form}"
    res = run_cli(["copy", f"--{form}", str(files), "--to-repo", f"{registry.host}/{dst}"], capfd)
    assert res.code == 0, res.err
    sig = seeded["sig"]
    tags = tags_with_digests(registry, dst)
    assert tags[sig["reference"]] == sig["digest"]
    raw = skopeo_inspect_raw(f"{dst}:{sig['reference']}", registry)
    assert raw == base64.b64decode(sig["data_base64"])
    layer = json.loads(raw)["layers"][0]
    assert "dev.cosignproject.cosign/signature" in layer["annotations"]
