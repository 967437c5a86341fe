"""kbld configuration documents as frozen values.

Config kinds (``kbld.k14s.io/v1alpha1``: ``Config``, ``Sources``,
``ImageOverrides``, ``ImageDestinations``, ``ImageKeys``) are read the way kbld
reads them (``sigs.k8s.io/yaml`` into Go structs: numbers and booleans given
for string fields become strings, ``null`` means "not set", field names
match case-insensitively) and validated as kbld validates them. lockresolve
is stricter in one way: an unknown field is an error instead of being
silently ignored.

An ``imgpkg.carvel.dev/v1alpha1`` ``ImagesLock`` in the input becomes
preresolved overrides (``kbld.carvel.dev/id`` -> ``image``), see
:func:`config_from_images_lock`.

``sources`` and ``destinations`` are parsed and kept, but lockresolve does not
build or push images: the engine should refuse a reference that matches a
source, as ``kbld --build=false`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from lockresolve.errors import ConfigError
from lockresolve.lock import ID_ANNOTATION, ORIGINS_ANNOTATION, LockError, images_lock_from_data
from lockresolve.resolve.configmodel import (
    KBLD_VERSION,
    Config,
    Destination,
    KeyMatcher,
    Override,
    PathIndex,
    PathPart,
    PlatformSelection,
    SearchRule,
    SemverSelection,
    Source,
    TagSelection,
    UpdateStrategy,
    ValueMatcher,
)
from lockresolve.resolve.configread import Fields, Reader, join_path
from lockresolve.resolve.documents import IMAGES_LOCK_API_VERSION, ConfigDocument
from lockresolve.resolve.godata import describe_type
from lockresolve.resolve.matchers import MATCHER_KINDS, ResourceMatcher
from lockresolve.resolve.origins import origins_from_data, parse_origins
from lockresolve.resolve.semver import SemverError, check_constraints

__all__ = ["config_from_document", "config_from_images_lock", "load_config"]

# --- the documents ------------------------------------------------------------

_CONFIG_FIELDS = (
    "apiVersion",
    "kind",
    "metadata",
    "minimumRequiredVersion",
    "sources",
    "overrides",
    "destinations",
    "keys",
    "searchRules",
    "excludes",  # lockresolve's extension (kind Config only)
)


def _parse_path(r: Reader, f: Fields) -> tuple[PathPart, ...]:
    parts: list[PathPart] = []
    for where, part, container, index in r.items(f, "path"):
        if isinstance(part, str):
            parts.append(part)
            continue
        if not isinstance(part, dict):
            raise r.fail(
                where,
                "Unknown path part (expected a key name, {index: N} or {allIndexes: true})",
                container,
                index,
            )
        pf = r.fields(part, where, ("index", "allIndexes"))
        idx = pf.get("index")
        if idx is not None and (
            isinstance(idx, bool) or not isinstance(idx, int | float) or idx != int(idx)
        ):
            raise r.fail_at(pf, "index", f"expected an integer, got {describe_type(idx)}")
        every = pf.get("allIndexes")
        if every is not None and not isinstance(every, bool):
            raise r.fail_at(pf, "allIndexes", f"expected true or false, got {describe_type(every)}")
        parts.append(PathIndex(None if idx is None else int(idx), every))
    return tuple(parts)


def _parse_rules(r: Reader, f: Fields, name: str) -> tuple[SearchRule, ...]:
    return tuple(_parse_rule(r, item, where) for where, item, _, _ in r.items(f, name))


def _parse_strategy(r: Reader, f: Fields) -> UpdateStrategy:
    sf = r.fields(
        f.get("updateStrategy"),
        join_path(f.where, "updateStrategy"),
        ("none", "entireValue", "json", "yaml"),
    )
    nested: dict[str, tuple[SearchRule, ...] | None] = {"json": None, "yaml": None}
    for kind in ("json", "yaml"):
        if sf.get(kind) is not None:
            nf = r.fields(sf.get(kind), join_path(sf.where, kind), ("searchRules",))
            nested[kind] = _parse_rules(r, nf, "searchRules")
    for kind in ("none", "entireValue"):
        if sf.get(kind) is not None:
            r.fields(sf.get(kind), join_path(sf.where, kind), ())
    strategy = UpdateStrategy(
        none=sf.get("none") is not None,
        entire_value=sf.get("entireValue") is not None,
        json=nested["json"],
        yaml=nested["yaml"],
    )
    if not (
        strategy.none
        or strategy.entire_value
        or strategy.json is not None
        or strategy.yaml is not None
    ):
        raise r.fail_at(f, "updateStrategy", "expected one of none, entireValue, json or yaml")
    return strategy


def _parse_matcher(r: Reader, value: object, where: str) -> ResourceMatcher:
    """One kapp resource matcher: exactly one of :data:`MATCHER_KINDS`."""
    f = r.fields(value, where, MATCHER_KINDS)
    given = [k for k in MATCHER_KINDS if k in f.values]
    if len(given) != 1:
        raise r.fail(where, f"expected exactly one of {', '.join(MATCHER_KINDS)}", value)
    kind = given[0]
    inner = join_path(where, kind)
    field_names = {
        "allMatcher": (),
        "anyMatcher": ("matchers",),
        "andMatcher": ("matchers",),
        "notMatcher": ("matcher",),
        "apiVersionKindMatcher": ("apiVersion", "kind"),
        "kindNamespaceNameMatcher": ("kind", "namespace", "name"),
        "hasAnnotationMatcher": ("keys",),
    }[kind]
    body = f.get(kind)
    mf = r.fields({} if body is None and kind == "allMatcher" else body, inner, field_names)
    if kind in ("anyMatcher", "andMatcher"):
        children = tuple(_parse_matcher(r, item, w) for w, item, _, _ in r.items(mf, "matchers"))
        if not children:
            raise r.fail_at(f, kind, "matchers: expected at least one matcher")
        return ResourceMatcher(kind, children=children)
    if kind == "notMatcher":
        if mf.get("matcher") is None:
            raise r.fail_at(f, kind, "matcher: expected a matcher")
        return ResourceMatcher(kind, children=(_parse_matcher(r, mf.get("matcher"), inner),))
    if kind == "hasAnnotationMatcher":
        keys = r.strings(mf, "keys")
        if not keys:
            raise r.fail_at(f, kind, "keys: expected at least one annotation key")
        return ResourceMatcher(kind, keys=keys)
    fields = tuple((n, r.string(mf, n)) for n in field_names if mf.get(n) is not None)
    if kind == "apiVersionKindMatcher" and len(fields) != 2:
        raise r.fail_at(f, kind, "expected apiVersion and kind")
    if kind == "kindNamespaceNameMatcher" and not fields:
        raise r.fail_at(f, kind, "expected kind, namespace or name")
    return ResourceMatcher(kind, fields=fields)


def _parse_rule(r: Reader, value: object, where: str) -> SearchRule:
    f = r.fields(value, where, ("keyMatcher", "valueMatcher", "updateStrategy", "resourceMatchers"))
    key_matcher = value_matcher = None
    if f.get("keyMatcher") is not None:
        kf = r.fields(f.get("keyMatcher"), join_path(where, "keyMatcher"), ("name", "path"))
        key_matcher = KeyMatcher(name=r.string(kf, "name"), path=_parse_path(r, kf))
        if not key_matcher.name and not key_matcher.path:
            raise r.fail_at(
                f, "keyMatcher", "Expected KeyMatcher.Name or KeyMatcher.Path to be non-empty"
            )
    if f.get("valueMatcher") is not None:
        vf = r.fields(
            f.get("valueMatcher"), join_path(where, "valueMatcher"), ("image", "imageRepo")
        )
        value_matcher = ValueMatcher(r.string(vf, "image"), r.string(vf, "imageRepo"))
        if not value_matcher.image and not value_matcher.image_repo:
            raise r.fail_at(
                f,
                "valueMatcher",
                "Expected ValueMatcher.Image or ValueMatcher.ImageRepo to be non-empty",
            )
    if key_matcher is None and value_matcher is None:
        raise r.fail(where, "Expected KeyMatcher or ValueMatcher to be non-empty", value)
    strategy = _parse_strategy(r, f) if f.get("updateStrategy") is not None else None
    matchers = tuple(_parse_matcher(r, item, w) for w, item, _, _ in r.items(f, "resourceMatchers"))
    if f.get("resourceMatchers") is not None and not matchers:
        raise r.fail_at(f, "resourceMatchers", "expected at least one matcher")
    return SearchRule(key_matcher, value_matcher, strategy, matchers)


def _parse_image_ref(r: Reader, f: Fields) -> tuple[str, str]:
    image, repo = r.string(f, "image"), r.string(f, "imageRepo")
    if not image and not repo:
        raise r.fail(f.where, "Expected Image or ImageRepo to be non-empty", f.source)
    return image, repo


def _parse_tag_selection(r: Reader, f: Fields) -> TagSelection:
    tf = r.fields(f.get("tagSelection"), join_path(f.where, "tagSelection"), ("semver",))
    if tf.get("semver") is None:
        return TagSelection(None)
    sf = r.fields(tf.get("semver"), join_path(tf.where, "semver"), ("constraints", "prereleases"))
    identifiers: tuple[str, ...] | None = None
    if sf.get("prereleases") is not None:
        pf = r.fields(sf.get("prereleases"), join_path(sf.where, "prereleases"), ("identifiers",))
        identifiers = r.strings(pf, "identifiers")
    constraints = r.string(sf, "constraints")
    if constraints:
        # kbld finds out only once the tags are listed; refusing it here names the line
        try:
            check_constraints(constraints)
        except SemverError as exc:
            raise r.fail_at(sf, "constraints", str(exc)) from None
    return TagSelection(SemverSelection(constraints, identifiers))


def _parse_platform(r: Reader, f: Fields) -> PlatformSelection:
    pf = r.fields(
        f.get("platformSelection"),
        join_path(f.where, "platformSelection"),
        ("architecture", "os", "os.version", "os.features", "variant", "features"),
    )
    return PlatformSelection(
        architecture=r.string(pf, "architecture"),
        os=r.string(pf, "os"),
        os_version=r.string(pf, "os.version"),
        os_features=r.strings(pf, "os.features"),
        variant=r.string(pf, "variant"),
        features=r.strings(pf, "features"),
    )


def _parse_override(r: Reader, value: object, where: str) -> Override:
    f = r.fields(
        value,
        where,
        (
            "image",
            "imageRepo",
            "newImage",
            "preresolved",
            "tagSelection",
            "platformSelection",
            "origins",
        ),
    )
    image, repo = _parse_image_ref(r, f)
    new_image = r.string(f, "newImage")
    if not new_image:
        raise r.fail(where, "Expected NewImage to be non-empty", value)
    origins: tuple[Mapping[str, object], ...] = ()
    if f.get("origins") is not None:
        origins = origins_from_data(f.get("origins"), lambda msg: r.fail_at(f, "origins", msg))
    return Override(
        image=image,
        image_repo=repo,
        new_image=new_image,
        preresolved=r.boolean(f, "preresolved"),
        tag_selection=_parse_tag_selection(r, f) if f.get("tagSelection") is not None else None,
        platform_selection=_parse_platform(r, f)
        if f.get("platformSelection") is not None
        else None,
        origins=origins,
    )


_GO_VERSION = re.compile(
    r"v?([0-9]+(?:\.[0-9]+)*?)"
    r"(-([0-9]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)|(-?([A-Za-z\-~]+[0-9A-Za-z\-~]*(\.[0-9A-Za-z\-~]+)*)))?"
    r"(\+([0-9A-Za-z\-~]+(\.[0-9A-Za-z\-~]+)*))?"
)


def _version_segments(text: str) -> tuple[int, ...] | None:
    """hashicorp/go-version's numeric segments (None if the version is malformed)."""
    m = _GO_VERSION.fullmatch(text.strip())
    if m is None:
        return None
    segments = tuple(int(p) for p in m.group(1).split("."))
    return segments + (0,) * max(0, 3 - len(segments))


