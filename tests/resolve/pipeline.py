"""The resolver pipeline without a registry, as the engine drives it.

A conformance case's expected lock file says what every reference resolved
to; feeding that mapping to the pure functions reproduces kbld's run:
sources -> documents -> config -> references -> rendering -> lock text.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from lockresolve.lock import images_lock_text, kbld_lock_text, read_images_lock
from lockresolve.resolve.config import load_config
from lockresolve.resolve.configmodel import Config, SearchRule
from lockresolve.resolve.documents import ConfigDocument, ParsedSource, Resource, parse_source
from lockresolve.resolve.model import ResolvedImage, lock_entries
from lockresolve.resolve.origins import parse_origins
from lockresolve.resolve.render import Rendered, render_resource
from lockresolve.resolve.rules import search_rules, search_rules_without_defaults
from lockresolve.resolve.sources import decode_source, expand_paths
from lockresolve.resolve.walker import References, find_references
from tests.support.conformance import conformance_dir, corpus_dir

CONFORMANCE = conformance_dir() / "resolve"
CORPUS = corpus_dir()
REGISTRY = "127.0.0.1:5000"


def substitute(text: str) -> str:
    return text.replace("${REGISTRY}", REGISTRY)


@dataclass(frozen=True)
class Case:
    path: Path
    meta: Mapping[str, object]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def inputs(self) -> list[str]:
        names = self.meta["inputs"]
        assert isinstance(names, list)
        return [str(self.path / "input" / n) for n in names]

    def expected(self, name: str) -> str | None:
        p = self.path / "expected" / name
        return substitute(p.read_text()) if p.exists() else None


def cases(exit_code: int | None = 0) -> list[Case]:
    out = []
    for p in sorted(CONFORMANCE.iterdir()):
        meta = json.loads((p / "case.json").read_text())
        if exit_code is None or meta["exit_code"] == exit_code:
            out.append(Case(p, meta))
    return out


@dataclass(frozen=True)
class Run:
    sources: dict[str, str]  # source name -> decoded text
    resources: tuple[Resource, ...]
    configs: tuple[ConfigDocument, ...]
    config: Config
    rules: tuple[SearchRule, ...]
    references: References


def parse_inputs(args: list[str], transform: object = substitute) -> Run:
    sources: dict[str, str] = {}
    resources: list[Resource] = []
    configs: list[ConfigDocument] = []
    for spec in expand_paths(args):
        text = decode_source(spec.name, Path(spec.location).read_bytes())
        if callable(transform):
            text = transform(text)
        sources[spec.name] = text
        parsed = parse_source(spec.name, text)
        resources.extend(parsed.resources)
        configs.extend(parsed.configs)
    config = load_config(configs)
    rules = search_rules(config)
    refs = find_references(resources, rules)
    return Run(sources, tuple(resources), tuple(configs), config, rules, refs)


def mapping_from_images_lock(text: str) -> dict[str, ResolvedImage]:
    """What the engine would have resolved, read back from kbld's ImagesLock."""
    lock = read_images_lock(text, "images.yml")
    out: dict[str, ResolvedImage] = {}
    for entry in lock.images:
        origins = parse_origins(entry.annotations.get("kbld.carvel.dev/origins", ""), ValueError)
        out[entry.annotations["kbld.carvel.dev/id"]] = ResolvedImage(entry.image, origins)
    return out


def mapping_from_kbld_lock(text: str) -> dict[str, ResolvedImage]:
    """From kbld's Config lock (no origins there: every r11 reference was a plain tag)."""
    data = YAML(typ="safe", pure=True).load(text)
    out: dict[str, ResolvedImage] = {}
    for o in data["overrides"]:
        ref = o["image"]
        tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
        out[ref] = ResolvedImage(o["newImage"], ({"resolved": {"tag": tag, "url": ref}},))
    return out


def render_all(
    run: Run, mapping: Mapping[str, ResolvedImage], annotate: bool = True
) -> list[Rendered]:
    return [render_resource(r, run.rules, mapping, annotate=annotate) for r in run.resources]


def lock_texts(run: Run, mapping: Mapping[str, ResolvedImage]) -> tuple[str, str]:
    entries = lock_entries(mapping)
    return images_lock_text(entries), kbld_lock_text(
        entries, search_rules_without_defaults(run.config)
    )


def unique_urls(refs: tuple[str, ...]) -> dict[str, ResolvedImage]:
    """A distinct fake digest URL per reference (so the output can be mapped back)."""
    return {
        ref: ResolvedImage(
            f"example.test/lockresolve/img{i}@sha256:{i:064x}",
            ({"resolved": {"tag": "1.0", "url": ref}},),
        )
        for i, ref in enumerate(refs)
    }


# kbld refuses it too: `hf_api_token: {{HF_TOKEN}}` is a map used as a key
UNPARSABLE = frozenset({"vllm-llama4-scout-17b-16e.yaml"})


def corpus_files() -> list[Path]:
    return sorted(
        p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in (".yml", ".yaml", ".json")
    )


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    references: References
    rendered: tuple[tuple[Resource, Rendered], ...]
    urls: dict[str, str]  # fake URL -> reference


@functools.cache
def parsed_file(path: Path) -> ParsedSource:
    """A file as documents (cached: the corpus is parsed once per test session)."""
    return parse_source(str(path), decode_source(str(path), path.read_bytes()))


@functools.cache
def corpus_file(path: Path) -> CorpusFile:
    """One corpus file through the default rules, rendered with fake URLs (cached)."""
    parsed = parsed_file(path)
    rules = search_rules(Config())
    refs = find_references(parsed.resources, rules)
    mapping = unique_urls(refs.distinct)
    rendered = tuple((r, render_resource(r, rules, mapping)) for r in parsed.resources)
    return CorpusFile(path, refs, rendered, {img.url: ref for ref, img in mapping.items()})
