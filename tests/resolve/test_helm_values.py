"""``--helm-values``: ``{registry?, repository, tag, digest?}`` maps pinned by a ``digest`` key.

End to end through the CLI against the real registry: Helm values files from
the corpus (cert-manager's test charts, a GKE sample whose values also hold a
plain ``image:`` string) and a hand-written one with comments, quotes, a flow
map, a ``registry`` field and CRLF line endings. Only ``digest`` lines are
added or filled; a map that does not join into a reference is an error naming
its file and line.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.resolve.test_check_update import deployment, push_tag
from tests.support import splitimages
from tests.support.cli import run_cli
from tests.support.conformance import corpus_dir
from tests.support.registry import Registry
from tests.support.splitimages import lock_of, push_tags, write_lines


def prefix_for(request: pytest.FixtureRequest) -> str:
    return splitimages.prefix_for("helm", request)


def overrides(path: Path, mapping: dict[str, str]) -> Path:
    body = "".join(f"- image: {k}\n  newImage: {v}\n" for k, v in mapping.items())
    path.write_text(f"apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\noverrides:\n{body}")
    return path


def test_corpus_cert_manager_chart_values(
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    prefix = prefix_for(request)
    case = corpus_dir() / "cert-manager-helm-values"
    work = tmp_path / "cm"
    shutil.copytree(case, work)
    pebble = work / "pebble/chart/values.yaml"
    webhook = work / "samplewebhook/chart/values.yaml"
    main = work / "cert-manager/values.yaml"  # repository "" and no tag: not an image map
    digests = push_tags(registry, prefix, [("pebble", "local"), ("samplewebhook", "local")])
    config = overrides(
        tmp_path / "kbld.yml",
        {f"local/{n}:local": f"{registry.host}/{prefix}/{n}:local" for n in digests},
    )
    before = {p: p.read_text() for p in (pebble, webhook, main)}
    out, lock = lock_of(
        capfd,
        tmp_path,
        pebble,
        webhook,
        main,
        config,
        extra=("--helm-values", "--images-annotation=false"),
    )
    want_pebble = before[pebble].replace(
        "  tag: local\n", f"  tag: local\n  digest: {digests['pebble']}\n", 1
    )
    want_webhook = before[webhook].replace(
        "  tag: local\n", f"  tag: local\n  digest: {digests['samplewebhook']}\n", 1
    )
    assert out == "---\n" + want_pebble + "---\n" + want_webhook + "---\n" + before[main]
    # The lock: what resolve writes for the joined references as plain image values.
    plain = tmp_path / "plain.yml"
    plain.write_text(
        deployment("a", "local/pebble:local")
        + "---\n"
        + deployment("b", "local/samplewebhook:local")
    )
    _, plain_lock = lock_of(capfd, tmp_path, plain, config)
    assert lock == plain_lock
    assert "kbld.carvel.dev/id: local/pebble:local\n" in lock

    # Without the flag: byte for byte what resolve always wrote (nothing found).
    out, _ = lock_of(capfd, tmp_path, pebble, webhook, main, config)
    assert out == "".join("---\n" + before[p] for p in (pebble, webhook, main))


def test_corpus_values_with_a_plain_image_string_too(
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    prefix = prefix_for(request)
    values = tmp_path / "values.yaml"
    shutil.copy(corpus_dir() / "gke-digests-anchors-crds/values.yaml", values)
    nemo = push_tag(registry, f"{prefix}/nemo-rl", "v0.5.0", f"{prefix}-nemo")
    fluent = push_tag(registry, f"{prefix}/fluent-bit", "latest", f"{prefix}-fluent")
    config = overrides(
        tmp_path / "kbld.yml",
        {
            "nvcr.io/nvidia/nemo-rl:v0.5.0": f"{registry.host}/{prefix}/nemo-rl:v0.5.0",
            "fluent/fluent-bit:latest": f"{registry.host}/{prefix}/fluent-bit:latest",
        },
    )
    before = values.read_text()
    out, lock = lock_of(
        capfd, tmp_path, values, config, extra=("--helm-values", "--images-annotation=false")
    )
    want = before.replace('  tag: "v0.5.0" \n', f'  tag: "v0.5.0" \n  digest: {nemo}\n', 1).replace(
        "image: fluent/fluent-bit:latest", f"image: {registry.host}/{prefix}/fluent-bit@{fluent}"
    )
    assert out == "---\n" + want
    assert "kbld.carvel.dev/id: nvcr.io/nvidia/nemo-rl:v0.5.0\n" in lock
    assert "kbld.carvel.dev/id: fluent/fluent-bit:latest\n" in lock


HAND = """\
# values for the demo chart
image:
  registry: {reg}   # where it lives
  repository: "{prefix}/app"
  tag: '1.0'  # keep quoting
  pullPolicy: IfNotPresent
sidecar:
  image:
    repository: {reg}/{prefix}/side
    tag: "2.0"
    digest: ""        # filled by lockresolve
