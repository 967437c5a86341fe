"""Flags shared by several commands: Go-style booleans and the ``--registry-*`` flags.

Only click is imported here, so the CLI starts fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from lockresolve.registry.mirrors import MirrorConfig
    from lockresolve.registry.settings import RegistrySettings

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "bool_option",
    "registry_options",
    "settings_from_kwargs",
    "setup_logging",
    "split_image_options",
    "split_kinds_from_kwargs",
]


def bool_option(name: str, default: bool, help: str) -> Callable[[F], F]:
    """A Go-style boolean flag: ``--x``, ``--x=true`` and ``--x=false`` all work."""
    return click.option(
        name,
        type=click.BOOL,
        default=default,
        is_flag=False,
        flag_value=True,
        show_default=True,
        metavar="BOOL",
        help=help,
    )


def registry_options(*, concurrency: int = 16) -> Callable[[F], F]:
    """The ``--registry-*`` flags shared by every command that talks to a registry.

    ``concurrency``: the command's default for ``--concurrency`` (the values of
    ``lockresolve.registry.transport``, not imported here to keep start-up fast).
    """

    def decorate(func: F) -> F:
        for option in reversed(_registry_option_list(concurrency)):
            func = option(func)
        return func

    return decorate


def _registry_option_list(concurrency: int) -> list[Callable[[F], F]]:
    return [
        click.option(
            "--registry-ca-cert-path",
            "ca_cert_paths",
            multiple=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Trust this CA certificate (PEM) for registries; repeatable.",
        ),
        bool_option("--registry-verify-certs", True, "Verify registry TLS certificates."),
        bool_option(
            "--registry-insecure", False, "Allow plain http to every registry (not only loopback)."
        ),
        click.option(
            "--registry-username", envvar="LOCKRESOLVE_USERNAME", help="Registry username."
        ),
        click.option(
            "--registry-password", envvar="LOCKRESOLVE_PASSWORD", help="Registry password."
        ),
        click.option("--registry-token", envvar="LOCKRESOLVE_TOKEN", help="Registry bearer token."),
        click.option("--registry-anon", is_flag=True, help="Ignore stored credentials."),
        click.option(
            "--registry-retry-count",
            type=click.IntRange(0, 20),
            default=5,
            show_default=True,
            help="Attempts after the first for failed requests.",
        ),
        click.option(
            "--registry-response-header-timeout",
            type=click.FloatRange(min=0.1),
            default=30.0,
            show_default=True,
            help="Seconds to wait for a registry's answer.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=concurrency,
            show_default=True,
            help="Requests in flight per registry host.",
        ),
        click.option(
            "--registry-mirror",
            "registry_mirrors",
            multiple=True,
            metavar="UPSTREAM=MIRROR",
            help="Read UPSTREAM's images through MIRROR[/PREFIX] first; repeatable, in order "
            "(also LOCKRESOLVE_REGISTRY_MIRRORS, comma-separated).",
        ),
        click.option(
            "--registry-hosts-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="containerd hosts directory (DIR/<host>/hosts.toml) naming mirrors.",
        ),
        click.option(
            "--registries-conf",
            type=click.Path(dir_okay=False, path_type=Path),
            help="podman/CRI-O registries.conf (v2) naming mirrors.",
        ),
        click.option(
            "--registry-mirror-only",
            is_flag=True,
            help="Never contact a registry that has mirrors; only its mirrors.",
        ),
        click.option(
            "--registry-client-cert",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Client certificate (PEM) for mutual TLS with registries.",
        ),
        click.option(
            "--registry-client-key",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Private key (PEM) of --registry-client-cert (default: in the same file).",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Log every HTTP request to stderr."),
    ]


def settings_from_kwargs(kwargs: dict[str, Any]) -> RegistrySettings:
    """Pop the flags :func:`registry_options` added out of a command's keyword arguments.

    ``-v`` sets up logging (first, as every command needs); the rest become the settings.
    """
    from lockresolve.registry.envcreds import check_environment
    from lockresolve.registry.settings import RegistrySettings

    setup_logging(kwargs.pop("verbose"))
    # Once, at start-up: a misspelt *_REGISTRY_* name is an error, an orphaned group a
    # warning, before any registry asks for credentials.
    for line in check_environment(os.environ):
        logging.getLogger("lockresolve.credentials").warning("warning: %s", line)
    client_cert, client_key = _client_pair(kwargs)
    mirrors = _mirror_config(kwargs)
    return RegistrySettings(
        client_cert=client_cert,
        client_key=client_key,
        mirrors=mirrors,
        ca_cert_paths=tuple(kwargs.pop("ca_cert_paths")),
        verify_certs=kwargs.pop("registry_verify_certs"),
        insecure=kwargs.pop("registry_insecure"),
        username=kwargs.pop("registry_username"),
        password=kwargs.pop("registry_password"),
        token=kwargs.pop("registry_token"),
        anonymous=kwargs.pop("registry_anon"),
        retries=kwargs.pop("registry_retry_count"),
        response_timeout=kwargs.pop("registry_response_header_timeout"),
        concurrency=kwargs.pop("concurrency"),
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _client_pair(kwargs: dict[str, Any]) -> tuple[Path | None, Path | None]:
    """``--registry-client-cert``/``--registry-client-key``, checked to load together."""
    from lockresolve.errors import UsageError

    client_cert = kwargs.pop("registry_client_cert")
    client_key = kwargs.pop("registry_client_key")
    if client_key is not None and client_cert is None:
        raise UsageError("--registry-client-key needs --registry-client-cert")
    for flag, path in (
        ("--registry-client-cert", client_cert),
        ("--registry-client-key", client_key),
    ):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: file not found")
    if client_cert is not None:
        from lockresolve.registry.transport import client_pair_problem

        problem = client_pair_problem(client_cert, client_key)
        if problem is not None:
            raise UsageError(f"--registry-client-cert: {problem}")
    return client_cert, client_key


def _mirror_config(kwargs: dict[str, Any]) -> MirrorConfig | None:
    """The mirror flags and ``LOCKRESOLVE_REGISTRY_MIRRORS``, loaded only when one is given."""
    from lockresolve.errors import UsageError

    specs = tuple(kwargs.pop("registry_mirrors"))
    hosts_dir = kwargs.pop("registry_hosts_dir")
    conf = kwargs.pop("registries_conf")
    mirror_only = kwargs.pop("registry_mirror_only")
    if not (
        specs or hosts_dir or conf or mirror_only or os.environ.get("LOCKRESOLVE_REGISTRY_MIRRORS")
    ):
        return None
    from lockresolve.registry.mirrors import MirrorSources, load_mirror_config

    mirrors = load_mirror_config(
        MirrorSources(
            specs=specs,
            hosts_dir=str(hosts_dir) if hosts_dir else None,
            registries_conf=str(conf) if conf else None,
            mirror_only=mirror_only,
            env=dict(os.environ),
        )
    )
    if mirror_only and mirrors.empty:
        raise UsageError("--registry-mirror-only needs mirrors to use")
    return mirrors


def setup_logging(verbose: bool) -> None:
    """``-v``: every HTTP request and a closing count on stderr; otherwise only warnings."""
    logger = logging.getLogger("lockresolve")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("lockresolve: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)


def split_image_options(func: F) -> F:
    """``--kustomize`` and ``--helm-values``: also pin images written as map fields."""
    func = click.option(
        "--helm-values",
        is_flag=True,
        help="Also take maps with 'repository' and 'tag' (Helm values) as images, "
        "pinned by a 'digest' key.",
    )(func)
    return click.option(
        "--kustomize",
        is_flag=True,
        help="Also take the 'images:' entries of Kustomization/Component files as images, "
        "pinned by their 'digest'.",
    )(func)


def split_kinds_from_kwargs(kwargs: dict[str, Any]) -> frozenset[str]:
    """Pop the flags :func:`split_image_options` added; the kinds asked for."""
    kinds = []
    if kwargs.pop("kustomize"):
        kinds.append("kustomize")
    if kwargs.pop("helm_values"):
        kinds.append("helm-values")
    return frozenset(kinds)