def _check_minimum_version(r: Reader, f: Fields) -> str:
    version = r.string(f, "minimumRequiredVersion")
    if not version:
        return version
    if version.startswith("v"):
        raise r.fail_at(
            f,
            "minimumRequiredVersion",
            "Validating minimum version: Must not have prefix 'v' (e.g. '0.8.0')",
        )
    wanted = _version_segments(version)
    if wanted is None:
        raise r.fail_at(
            f,
            "minimumRequiredVersion",
            f"Parsing minimum version constraint: Malformed constraint: >={version}",
        )
    have = _version_segments(KBLD_VERSION)
    assert have is not None
    width = max(len(wanted), len(have))
    if have + (0,) * (width - len(have)) < wanted + (0,) * (width - len(wanted)):
        raise r.fail_at(
            f,
            "minimumRequiredVersion",
            f"kbld version '{KBLD_VERSION}' does not meet the minimum required version '{version}'",
        )
    return version


def _parse_source(r: Reader, value: object, where: str) -> Source:
    if not isinstance(value, dict):
        raise r.fail(where, f"expected a map, got {describe_type(value)}")
    ref_keys = {k for k in value if k.casefold() in ("image", "imagerepo", "path")}
    f = r.fields({k: value[k] for k in ref_keys}, where, ("image", "imageRepo", "path"))
    f = Fields(where, value, f.values, f.keys)
    image, repo = _parse_image_ref(r, f)
    path = r.string(f, "path")
    if not path:
        raise r.fail(where, "Expected Path to be non-empty", value)
    return Source(image, repo, path, {k: v for k, v in value.items() if k not in ref_keys})


