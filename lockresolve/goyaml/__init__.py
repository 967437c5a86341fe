"""Go ``yaml.v2`` compatibility: how kbld and imgpkg read and write YAML values.

kbld and imgpkg serialise through ``sigs.k8s.io/yaml`` (JSON, then
``gopkg.in/yaml.v2``). Their bytes are the reference for the lock files, the
``kbld.k14s.io/images`` annotation and the ``yaml`` update strategy, so this
module reproduces, for plain data (dicts with string keys, lists, ``str``,
``int``, ``float``, ``bool``, ``None``):

* :func:`resolve_plain`: the YAML 1.1 resolution yaml.v2 applies to a plain
  scalar (``yes`` is a bool, ``1.0`` a float, ``2020-01-01`` a timestamp);
* :func:`marshal`: ``sigs.k8s.io/yaml.Marshal`` byte for byte: JSON
  round-trip of numbers, keys sorted with yaml.v2's natural order, the
  libyaml emitter's quoting, block literals and its folding at 80 columns;
* :func:`format_float`: Go's ``strconv.FormatFloat`` for the ``'g'`` verb;
* :func:`quote_double`: a YAML double-quoted scalar on one line.

The emitter is a port of yaml.v2's ``emitterc.go`` (itself a port of
libyaml), driven by an explicit event list so deep data never recurses.
"""

from lockresolve.goyaml.emitter import marshal
from lockresolve.goyaml.resolve import (
    GoYAMLError,
    ScalarKind,
    format_float,
    go_key_less,
    json_number_text,
    resolve_plain,
    resolve_tagged,
    sort_keys,
)
from lockresolve.goyaml.scalar import (
    TOKEN,
    ScalarAnalysis,
    analyze_scalar,
    is_plain_safe,
    quote_double,
)

__all__ = [
    "TOKEN",
    "GoYAMLError",
    "ScalarAnalysis",
    "ScalarKind",
    "analyze_scalar",
    "format_float",
    "go_key_less",
    "is_plain_safe",
    "json_number_text",
    "marshal",
    "quote_double",
    "resolve_plain",
    "resolve_tagged",
    "sort_keys",
]
