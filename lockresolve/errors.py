"""The exceptions lockresolve raises.

Every error the library raises on purpose derives from :class:`LockresolveError`;
third-party exceptions (httpx, ruamel.yaml, OSError) are mapped to these at one
boundary each (the registry client, the YAML loader, the file writers), so
callers never have to catch anything else. The CLI maps the tree to exit codes
in one place: :class:`UsageError` is 2, everything else 1.

::

    LockresolveError
    ├── UsageError                 bad flags or flag combinations (exit 2)
    ├── InputError                 a file the user gave us is unusable
    │   ├── YAMLInputError         malformed YAML, not UTF-8, alias bomb, too deep
    │   └── ConfigError            a kbld/imgpkg config document is invalid
    ├── InvalidReferenceError      an image reference that does not parse
    ├── CredentialError            a credential source failed (helper, config file)
    ├── RegistryError              a registry answered with an error, or not at all
    │   ├── AuthError              401/403, or the token service refused
    │   ├── NotFoundError          MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_UNKNOWN, 404
    │   ├── TransportError         connection, TLS or timeout, after retries
    │   └── ProtocolError          a reply that breaks the protocol or our limits
    │       └── DigestMismatchError  bytes that do not hash to their digest
    ├── BundleError                a bundle cannot be pushed, pulled or copied
    │   └── UnsafeArchiveError     a layer that would write outside its target
    └── ResolveFailed              one or more references failed to resolve

Messages never contain credentials: the registry client strips userinfo from
URLs and never formats headers into messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

__all__ = [
    "AuthError",
    "BundleError",
    "ConfigError",
    "CredentialError",
    "DigestMismatchError",
    "InputError",
    "InvalidReferenceError",
    "LockresolveError",
    "NotFoundError",
    "ProtocolError",
    "RegistryError",
    "RegistryErrorDetail",
    "ResolveFailed",
    "TransportError",
    "UnsafeArchiveError",
    "UsageError",
    "YAMLInputError",
]


class LockresolveError(Exception):
    """Base class of every error lockresolve raises on purpose."""


class UsageError(LockresolveError):
    """Bad command-line usage: unknown flag values, conflicting flags."""


class InputError(LockresolveError):
    """A file given by the user cannot be used.

    ``source`` names the file (or ``-`` for stdin, or a URL); ``line`` is
    1-based when known.
    """

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.source is None:
            return self.message
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"


class YAMLInputError(InputError):
    """Malformed or hostile YAML: syntax errors, bad encoding, alias bombs, depth."""


class ConfigError(InputError):
    """An invalid kbld or imgpkg configuration document."""


class InvalidReferenceError(LockresolveError):
    """An image reference that does not parse."""

    def __init__(self, reference: str, reason: str) -> None:
        self.reference = reference
        self.reason = reason
        super().__init__(f"invalid image reference {reference!r}: {reason}")


class CredentialError(LockresolveError):
    """A credential source failed: a credential helper, a Docker config file."""


@dataclass(frozen=True)
class RegistryErrorDetail:
    """One entry of a registry's ``{"errors": [...]}`` body."""

    code: str
    message: str
    detail: str | None = None


class RegistryError(LockresolveError):
    """A registry refused a request or could not be reached.

    ``subject`` is the reference (or repository) the request was about,
    ``method`` and ``url`` the request (without credentials), ``status`` the
    HTTP status when there was an answer, ``details`` the registry's own
    error codes and messages.
    """

    def __init__(
        self,
        message: str,
        *,
        subject: str | None = None,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        details: Sequence[RegistryErrorDetail] = (),
    ) -> None:
        self.message = message
        self.subject = subject
        self.method = method
        self.url = url
        self.status = status
        self.details = tuple(details)
        super().__init__(str(self))

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(d.code for d in self.details)

    def __str__(self) -> str:
        parts: list[str] = []
        if self.method and self.url:
            parts.append(f"{self.method} {self.url}")
        elif self.subject:
            parts.append(self.subject)  # without a URL, name what the request was about
        if self.details:
            parts.append(
                "; ".join(
                    f"{d.code}: {d.message}" + (f" ({d.detail})" if d.detail else "")
                    for d in self.details
                )
            )
        else:
            parts.append(self.message)
        return ": ".join(parts)


class _Request(TypedDict, total=False):
    """What a :class:`RegistryError` says about its request (keywords of its subclasses)."""

    subject: str | None
    method: str | None
    url: str | None
    status: int | None
    details: Sequence[RegistryErrorDetail]


class AuthError(RegistryError):
    """401/403 from the registry, or a token service that refused us.

    ``credentials`` says whether credentials were sent and where they came
    from (an environment group, a flag, a Docker config file, a credential
    helper), never a secret; it ends the message in parentheses.
    """

    def __init__(
        self, message: str, *, credentials: str | None = None, **request: Unpack[_Request]
    ) -> None:
        self.credentials = credentials
        super().__init__(message, **request)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.credentials})" if self.credentials else text


class NotFoundError(RegistryError):
    """The manifest, blob or repository does not exist."""


class TransportError(RegistryError):
    """No usable answer: connection refused or reset, TLS failure, timeout."""


class ProtocolError(RegistryError):
    """An answer that breaks the distribution protocol or lockresolve's limits."""


class DigestMismatchError(ProtocolError):
    """Content whose sha256 is not the digest it was asked for or announced with."""


class BundleError(LockresolveError):
    """A bundle or image cannot be pushed, pulled or copied as asked."""


class UnsafeArchiveError(BundleError):
    """A layer entry that would land outside the target directory, or is not allowed."""


class ResolveFailed(LockresolveError):
    """Resolution failed for one or more references; ``failures`` holds each one."""

    def __init__(self, failures: Sequence[object]) -> None:
        self.failures = tuple(failures)
        lines = [f"{len(self.failures)} image reference(s) failed to resolve:"]
        lines += [f"- {failure}" for failure in self.failures]
        super().__init__("\n".join(lines))
