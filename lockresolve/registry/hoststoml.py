"""containerd's ``hosts.toml`` directories (``--registry-hosts-dir DIR``), as containerd reads them.

``DIR/<host>/hosts.toml`` configures the registry ``<host>`` (``host_port_`` or
``host:port`` for a port; ``_default`` for every registry without its own
directory). ``[host."URL"]`` entries are tried in file order, then ``server``
(the registry itself when absent). Per entry, and for ``server`` at the top
level: ``capabilities`` (``pull``, ``resolve``, ``push``; all three when absent),
``ca``, ``client``, ``skip_verify``, ``override_path``. Relative paths are
relative to the file. ``header``, ``dial_timeout`` and ``proxy`` are accepted
and not used. A directory without ``hosts.toml`` is read as Docker's
certificate directory (``*.crt`` CAs, ``*.cert``/``*.key`` client pairs). Requests to a host other than the registry carry ``?ns=REGISTRY``,
as containerd sends them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from lockresolve.errors import InputError
from lockresolve.registry.mirrors import Endpoint, MirrorRule, canonical_registry, mask_userinfo
from lockresolve.registry.transport import HostTLS, client_pair_problem

__all__ = ["directory_registry", "load_hosts_dir", "parse_hosts_toml"]

_CAPABILITIES = frozenset({"pull", "resolve", "push"})
_KNOWN_KEYS = frozenset(
    {
        "server",
        "host",
        "capabilities",
        "ca",
        "client",
        "skip_verify",
        "override_path",
        "header",
        "dial_timeout",
        "proxy",
    }
)


def directory_registry(name: str) -> str:
    """The registry a directory configures: ``host_5000_`` -> ``host:5000``; ``_default`` -> ``*``."""
    if name == "_default":
        return "*"
    if name.endswith("_") and "_" in name[:-1]:
        head, _, port = name[:-1].rpartition("_")
        if port.isdigit() and head:
            return canonical_registry(f"{head}:{port}")
    return canonical_registry(name)


def load_hosts_dir(directory: str | Path) -> tuple[MirrorRule, ...]:
    """Every ``DIR/*/hosts.toml``; a bad file raises :class:`InputError` naming it."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError("not a directory", source=f"--registry-hosts-dir {root}")
    rules: dict[str, MirrorRule] = {}
    # host_port_ comes before host:port, as containerd looks them up.
    for sub in sorted(root.iterdir(), key=lambda p: (not p.name.endswith("_"), p.name)):
        path = sub / "hosts.toml"
        if not sub.is_dir():
            continue
        registry = directory_registry(sub.name)
        if registry in rules:
            continue
        if path.is_file():
            rules[registry] = parse_hosts_toml(path, registry)
        elif registry != "*":
            cert_rule = _docker_cert_dir(sub, registry)
            if cert_rule is not None:
                rules[registry] = cert_rule
    return tuple(rules.values())


def _docker_cert_dir(directory: Path, registry: str) -> MirrorRule | None:
    """No hosts.toml: Docker's certificate files (``*.crt`` CAs, ``*.cert`` + ``*.key``
    client pairs), as containerd falls back to."""
    cas = tuple(sorted(directory.glob("*.crt")))
    pairs: list[tuple[Path, Path | None]] = []
    for cert in sorted(directory.glob("*.cert")):
        key = cert.with_suffix(".key")
        if not key.is_file():
            raise InputError(f"client certificate without its key {key.name}", source=str(cert))
        problem = client_pair_problem(cert, key)
        if problem is not None:
            raise InputError(problem, source=str(cert))
        pairs.append((cert, key))
    if not cas and not pairs:
        return None
    origin = f"{directory} (certificate files)"
    tls = HostTLS(ca_files=cas, client_pairs=tuple(pairs), origin=origin)
    host = "registry-1.docker.io" if registry == "index.docker.io" else registry
    endpoint = Endpoint(host=host, primary=True, tls=tls, origin=origin)
    return MirrorRule(upstream=registry, endpoints=(endpoint,), origin=origin)


def parse_hosts_toml(path: Path, registry: str) -> MirrorRule:
    """One ``hosts.toml`` for ``registry`` (``*`` for ``_default``)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"TOML error: {exc}", source=source) from None
    _check_keys(data, source, "top level", allow_host=True)
    hosts = data.get("host", {})
    if not isinstance(hosts, dict):
        raise InputError('host must be a table of [host."URL"] entries', source=source)
    endpoints: list[Endpoint] = []
    for url, entry in hosts.items():  # TOML tables keep file order
        where = f'[host."{url}"]'
        if not isinstance(entry, dict):
            raise InputError(f"{where} must be a table", source=source)
        _check_keys(entry, source, where, allow_host=False)
        endpoints.append(_endpoint(url, entry, path, where, registry))
    server = data.get("server")
    if server is not None:
        if not isinstance(server, str) or not server:
            raise InputError("server must be a URL string", source=source)
        endpoints.append(_endpoint(server, data, path, "server", registry, primary=True))
    elif registry != "*":
        # No server: the registry itself, with the top-level settings.
        top = _endpoint(_default_server(registry), data, path, "top level", registry, primary=True)
        endpoints.append(top)
    return MirrorRule(upstream=registry, endpoints=tuple(endpoints), origin=source)


def _default_server(registry: str) -> str:
    return "https://registry-1.docker.io" if registry == "index.docker.io" else registry


def _check_keys(table: dict[str, Any], source: str, where: str, *, allow_host: bool) -> None:
    for key in table:
        if key in ("server", "host") and not allow_host:
            raise InputError(f"{where}: {key!r} is not allowed inside a host entry", source=source)
        if key not in _KNOWN_KEYS:
            raise InputError(f"{where}: unknown key {key!r}", source=source)


def _endpoint(
    url: str,
    table: dict[str, Any],
    path: Path,
    where: str,
    registry: str,
    *,
    primary: bool = False,
) -> Endpoint:
    source = str(path)
    full = url if url.startswith(("http://", "https://")) else f"https://{url}"
    parts = urlsplit(full)
    if "@" in parts.netloc:
        raise InputError(
            f"{mask_userinfo(where)}: credentials do not belong in a host URL", source=source
        )
    if not parts.netloc or parts.query or parts.fragment:
        raise InputError(f"{where}: {url!r} is not a registry URL", source=source)
    override = table.get("override_path", False)
    if not isinstance(override, bool):
        raise InputError(f"{where}: override_path must be true or false", source=source)
    api_root = str(PurePosixPath(parts.path)) if parts.path not in ("", "/") else ""
    if not override and not api_root.endswith("/v2"):
        api_root += "/v2"
    prefix = ""
    if api_root.startswith("/v2/"):
        # https://harbor.example.com/v2/proxy with override_path: a repository prefix.
        api_root, prefix = "/v2", api_root[4:]
    caps = table.get("capabilities", ["pull", "resolve", "push"])
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise InputError(f"{where}: capabilities must be a list of strings", source=source)
    for cap in caps:
        if cap.lower() not in _CAPABILITIES:
            raise InputError(
                f"{where}: unknown capability {cap!r} (expected pull, resolve or push)",
                source=source,
            )
    lowered = {c.lower() for c in caps}
    skip = table.get("skip_verify", False)
    if not isinstance(skip, bool):
        raise InputError(f"{where}: skip_verify must be true or false", source=source)
    ca_files = _paths(table.get("ca"), path, where, "ca")
    pairs = _client_pairs(table.get("client"), path, where)
    tls = None
    if ca_files or pairs or skip:
        tls = HostTLS(
            ca_files=ca_files,
            client_pairs=pairs,
            skip_verify=skip,
            origin=f"{source} {where}",
        )
    host = parts.netloc
    if canonical_registry(host) == "index.docker.io":
        host = "registry-1.docker.io"
    return Endpoint(
        host=host,
        prefix=prefix,
        api_root=api_root,
        scheme=parts.scheme,
        resolve="resolve" in lowered,
        pull="pull" in lowered,
        primary=primary,
        namespace=True,
        tls=tls,
        origin=f"{source} {where}",
    )


def _paths(value: Any, base: Path, where: str, key: str) -> tuple[Path, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise InputError(f"{where}: {key} must be a path or a list of paths", source=str(base))
    return tuple(_existing(v, base, where, key) for v in items)


def _existing(value: str, base: Path, where: str, key: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        path = base.parent / path
    if not path.is_file():
        raise InputError(f"{where}: {key} file {path} not found", source=str(base))
    return path


def _client_pairs(value: Any, base: Path, where: str) -> tuple[tuple[Path, Path | None], ...]:
    """``"c.pem"``, ``["a.pem", "b.pem"]`` or ``[["c.cert", "c.key"], ["d.pem", ""]]``."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise InputError(f"{where}: client must be a path or a list", source=str(base))
    pairs: list[tuple[Path, Path | None]] = []
    for item in items:
        if isinstance(item, str):
            pairs.append((_existing(item, base, where, "client"), None))
        elif (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(v, str) for v in item)
            and item[0]
        ):
            key = _existing(item[1], base, where, "client key") if item[1] else None
            pairs.append((_existing(item[0], base, where, "client"), key))
        else:
            raise InputError(
                f"{where}: client entries must be paths or [certificate, key] pairs",
                source=str(base),
            )
    for cert, key in pairs:
        problem = client_pair_problem(cert, key)
        if problem is not None:
            raise InputError(f"{where}: {problem}", source=str(base))
    return tuple(pairs)
