"""Plain settings for talking to registries, shared by every command and the library API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lockresolve.registry.transport import DEFAULT_CONCURRENCY, TransportPolicy

if TYPE_CHECKING:
    # Imported where used: a run that sends no request (an up-to-date --check)
    # never loads httpx.
    from lockresolve.registry.client import RegistryClient
    from lockresolve.registry.keychain import Keychain
    from lockresolve.registry.mirrors import MirrorConfig

__all__ = ["RegistrySettings"]


@dataclass(frozen=True)
class RegistrySettings:
    """What the ``--registry-*`` flags and ``--concurrency`` say."""

    ca_cert_paths: tuple[Path, ...] = ()
    verify_certs: bool = True
    insecure: bool = False
    username: str | None = None
    password: str | None = None
    token: str | None = None
    anonymous: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    retries: int = 5
    response_timeout: float = 30.0
    #: ``--registry-client-cert`` / ``--registry-client-key`` (mutual TLS)
    client_cert: Path | None = None
    client_key: Path | None = None
    #: the mirrors (:func:`lockresolve.registry.mirrors.load_mirror_config`)
    mirrors: MirrorConfig | None = None

    def policy(self) -> TransportPolicy:
        mirrors = self.mirrors
        return TransportPolicy(
            insecure=self.insecure,
            verify_certs=self.verify_certs,
            ca_cert_paths=self.ca_cert_paths,
            concurrency=self.concurrency,
            retries=self.retries,
            read_timeout=self.response_timeout,
            client_cert=self.client_cert,
            client_key=self.client_key,
            host_tls=mirrors.tls_hosts() if mirrors is not None else (),
            extra_insecure_hosts=(
                mirrors.plain_http_hosts() if mirrors is not None else frozenset()
            ),
        )

    def keychain(self, env: Mapping[str, str] | None = None) -> Keychain:
        from lockresolve.registry.credentials import Credential
        from lockresolve.registry.keychain import Keychain

        explicit: Credential | None = None
        if self.anonymous:
            explicit = Credential(source="--registry-anon")
        elif self.token:
            explicit = Credential(registry_token=self.token, source="--registry-token")
        elif self.username:
            # As imgpkg: a password without a username is ignored.
            explicit = Credential(
                username=self.username,
                password=self.password or "",
                source="--registry-username/--registry-password",
            )
        return Keychain.from_environment(os.environ if env is None else env, explicit=explicit)

    def client(self, env: Mapping[str, str] | None = None) -> RegistryClient:
        from lockresolve.registry.client import RegistryClient

        return RegistryClient(self.policy(), self.keychain(env), mirrors=self.mirrors)
