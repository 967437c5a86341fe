"""Image reference parsing, checked against go-containerregistry's ``name`` package.

The expected values in the tables were produced by ggcr's own code (HEAD and
v0.19.1, the version kbld v0.42.0 and imgpkg v0.42 vendor), run on the same
strings. Where the two versions differ, or lockresolve deliberately differs,
the test says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockresolve.errors import InvalidReferenceError, LockresolveError
from lockresolve.reference import Digest, Reference, is_insecure_default
from tests.support.conformance import corpus_dir

HEX = "a" * 64
DIG = f"sha256:{HEX}"
CORPUS = corpus_dir()


# -- normalisation, as ggcr's Name() prints it ---------------------------------

NORMALISED = [
    ("nginx", "index.docker.io/library/nginx:latest"),
    ("nginx:1.25", "index.docker.io/library/nginx:1.25"),
    ("docker.io/nginx", "index.docker.io/library/nginx:latest"),
    ("docker.io/library/nginx:1", "index.docker.io/library/nginx:1"),
    ("index.docker.io/nginx", "index.docker.io/library/nginx:latest"),
    ("library/nginx", "index.docker.io/library/nginx:latest"),
    ("bitnami/redis:7.0", "index.docker.io/bitnami/redis:7.0"),
    # Only docker.io is an alias; ggcr leaves these alone.
    ("registry-1.docker.io/nginx", "registry-1.docker.io/nginx:latest"),
    ("docker.io:443/nginx", "docker.io:443/nginx:latest"),
    ("gcr.io/proj/img", "gcr.io/proj/img:latest"),
    ("gcr.io/proj/img:v1", "gcr.io/proj/img:v1"),
    (
        "gcr.io/google.com/g-convoy/hello-world:latest",
        "gcr.io/google.com/g-convoy/hello-world:latest",
    ),
    (
        "us.gcr.io/project-id/image:with.period.in.tag",
        "us.gcr.io/project-id/image:with.period.in.tag",
    ),
    (
        "gcr.io/project-id/image:w1th-alpha_num3ric.PLUScaps",
        "gcr.io/project-id/image:w1th-alpha_num3ric.PLUScaps",
    ),
    ("domain.with.port:9001/image:latest", "domain.with.port:9001/image:latest"),
    ("www.example.test:12345/repo/path", "www.example.test:12345/repo/path:latest"),
    ("localhost:5000/foo", "localhost:5000/foo:latest"),
    ("foo.local:5000/bar", "foo.local:5000/bar:latest"),
    ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
    ("[::1]:5000/foo:bar", "[::1]:5000/foo:bar"),
    ("[::1]/foo", "[::1]/foo:latest"),
    ("UPPER.io/xy", "UPPER.io/xy:latest"),  # registries keep their case
    ("ünicode.io/xy", "ünicode.io/xy:latest"),  # Go's url.Parse lets non-ASCII through
    # No '.', ':' or localhost: "registry:5000" is repository "registry", tag "5000".
    ("registry:5000", "index.docker.io/library/registry:5000"),
    # An empty port is a valid RFC 3986 authority.
    ("foo:/bar", "foo:/bar:latest"),
    ("example.com:/xy", "example.com:/xy:latest"),
    # ggcr does not check the shape of path components or the tag's first char.
    ("a//b", "index.docker.io/a//b:latest"),
    ("a/", "index.docker.io/a/:latest"),
    ("/a", "index.docker.io//a:latest"),
    ("-a", "index.docker.io/library/-a:latest"),
    ("a..b", "index.docker.io/library/a..b:latest"),
    ("nginx:-tag", "index.docker.io/library/nginx:-tag"),
    ("nginx:.x", "index.docker.io/library/nginx:.x"),
    # Digests: a tag before the digest is checked, then dropped.
    (f"nginx@{DIG}", f"index.docker.io/library/nginx@{DIG}"),
    (f"nginx:1.2@{DIG}", f"index.docker.io/library/nginx@{DIG}"),
    (f"docker.io/nginx:latest@{DIG}", f"index.docker.io/library/nginx@{DIG}"),
    (f"example.text:8443/foo/bar:latest@{DIG}", f"example.text:8443/foo/bar@{DIG}"),
    (f"gcr.io:443/xy:y@{DIG}", f"gcr.io:443/xy@{DIG}"),
    (f"host:5000@{DIG}", f"index.docker.io/library/host@{DIG}"),
    ("gcr.io/x:" + "a" * 128, "gcr.io/x:" + "a" * 128),
    ("x" * 255, "index.docker.io/library/" + "x" * 255 + ":latest"),
    # ggcr HEAD; v0.19.1 (kbld v0.42.0) differs on these, see test_ggcr_version_differences.
    ("localhost/foo", "localhost/foo:latest"),
    ("a", "index.docker.io/library/a:latest"),
    ("gcr.io/a", "gcr.io/a:latest"),
]


@pytest.mark.parametrize(("text", "expected"), NORMALISED)
def test_normalises_like_ggcr(text: str, expected: str) -> None:
    ref = Reference.parse(text)
    assert str(ref) == expected
    assert ref.original == text


INVALID = [
    ("", "empty reference"),
    (" ", "blank reference"),
    ("Nginx", "repository must be lowercase"),
    ("gcr.io/Project/img", "repository must be lowercase"),
    ("REGION-docker.pkg.dev/PROJECT_ID/app:v1", "repository must be lowercase"),
    ("LOCALHOST/foo", "repository must be lowercase"),  # not a registry: no '.' or ':'
    ("white space", "contains ' '"),
    ("b@char/image", "digest"),
    ("nginx:", "missing tag"),
    ("library/ubuntu:", "missing tag"),
    (":tag", "repository name must be given"),
    ("gcr.io/project-id/bad_chars:c@n'tuse", "digest"),
    ("gcr.io/project-id/wrong-length:white space", "bad tag"),
    ("gcr.io/x:" + "a" * 129, "bad tag"),
    ("x" * 256, "1 to 255"),
    ("a:b:c", "contains ':'"),
    ("nginx:la test", "bad tag"),
    ("gcr.io/project-id/unknown-alg@unknown:abc123", "unsupported digest algorithm 'unknown'"),
    ("nginx@sha512:" + "a" * 128, "unsupported digest algorithm 'sha512'"),
    ("gcr.io/project-id/wrong-length@sha256:d34db33fd34db33f", "64 hex characters"),
    ("gcr.io/project-id/missing-digest@", "missing digest"),
    ("repo@sha256:" + ":" * 64, "lower-case hex"),
    ("repo@sha256:" + "sh" * 32, "lower-case hex"),
    ("repo@sha256:" + "A" * 64, "lower-case hex"),
    (f"repo@{DIG}@{DIG}", "exactly one '@'"),
    (f"library/nginx:@{DIG}", "missing tag"),
    ("gcr?com/foo", "contains '?'"),
    ("{{ .Values.image }}", "template"),
    ("{{inputs.parameters.image}}:{{inputs.parameters.tag}}", "template"),
    ("$(params.image)", "template"),
    ("$(params.gcloud-image):$(params.version)", "template"),
    ("${EXTENSION_IMAGE:-us-central1-docker.pkg.dev/k8s/epp:main}", "template"),
    ("<DOCKER_REPO>/chatbot:1.0", "template"),
    ("gcr.io/<<PROJECT>>/jax/hello:latest", "template"),
    ("$VLLM_IMAGE", "template"),
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_rejects_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        Reference.parse(text)
    assert reason in info.value.reason
    assert info.value.reference == text
    assert repr(text) in str(info.value)


# Registries Go's url.Parse (so ggcr) accepts but no client can reach: refused
# here with a clear reason. kbld would fail on them later, at the network.
STRICTER_THAN_GGCR = [
    ("$(params.registry)/app:v1", "template"),
    ("$registry.example.com/app", "template"),
    ("<registry>.io/app", "template"),
    ("a*b.io/app", "which no host name has"),
    ("a~b.io/app", "which no host name has"),
    ("::1/foo", "brackets"),
    ("localhost:80:80/foo", "brackets"),
    ("[foo.io]:5000/app", "not an IPv6 address"),
    ("[::1/foo", "missing ']'"),
    (":5000/foo", "no host name"),
    ("gcr.io:99999/foo", "out of range"),
]


@pytest.mark.parametrize(("text", "reason"), STRICTER_THAN_GGCR)
def test_unreachable_registries_are_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        Reference.parse(text)
    assert reason in info.value.reason


def test_ggcr_version_differences() -> None:
    """lockresolve follows ggcr HEAD where it differs from v0.19.1 (kbld v0.42.0, imgpkg v0.42).

    v0.19.1 reads "localhost/foo" as Docker Hub's index.docker.io/localhost/foo,
    refuses one-character repositories ("a", "gcr.io/a"), and reads "nginx:"
    as nginx:latest (and "nginx:@sha256:..." as a digest reference).
    """
    assert Reference.parse("localhost/foo").registry == "localhost"
    assert Reference.parse("a").repository == "library/a"
    with pytest.raises(InvalidReferenceError):
        Reference.parse("nginx:")


def test_ko_references_parse_as_ggcr_parses_them() -> None:
    """ggcr reads "ko://x" as registry "ko:" (an empty port) and repository "/x"; so do we.

    images-valid.txt (distribution/reference grammar) leaves them out; kbld would
    then fail at the network, as lockresolve does.
    """
    ref = Reference.parse("ko://knative.dev/serving/cmd/activator")
    assert ref.registry == "ko:"
    assert ref.repository == "/knative.dev/serving/cmd/activator"


# -- the fields -------------------------------------------------------------------


def test_fields_of_a_tag_reference() -> None:
    ref = Reference.parse("docker.io/nginx:1.25")
    assert ref.registry == "index.docker.io"
    assert ref.repository == "library/nginx"
    assert ref.tag == "1.25"
    assert ref.tag_written
    assert ref.digest is None
    assert not ref.is_digest
    assert ref.context == "index.docker.io/library/nginx"
    assert ref.identifier == "1.25"
    assert ref.effective_tag == "1.25"
    assert ref.scope("pull") == "repository:library/nginx:pull"


def test_default_tag_is_not_written() -> None:
    ref = Reference.parse("nginx")
    assert ref.tag is None
    assert not ref.tag_written
    assert ref.effective_tag == "latest"
    assert ref.identifier == "latest"
    written = Reference.parse("nginx:latest")
    assert written.tag_written
    assert str(ref) == str(written)
    assert ref != written
    assert ref.normalized() == written


def test_fields_of_a_digest_reference() -> None:
    ref = Reference.parse(f"gcr.io/a/b:v1@{DIG}")
    assert ref.tag == "v1"  # kept for information, not printed
    assert ref.digest == Digest("sha256", HEX)
    assert ref.is_digest
    assert ref.identifier == DIG
    assert ref.effective_tag == "v1"
    assert str(ref) == f"gcr.io/a/b@{DIG}"
    assert Reference.parse(f"gcr.io/a/b@{DIG}").effective_tag is None


def test_with_digest_and_with_tag() -> None:
    ref = Reference.parse("nginx:1.25")
    pinned = ref.with_digest(DIG)
    assert str(pinned) == f"index.docker.io/library/nginx@{DIG}"
    assert pinned.original == str(pinned)
    assert pinned.tag == "1.25"
    assert ref.with_digest(Digest("sha256", HEX)) == pinned
    retagged = pinned.with_tag("2.0")
    assert retagged.digest is None
    assert str(retagged) == "index.docker.io/library/nginx:2.0"
    with pytest.raises(InvalidReferenceError):
        ref.with_tag("bad tag")
    with pytest.raises(InvalidReferenceError):
        ref.with_digest("sha512:" + "a" * 128)
    with pytest.raises(InvalidReferenceError):
        ref.with_digest("sha256:abc")


def test_original_takes_no_part_in_equality() -> None:
    assert Reference.parse("nginx:1") == Reference.parse("docker.io/library/nginx:1")
    assert hash(Reference.parse("nginx:1")) == hash(Reference.parse("docker.io/nginx:1"))


# -- Digest --------------------------------------------------------------------------


def test_digest_parse_and_str() -> None:
    d = Digest.parse(DIG)
    assert (d.algorithm, d.hex, str(d)) == ("sha256", HEX, DIG)
    assert Digest.parse("sha512:" + "b" * 128).algorithm == "sha512"
    assert Digest.parse("sha384:" + "c" * 96).algorithm == "sha384"
    assert Digest.sha256_of(b"") == Digest.parse(
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sha256", "must look like"),
        ("sha256:", "must look like"),
        (":abc", "must look like"),
        ("md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("SHA256:" + HEX, "must look like"),
        ("sha256:" + "a" * 63, "64 hex characters, not 63"),
        ("sha256:" + "g" * 64, "lower-case hex"),
        ("sha512:" + HEX, "128 hex characters"),
    ],
)
def test_digest_rejects(text: str, reason: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        Digest.parse(text)
    assert reason in info.value.reason


def test_digest_constructor_validates() -> None:
    with pytest.raises(InvalidReferenceError):
        Digest("sha256", "abc")


# -- plain http defaults ------------------------------------------------------------------

INSECURE = [
    # ggcr (HEAD and v0.19.1) Scheme() == "http"
    ("localhost:5000", True),
    ("foo.localhost", True),
    ("foo.localhost:1234", True),
    ("127.0.0.1", True),
    ("127.0.0.1:5000", True),
    ("[::1]", True),
    ("[::1]:5000", True),
    ("::1", True),
    ("10.2.3.4", True),
    ("10.2.3.4:5000", True),
    ("172.16.0.1", True),
    ("192.168.1.1:443", True),
    # v0.19.1 (kbld v0.42.0) only: ".local" (HEAD dropped it)
    ("registry.local", True),
    ("kind-registry.local:5000", True),
    # wider than ggcr: the whole loopback block, bare localhost, any case
    ("127.1.2.3:5000", True),
    ("localhost", True),
    ("LOCALHOST:5000", True),
    # https only
    ("gcr.io", False),
    ("index.docker.io", False),
    ("172.32.0.1", False),
    ("192.169.1.1", False),
    ("[2001:db8::1]:5000", False),  # v0.19.1 said http: it matched "::1" anywhere
    ("127.0.0.1.evil.com", False),  # likewise "127.0.0.1" anywhere
    ("my127.0.0.1registry.io", False),
    ("localhost.example.com", False),
    ("local", False),
]


@pytest.mark.parametrize(("registry", "expected"), INSECURE)
def test_is_insecure_default(registry: str, expected: bool) -> None:
    assert is_insecure_default(registry) is expected


# -- the real-world corpus ---------------------------------------------------------


def _lines(name: str) -> list[str]:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_every_valid_corpus_reference_parses() -> None:
    for line in _lines("images-valid.txt"):
        ref = Reference.parse(line)
        assert Reference.parse(str(ref)) == ref.normalized()


def test_invalid_corpus_references_fail_except_ko() -> None:
    """Lines outside images-valid.txt fail, as in ggcr, except the ``ko://`` ones.

    images-valid.txt used the distribution/reference grammar; ggcr accepts
    ``ko://...`` (see test_ko_references_parse_as_ggcr_parses_them). Every
    other line (placeholders, templates, upper case) fails in ggcr and here.
    """
    valid = set(_lines("images-valid.txt"))
    accepted = []
    for line in _lines("images.txt"):
        if line in valid:
            continue
        try:
            Reference.parse(line)
        except InvalidReferenceError:
            continue
        accepted.append(line)
    assert accepted
    assert all(line.startswith("ko://") for line in accepted), accepted


# -- properties ------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_HOST = st.one_of(
    st.lists(_LABEL, min_size=2, max_size=4).map(".".join),
    st.just("localhost"),
    st.builds(lambda a, b, c, d: f"{a}.{b}.{c}.{d}", *[st.integers(0, 255)] * 4).map(str),
    st.just("[::1]"),
)
_REGISTRY = st.one_of(
    st.none(),
    st.builds(
        lambda h, p: h if p is None else f"{h}:{p}",
        _HOST,
        st.one_of(st.none(), st.integers(1, 65535)),
    ),
)
_COMPONENT = st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+){0,2}", fullmatch=True).filter(
    lambda c: len(c) <= 30
)
_PATH = st.lists(_COMPONENT, min_size=1, max_size=4).map("/".join)
_TAG = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)
_HEX = st.text("0123456789abcdef", min_size=64, max_size=64)


@dataclass(frozen=True)
class _Generated:
    text: str
    registry: str
    repository: str
    tag: str | None
    digest: str | None


@st.composite
def _references(draw: st.DrawFn) -> _Generated:
    registry = draw(_REGISTRY)
    path = draw(_PATH)
    first = path.split("/")[0]
    if registry is None and "/" in path and ("." in first or first == "localhost"):
        registry, path = first, path.partition("/")[2]  # what a registry looks like
    text = path if registry is None else f"{registry}/{path}"
    tag = draw(st.one_of(st.none(), _TAG))
    if tag is not None:
        text += f":{tag}"
    hex_ = draw(st.one_of(st.none(), _HEX))
    digest = None if hex_ is None else f"sha256:{hex_}"
    if digest is not None:
        text += f"@{digest}"
    if registry in (None, "docker.io", "index.docker.io"):
        registry = "index.docker.io"
        if "/" not in path:
            path = f"library/{path}"
    return _Generated(text, registry, path, tag, digest)


@given(_references())
def test_generated_references_round_trip(gen: _Generated) -> None:
    ref = Reference.parse(gen.text)
    again = Reference.parse(str(ref))
    assert again == ref.normalized()
    assert str(again) == str(ref)
    assert again.context == ref.context
    assert again.identifier == ref.identifier


@given(_references())
def test_generated_references_keep_their_parts(gen: _Generated) -> None:
    ref = Reference.parse(gen.text)
    assert ref.registry == gen.registry
    assert ref.repository == gen.repository
    assert ref.tag == gen.tag
    assert (None if ref.digest is None else str(ref.digest)) == gen.digest
    assert ref.original == gen.text


_REFERENCE_ALPHABET = st.sampled_from(
    [*"abcAZ09:/@._-[]$(){}<> %?é\n", "sha256:", "localhost", "docker.io", "//"]
)


@given(st.one_of(st.text(max_size=80), st.lists(_REFERENCE_ALPHABET, max_size=20).map("".join)))
def test_parser_raises_only_invalid_reference_error(text: str) -> None:
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError as exc:
        assert isinstance(exc, LockresolveError)
        assert exc.reason
        return
    # Whatever parses is stable under normalisation.
    assert Reference.parse(str(ref)) == ref.normalized()
