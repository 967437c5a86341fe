"""The real-world corpus: references found as an independent walk finds them.

The independent walk loads each file with ruamel's plain ``safe`` loader (no
lockresolve code), and collects, in every non-config document (``List``
wrappers split into their items), each string value under a key named
``image``, not walking into a value it took (kbld's default rule).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from lockresolve.errors import InputError
from lockresolve.resolve.config import load_config
from lockresolve.resolve.configmodel import Config
from lockresolve.resolve.documents import parse_source, split_chunks
from lockresolve.resolve.rules import search_rules
from lockresolve.resolve.sources import decode_source
from lockresolve.resolve.walker import find_references
from tests.resolve.pipeline import (
    CORPUS,
    UNPARSABLE,
    corpus_file,
    corpus_files,
    parse_inputs,
    parsed_file,
)

CONFIG_KINDS = {"Config", "Sources", "ImageOverrides", "ImageDestinations", "ImageKeys"}


def is_config(doc: dict[str, object]) -> bool:
    api, kind = doc.get("apiVersion"), doc.get("kind")
    return (api == "kbld.k14s.io/v1alpha1" and kind in CONFIG_KINDS) or (
        api == "imgpkg.carvel.dev/v1alpha1" and kind == "ImagesLock"
    )


def image_strings(value: object) -> list[str]:
    found: list[str] = []
    work = [value]
    while work:
        item = work.pop()
        if isinstance(item, dict):
            for key, sub in reversed(list(item.items())):
                if key == "image" and isinstance(sub, str):
                    found.append(sub)
                else:
                    work.append(sub)
        elif isinstance(item, list):
            work.extend(reversed(item))
    return found


def independent_walk(path: Path) -> tuple[list[str], list[str]]:
    """(references in resources, image strings in config documents)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = True  # yaml.v2 takes them too (the last one wins)
    refs: list[str] = []
    in_configs: list[str] = []
    for doc in yaml.load_all(path.read_text(encoding="utf-8-sig")):
        if not isinstance(doc, dict) or not doc:
            continue
        items = doc.get("items")
        docs = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else [doc]
        for d in docs:
            (in_configs if is_config(d) else refs).extend(image_strings(d))
    return refs, in_configs


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_default_rules_find_what_an_independent_walk_finds(path: Path) -> None:
    if path.name in UNPARSABLE:
        with pytest.raises((YAMLError, TypeError)):
            independent_walk(path)
        with pytest.raises(
            InputError, match=r"vllm-llama4-scout-17b-16e\.yaml:96: invalid map key"
        ):
            corpus_file(path)
        return
    expected, _ = independent_walk(path)
    found = corpus_file(path).references
    assert Counter(o.ref for o in found.occurrences) == Counter(expected)
    assert list(found.distinct) == list(dict.fromkeys(expected)), "first-seen order"


def _index_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in (CORPUS / "INDEX.md").read_text().splitlines():
        m = re.match(r"\| \d+ \| `([^`]+)` \|.*\| \d+ \| \d+ \| (\d+) \| \d+ \|$", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def test_counts_match_index() -> None:
    """INDEX.md's "string values (parsed)" counts every ``image`` string, config documents
    included: ours is the references in resources plus the ``image`` strings in configs."""
    index = _index_counts()
    assert len(index) == 40
    for case, expected in index.items():
        total = 0
        for path in sorted((CORPUS / case).rglob("*")):
            if not path.is_file() or path.suffix not in (".yml", ".yaml", ".json"):
                continue
            text = decode_source(str(path), path.read_bytes())
            # kbld refuses an unparsable file whole; INDEX counts its good documents
            pieces = (
                [c.text for c in split_chunks(text, str(path))]
                if path.name in UNPARSABLE
                else [text]
            )
            for piece in pieces:
                try:
                    parsed = (
                        parse_source(str(path), piece) if piece is not text else parsed_file(path)
                    )
                except InputError:
                    continue
                total += len(find_references(parsed.resources, search_rules(Config())).occurrences)
                total += sum(len(image_strings(c.data)) for c in parsed.configs)
        assert total == expected, case


def test_config_documents_of_the_corpus_parse() -> None:
    run = parse_inputs([str(CORPUS / "tce-local-path-storage-0.0.22")], transform=None)
    (override,) = [o for o in run.config.overrides if not o.preresolved]
    assert override.image == "rancher/local-path-provisioner:v0.0.22"
    assert override.new_image == "projects.registry.vmware.com/tce/local-path-provisioner:v0.0.22"
    rule = run.config.search_rules[0]
    assert rule.key_matcher is not None and rule.key_matcher.name == "helperPod.yaml"
    assert rule.strategy.kind == "yaml"
    assert "busybox" in run.references.distinct, "found inside the ConfigMap's helperPod.yaml"

    run = parse_inputs([str(CORPUS / "tce-kbld-overrides")], transform=None)
    assert len(run.config.overrides) == 4
    (pinniped,) = run.config.search_rules
    assert pinniped.key_matcher is not None
    assert (pinniped.key_matcher.name, pinniped.key_matcher.path) == ("pinniped.yaml", ("data",))

    run = parse_inputs([str(CORPUS / "cf-for-k8s-kbld-configs")], transform=None)
    assert run.config.keys == ("example",)
    assert "example-component-image" in run.references.distinct, "found through ImageKeys"
    assert [s.path for s in run.config.sources] == ["sources", "."]
    assert {d.new_image for d in run.config.destinations} == {
        "index.docker.io/cloudfoundry/statsd_exporter-cf-for-k8s",
        "docker.io/pivotaljohn/example-image",
    }
    assert any(o.preresolved for o in run.config.overrides)

    run = parse_inputs([str(CORPUS / "carvel-imgpkg-cf-for-k8s-imageslock")], transform=None)
    assert len(run.config.overrides) == 23
    assert all(o.preresolved and "@sha256:" in o.new_image for o in run.config.overrides)

    run = parse_inputs([str(CORPUS / "carvel-kbld-examples")], transform=None)
    assert len(run.config.sources) == 17 and run.config.sources[0].path


def test_every_corpus_config_parses() -> None:
    configs = 0
    for path in corpus_files():
        if path.name in UNPARSABLE:
            continue
        parsed = parsed_file(path)
        load_config(parsed.configs)  # raises on any invalid config
        configs += len(parsed.configs)
    assert configs > 40
