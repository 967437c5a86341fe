"""``describe`` against ``imgpkg describe`` v0.42.3 (``tests/fixtures/conformance/describe/``):
the recorded case is rebuilt in the real registry (images seeded byte for byte, bundles pushed
and copied by lockresolve), and the yaml and text outputs are compared with imgpkg's, of the
bundle before and after a copy. The registry's log shows that no image layer is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.fixtures.conformance.describe.record import layer_of, locations_digests
from tests.fixtures.conformance.recording import push_bundles_with_lockresolve
from tests.robustness.helpers import run_cli
from tests.support.conformance import SeedItem, conformance_dir, seed_items
from tests.support.registry import Registry

CASES = sorted(p for p in (conformance_dir() / "describe").iterdir() if (p / "case.json").is_file())


@pytest.fixture(scope="module", params=CASES, ids=[p.name for p in CASES])
def built(
    request: pytest.FixtureRequest, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Seed, push and copy the case; placeholder -> value for this registry."""
    from lockresolve.cli import main

    CASE: Path = request.param
    tmp = tmp_path_factory.mktemp("describe")
    case = json.loads((CASE / "case.json").read_text())
    seed_items(
        registry, [SeedItem.from_json(i) for i in json.loads((CASE / "seed.json").read_text())]
    )
    values = {"${REGISTRY}": registry.host}
    bundles = json.loads((CASE / "bundles.json").read_text())
    digests = push_bundles_with_lockresolve(registry, bundles, tmp)
    for name in digests:
        repo, _, tag = name.rpartition(":")
        values["${LAYER:" + name + "}"] = layer_of(registry, repo, tag)
    root = case["root"].replace("${REGISTRY}", registry.host)
    try:
        main(["copy", "-b", root, "--to-repo", f"{registry.host}/{case['mirror']}"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    for name, digest in digests.items():
        values["${DIGEST:" + name + "}"] = digest
        loc, layer = locations_digests(registry, case["mirror"], digest)
        values["${LOCATIONS:" + name + "}"] = loc
        values["${LOCATIONS_LAYER:" + name + "}"] = layer
    values["root"] = root
    values["mirror"] = f"{registry.host}/{case['mirror']}:1"
    values["case"] = str(CASE)
    return values


def _imgpkgs(key: str, values: dict[str, str]) -> list[str]:
    outcomes = json.loads((Path(values["case"]) / "expected.json").read_text())["describe"][key]
    texts = []
    for outcome in outcomes:
        text = outcome["text"]
        for placeholder, value in values.items():
            if placeholder.startswith("$"):
                text = text.replace(placeholder, value)
        texts.append(text)
    return texts


@pytest.mark.parametrize("target", ["root", "mirror"])
def test_yaml_is_imgpkgs(
    target: str, built: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    res = run_cli(["describe", "-b", built[target], "--output-type", "yaml"], capfd)
    assert res.code == 0, res.err
    (expected,) = _imgpkgs(f"{target}-yaml", built)
    if target == "root":
        assert res.out == expected
    else:
        # The locations images name the registry, so their digests here are not the
        # recorded ones, and Go sorts map keys: compare as data, and lockresolve's key
        # order with the sort the emitter applies to the (same) data.
        assert YAML(typ="safe").load(res.out) == YAML(typ="safe").load(expected)
        assert res.out.splitlines()[0] == expected.splitlines()[0]
        assert sorted(res.out.splitlines()) == sorted(expected.splitlines())


@pytest.mark.parametrize("target", ["root", "mirror"])
def test_text_is_imgpkgs_up_to_map_order(
    target: str, built: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    """imgpkg prints Go maps (random order); lockresolve sorts by digest. d01's root text
    (one entry per list) came out the same in every imgpkg run and must match exactly."""
    res = run_cli(["describe", "-b", built[target]], capfd)
    assert res.code == 0, res.err
    imgpkg = _imgpkgs(f"{target}-text", built)
    if target == "root" and built["case"].endswith("d01-nested"):
        assert imgpkg == [res.out]
    else:
        assert any(sorted(res.out.splitlines()) == sorted(t.splitlines()) for t in imgpkg)
        head = res.out.splitlines()[:3]
        assert all(t.splitlines()[:3] == head for t in imgpkg)


def test_describe_reads_no_image_layer(
    built: dict[str, str], registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    seed = json.loads((Path(built["case"]) / "seed.json").read_text())
    manifests = [json.loads(SeedItem.from_json(i).data) for i in seed if i["put"] == "manifest"]
    image_layers = {layer["digest"] for m in manifests for layer in m["layers"]}
    mark = registry.mark()
    res = run_cli(["describe", "-b", built["mirror"], "--output-type", "yaml"], capfd)
    assert res.code == 0, res.err
    blob_gets = [
        r.path.rsplit("/", 1)[1]
        for r in registry.request_log(since=mark)
        if r.method == "GET" and "/blobs/" in r.path
    ]
    assert blob_gets and not image_layers & set(blob_gets)
    copied = [json.loads(SeedItem.from_json(i).data) for i in seed if i.get("reference") == "1"]
    for digest in {layer["digest"] for m in copied for layer in m["layers"]}:
        # the copied images' layers are listed, read from their manifests
        assert f"- digest: {digest}" in res.out


def test_a_plain_image_is_refused(
    built: dict[str, str], registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    seed = json.loads((Path(built["case"]) / "seed.json").read_text())
    plain = next(i for i in seed if i["put"] == "manifest" and i["reference"] == "1")
    res = run_cli(["describe", "-b", f"{registry.host}/{plain['repo']}:1"], capfd)
    assert res.code == 1 and len(res.err_lines) == 1
    assert "Only bundles can be described" in res.err
    res = run_cli(["describe", "-b", built["root"], "--output-type", "json"], capfd)
    assert res.code == 2 and "--output-type can only have" in res.err


def _blob_gets(registry: Registry, mark: int) -> set[str]:
    return {
        r.path.rsplit("/", 1)[1]
        for r in registry.request_log(since=mark)
        if r.method == "GET" and "/blobs/" in r.path
    }


def test_sub_bundles_false_lists_nested_bundles_unexpanded(
    built: dict[str, str], registry: Registry, capfd: pytest.CaptureFixture[str]
) -> None:
    """imgpkg has no --sub-bundles and always describes nested bundles: that stays the
    default (and ``--sub-bundles``); ``--sub-bundles=false`` lists each nested bundle with
    its image, origin, annotations and layers, ``content: {}``, its .imgpkg not read.
    A case without nested bundles describes the same either way."""
    args = ["describe", "-b", built["root"], "--output-type", "yaml"]
    mark = registry.mark()
    default = run_cli(args, capfd)
    default_gets = _blob_gets(registry, mark)
    explicit = run_cli([*args, "--sub-bundles"], capfd)
    assert default.code == explicit.code == 0, default.err
    assert explicit.out == default.out
    mark = registry.mark()
    flat = run_cli([*args, "--sub-bundles=false"], capfd)
    assert flat.code == 0, flat.err
    flat_gets = _blob_gets(registry, mark)
    full = YAML(typ="safe").load(default.out)
    got = YAML(typ="safe").load(flat.out)
    nested_bundles = full["content"].get("bundles") or {}
    if not built["case"].endswith("d01-nested"):
        assert not nested_bundles and flat.out == default.out
        return
    (nested_key,) = nested_bundles
    nested = nested_bundles[nested_key]
    assert nested["content"], "the recorded case's nested bundle has contents"
    nested_layer = nested["layers"][0]["digest"]
    # the nested bundle's .imgpkg layer is read by default, not with --sub-bundles=false
    assert nested_layer in default_gets and nested_layer not in flat_gets
    assert got["content"]["images"] == full["content"]["images"]
    listed = got["content"]["bundles"][nested_key]
    assert listed["content"] == {}
    assert {k: v for k, v in listed.items() if k != "content"} == {
        k: v for k, v in nested.items() if k != "content"
    }
    text = run_cli(["describe", "-b", built["root"], "--sub-bundles=false"], capfd)
    assert text.code == 0 and "Type: Bundle" in text.out
