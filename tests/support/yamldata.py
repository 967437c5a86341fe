"""Comparing YAML streams as data, the way kbld's output must be compared."""

from __future__ import annotations

import re

from ruamel.yaml import YAML


def load_yaml11(text: str) -> list[object]:
    """Documents of a stream under YAML 1.1 rules, as Go yaml.v2 reads them (``y`` and
    ``yes`` are booleans). Each document is loaded alone: ruamel drops the requested
    version at an explicit ``---``."""
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 1)
    docs = re.split(r"^---[ \t]*\r?\n", text, flags=re.MULTILINE)
    return [d for d in (yaml.load(doc) for doc in docs if doc.strip()) if d is not None]
