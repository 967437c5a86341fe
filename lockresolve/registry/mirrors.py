"""Registry mirrors: where a read request may be sent instead of (or before) its registry.

Plain values and functions only; the client asks :meth:`MirrorConfig.plan` for the
hops of one request and tries them in order (see ``docs/mirrors.md``):

* ``--registry-mirror UPSTREAM=MIRROR`` and ``LOCKRESOLVE_REGISTRY_MIRRORS``
  (:func:`parse_mirror_spec`), tried first, in the order given;
* containerd ``hosts.toml`` directories (:mod:`.hoststoml`): ``[host."…"]``
  entries, then ``server`` in place of the registry;
* podman/CRI-O ``registries.conf`` v2 (:mod:`.registriesconf`): the longest
  ``prefix`` match's ``[[registry.mirror]]`` entries, then its ``location``.

Then the registry itself, unless ``--registry-mirror-only`` is given, a
``hosts.toml`` ``server`` or ``registries.conf`` ``location`` stands in for it,
or it is ``blocked``. Only ``GET``/``HEAD`` of manifests, blobs and tag lists are
routed: a tag (or a tag list) needs a host that may *resolve*, a digest or a blob
one that may *pull*. Writes never go to a mirror.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from lockresolve.errors import UsageError
from lockresolve.registry.transport import HostTLS

__all__ = [
    "ENV_MIRRORS",
    "Endpoint",
    "Hop",
    "MirrorConfig",
    "MirrorRule",
    "canonical_registry",
    "mask_userinfo",
    "parse_mirror_env",
    "parse_mirror_spec",
    "request_kind",
]

ENV_MIRRORS = "LOCKRESOLVE_REGISTRY_MIRRORS"

Kind = Literal["resolve", "pull"]

_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d+)?$"
)
_PATH_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_ROUTED = re.compile(
    r"^/v2/(?P<repo>.+?)/(?P<what>manifests|blobs|tags)/(?P<rest>[^?]*)(?P<query>\?.*)?$"
)


def mask_userinfo(text: str) -> str:
    """``user:password@`` in a host or URL, as ``***@``: messages never show credentials."""
    return re.sub(r"(^|=|//)([^/@=\s]*)@", r"\1***@", text)


def canonical_registry(host: str) -> str:
    """Docker Hub's three names are one registry (``index.docker.io``, as references use)."""
    lowered = host.lower()
    return "index.docker.io" if lowered in _DOCKER_HUB else host


@dataclass(frozen=True)
class Endpoint:
    """One host that may answer for a registry.

    ``prefix``: the repository path the registry's repositories live under on
    this host (Harbor and Artifactory proxy projects: ``harbor.example.com/proxy``);
    ``api_root``: the API's root path (``/v2``; containerd's ``override_path``
    may set another); ``scheme``: forced (``http``/``https``) or ``None`` for the
    transport policy's choice; ``resolve``/``pull``: what it may answer (see the
    module doc); ``primary``: stands in for the registry itself (a ``server`` or
    ``location``); ``namespace``: send containerd's ``?ns=REGISTRY``; ``origin``: where
    it was configured, for messages.
    """

    host: str
    prefix: str = ""
    api_root: str = "/v2"
    scheme: str | None = None
    resolve: bool = True
    pull: bool = True
    primary: bool = False
    namespace: bool = False
    tls: HostTLS | None = None
    origin: str = ""


@dataclass(frozen=True)
class MirrorRule:
    """The endpoints configured for the repositories under ``upstream/path``.

    ``upstream`` is a canonical registry host, or ``*`` for every registry
    (containerd's ``_default``); ``path`` a repository prefix (registries.conf)
    with the part it matched replaced by each endpoint's ``prefix``.
    """

    upstream: str
    endpoints: tuple[Endpoint, ...]
    path: str = ""
    blocked: bool = False
    origin: str = ""

    def matches(self, registry: str, repository: str) -> bool:
        wildcard = self.upstream.startswith("*.") and registry.endswith(self.upstream[1:])
        if self.upstream not in ("*", registry) and not wildcard:
            return False
        if not self.path:
            return True
        return repository == self.path or repository.startswith(self.path + "/")

    @property
    def weight(self) -> int:
        return len(self.upstream) + 1 + len(self.path) if self.upstream != "*" else 0


@dataclass(frozen=True)
class Hop:
    """One attempt of a routed request: the host, the path there and the repository name."""

    host: str
    target: str
    repository: str
    scheme: str | None
    mirror: bool
    origin: str


