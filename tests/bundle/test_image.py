"""Config and manifest JSON byte for byte as imgpkg writes them; -l parsing."""

from __future__ import annotations

import hashlib
import json

import pytest

from lockresolve import mediatypes
from lockresolve.bundle.formats.image import (
    BUNDLE_LABEL,
    check_user_labels,
    config_json,
    go_json_string,
    manifest_json,
    parse_label_flags,
)
from lockresolve.errors import UsageError
from tests.support.bundle_cases import BundleCase, load_cases

CASES = load_cases()
DIFF_ID = "sha256:" + "ab" * 32


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _labels(case: BundleCase) -> dict[str, str]:
    labels = parse_label_flags(case.labels())
    if case.mode == "-b":
        labels[BUNDLE_LABEL] = "true"
    return labels


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_config_json_matches_imgpkg(case: BundleCase) -> None:
    config = config_json(case.expected["diff_id"], _labels(case))

    assert config.decode() == case.expected["config_json"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_manifest_json_matches_imgpkg(case: BundleCase) -> None:
    config = config_json(case.expected["diff_id"], _labels(case))
    manifest = manifest_json(
        _sha256(config), len(config), case.expected["layer_digest"], case.expected["layer_size"]
    )

    assert manifest.decode() == case.expected["manifest_json"]
    assert _sha256(manifest) == case.expected["manifest_digest"]


def test_config_without_labels_has_empty_config_object() -> None:
    config = json.loads(config_json(DIFF_ID))

    assert config["config"] == {}
    assert config["rootfs"] == {"type": "layers", "diff_ids": [DIFF_ID]}


def test_labels_sorted_by_bytes_and_escaped_like_go() -> None:
    config = config_json(DIFF_ID, {"z": "1", "a<b": "x&y>", "é": "\u2028", "B": "日本"})

    assert config.endswith(
        '"config":{"Labels":{"B":"日本","a\\u003cb":"x\\u0026y\\u003e","z":"1","é":"\\u2028"}}}'.encode()
    )
    assert json.loads(config)["config"]["Labels"]["a<b"] == "x&y>"


@pytest.mark.parametrize(
    ("value", "go"),
    [
        ("plain", '"plain"'),
        ('q"b\\', '"q\\"b\\\\"'),
        ("\n\r\t\b\f", '"\\n\\r\\t\\b\\f"'),
        ("\x00\x01\x1f\x7f", '"\\u0000\\u0001\\u001f\x7f"'),
        ("<>&", '"\\u003c\\u003e\\u0026"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("café 日本 😀", '"café 日本 😀"'),
        ("bad\udcff", '"bad\\ufffd"'),  # an undecodable byte, as Python keeps it
    ],
)
def test_go_json_string(value: str, go: str) -> None:
    assert go_json_string(value) == go


def test_manifest_field_order_and_media_types() -> None:
    manifest = manifest_json("sha256:c", 10, "sha256:l", 20)

    assert manifest == (
        b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":10,'
        b'"digest":"sha256:c"},"layers":[{"mediaType":'
        b'"application/vnd.docker.image.rootfs.diff.tar.gzip","size":20,"digest":"sha256:l"}]}'
    )


@pytest.mark.parametrize(
    ("flags", "labels"),
    [
        (["team=platform,tier=backend"], {"team": "platform", "tier": "backend"}),
        (["a=1"], {"a": "1"}),
        (["a=1,2"], {"a": "1,2"}),  # a single '=': the whole value is one pair
        (['"a=1"'], {"a": "1"}),
        (['"a=1,2",b=3'], {"a": "1,2", "b": "3"}),  # several: read as CSV
        (["a=x=y"], {"a": "x=y"}),
        (["k="], {"k": ""}),
        (["a=1", "b=2", "a=3"], {"a": "3", "b": "2"}),
        ([], {}),
    ],
)
def test_parse_label_flags(flags: list[str], labels: dict[str, str]) -> None:
    assert parse_label_flags(flags) == labels


def test_label_without_equals_is_refused_with_pflag_message() -> None:
    with pytest.raises(UsageError) as err:
        parse_label_flags(["team"])
    assert str(err.value) == (
        'invalid argument "team" for "-l, --labels" flag: team must be formatted as key=value'
    )


def test_one_bad_pair_among_several_is_named() -> None:
    with pytest.raises(UsageError, match="tier must be formatted as key=value"):
        parse_label_flags(["team=a=b,tier"])


def test_users_may_not_set_the_bundle_label() -> None:
    check_user_labels({"team": "x"})
    with pytest.raises(UsageError) as err:
        check_user_labels({BUNDLE_LABEL: "true"})
    assert str(err.value) == (
        "label 'dev.carvel.imgpkg.bundle' is reserved and cannot be overriden. "
        "Please use a different key"
    )


def test_manifest_accept_lists_every_manifest_type() -> None:
    assert set(mediatypes.MANIFEST_ACCEPT) == {
        mediatypes.DOCKER_MANIFEST_SCHEMA2,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.OCI_MANIFEST,
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST_SCHEMA1,
        mediatypes.DOCKER_MANIFEST_SCHEMA1_SIGNED,
    }
    assert len(mediatypes.MANIFEST_ACCEPT) == 6