def _parse_destination(r: Reader, value: object, where: str) -> Destination:
    f = r.fields(value, where, ("image", "imageRepo", "newImage", "tags"))
    image, repo = _parse_image_ref(r, f)
    return Destination(image, repo, r.string(f, "newImage") or image, r.strings(f, "tags"))


def config_from_document(doc: ConfigDocument) -> Config:
    """Parse one kbld config document or ImagesLock; raises :class:`ConfigError`."""
    if doc.api_version == IMAGES_LOCK_API_VERSION:
        return config_from_images_lock(doc)
    r = Reader(doc, doc.kind)
    f = r.fields(doc.data, "", _CONFIG_FIELDS)
    version = _check_minimum_version(r, f)
    keys = r.strings(f, "keys")
    for i, key in enumerate(keys):
        if not key:
            raise r.fail(f"keys[{i}]", "Expected to be non-empty", f.get("keys"), str(i))
    return Config(
        minimum_required_version=version,
        sources=tuple(_parse_source(r, item, w) for w, item, _, _ in r.items(f, "sources")),
        overrides=tuple(_parse_override(r, item, w) for w, item, _, _ in r.items(f, "overrides")),
        destinations=tuple(
            _parse_destination(r, item, w) for w, item, _, _ in r.items(f, "destinations")
        ),
        keys=keys,
        search_rules=_parse_rules(r, f, "searchRules"),
        excludes=_parse_excludes(r, f, doc.kind),
    )


