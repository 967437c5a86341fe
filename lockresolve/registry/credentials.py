"""Where registry credentials come from, in kbld's and imgpkg's order.

For each registry, the first source that has an answer wins:

1. The environment: ``LOCKRESOLVE_REGISTRY_*``, then ``KBLD_REGISTRY_*``, then
   ``IMGPKG_REGISTRY_*``, each a set of groups ``{HOSTNAME, USERNAME, PASSWORD,
   IDENTITY_TOKEN, REGISTRY_TOKEN}[_<suffix>]`` (no suffix is one group, every
   distinct suffix another). HOSTNAME is matched as imgpkg's env keychain does
   (``pkg/imgpkg/registry/auth/env_keychain.go`` and ``credentialprovider/
   keyring.go``): a scheme and a leading ``/v1/`` or ``/v2/`` are dropped, a
   path makes the entry specific to repositories under it, ``*`` (Go
   ``filepath.Match``) globs one DNS label, ports must be equal, and the
   longest key (in reverse byte order) is tried first. A group whose HOSTNAME
   matches answers even when it holds no secret (anonymous), as in both tools.
   Any other name under these prefixes is an error, as in both tools
   (:func:`check_environment` reports it once at start-up).
2. The explicit credential from the command line (``--registry-username`` /
   ``--registry-password``, ``--registry-token``, ``--registry-anon``): it
   applies to every registry the environment did not name.
3. The Docker config (``$DOCKER_CONFIG/config.json``, else
   ``~/.docker/config.json``, else Podman's ``$XDG_RUNTIME_DIR/containers/
   auth.json``), read as go-containerregistry's default keychain and the
   Docker CLI read it: ``credHelpers`` for the registry, else ``credsStore``,
   else ``auths``. Keys with a repository path apply under that path, the
   longest first, and helpers are asked for ``host/repository`` first.

Additions to what kbld/imgpkg do, none of which change an answer they give:
Docker Hub's names (``docker.io``, ``index.docker.io``, ``registry-1.docker.io``,
``https://index.docker.io/v1/``) are one registry in every source; host names
compare case-insensitively; credential helpers run with a timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

__all__ = ["Credential"]


@dataclass(frozen=True)
class Credential:
    """What to authenticate with. Every field unset means anonymous.

    ``identity_token`` is an OAuth2 refresh token (Docker's ``identitytoken``),
    exchanged at the token service; ``registry_token`` is a bearer token sent as
    is. Empty strings count as unset; a username without a password gets the
    empty password (Basic ``user:``), as ggcr sends it.

    ``repr`` and ``str`` show the username and which secrets are set, never a
    secret.
    """

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    registry_token: str | None = None
    #: where it came from, for messages ("environment group LOCKRESOLVE_REGISTRY_HOSTNAME_1",
    #: "Docker config /home/u/.docker/config.json", "credential helper docker-credential-x",
    #: a flag); for an anonymous answer, why none was found. Never a secret; not compared.
    source: str = field(default="", compare=False)

    ANONYMOUS: ClassVar[Credential]

    def __post_init__(self) -> None:
        if not self.username and not self.password:
            object.__setattr__(self, "username", None)
            object.__setattr__(self, "password", None)
        else:
            object.__setattr__(self, "username", self.username or "")
            object.__setattr__(self, "password", self.password or "")
        if not self.identity_token:
            object.__setattr__(self, "identity_token", None)
        if not self.registry_token:
            object.__setattr__(self, "registry_token", None)

    @classmethod
    def anonymous(cls) -> Credential:
        return cls.ANONYMOUS

    @property
    def is_anonymous(self) -> bool:
        return self == Credential.ANONYMOUS

    def with_source(self, source: str) -> Credential:
        """The same credential, saying where it came from."""
        return replace(self, source=source)

    def describe(self) -> str:
        """What would be sent and from where, never a secret: for error messages."""
        if self.registry_token:
            what = "a registry token"
        elif self.identity_token:
            what = "an identity token"
        elif self.username is not None:
            what = f"username {self.username!r} and a password"
        else:
            return "no credentials" + (f" ({self.source})" if self.source else "")
        return what + (f" from {self.source}" if self.source else "")

    def __repr__(self) -> str:
        def secret(value: str | None) -> str:
            return "None" if value is None else "'***'"

        return (
            f"Credential(username={self.username!r}, password={secret(self.password)}, "
            f"identity_token={secret(self.identity_token)}, "
            f"registry_token={secret(self.registry_token)})"
        )

    __str__ = __repr__


Credential.ANONYMOUS = Credential()
