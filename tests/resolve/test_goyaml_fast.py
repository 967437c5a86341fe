"""The goyaml fast paths give exactly what the general code gives.

* ``scalar._analyze_regex`` (a few regular expressions) against ``scalar._analyze``
  (emitterc.go's character loop): hypothesis over characters that reach every branch
  of the loop, and over any text;
* ``fastemit.fast_marshal`` (direct writing of the lock and annotation shapes)
  against ``emitter.marshal_general`` (the state machine): hypothesis over nested
  data built to reach each rule and its edges (indicator characters, YAML 1.1
  words, long keys, literal blocks with leading, trailing and empty lines), kbld's
  own output in the recorded cases (which both must reproduce byte for byte), and
  every document of the real-world corpus.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockresolve.goyaml import marshal
from lockresolve.goyaml.emitter import marshal_general
from lockresolve.goyaml.fastemit import fast_marshal
from lockresolve.goyaml.scalar import _analyze, _analyze_regex, analyze_scalar
from lockresolve.lock import images_lock_text
from lockresolve.resolve.documents import parse_yaml_value, split_chunks
from lockresolve.resolve.model import LockEntry, ResolvedImage
from lockresolve.resolve.render import annotation_value
from tests.resolve.pipeline import CORPUS, cases

# Every character class the loop tells apart: indicators (first or later), blanks,
# the five breaks, printable and non-printable, BOM, surrogates, astral.
_BRANCH_CHARS = (
    " \t\0\r\n\x85\u2028\u2029#,[]{}&*!|>'\"%@`?:-.a1Z_/\u00e9\u00a0\x7f\x01\x1b"
    "\ufeff\ufffe\ud800\U0001f600\ue000"
)


@given(st.text(alphabet=st.sampled_from(_BRANCH_CHARS), max_size=10))
@settings(max_examples=3000, deadline=None)
def test_regex_analysis_matches_the_loop_on_branch_characters(value: str) -> None:
    assert _analyze_regex(value) == _analyze(value)


@given(st.text(max_size=40))
@settings(max_examples=1000, deadline=None)
def test_regex_analysis_matches_the_loop_on_any_text(value: str) -> None:
    assert _analyze_regex(value) == _analyze(value)


@pytest.mark.parametrize(
    "value",
    ["---", "...", "--- a", "-", "- a", "-a", "?", "? a", ":", ": a", "a:", "a: b", "a:b",
     "a #b", "a#b", "#a", "a\n#b", "a\n b", "a \nb", " a", "a ", "\na", "a\n", "a\tb",
     "a,b", "a?b", "a[b", "\ufeffa", "a\u2028b", "a\x85b", "\U0001f600"],
)  # fmt: skip
def test_regex_analysis_matches_the_loop_on_edges(value: str) -> None:
    assert _analyze_regex(value) == _analyze(value)
    assert analyze_scalar(value) == _analyze(value)


# --- fast_marshal --------------------------------------------------------------------

_TOKEN_START = "abcXYZ019"
_TOKEN_CHARS = _TOKEN_START + "_./@:+=~-"
#: plain-looking words yaml.v2 reads as something else (quoted by both paths)
_WORDS = ["true", "no", "yes", "on", "null", "~", "1", "1.5", "0x1F", "1e3", "2020-01-01",
          "0o17", ".inf", "a:", "a: b", "-", "", " ", "a b", "x" * 129, "y" * 128]  # fmt: skip

tokens = st.builds(
    lambda a, b: a + b,
    st.sampled_from(_TOKEN_START),
    st.text(alphabet=st.sampled_from(_TOKEN_CHARS), max_size=8),
)
lines = st.one_of(
    tokens,
    st.just(""),
    st.just(" lead"),
    st.just("trail "),
    st.just("- item"),
    st.just("a: b"),
    st.just("  "),
    st.just("\ttab"),
    st.just("odd\u2028break"),
)
multiline = st.builds(
    lambda ls, end: "\n".join(ls) + end,
    st.lists(lines, min_size=1, max_size=5),
    st.sampled_from(["", "\n", "\n\n"]),
).filter(lambda s: "\n" in s)
strings = st.one_of(tokens, st.sampled_from(_WORDS), multiline)
scalars = st.one_of(
    strings,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda f: abs(f) < 1e300),
)
keys = st.one_of(tokens, st.sampled_from(_WORDS))
data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=20,
)


@given(data)
@settings(max_examples=1500, deadline=None)
def test_fast_marshal_gives_the_emitters_bytes(value: object) -> None:
    general = marshal_general(value)
    fast = fast_marshal(value)
    assert fast is None or fast == general
    assert marshal(value) == general


plain_tokens = tokens.filter(lambda t: not t.endswith(":"))
no_floats = st.recursive(
    st.one_of(plain_tokens, multiline, st.none(), st.booleans(), st.integers()),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4),
        st.dictionaries(plain_tokens, inner, min_size=1, max_size=4),
    ),
    max_leaves=20,
).filter(lambda v: isinstance(v, dict | list))


@given(no_floats)
@settings(max_examples=500, deadline=None)
def test_fast_marshal_takes_the_shapes_it_is_for(value: object) -> None:
    """Not just declining: collections of tokens, literals, ints and bools go fast."""
    fast = fast_marshal(value)
    text = repr(value)
    # what forbids a literal block: a space before a break, a tab, an odd break
    declines = any(w in text for w in ("trail ", "  ", "\\t", "\\u2028"))
    if not declines:
        assert fast is not None
    assert fast is None or fast == marshal_general(value)


def test_lock_and_annotation_shapes_take_the_fast_path() -> None:
    origins = ({"resolved": {"tag": "1.2", "url": "reg.io/app:1.2"}},)
    image = ResolvedImage("reg.io/app@sha256:" + "ab" * 32, origins)
    assert fast_marshal([{"origins": list(origins), "url": image.url}]) is not None
    value = annotation_value([image])
    assert value == marshal_general([{"origins": [dict(o) for o in origins], "url": image.url}])
    entry = LockEntry("reg.io/app:1.2", image.url, origins)
    doc = {
        "apiVersion": "imgpkg.carvel.dev/v1alpha1",
        "images": [{"annotations": {"kbld.carvel.dev/id": entry.id}, "image": entry.image}],
        "kind": "ImagesLock",
    }
    assert fast_marshal(doc) is not None
    text = images_lock_text([entry])
    assert text.startswith("---\napiVersion: imgpkg.carvel.dev/v1alpha1\n")
    assert "kbld.carvel.dev/origins: |\n" in text


def _documents(text: str, source: str) -> list[tuple[str, object]]:
    out = []
    for chunk in split_chunks(text, source):
        body = chunk.text
        if body.startswith("---\n"):
            body = body[4:]
        out.append((body, parse_yaml_value(chunk.text, source)))
    return out


def test_kbld_output_in_the_recorded_cases() -> None:
    """kbld's stdout and locks: both paths agree, and reproduce kbld's bytes."""
    fast = 0
    docs = 0
    for case in cases(None):
        for name in ("stdout.yml", "images.yml", "lock.yml"):
            text = case.expected(name)
            if not text:
                continue
            for body, value in _documents(text, f"{case.name}/{name}"):
                docs += 1
                general = marshal_general(value)
                got = fast_marshal(value)
                assert got is None or got == general, (case.name, name)
                if general == body and got is not None:
                    fast += 1
    assert docs > 20
    assert fast >= docs // 3, (fast, docs)


def _corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".yml", ".yaml"))


def test_corpus_documents() -> None:
    files = _corpus_files()
    assert files
    docs = 0
    for path in files:
        try:
            documents = _documents(path.read_text(encoding="utf-8"), str(path))
        except Exception:  # not every corpus file is YAML this reader takes
            continue
        for _, value in documents:
            docs += 1
            assert fast_marshal(value) in (None, marshal_general(value)), path
    assert docs > 50
