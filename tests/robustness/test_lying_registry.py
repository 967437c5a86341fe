"""Lying registries end to end: a scripted HTTP server on loopback answers the CLI with bytes
that do not match their digests, HEAD digests that disagree with the body, redirects to
other hosts, endless pagination and oversized manifests. Each is refused with one clear
line naming what was asked for; nothing is written."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import lockresolve.registry.listing as listing_module
from lockresolve.registry.protocol import MAX_MANIFEST_BYTES
from tests.robustness.helpers import (
    DOCKER_MANIFEST,
    CliResult,
    EvilRegistry,
    Reply,
    digest_of,
    image_manifest,
    layer_tar,
    run_cli,
    snapshot,
    tally,
)

OTHER = "sha256:" + "0" * 64
INDEX = "application/vnd.oci.image.index.v1+json"

LAYER_TAR = layer_tar([])
LAYER = gzip.compress(LAYER_TAR, mtime=0)
CONFIG = json.dumps(
    {"os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest_of(LAYER_TAR)]}}
).encode()
MANIFEST = image_manifest(CONFIG, LAYER)
DIGEST = digest_of(MANIFEST)


def manifest_reply(body: bytes = MANIFEST, headers: dict[str, str] | None = None) -> Reply:
    return Reply(200, {"Content-Type": DOCKER_MANIFEST, **(headers or {})}, body)


@pytest.fixture
def evil() -> Iterator[EvilRegistry]:
    server = EvilRegistry().start()
    yield server
    server.stop()


def refused(res: CliResult, *needles: str) -> None:
    assert res.code == 1, res.err
    assert "Traceback" not in res.err and "internal error" not in res.err, res.err
    for needle in needles:
        assert needle in res.err, (needle, res.err)
    tally("lying-registry answers refused")


def pull_refused(
    args: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str], *needles: str
) -> CliResult:
    out = tmp_path / "out"
    res = run_cli(["pull", *args, "-o", str(out), "--registry-retry-count", "1"], capfd)
    refused(res, *needles)
    assert len(res.err_lines) == 1, res.err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    return res


def test_manifest_whose_bytes_do_not_match_the_digest_asked_for(
    evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    evil.routes[("GET", f"/v2/evil/app/manifests/{OTHER}")] = manifest_reply()
    pull_refused(
        ["-i", f"{evil.host}/evil/app@{OTHER}"],
        tmp_path,
        capfd,
        f"/v2/evil/app/manifests/{OTHER}",
        f"manifest content hashes to {DIGEST}, not {OTHER}",
    )


def test_manifest_whose_announced_digest_disagrees_with_its_bytes(
    evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    evil.routes[("GET", "/v2/evil/app/manifests/1")] = manifest_reply(
        headers={"Docker-Content-Digest": OTHER}
    )
    pull_refused(
        ["-i", f"{evil.host}/evil/app:1"],
        tmp_path,
        capfd,
        "/v2/evil/app/manifests/1",
        f"not {OTHER}",
    )


def test_blob_whose_bytes_do_not_match_its_digest(
    evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    evil.routes[("GET", "/v2/evil/app/manifests/1")] = manifest_reply()
    evil.routes[("GET", f"/v2/evil/app/blobs/{digest_of(CONFIG)}")] = Reply(body=CONFIG)
    evil.routes[("GET", f"/v2/evil/app/blobs/{digest_of(LAYER)}")] = Reply(
        body=gzip.compress(layer_tar([]) + b"\0" * 512, mtime=0)
    )
    pull_refused(
        ["-i", f"{evil.host}/evil/app:1"],
        tmp_path,
        capfd,
        f"evil/app@{digest_of(LAYER)}",
        "blob content hashes to",
    )


def test_head_digest_that_disagrees_with_the_get_body(
    evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """With --platform the index is fetched by the digest HEAD announced; its bytes must
    hash to that digest."""
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": []}).encode()
    evil.routes[("HEAD", "/v2/evil/multi/manifests/1")] = Reply(
        200, {"Docker-Content-Digest": OTHER, "Content-Type": INDEX}
    )
    evil.routes[("GET", f"/v2/evil/multi/manifests/{OTHER}")] = Reply(
        200, {"Content-Type": INDEX}, index
    )
    (tmp_path / "in.yml").write_text(f"kind: Pod\nimage: {evil.host}/evil/multi:1\n")
    lock = tmp_path / "images.yml"
    res = run_cli(
        [
            "-f",
            str(tmp_path / "in.yml"),
            "--platform",
            "linux/amd64",
            "--imgpkg-lock-output",
            str(lock),
        ],
        capfd,
    )
    refused(res, f"Resolving image '{evil.host}/evil/multi:1' ({tmp_path / 'in.yml'}:2)")
    refused(res, f"manifest content hashes to {digest_of(index)}, not {OTHER}")
    assert res.out == "" and not lock.exists()


def test_manifest_redirect_to_another_host_is_refused_and_not_followed(
    evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    other = EvilRegistry().start()
    try:
        other.routes[("GET", "/m")] = manifest_reply()
        evil.routes[("GET", "/v2/evil/app/manifests/1")] = Reply(
            307, {"Location": f"http://{other.host}/m"}
        )
        pull_refused(
            ["-i", f"{evil.host}/evil/app:1"],
            tmp_path,
            capfd,
            "/v2/evil/app/manifests/1",
            "307",
        )
        assert other.seen() == []
    finally:
        other.stop()


def _blob_redirect_setup(evil: EvilRegistry, storage: EvilRegistry) -> None:
    evil.routes[("GET", "/v2/evil/app/manifests/1")] = manifest_reply()
    evil.routes[("GET", f"/v2/evil/app/blobs/{digest_of(CONFIG)}")] = Reply(body=CONFIG)
    evil.routes[("GET", f"/v2/evil/app/blobs/{digest_of(LAYER)}")] = Reply(
        307, {"Location": f"http://{storage.host}/layer?sig=abc"}
    )
    storage.routes[("GET", "/layer")] = Reply(body=LAYER)


def test_blob_redirect_to_another_host_carries_no_credentials(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    evil = EvilRegistry(basic_auth=True).start()
    storage = EvilRegistry().start()
    try:
        _blob_redirect_setup(evil, storage)
        res = run_cli(
            [
                "pull",
                "-i",
                f"{evil.host}/evil/app:1",
                "-o",
                str(tmp_path / "out"),
                "--registry-username",
                "user",
                "--registry-password",
                "pw-for-evil",
            ],
            capfd,
        )
        assert res.code == 0, res.err
        assert any("authorization" in r.headers for r in evil.seen("GET"))
        (got,) = storage.seen()
        assert "authorization" not in got.headers
        assert "pw-for-evil" not in res.out + res.err
        tally("lying-registry answers refused")  # the credentials were refused to the other host
    finally:
        evil.stop()
        storage.stop()


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("file:///etc/passwd", "redirect to a non-http URL refused"),
        ("/v2/evil/app/blobs/loop", "too many redirects"),
    ],
    ids=["non-http", "loop"],
)
def test_hostile_blob_redirects_are_refused(
    location: str,
    message: str,
    evil: EvilRegistry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    _blob_redirect_setup(evil, evil)
    evil.routes[("GET", f"/v2/evil/app/blobs/{digest_of(LAYER)}")] = Reply(
        307, {"Location": location}
    )
    evil.routes[("GET", "/v2/evil/app/blobs/loop")] = Reply(307, {"Location": location})
    pull_refused(["-i", f"{evil.host}/evil/app:1"], tmp_path, capfd, message)


TAG_SELECTION = """\
apiVersion: kbld.k14s.io/v1alpha1
kind: Config
overrides:
- image: {host}/evil/tags
  newImage: {host}/evil/tags
  tagSelection:
    semver:
      constraints: ">=1.0.0"
