"""``copy --cosign-signatures`` against ``imgpkg copy --cosign-signatures`` v0.42.3
(``tests/fixtures/conformance/signatures/``): a cosign-signed image (the ``.sig`` manifest laid
out as cosign writes it, signed with a throwaway key) and an unsigned one, copied alone and in
a bundle to the real registry; the destination's tags and digests are imgpkg's, and so are the
``--lock-output`` file and the locations image's ``image-locations.yml``, byte for byte (an image
copy's ImagesLock lists the signature, a bundle's BundleLock and locations image do not). The
signature also survives a tar and an OCI layout byte for byte (skopeo reads it back)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FaultProxyFactory
from tests.fixtures.conformance.recording import push_bundles_with_lockresolve
from tests.fixtures.conformance.signatures.record import tags_with_digests
from tests.robustness.helpers import copy_through, run_cli
from tests.support.conformance import SeedItem, conformance_dir, seed_items
from tests.support.faultproxy import Fault, FaultPlan
from tests.support.registry import Registry, skopeo_inspect_raw

CASE = conformance_dir() / "signatures" / "s01-signed-image"
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def seeded(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The case's seed and bundles (pushed with lockresolve) in the registry, and the values
    that fill the recorded expectations' placeholders."""
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


def _recorded_text(kind: str, name: str, values: dict[str, Any], to: str) -> str | None:
    recorded: dict[str, str] = json.loads((CASE / "expected.json").read_text())[kind]
    if name not in recorded:
        return None
    copy = json.loads((CASE / "case.json").read_text())["copies"][name]
    text = recorded[name].replace("/" + copy["to"] + "@", "/" + to + "@")
    for placeholder, value in values.items():
        if placeholder.startswith("$"):
            text = text.replace(placeholder, value)
    return text


def _locations_file(registry: Registry, repo: str, digest: str) -> str:
    """The ``image-locations.yml`` of a locations image, read with plain GETs."""
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json," + ACCEPT}
    manifest = httpx.get(f"{registry.url}/v2/{repo}/manifests/{digest}", headers=accept).json()
    (layer,) = manifest["layers"]
    blob = httpx.get(f"{registry.url}/v2/{repo}/blobs/{layer['digest']}", follow_redirects=True)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.content))) as tar:
        member = tar.extractfile("image-locations.yml")
        assert member is not None
        return member.read().decode()


@pytest.mark.parametrize("name", ["bundle", "image", "lock"])
def test_destination_tags_lock_and_locations_are_imgpkgs(
    name: str,
    seeded: dict[str, Any],
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    copy = json.loads((CASE / "case.json").read_text())["copies"][name]
    to = copy["to"] + "-lockresolve"
    lock_in = tmp_path / "input.yml"
    if "lock_file" in copy:
        lock_in.write_text(copy["lock_file"].replace("${REGISTRY}", registry.host))
    args = [
        a.replace("${REGISTRY}", registry.host).replace("${LOCK}", str(lock_in))
        for a in copy["args"]
    ]
    out = tmp_path / "lock.yml"
    flags = ["--cosign-signatures", "--lock-output", str(out)]
    res = run_cli([*args, "--to-repo", f"{registry.host}/{to}", *flags], capfd)
    assert res.code == 0, res.err
    got = tags_with_digests(registry, to)
    locations = next((d for t, d in got.items() if t.endswith(".image-locations.imgpkg")), "")
    assert got == _expected(name, seeded, locations)
    assert out.read_text() == _recorded_text("locks", name, seeded, to)
    recorded_locations = _recorded_text("locations", name, seeded, to)
    if recorded_locations is None:
        assert not locations
    else:
        assert _locations_file(registry, to, locations) == recorded_locations


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
    src = f"{registry.host}/s01/img:1"
    dst = f"s01/through-{form}"
    copy_through(form, src, f"{registry.host}/{dst}", tmp_path, capfd, ["--cosign-signatures"])
    sig = seeded["sig"]
    tags = tags_with_digests(registry, dst)
    assert tags[sig["reference"]] == sig["digest"]
    raw = skopeo_inspect_raw(f"{dst}:{sig['reference']}", registry)
    assert raw == base64.b64decode(sig["data_base64"])
    layer = json.loads(raw)["layers"][0]
    assert "dev.cosignproject.cosign/signature" in layer["annotations"]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_signature_as_imgpkg(
    status: int,
    seeded: dict[str, Any],
    registry: Registry,
    fault_proxy_factory: FaultProxyFactory,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The source behind the fault proxy, which refuses the ``.sig``: imgpkg v0.42.3 skips a
    403 (its ``AccessDeniedErr``) and stops on a 401 with ``Fetching signature for image
    '<ref>': <error>`` (run by hand against the same setup); so does lockresolve."""
    refuse = Fault.error(status, code="UNAUTHORIZED" if status == 401 else "DENIED")
    plan = FaultPlan(rate=1.0, choices=(refuse,), path_contains=".sig")
    proxy = fault_proxy_factory(registry.url, plan)
    dst = f"s01/refused-{status}"
    args = ["copy", "-i", f"{proxy.host}/s01/img:1", "--to-repo", f"{registry.host}/{dst}"]
    res = run_cli([*args, "--cosign-signatures"], capfd)
    image = "sha256:61737c107cb798aecb156dea0939249e833ba6f34e3114c810136a5923192942"
    if status == 403:
        assert res.code == 0, res.err
        assert not [t for t in tags_with_digests(registry, dst) if t.endswith(".sig")]
        return
    assert res.code == 1
    sig_url = f"http://{proxy.host}/v2/s01/img/manifests/{image.replace(':', '-')}.sig"
    # imgpkg's words; then the request that failed (lockresolve's HEAD, where imgpkg retries
    # with a GET to show the body) and the status
    assert res.err.startswith(
        f"lockresolve: error: Fetching signature for image '{proxy.host}/s01/img@{image}': "
        f"HEAD {sig_url}: 401 "
    ), res.err
    assert res.err.count("\n") == 1