def _parse_excludes(r: Reader, f: Fields, kind: str) -> tuple[str, ...]:
    """lockresolve's ``excludes: [PATTERN, ...]`` (docs/resolve.md, "Exclusions")."""
    if f.get("excludes") is None:
        return ()
    if kind != "Config":
        raise r.fail_at(f, "excludes", "excludes is a lockresolve extension of kind Config only")
    patterns = r.strings(f, "excludes")
    for i, pattern in enumerate(patterns):
        if not pattern:
            raise r.fail(f"excludes[{i}]", "Expected to be non-empty", f.get("excludes"), str(i))
    return patterns


def config_from_images_lock(doc: ConfigDocument) -> Config:
    """An ImagesLock in the input: one preresolved override per image (kbld ``NewConfigFromImagesLock``)."""
    try:
        lock = images_lock_from_data(doc.data, doc.source, doc.line_offset)
    except LockError as exc:
        raise ConfigError(f"ImagesLock: {exc.message}", exc.source, exc.line) from None
    overrides: list[Override] = []
    for i, entry in enumerate(lock.images):
        where = f"ImagesLock images[{i}]"
        image_id = entry.annotations.get(ID_ANNOTATION, "")
        if not image_id:
            raise ConfigError(
                f"{where}: Expected Image or ImageRepo to be non-empty (no {ID_ANNOTATION} annotation)",
                doc.source,
                doc.line,
            )

        def fail(message: str, where: str = where) -> ConfigError:
            return ConfigError(
                f"{where}: {ORIGINS_ANNOTATION} annotation: {message}", doc.source, doc.line
            )

        origins = parse_origins(entry.annotations.get(ORIGINS_ANNOTATION, ""), fail)
        overrides.append(
            Override(image=image_id, new_image=entry.image, preresolved=True, origins=origins)
        )
    return Config(overrides=tuple(overrides))


def load_config(docs: Iterable[ConfigDocument]) -> Config:
    """Parse and merge every config document, in order."""
    merged = Config()
    for doc in docs:
        merged = merged.merge(config_from_document(doc))
    return merged
