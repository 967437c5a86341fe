"""Read and parse inputs and find their references, without resolving anything.

What ``resolve`` does before its first request, as one call, for commands that
only look (``outdated``): the same inputs, configuration, search rules and,
when asked, the images split into fields (:mod:`.splitimages`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from lockresolve.resolve.config import load_config
from lockresolve.resolve.configmodel import Config
from lockresolve.resolve.documents import IMAGES_LOCK_API_VERSION, ParsedSource, parse_source
from lockresolve.resolve.model import ResolvedImage
from lockresolve.resolve.rules import search_rules
from lockresolve.resolve.splitimages import field_pins, find_split_images
from lockresolve.resolve.walker import Occurrence, find_references

if TYPE_CHECKING:
    from lockresolve.resolve.engine import TextInput

__all__ = ["Scanned", "scan_inputs"]


@dataclass(frozen=True)
class Scanned:
    sources: tuple[ParsedSource, ...]
    config: Config
    #: every reference found, in input order (split images at their tag's line)
    occurrences: tuple[Occurrence, ...]
    #: the pins written ``digest`` fields give (see :func:`.splitimages.field_pins`)
    field_pins: Mapping[str, ResolvedImage] = field(default_factory=dict)


def _parse_all(texts: Sequence[tuple[str, str]]) -> list[ParsedSource]:
    return [parse_source(name, text) for name, text in texts]


async def scan_inputs(
    inputs: Sequence[str | TextInput],
    own_lock: str | os.PathLike[str] | None = None,
    split_kinds: frozenset[str] = frozenset(),
) -> Scanned:
    """Parse ``inputs`` as ``resolve`` does and list their references with file and line.

    Raises :class:`~lockresolve.errors.InputError` for inputs that cannot be
    read or parsed (and for split images whose fields do not join).
    """
    from lockresolve.resolve.engine import _read_all

    texts, own = await _read_all(inputs, own_lock)
    sources = await anyio.to_thread.run_sync(_parse_all, texts)
    config = load_config(
        [
            doc
            for i, source in enumerate(sources)
            for doc in source.configs
            if not (i in own and doc.api_version == IMAGES_LOCK_API_VERSION)
        ]
    )
    rules = search_rules(config)
    occurrences: list[Occurrence] = []
    pins: dict[str, ResolvedImage] = {}
    for source in sources:
        for resource in source.resources:
            occurrences.extend(find_references((resource,), rules).occurrences)
            split = find_split_images(resource, split_kinds)
            occurrences.extend(i.occurrence for i in split)
            for ref, pin in field_pins(split, config, {}).items():
                pins.setdefault(ref, pin)
    return Scanned(tuple(sources), config, tuple(occurrences), pins)