@dataclass(frozen=True)
class MirrorConfig:
    """Every mirror setting of a run, by source: flags, hosts.toml, registries.conf.

    Within each source the most specific rule for a request wins; the sources'
    mirrors are tried in that order, then the primary (see the module doc).
    """

    flags: tuple[MirrorRule, ...] = ()
    hosts: tuple[MirrorRule, ...] = ()
    registries_conf: tuple[MirrorRule, ...] = ()
    mirror_only: bool = False
    #: the registries.conf file, for the "blocked" message
    registries_conf_path: str = ""

    @property
    def empty(self) -> bool:
        return not (self.flags or self.hosts or self.registries_conf)

    def tls_hosts(self) -> tuple[tuple[str, HostTLS], ...]:
        """Per-host TLS settings (``ca``, ``client``, ``skip_verify``, ``insecure``), by host."""
        seen: dict[str, HostTLS] = {}
        for rule in (*self.flags, *self.hosts, *self.registries_conf):
            for ep in rule.endpoints:
                if ep.tls is not None and ep.host not in seen:
                    seen[ep.host] = ep.tls
        return tuple(seen.items())

    def plain_http_hosts(self) -> frozenset[str]:
        """Hosts that may be spoken to over plain http (registries.conf ``insecure``)."""
        return frozenset(
            ep.host
            for rule in (*self.flags, *self.hosts, *self.registries_conf)
            for ep in rule.endpoints
            if ep.tls is not None and ep.tls.plain_http
        )

    def endpoints(
        self, registry: str, repository: str, kind: Kind
    ) -> list[tuple[Endpoint, str, bool]]:
        """The endpoints for a request, in order: (endpoint, repository there, is the registry)."""
        registry = canonical_registry(registry)
        found: list[tuple[Endpoint, str]] = []
        primary: tuple[Endpoint, str] | None = None
        blocked = False
        for rules in (self.flags, self.hosts, self.registries_conf):
            rule = _best(rules, registry, repository)
            if rule is None:
                continue
            rest = repository[len(rule.path) :].lstrip("/") if rule.path else repository
            for ep in rule.endpoints:
                name = f"{ep.prefix}/{rest}" if ep.prefix and rest else (ep.prefix or rest)
                if ep.primary:
                    if primary is None:
                        primary = (ep, name)
                    continue
                found.append((ep, name))
            blocked = blocked or rule.blocked
        if primary is None:
            primary = (Endpoint(host=registry, primary=True), repository)
        if not blocked:
            found.append(primary)
        marked = [
            (
                ep,
                name,
                canonical_registry(ep.host) == registry
                and name == repository
                and ep.api_root == "/v2",
            )
            for ep, name in found
        ]
        # --registry-mirror-only: a registry that has mirrors is never contacted itself.
        strict = self.mirror_only and any(not upstream for _, _, upstream in marked)
        return [
            (ep, name, upstream)
            for ep, name, upstream in marked
            if (ep.resolve if kind == "resolve" else ep.pull) and not (strict and upstream)
        ]

    def plan(
        self, registry: str, target: str, *, dead: Iterable[str] = ()
    ) -> tuple[Hop, ...] | None:
        """The hops for a request to ``registry``'s ``target`` path; ``None`` when not routed.

        ``dead``: hosts that failed to connect earlier in the run (skipped while
        another hop is left). An empty plan means no host may answer (see
        :meth:`why_none`).
        """
        match = _ROUTED.match(target)
        if match is None or self.empty:
            return None
        repository, what, rest = match["repo"], match["what"], match["rest"]
        kind: Kind = (
            "pull" if what == "blobs" or (what == "manifests" and ":" in rest) else "resolve"
        )
        chosen = self.endpoints(registry, repository, kind)
        if len(chosen) == 1 and chosen[0][2] and chosen[0][0].tls is None:
            return None  # the registry alone, as without mirrors
        skip = set(dead)
        live = [c for c in chosen if c[0].host not in skip] or chosen
        hops = []
        for ep, name, upstream in live:
            query = match["query"] or ""
            if ep.namespace and not upstream:
                query += ("&" if query else "?") + urlencode({"ns": _hub_name(registry)})
            hops.append(
                Hop(
                    host=registry if upstream else ep.host,
                    target=f"{ep.api_root}/{name}/{what}/{rest}{query}",
                    repository=name,
                    scheme=None if upstream else ep.scheme,
                    mirror=not upstream,
                    origin=ep.origin,
                )
            )
        return tuple(hops)

    def why_none(self, registry: str, target: str) -> str:
        """Why :meth:`plan` found no host for a request, as one sentence."""
        match = _ROUTED.match(target)
        repository = match["repo"] if match else ""
        kind = request_kind(target)
        subject = f"{registry}/{repository}"
        for rule in self.registries_conf:
            if rule.blocked and rule.matches(canonical_registry(registry), repository):
                return f"{subject} is blocked in {self.registries_conf_path} and no mirror may serve it"
        what = "resolve tags" if kind == "resolve" else "serve digests and blobs"
        return f"{subject}: --registry-mirror-only is set and no mirror of {registry} may {what}"


