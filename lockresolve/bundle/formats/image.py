"""The config and manifest JSON of a pushed image, byte for byte as imgpkg writes them.

imgpkg builds its image with go-containerregistry (``mutate.Append`` on an
empty image, then the labels) and Go's ``encoding/json``: compact, struct
fields in declaration order, map keys sorted, ``<`` ``>`` ``&`` escaped. Only
the layer's diff_id and the labels vary, so the JSON is written by hand here
instead of going through :mod:`json`, whose escaping differs from Go's.

This module also parses ``-l key=value`` flags the way imgpkg's flag library
(pflag's ``StringToString``) does.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Final

from lockresolve.errors import UsageError
from lockresolve.mediatypes import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST_SCHEMA2

__all__ = [
    "BUNDLE_LABEL",
    "check_user_labels",
    "config_json",
    "go_json_string",
    "manifest_json",
    "parse_label_flags",
]

BUNDLE_LABEL: Final = "dev.carvel.imgpkg.bundle"
"""The config label that marks an image as a bundle (value ``"true"``)."""

_GO_ZERO_TIME: Final = "0001-01-01T00:00:00Z"
_SHORT_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def go_json_string(value: str) -> str:
    """Quote ``value`` as Go's ``json.Marshal`` does (HTML escaping on).

    Differences from :func:`json.dumps`: non-ASCII is kept as UTF-8 except
    U+2028 and U+2029; ``<``, ``>`` and ``&`` become ``\\u003c`` and so on;
    a lone surrogate (an undecodable byte that Python kept with
    ``surrogateescape``) becomes ``\\ufffd``, as Go does for invalid UTF-8.
    """
    out: list[str] = ['"']
    for ch in value:
        code = ord(ch)
        short = _SHORT_ESCAPES.get(ch)
        if short is not None:
            out.append(short)
        elif code < 0x20 or ch in "<>&" or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def config_json(diff_id: str, labels: Mapping[str, str] | None = None) -> bytes:
    """The image config imgpkg pushes for a layer whose tar hashes to ``diff_id``.

    ``diff_id`` is ``sha256:<hex>``; ``labels`` go under ``config.Labels``
    (left out when empty). A bundle carries :data:`BUNDLE_LABEL` = ``"true"``.
    """
    if labels:
        pairs = ",".join(
            f"{go_json_string(k)}:{go_json_string(labels[k])}"
            for k in sorted(labels, key=_label_sort_key)
        )
        config = '{"Labels":{' + pairs + "}}"
    else:
        config = "{}"
    text = (
        '{"architecture":"",'
        f'"created":"{_GO_ZERO_TIME}",'
        f'"history":[{{"author":"imgpkg","created":"{_GO_ZERO_TIME}","created_by":"imgpkg"}}],'
        '"os":"",'
        f'"rootfs":{{"type":"layers","diff_ids":[{go_json_string(diff_id)}]}},'
        f'"config":{config}}}'
    )
    return text.encode("utf-8")


def _label_sort_key(key: str) -> bytes:
    # Go sorts map keys by their bytes; a lone surrogate stands for a raw byte.
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


def manifest_json(
    config_digest: str, config_size: int, layer_digest: str, layer_size: int
) -> bytes:
    """The Docker v2 manifest of a one-layer image, as go-containerregistry writes it."""
    text = (
        f'{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_SCHEMA2}",'
        f'"config":{{"mediaType":"{DOCKER_CONFIG}","size":{config_size},'
        f'"digest":{go_json_string(config_digest)}}},'
        f'"layers":[{{"mediaType":"{DOCKER_LAYER}","size":{layer_size},'
        f'"digest":{go_json_string(layer_digest)}}}]}}'
    )
    return text.encode("utf-8")


def parse_label_flags(values: Iterable[str]) -> dict[str, str]:
    """Merge the values of repeated ``-l``/``--labels`` flags into one mapping.

    Each value is one ``key=value`` pair, or several separated by commas (read
    as a CSV record, so a pair may be quoted to hold a comma); a later key
    replaces an earlier one. Raises :class:`UsageError` with pflag's wording.
    """
    labels: dict[str, str] = {}
    for value in values:
        labels.update(_parse_label_flag(value))
    return labels


def _parse_label_flag(value: str) -> dict[str, str]:
    count = value.count("=")
    if count == 0:
        raise _label_error(value, f"{value} must be formatted as key=value")
    if count == 1:
        pairs = [value.strip('"')]
    else:
        try:
            rows = list(csv.reader([value], strict=True))
        except csv.Error as exc:
            raise _label_error(value, f"parse error: {exc}") from None
        pairs = rows[0] if rows else []
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, val = pair.partition("=")
        if not sep:
            raise _label_error(value, f"{pair} must be formatted as key=value")
        out[key] = val
    return out


def _label_error(value: str, reason: str) -> UsageError:
    return UsageError(f'invalid argument "{value}" for "-l, --labels" flag: {reason}')


def check_user_labels(labels: Mapping[str, str]) -> None:
    """Refuse labels a user may not set with ``-l`` (imgpkg reserves the bundle label)."""
    if BUNDLE_LABEL in labels:
        raise UsageError(
            f"label '{BUNDLE_LABEL}' is reserved and cannot be overriden. "
            "Please use a different key"
        )