"""


def _resolve_tags(
    evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> CliResult:
    (tmp_path / "in.yml").write_text(
        TAG_SELECTION.format(host=evil.host) + f"---\nkind: Pod\nimage: {evil.host}/evil/tags\n"
    )
    lock = tmp_path / "images.yml"
    res = run_cli(["-f", str(tmp_path / "in.yml"), "--imgpkg-lock-output", str(lock)], capfd)
    assert not lock.exists() and res.out == ""
    return res


def test_endless_link_pagination_is_cut_off(
    evil: EvilRegistry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every page links to a new one. The real cap is 10,000 pages; 40 here, to be quick."""
    monkeypatch.setattr(listing_module, "_MAX_TAG_PAGES", 40)

    def page(path: str, headers: dict[str, str]) -> Reply:
        n = int(path.rsplit("last=", 1)[1]) if "last=" in path else 0
        body = json.dumps({"name": "evil/tags", "tags": [f"0.0.{n}"]}).encode()
        link = f'</v2/evil/tags/tags/list?n=1000&last={n + 1}>; rel="next"'
        return Reply(200, {"Content-Type": "application/json", "Link": link}, body)

    evil.routes[("GET", "/v2/evil/tags/tags/list")] = page
    res = _resolve_tags(evil, tmp_path, capfd)
    refused(res, f"Resolving image '{evil.host}/evil/tags'", "tag listing has more than 40 pages")
    assert len(evil.seen("GET")) == 40


def test_looping_link_pagination_is_refused(
    evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    def page(path: str, headers: dict[str, str]) -> Reply:
        body = json.dumps({"name": "evil/tags", "tags": ["1.0.0"]}).encode()
        link = '</v2/evil/tags/tags/list?n=1000&last=a>; rel="next"'
        return Reply(200, {"Content-Type": "application/json", "Link": link}, body)

    evil.routes[("GET", "/v2/evil/tags/tags/list")] = page
    res = _resolve_tags(evil, tmp_path, capfd)
    refused(res, f"Resolving image '{evil.host}/evil/tags'", "tag listing pagination loops")
    assert len(evil.seen("GET")) == 2


BIG = b'{"schemaVersion":2,"padding":"' + b"x" * (5 << 20) + b'"}'


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_manifest_is_refused(
    chunked: bool, evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    evil.routes[("GET", "/v2/evil/big/manifests/1")] = Reply(
        200, {"Content-Type": DOCKER_MANIFEST}, BIG, chunked=chunked
    )
    pull_refused(
        ["-i", f"{evil.host}/evil/big:1"],
        tmp_path,
        capfd,
        "/v2/evil/big/manifests/1",
        f"manifest larger than {MAX_MANIFEST_BYTES} bytes refused",
    )


def test_oversized_manifest_after_a_head_without_digest_fails_the_resolve(
    evil: EvilRegistry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    evil.routes[("HEAD", "/v2/evil/big/manifests/1")] = Reply(200, {"Content-Length": "10"})
    evil.routes[("GET", "/v2/evil/big/manifests/1")] = Reply(
        200, {"Content-Type": DOCKER_MANIFEST}, BIG, chunked=True
    )
    (tmp_path / "in.yml").write_text(f"kind: Pod\nimage: {evil.host}/evil/big:1\n")
    before = snapshot(tmp_path)
    res = run_cli(
        ["-f", str(tmp_path / "in.yml"), "--imgpkg-lock-output", str(tmp_path / "l.yml")], capfd
    )
    refused(res, f"Resolving image '{evil.host}/evil/big:1'", "manifest larger than")
    assert res.out == "" and snapshot(tmp_path) == before