def _hub_name(registry: str) -> str:
    """The registry as containerd names it in ``ns`` (``docker.io`` for Docker Hub)."""
    return "docker.io" if canonical_registry(registry) == "index.docker.io" else registry


def _best(rules: Iterable[MirrorRule], registry: str, repository: str) -> MirrorRule | None:
    best: MirrorRule | None = None
    for rule in rules:
        if rule.matches(registry, repository) and (best is None or rule.weight > best.weight):
            best = rule
    if best is None:
        return None
    # Flags may repeat an upstream: every rule of the same weight and scope counts.
    same = [r for r in rules if r.upstream == best.upstream and r.path == best.path]
    if len(same) == 1:
        return best
    return MirrorRule(
        upstream=best.upstream,
        path=best.path,
        endpoints=tuple(ep for r in same for ep in r.endpoints),
        blocked=any(r.blocked for r in same),
        origin=best.origin,
    )


def request_kind(target: str) -> Kind | None:
    """``resolve`` (a tag, a tag list), ``pull`` (a digest, a blob) or ``None`` (not routed)."""
    match = _ROUTED.match(target)
    if match is None:
        return None
    if match["what"] == "blobs" or (match["what"] == "manifests" and ":" in match["rest"]):
        return "pull"
    return "resolve"


# -- flags and the environment ------------------------------------------------


def parse_mirror_spec(spec: str, *, where: str = "--registry-mirror") -> MirrorRule:
    """``UPSTREAM=MIRROR``: ``docker.io=mirror.gcr.io``, ``ghcr.io=127.0.0.1:5000/ghcr``.

    ``MIRROR`` may start with ``http://`` (plain http) or ``https://``; the path
    after its host is a repository prefix. Raises :class:`UsageError` naming
    ``where`` and the entry.
    """
    text = spec.strip()
    upstream, sep, mirror = text.partition("=")
    upstream, mirror = upstream.strip(), mirror.strip()

    def bad(reason: str) -> UsageError:
        shown = mask_userinfo(spec)
        return UsageError(
            f"{where} {shown!r}: {mask_userinfo(reason)} (expected UPSTREAM=MIRROR[/PREFIX])"
        )

    if "@" in mirror:
        raise bad("credentials do not belong in a mirror; give them for its host")

    if not sep or not upstream or not mirror:
        raise bad("not of the form UPSTREAM=MIRROR")
    if "/" in upstream or not _HOST_RE.match(upstream):
        raise bad(f"{upstream!r} is not a registry host")
    scheme: str | None = None
    for candidate in ("http://", "https://"):
        if mirror.lower().startswith(candidate):
            scheme, mirror = candidate[:-3], mirror[len(candidate) :]
    if "://" in mirror:
        raise bad("the mirror's scheme must be http or https")
    host, _, prefix = mirror.partition("/")
    prefix = prefix.strip("/")
    if not _HOST_RE.match(host):
        raise bad(f"{host!r} is not a host")
    if prefix and not _PATH_RE.match(prefix):
        raise bad(f"{prefix!r} is not a repository path prefix")
    origin = f"{where} {text}"
    return MirrorRule(
        upstream=canonical_registry(upstream),
        endpoints=(Endpoint(host=host, prefix=prefix, scheme=scheme, origin=origin),),
        origin=origin,
    )


def parse_mirror_env(env: Mapping[str, str]) -> tuple[MirrorRule, ...]:
    """``LOCKRESOLVE_REGISTRY_MIRRORS``: the flag's syntax, comma-separated."""
    value = env.get(ENV_MIRRORS, "")
    return tuple(
        parse_mirror_spec(part, where=ENV_MIRRORS) for part in value.split(",") if part.strip()
    )


@dataclass(frozen=True)
class MirrorSources:
    """What the flags name, before the files are read (see :func:`load_mirror_config`)."""

    specs: tuple[str, ...] = ()
    hosts_dir: str | None = None
    registries_conf: str | None = None
    mirror_only: bool = False
    env: Mapping[str, str] = field(default_factory=dict)


def load_mirror_config(sources: MirrorSources) -> MirrorConfig:
    """Parse the flags and the environment and read the files they name."""
    from lockresolve.registry.hoststoml import load_hosts_dir
    from lockresolve.registry.registriesconf import load_registries_conf

    flags = tuple(parse_mirror_spec(s) for s in sources.specs) + parse_mirror_env(sources.env)
    hosts = load_hosts_dir(sources.hosts_dir) if sources.hosts_dir else ()
    conf = load_registries_conf(sources.registries_conf) if sources.registries_conf else ()
    return MirrorConfig(
        flags=flags,
        hosts=hosts,
        registries_conf=conf,
        mirror_only=sources.mirror_only,
        registries_conf_path=sources.registries_conf or "",
    )
