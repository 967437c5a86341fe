"""Image references, parsed and normalised as go-containerregistry's ``name`` package does.

kbld and imgpkg parse every reference with ``name.ParseReference`` (weak
validation, the default registry ``index.docker.io`` and tag ``latest``). This
module follows that code path rule by rule:

* ``@`` splits a digest reference (exactly one ``@``); only ``sha256:`` with 64
  lower-case hex characters is accepted. A tag before the digest is validated
  and then dropped from the normalised form.
* Otherwise the text after the last ``:`` is the tag, unless it contains a
  ``/`` (then the colon belongs to a registry port). A tag is 1-128 characters
  of ``[A-Za-z0-9_.-]``; ggcr does not require the first one to be a word
  character as the distribution grammar does.
* The first ``/``-separated part is the registry only if it contains ``.`` or
  ``:`` or is ``localhost``; otherwise the registry is ``index.docker.io``.
  ``docker.io`` becomes ``index.docker.io``, and a one-part Docker Hub name gets
  ``library/``.
* The repository is 1-255 characters of ``[a-z0-9_./-]``. Like ggcr, the parser
  does not check the shape of path components (``a//b``, ``a/``, ``-a`` and
  ``a..b`` parse).
* The registry must be an RFC 3986 authority as Go's ``url.Parse`` reads it.

Where lockresolve is stricter than ggcr (only for registries no client could
ever reach): characters Go allows in a URL host that no host name has
(``$ ( ) < > ! & ' * + , ; = ~ "``, which is what template placeholders are
made of), a bracketed host that is not an IPv6 address, more than one colon
outside brackets, an empty host before a port, and ports above 65535. ggcr HEAD, not kbld v0.42.0's
v0.19.1, is followed on three points: ``localhost/x`` names the registry
``localhost``, one-character repositories parse, and ``repo:`` (empty tag) is
an error.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Final

from lockresolve.errors import InvalidReferenceError

__all__ = [
    "DEFAULT_REGISTRY",
    "DEFAULT_TAG",
    "Digest",
    "Reference",
    "is_insecure_default",
]

DEFAULT_REGISTRY: Final = "index.docker.io"
DEFAULT_TAG: Final = "latest"
_REGISTRY_ALIAS: Final = "docker.io"
_DEFAULT_NAMESPACE: Final = "library"

_REPOSITORY_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-./")
_TAG_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_MAX_REPOSITORY: Final = 255
_MAX_TAG: Final = 128

# go-digest's registered algorithms and the length of their hex encoding.
_DIGEST_HEX_LENGTH: Final = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_GRAMMAR: Final = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX: Final = frozenset("0123456789abcdef")

# Allowed in a registry host besides ASCII letters and digits (see the module doc).
_HOST_PUNCTUATION: Final = frozenset("-._:[]")
_TEMPLATE_MARKERS: Final = ("{{", "}}", "${", "$(", "<", ">")

_RFC1918: Final = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


@dataclass(frozen=True)
class Digest:
    """A content digest ``algorithm:hex`` as go-digest validates it.

    ``parse`` accepts go-digest's registered algorithms (sha256, sha384,
    sha512) with exactly the right number of lower-case hex characters;
    image *references* accept only sha256, as ggcr's ``NewDigest`` does.
    """

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        problem = _digest_problem(self.algorithm, self.hex)
        if problem is not None:
            raise InvalidReferenceError(f"{self.algorithm}:{self.hex}", problem)

    @classmethod
    def parse(cls, s: str) -> Digest:
        """Parse ``algorithm:hex``; raises :class:`InvalidReferenceError` when invalid."""
        algorithm, sep, hex_ = s.partition(":")
        if not sep or not algorithm or not hex_:
            raise InvalidReferenceError(s, "a digest must look like sha256:<64 hex characters>")
        problem = _digest_problem(algorithm, hex_)
        if problem is not None:
            if algorithm not in _DIGEST_HEX_LENGTH and not _DIGEST_GRAMMAR.fullmatch(s):
                problem = "a digest must look like sha256:<64 hex characters>"
            raise InvalidReferenceError(s, problem)
        return cls(algorithm, hex_)

    @classmethod
    def sha256_of(cls, data: bytes) -> Digest:
        """The sha256 digest of ``data``."""
        return cls("sha256", hashlib.sha256(data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def _digest_problem(algorithm: str, hex_: str) -> str | None:
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        return f"unsupported digest algorithm {algorithm!r}"
    if len(hex_) != length:
        return f"a {algorithm} digest has {length} hex characters, not {len(hex_)}"
    if not set(hex_) <= _LOWER_HEX:
        return f"a {algorithm} digest is made of lower-case hex characters (0-9, a-f)"
    return None


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference.

    ``registry`` and ``repository`` are normalised (``index.docker.io``,
    ``library/`` for one-part Docker Hub names). ``tag`` is the tag as written,
    ``None`` when none was; ``digest`` likewise. ``original`` is the text that
    was parsed (the normalised form when built directly) and takes no part in
    equality: two references are equal when they name the same thing the same
    way. Build references with :meth:`parse`; the constructor does not validate.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None
    original: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.original:
            object.__setattr__(self, "original", str(self))

    @classmethod
    def parse(cls, s: str) -> Reference:
        """Parse ``s`` as ggcr's ``ParseReference`` does.

        Raises :class:`InvalidReferenceError` (and nothing else) for any text
        that is not a reference, with the reason.
        """
        if not isinstance(s, str):
            raise InvalidReferenceError(repr(s), "an image reference must be a string")
        try:
            if s == "":
                raise _Bad("empty reference")
            return _parse(s)
        except _Bad as bad:
            raise InvalidReferenceError(s, _explain(s, bad.reason)) from None

    # -- derived values -------------------------------------------------

    @property
    def context(self) -> str:
        """``registry/repository``."""
        return f"{self.registry}/{self.repository}"

    @property
    def tag_written(self) -> bool:
        """Whether the reference spelled out a tag (``nginx`` does not; ``nginx:latest`` does)."""
        return self.tag is not None

    @property
    def is_digest(self) -> bool:
        return self.digest is not None

    @property
    def effective_tag(self) -> str | None:
        """The tag, or ``latest`` when neither a tag nor a digest was given."""
        if self.tag is not None:
            return self.tag
        return DEFAULT_TAG if self.digest is None else None

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/``: the digest when there is one, else the (effective) tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag if self.tag is not None else DEFAULT_TAG

    def scope(self, action: str = "pull") -> str:
        """The token scope for ``action`` on this repository."""
        return f"repository:{self.repository}:{action}"

    def __str__(self) -> str:
        if self.digest is not None:
            return f"{self.context}@{self.digest}"
        return f"{self.context}:{self.identifier}"

    # -- derived references ---------------------------------------------

    def normalized(self) -> Reference:
        """What ``Reference.parse(str(self))`` gives: the tag spelled out, or dropped for a digest."""
        if self.digest is not None:
            new = replace(self, tag=None)
        else:
            new = replace(self, tag=self.identifier)
        return replace(new, original=str(new))

    def with_digest(self, digest: Digest | str) -> Reference:
        """This repository at ``digest`` (sha256 only). The tag is kept but not printed."""
        d = digest if isinstance(digest, Digest) else Digest.parse(digest)
        if d.algorithm != "sha256":
            raise InvalidReferenceError(str(d), "image references take sha256 digests only")
        new = replace(self, digest=d)
        return replace(new, original=str(new))

    def with_tag(self, tag: str) -> Reference:
        """This repository at ``tag``; any digest is dropped."""
        try:
            _check_tag(tag)
        except _Bad as bad:
            raise InvalidReferenceError(f"{self.context}:{tag}", bad.reason) from None
        new = replace(self, tag=tag, digest=None)
        return replace(new, original=str(new))


def is_insecure_default(registry: str) -> bool:
    """Whether ``registry`` may be reached over plain http without ``--registry-insecure``.

    True for ``localhost`` and ``*.localhost``, ``*.local``, loopback addresses
    (127.0.0.0/8, ``::1``) and RFC 1918 IPv4 addresses, each with or without a
    port. This covers everything ggcr's ``Registry.Scheme()`` sends to http at
    v0.19.1 (what kbld v0.42.0 and imgpkg v0.42 use: it still had ``.local``)
    and at HEAD (``.localhost``), and widens 127.0.0.1 to all of 127.0.0.0/8
    and ``localhost`` to the bare name without a port. Like ggcr's, callers
    try https first and fall back to http. This is the one such rule:
    :class:`~lockresolve.registry.transport.TransportPolicy` applies it.
    """
    host = _strip_port(registry).lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    return isinstance(ip, ipaddress.IPv4Address) and any(ip in net for net in _RFC1918)


# -- parsing ------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse(s: str) -> Reference:
    if "@" in s:
        return _parse_digest(s)
    base, tag = _split_tag(s)
    if tag is not None:
        _check_tag(tag)
    registry, repository = _parse_repository(base)
    return Reference(registry, repository, tag, None, s)


def _parse_digest(s: str) -> Reference:
    # ggcr NewDigest: exactly one '@', sha256 only, then the base as a tag
    # reference (the tag is validated, then dropped) or a plain repository.
    parts = s.split("@")
    if len(parts) != 2:
        raise _Bad("a digest reference has exactly one '@' (registry/repository@sha256:...)")
    base, dig = parts
    if not dig.startswith("sha256:"):
        algorithm = dig.partition(":")[0] if ":" in dig else dig
        if not dig:
            raise _Bad("missing digest after '@'")
        raise _Bad(f"unsupported digest algorithm {algorithm!r} (only sha256 is accepted)")
    problem = _digest_problem("sha256", dig[len("sha256:") :])
    if problem is not None:
        raise _Bad(f"bad digest: {problem}")
    digest = Digest("sha256", dig[len("sha256:") :])
    base_no_tag, tag = _split_tag(base)
    if tag is not None:
        _check_tag(tag)
    registry, repository = _parse_repository(base_no_tag)
    return Reference(registry, repository, tag, digest, s)


def _split_tag(name: str) -> tuple[str, str | None]:
    # The text after the last ':' is a tag unless it holds a '/', in which case
    # the colon separates a registry from its port.
    base, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, None
    if tag == "":
        raise _Bad("missing tag after ':'")
    return base, tag


def _check_tag(tag: str) -> None:
    if not 1 <= len(tag) <= _MAX_TAG:
        raise _Bad(f"bad tag: a tag has 1 to {_MAX_TAG} characters, this one {len(tag)}")
    bad = _first_outside(tag, _TAG_CHARS)
    if bad is not None:
        raise _Bad(f"bad tag {tag!r}: {bad!r} is not allowed (letters, digits, '_', '.', '-')")


def _parse_repository(name: str) -> tuple[str, str]:
    if name == "":
        raise _Bad("a repository name must be given")
    registry = ""
    repository = name
    first, sep, rest = name.partition("/")
    if sep and (first == "localhost" or "." in first or ":" in first):
        registry, repository = first, rest
    _check_repository(repository)
    registry = _check_registry(registry)
    if registry == "" or registry == _REGISTRY_ALIAS:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"{_DEFAULT_NAMESPACE}/{repository}"
    return registry, repository


def _check_repository(repository: str) -> None:
    if not 1 <= len(repository) <= _MAX_REPOSITORY:
        raise _Bad(
            f"a repository has 1 to {_MAX_REPOSITORY} characters, this one {len(repository)}"
        )
    bad = _first_outside(repository, _REPOSITORY_CHARS)
    if bad is None:
        return
    if (
        bad.isascii()
        and bad.isupper()
        and _first_outside(repository.lower(), _REPOSITORY_CHARS) is None
    ):
        raise _Bad(f"repository must be lowercase: {repository!r}")
    raise _Bad(
        f"repository {repository!r} contains {bad!r}; only a-z, 0-9, '_', '.', '-' and '/' are allowed"
    )


def _check_registry(registry: str) -> str:
    """Validate a registry as Go's ``url.Parse("//" + name).Host == name`` does, a little stricter."""
    if registry == "":
        return registry
    for ch in registry:
        if ord(ch) < 0x20 or ord(ch) == 0x7F or ch.isspace():
            raise _Bad(f"registry {registry!r} contains whitespace or a control character")
        if ch.isascii() and not ch.isalnum() and ch not in _HOST_PUNCTUATION:
            raise _Bad(f"registry {registry!r} contains {ch!r}, which no host name has")
    if registry.startswith("["):
        end = registry.rfind("]")
        if end < 0:
            raise _Bad(f"registry {registry!r}: missing ']' after an IPv6 address")
        inner, port = registry[1:end], registry[end + 1 :]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise _Bad(
                f"registry {registry!r}: {inner!r} in brackets is not an IPv6 address"
            ) from None
        _check_port(registry, port)
        return registry
    if "[" in registry or "]" in registry:
        raise _Bad(f"registry {registry!r}: brackets may only enclose an IPv6 address")
    if registry.count(":") > 1:
        raise _Bad(f"registry {registry!r}: an IPv6 address must be written in brackets")
    host, sep, port = registry.partition(":")
    if sep:
        _check_port(registry, sep + port)
    if host == "":
        raise _Bad(f"registry {registry!r} has no host name")
    return registry


def _check_port(registry: str, colon_port: str) -> None:
    # Go's validOptionalPort: empty, or ':' followed by digits (none is fine).
    if colon_port == "":
        return
    digits = colon_port[1:]
    if colon_port[0] != ":" or not (digits == "" or (digits.isascii() and digits.isdigit())):
        raise _Bad(f"registry {registry!r}: invalid port {colon_port!r}")
    if digits and int(digits) > 65535:
        raise _Bad(f"registry {registry!r}: port {digits} is out of range")


def _first_outside(s: str, allowed: frozenset[str]) -> str | None:
    for ch in s:
        if ch not in allowed:
            return ch
    return None


def _explain(s: str, reason: str) -> str:
    stripped = s.strip()
    if stripped == "":
        return "empty reference" if s == "" else "blank reference"
    if any(m in s for m in _TEMPLATE_MARKERS) or stripped.startswith("$"):
        return (
            f"looks like an unrendered template or placeholder, not an image reference ({reason})"
        )
    return reason


def _strip_port(registry: str) -> str:
    if registry.startswith("["):
        end = registry.find("]")
        return registry[: end + 1] if end >= 0 else registry
    if registry.count(":") == 1:
        return registry.partition(":")[0]
    return registry
