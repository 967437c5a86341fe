"""Property tests for the search-rule walker and the renderer: for generated documents,
written in many YAML styles, the output read back as data equals the input read as data,
except that exactly the values the default rule selects (strings under an ``image`` key)
are replaced, and the references found are exactly those strings.

The reference parser and the tar writer/reader have their own property tests:
``tests/test_reference.py`` (round trip, parts kept, only ``InvalidReferenceError``
raised) and ``tests/bundle/test_extract.py::test_round_trip_property`` (imgpkg's tar
writer read back by Python's tarfile and by the safe extractor gives the same tree)."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from lockresolve.resolve.configmodel import Config
from lockresolve.resolve.documents import parse_source
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.render import render_resource
from lockresolve.resolve.rules import search_rules
from lockresolve.resolve.walker import find_references
from tests.robustness.helpers import tally

RULES = search_rules(Config())

_KEYS = st.sampled_from(
    ["image", "name", "spec", "containers", "args", "env", "value", "Image", "images", "x-y"]
) | st.text("abcdefgh_-", min_size=1, max_size=6)
_REFS = st.builds(
    lambda registry, n, tag: f"{registry}app{n}{tag}",
    st.sampled_from(["", "nginx-", "example.com/team/", "127.0.0.1:5000/", "ghcr.io/a/"]),
    st.integers(0, 5),
    st.sampled_from(["", ":1.0", ":latest", "@sha256:" + "c" * 64]),
)
_SCALARS = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12),
    st.integers(-1000, 10**12),
    st.booleans(),
    st.none(),
    _REFS,
)


def _documents() -> st.SearchStrategy[dict[str, Any]]:
    def maps(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        entries = st.one_of(
            st.tuples(_KEYS, children),
            st.tuples(st.just("image"), _REFS),
        )
        return st.lists(entries, max_size=6).map(dict)

    values = st.recursive(
        _SCALARS, lambda c: st.one_of(st.lists(c, max_size=5), maps(c)), max_leaves=30
    )
    # "kind" first: an empty document would be dropped, a top-level "items" list split
    return maps(values).map(
        lambda d: {"kind": "Gen", **{k: v for k, v in d.items() if k not in ("kind", "items")}}
    )


def _dump(data: dict[str, Any], style: str) -> str:
    if style == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    yaml = YAML(typ="rt")
    yaml.allow_unicode = True
    yaml.width = 4096
    if style == "flow":
        yaml.default_flow_style = True
    elif style == "wide-indent":
        yaml.indent(mapping=4, sequence=6, offset=4)
    else:
        yaml.default_flow_style = False
        yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(data, buf)
    text = "# generated\n" + buf.getvalue()
    return text.replace("\n", "\r\n") if style == "crlf" else text


def _replaced(value: object, mapping: dict[str, str]) -> object:
    """The independent oracle: kbld's default rule replaces each string under an
    ``image`` key, and walks into everything else."""
    if isinstance(value, dict):
        return {
            k: mapping[v] if k == "image" and isinstance(v, str) else _replaced(v, mapping)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replaced(v, mapping) for v in value]
    return value


def _image_strings(value: object) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "image" and isinstance(v, str):
                found.add(v)
            else:
                found |= _image_strings(v)
    elif isinstance(value, list):
        for v in value:
            found |= _image_strings(v)
    return found


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents(), st.sampled_from(["block", "flow", "wide-indent", "json", "crlf"]))
def test_output_as_data_is_input_with_only_the_image_values_replaced(
    doc: dict[str, Any], style: str
) -> None:
    text = _dump(doc, style)
    (res,) = parse_source("gen.yml", text).resources
    before = _plain(res.data)

    found = find_references([res], RULES)
    assert set(found.distinct) == _image_strings(before)
    mapping = {
        ref: "resolved.example/r@sha256:" + hashlib.sha256(ref.encode()).hexdigest()
        for ref in found.distinct
    }
    resolved = {ref: ResolvedImage(url) for ref, url in mapping.items()}

    rendered = render_resource(res, RULES, resolved, annotate=False)
    assert rendered.text.startswith("---")
    (out,) = parse_source("out.yml", rendered.text).resources
    assert _plain(out.data) == _replaced(before, mapping)
    if rendered.spliced and not mapping:
        assert rendered.text.split("\n", 1)[1].replace("\r", "") == text.replace("\r", "")
    tally("property: generated documents walked and rendered")
    if mapping:
        tally(
            "property: documents with replacements, spliced into the text"
            if rendered.spliced
            else "property: documents with replacements, re-marshalled"
        )
