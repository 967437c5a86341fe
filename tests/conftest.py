"""Shared pytest fixtures: real registries (``docker-registry``), a fault proxy.

Session-scoped registries are shared by all tests: use distinct repository names, and
count requests from a :meth:`~tests.support.registry.Registry.mark`. For a clean process
(fresh storage, counters, token server), use ``registry_factory``.

A missing ``docker-registry``/``htpasswd``/``skopeo`` binary fails the tests that need it
(never skips): ``apt-get install docker-registry apache2-utils skopeo``.

Tests using any registry or proxy fixture get the ``registry`` marker, so
``pytest -m "not registry"`` runs only the offline tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.faultproxy import FaultPlan, FaultProxy
from tests.support.registry import Registry, RegistryOptions

REGISTRY_FIXTURES = frozenset(
    {
        "registry",
        "basic_registry",
        "token_registry",
        "tls_registry",
        "registry_factory",
        "fault_proxy",
        "fault_proxy_factory",
    }
)

RegistryFactory = Callable[..., Registry]
FaultProxyFactory = Callable[..., FaultProxy]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & REGISTRY_FIXTURES:
            item.add_marker(pytest.mark.registry)


def _start(directory: Path, options: RegistryOptions) -> Registry:
    return Registry(directory, options).start()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous plain-http registry shared by the whole session."""
    reg = _start(tmp_path_factory.mktemp("registry"), RegistryOptions())
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """htpasswd Basic auth over plain http; ``.username``/``.password`` are valid."""
    reg = _start(tmp_path_factory.mktemp("basic-registry"), RegistryOptions(auth="basic"))
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Bearer token auth over plain http; ``.token_server`` is the realm (shared: call
    ``token_registry.token_server.reset()`` or count from a snapshot)."""
    reg = _start(tmp_path_factory.mktemp("token-registry"), RegistryOptions(auth="token"))
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Anonymous https with a test CA; trust ``.ca_path`` (or use ``.ssl_context()``)."""
    reg = _start(tmp_path_factory.mktemp("tls-registry"), RegistryOptions(tls=True))
    yield reg
    reg.close()


@pytest.fixture
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """Start fresh registries: ``registry_factory(auth="token", tls=True, token_expires_in=2)``
    (keywords are :class:`RegistryOptions` fields) or ``registry_factory(options)``.
    All are stopped at the end of the test."""
    started: list[Registry] = []

    def make(options: RegistryOptions | None = None, /, **kwargs: Any) -> Registry:
        opts = replace(options or RegistryOptions(), **kwargs)
        name = f"reg-{opts.auth}{'-tls' if opts.tls else ''}"
        reg = _start(tmp_path_factory.mktemp(name), opts)
        started.append(reg)
        return reg

    yield make
    for reg in reversed(started):
        reg.close()


@pytest.fixture
def fault_proxy_factory() -> Iterator[FaultProxyFactory]:
    """Start fault proxies: ``fault_proxy_factory(upstream_url, plan=FaultPlan(...),
    delay=0.04)`` (``upstream`` None = forward proxy only). Stopped after the test."""
    started: list[FaultProxy] = []

    def make(
        upstream: str | None = None,
        plan: FaultPlan | None = None,
        **kwargs: Any,
    ) -> FaultProxy:
        proxy = FaultProxy(upstream, plan, **kwargs).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in reversed(started):
        proxy.stop()


@pytest.fixture
def fault_proxy(registry: Registry, fault_proxy_factory: FaultProxyFactory) -> FaultProxy:
    """A pass-through proxy in front of the session ``registry``; set ``.plan``/``.delay``."""
    return fault_proxy_factory(registry.url)
