"""Pins under a ``tagSelection`` constraint, and index JSON checked before a child is locked.

Issue 12 items 5 and 6. A pin made under one constraint must not survive a
constraint that would not select it; a platform child's digest goes into the
lock only after the index's shape and the digest itself are checked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pytest_httpx import HTTPXMock

from lockresolve.mediatypes import DOCKER_MANIFEST_LIST, OCI_LAYER
from lockresolve.registry.client import RegistryClient
from lockresolve.registry.transport import TransportPolicy
from lockresolve.resolve.engine import ResolveOptions, TextInput, resolve_inputs
from tests.resolve.test_check_update import push_tag
from tests.support.cli import run_cli
from tests.support.conformance import push_manifest
from tests.support.registry import Registry


def override(repo: str, constraints: str | None) -> str:
    """A kbld Config: ``app`` is ``repo``, its tag selected by semver ``constraints``
    (no tagSelection when None)."""
    text = (
        "---\napiVersion: kbld.k14s.io/v1alpha1\nkind: Config\noverrides:\n"
        f"- image: app\n  newImage: {repo}\n"
    )
    if constraints is not None:
        text += f"  tagSelection:\n    semver:\n      constraints: {constraints!r}\n"
    return text


POD = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: app\n"


def pod_and_config(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """POD written; the config and lock paths, and the arguments resolving with both."""
    (tmp_path / "pod.yml").write_text(POD)
    config = tmp_path / "kbld.yml"
    lock = tmp_path / "images.yml"
    args = ["-f", str(tmp_path / "pod.yml"), "-f", str(config), "--imgpkg-lock-output", str(lock)]
    return config, lock, args


def test_tightened_constraint_re_resolves_the_pin_and_check_reports_it(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    repo = f"{registry.host}/pins/semver"
    old = push_tag(registry, "pins/semver", "1.0.0", "semver-1")
    new = push_tag(registry, "pins/semver", "2.0.0", "semver-2")
    config, lock, args = pod_and_config(tmp_path)
    config.write_text(override(repo, "<2.0.0"))
    code, _, err = run_cli(args, capfd)
    assert code == 0, err
    assert f"{repo}@{old}" in lock.read_text()

    # Still within the constraint (loosened): the pin holds, no request.
    config.write_text(override(repo, "<3.0.0 >=1.0.0"))
    mark = registry.mark()
    code, _, err = run_cli([*args, "--check"], capfd)
    assert code == 0, err
    assert registry.request_log(since=mark) == []

    # Tightened so that 1.0.0 is out: --check says so, a run re-pins to 2.0.0.
    config.write_text(override(repo, ">=2.0.0"))
    before = lock.read_bytes()
    code, _, err = run_cli([*args, "--check"], capfd)
    assert code == 1
    assert f"  ~ app: {repo}@{old} -> {repo}@{new}" in err
    assert lock.read_bytes() == before
    code, _, err = run_cli(args, capfd)
    assert code == 0, err
    text = lock.read_text()
    assert f"{repo}@{new}" in text and f"url: {repo}:2.0.0" in text


def test_pin_made_by_a_tag_selection_is_dropped_with_the_selection(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without tagSelection, ``repo`` means ``repo:latest``: a ``repo:1.0.0`` pin is stale."""
    repo = f"{registry.host}/pins/dropped"
    old = push_tag(registry, "pins/dropped", "1.0.0", "dropped-1")
    latest = push_tag(registry, "pins/dropped", "latest", "dropped-latest")
    config, lock, args = pod_and_config(tmp_path)
    config.write_text(override(repo, ">=1.0.0"))
    assert run_cli(args, capfd)[0] == 0
    assert f"{repo}@{old}" in lock.read_text()
    config.write_text(override(repo, None))
    code, _, err = run_cli([*args, "--check"], capfd)
    assert code == 1
    assert f"  ~ app: {repo}@{old} -> {repo}@{latest}" in err


# --- index JSON -----------------------------------------------------------------------