flowImage: {{repository: {reg}/{prefix}/flow, tag: v3}}
pinned:
  repository: {reg}/{prefix}/app
  tag: '1.0'
  digest: {pinned}
notAnImage:
  repository: "https://charts.example.com"
"""


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_hand_written_keeps_comments_quotes_and_line_endings(
    registry: Registry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    newline: str,
) -> None:
    prefix = prefix_for(request)
    d = push_tags(registry, prefix, [("app", "1.0"), ("side", "2.0"), ("flow", "v3")])
    text = HAND.format(reg=registry.host, prefix=prefix, pinned=d["app"])
    path = write_lines(tmp_path / "values.yaml", text, newline)
    mark = registry.mark()
    out, lock = lock_of(capfd, tmp_path, path, extra=("--helm-values",))
    want = (
        text.replace(
            "  tag: '1.0'  # keep quoting\n",
            f"  tag: '1.0'  # keep quoting\n  digest: {d['app']}\n",
        )
        .replace('    digest: ""        #', f'    digest: "{d["side"]}"        #')
        .replace("tag: v3}", f'tag: v3, digest: "{d["flow"]}"}}')
    )
    assert out.encode() == ("---\n" + want).replace("\n", newline).encode()
    # No kbld annotation: nothing was found by the search rules.
    assert "kbld.k14s.io/images" not in out
    # app:1.0 is written twice, once with its digest: that digest pins both (no request).
    heads = [r.path for r in registry.request_log(since=mark) if r.method == "HEAD"]
    assert sorted(heads) == [f"/v2/{prefix}/flow/manifests/v3", f"/v2/{prefix}/side/manifests/2.0"]
    ids = re.findall(r"kbld.carvel.dev/id: (\S+)\n", lock)
    assert ids == [f"{registry.host}/{prefix}/{n}" for n in ("app:1.0", "flow:v3", "side:2.0")]


@pytest.mark.parametrize(
    ("fields", "line", "message"),
    [
        ('  repository: nginx\n  tag: ""\n', 3, "the image's 'tag' is empty"),
        ("  repository: nginx\n  tag: 1.20\n", 3, "the image's 'tag' is not a string"),
        (
            "  repository: Not/Valid\n  tag: '1'\n",
            3,
            "the image's fields do not join into a valid reference",
        ),
        ('  repository: ""\n  tag: "1.0"\n', 3, "the image's 'repository' is empty"),
    ],
    ids=["empty-tag", "numeric-tag", "invalid", "empty-repository"],
)
def test_map_that_cannot_join_is_reported_with_file_and_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], fields: str, line: int, message: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("image:\n" + fields)
    code, out, err = run_cli(["-f", str(path), "--helm-values"], capfd)
    assert (code, out) == (1, "")
    assert err.startswith(f"lockresolve: error: {path}:{line}: {message}")
    assert err.count("\n") == 1 and "Traceback" not in err
    # Without the flag the map is not looked at: kbld's output, no request.
    code, out, err = run_cli(["-f", str(path)], capfd)
    assert code == 0, err
    assert out == "---\n" + path.read_text()


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # a map that starts a sequence item: the digest goes at the tag's column
        (
            "images:\n- tag: '1'\n  repository: x.io/r\n",
            f"images:\n- tag: '1'\n  digest: {DIGEST}\n  repository: x.io/r\n",
        ),
        # one map reached through an alias and a merge key: written once, at its anchor
        (
            "a: &i\n  repository: x.io/r\n  tag: '1'\nb: *i\nc:\n  <<: *i\n  x: 1\n",
            f"a: &i\n  repository: x.io/r\n  tag: '1'\n  digest: {DIGEST}\nb: *i\n"
            "c:\n  <<: *i\n  x: 1\n",
        ),
        # an empty digest with a comment, and a null one
        (
            "a:\n  repository: x.io/r\n  tag: '1'\n  digest:   # fill\nb:\n"
            "  repository: x.io/r\n  tag: '1'\n  digest: ~\n",
            f"a:\n  repository: x.io/r\n  tag: '1'\n  digest: {DIGEST}   # fill\nb:\n"
            f"  repository: x.io/r\n  tag: '1'\n  digest: {DIGEST}\n",
        ),
    ],
    ids=["sequence-item", "alias-and-merge", "empty-and-null-digest"],
)
def test_digest_written_once_in_the_right_place(text: str, want: str) -> None:
    from lockresolve.resolve.documents import parse_source
    from lockresolve.resolve.model import ResolvedImage
    from lockresolve.resolve.splitimages import HELM_VALUES, find_split_images, pin_split_images

    (res,) = parse_source("values.yaml", text).resources
    images = find_split_images(res, frozenset({HELM_VALUES}))
    resolved = {i.reference: ResolvedImage(f"x.io/r@{DIGEST}") for i in images}
    assert pin_split_images(res, images, resolved).text == want