def test_index_child_with_a_layer_media_type_is_refused(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The real registry stores an index whose child claims a layer media type (it
    checks only that the digest exists); that child is not written to a lock."""
    image = push_tag(registry, "pins/badtype", "child", "badtype-child")
    size = 0
    with registry.client() as client:
        size = int(
            client.head(
                f"/v2/pins/badtype/manifests/{image}",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            ).headers["content-length"]
        )
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST_LIST,
                "manifests": [
                    {
                        "mediaType": OCI_LAYER,
                        "size": size,
                        "digest": image,
                        "platform": {"os": "linux", "architecture": "amd64"},
                    }
                ],
            }
        ).encode()
        push_manifest(client, "pins/badtype", "1", DOCKER_MANIFEST_LIST, index)
    ref = f"{registry.host}/pins/badtype:1"
    (tmp_path / "pod.yml").write_text(POD.replace("image: app", f"image: {ref}"))
    lock = tmp_path / "images.yml"
    code, out, err = run_cli(
        [
            "-f",
            str(tmp_path / "pod.yml"),
            "--platform",
            "linux/amd64",
            "--imgpkg-lock-output",
            str(lock),
        ],
        capfd,
    )
    assert code == 1
    assert out == ""
    assert not lock.exists()
    (line,) = [ln for ln in err.splitlines() if ln.startswith("- ")]
    assert line.startswith(f"- Resolving image '{ref}' ({tmp_path / 'pod.yml'}:8): index '")
    assert f"lists {image} for platform 'linux/amd64' with media type '{OCI_LAYER}'" in line
    assert "Traceback" not in err


BASE = "https://registry.example"
GOOD = "sha256:" + "a" * 64

MALFORMED: dict[str, tuple[object, str]] = {
    "top-level-array": ([{"digest": GOOD}], "expected a JSON object, got an array"),
    "manifests-object": ({"manifests": {"digest": GOOD}}, "manifests is an object, not an array"),
    "child-string": ({"manifests": ["sha256:x"]}, "manifests[0] is a string, not an object"),
    "no-digest": (
        {"manifests": [{"platform": {"os": "linux", "architecture": "amd64"}}]},
        "manifests[0] has no digest",
    ),
    "digest-number": ({"manifests": [{"digest": 5}]}, "manifests[0] has no digest"),
    "digest-short": (
        {"manifests": [{"digest": "sha256:abc"}]},
        "manifests[0] has an invalid digest 'sha256:abc'",
    ),
    "digest-upper": (
        {"manifests": [{"digest": "sha256:" + "A" * 64}]},
        "manifests[0] has an invalid digest",
    ),
    "digest-path": (
        {"manifests": [{"digest": "sha256:../../" + "a" * 58}]},
        "manifests[0] has an invalid digest",
    ),
    "digest-sha512": (
        {"manifests": [{"digest": "sha512:" + "a" * 128}]},
        "manifests[0] has a sha512 digest; image references take sha256",
    ),
    "media-type-number": (
        {"manifests": [{"digest": GOOD, "mediaType": 7}]},
        "manifests[0] has a mediaType that is not a string",
    ),
    "index-media-type-list": ({"mediaType": [], "manifests": []}, "mediaType is not a string"),
    "platform-string": (
        {"manifests": [{"digest": GOOD, "platform": "linux/amd64"}]},
        "manifests[0] has a platform that is not an object of strings",
    ),
    "platform-os-number": (
        {"manifests": [{"digest": GOOD, "platform": {"os": 1, "architecture": "amd64"}}]},
        "manifests[0] has a platform that is not an object of strings",
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_index_is_one_error_naming_the_reference(
    httpx_mock: HTTPXMock, name: str, anyio_backend: str
) -> None:
    """JSON a real registry refuses to store: served by a lying registry."""
    body, reason = MALFORMED[name]
    data = json.dumps(body).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    httpx_mock.add_response(
        method="HEAD",
        url=f"{BASE}/v2/app/manifests/1",
        headers={"Docker-Content-Digest": digest, "Content-Type": DOCKER_MANIFEST_LIST},
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v2/app/manifests/{digest}",
        content=data,
        headers={"Docker-Content-Digest": digest, "Content-Type": DOCKER_MANIFEST_LIST},
    )
    source = TextInput("pod.yml", POD.replace("image: app", "image: registry.example/app:1"))
    async with RegistryClient(TransportPolicy()) as client:
        result = await resolve_inputs(
            [source], ResolveOptions(platform="linux/amd64"), client=client
        )
    (failure,) = result.failures
    text = str(failure)
    assert text.startswith(
        f"Resolving image 'registry.example/app:1' (pod.yml:8): index "
        f"'registry.example/app@{digest}' is malformed: "
    )
    assert reason in text
    assert "\n" not in text
    assert result.resolved == {}
