"""A throw-away PKI for the tests: a CA, server certificates, and token-signing certs.

Everything is written as PEM files in a folder the caller owns (normally a pytest tmp
folder). Keys are RSA 2048, because the token server signs RS256 and the distribution
registry is happy with RSA TLS keys too.

::

    ca = CertificateAuthority.create(tmp_path / "pki")
    server = ca.issue_server_cert(tmp_path / "pki", hosts=["127.0.0.1", "localhost"])
    ssl_ctx = ssl.create_default_context(cafile=ca.cert_path)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateAuthority",
    "IssuedCert",
    "SigningCert",
    "make_signing_cert",
]

_VALIDITY = dt.timedelta(days=30)
_BACKDATE = dt.timedelta(hours=1)
#: the token signer's file names, without .crt/.key
_SIGNER = "token-signer"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey
) -> x509.CertificateBuilder:
    """What every certificate here starts with: names, key, serial and validity."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
    )


def _write_pem(
    directory: Path, basename: str, cert: x509.Certificate, key: rsa.RSAPrivateKey
) -> tuple[Path, Path]:
    """``<basename>.crt`` and ``<basename>.key`` (mode 0600) in ``directory``."""
    cert_path = directory / f"{basename}.crt"
    key_path = directory / f"{basename}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_key_pem(key))
    key_path.chmod(0o600)
    return cert_path, key_path


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A key usage extension with the named uses only."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lockresolve tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san_entries(hosts: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for host in hosts:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


@dataclass(frozen=True)
class _CertAndKey:
    """A certificate and its private key, both in memory and on disk."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    cert_path: Path
    key_path: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @classmethod
    def save(
        cls, directory: Path, basename: str, cert: x509.Certificate, key: rsa.RSAPrivateKey
    ) -> Self:
        """Write ``<basename>.crt`` and ``<basename>.key`` (mode 0600) in ``directory``."""
        cert_path, key_path = _write_pem(directory, basename, cert, key)
        return cls(cert=cert, key=key, cert_path=cert_path, key_path=key_path)


@dataclass(frozen=True)
class IssuedCert(_CertAndKey):
    """A certificate issued by a :class:`CertificateAuthority`, and its key."""


@dataclass(frozen=True)
class CertificateAuthority(_CertAndKey):
    """A self-signed CA that issues server certificates for loopback test servers."""

    @classmethod
    def create(cls, directory: Path, name: str = "lockresolve test CA") -> CertificateAuthority:
        directory.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        subject = _name(name)
        cert = (
            _builder(subject, subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls.save(directory, "ca", cert, key)

    def issue_server_cert(
        self,
        directory: Path,
        hosts: list[str] | None = None,
        basename: str = "server",
    ) -> IssuedCert:
        """A leaf certificate for ``hosts`` (default 127.0.0.1, ::1 and localhost)."""
        hosts = hosts or ["127.0.0.1", "::1", "localhost"]
        directory.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        cert = (
            _builder(_name(hosts[0]), self.cert.subject, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                _key_usage(digital_signature=True, key_encipherment=True),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return IssuedCert.save(directory, basename, cert, key)


def issue_client_cert(
    ca: CertificateAuthority, directory: Path, name: str = "lockresolve test client"
) -> IssuedCert:
    """A client certificate (``clientAuth``) signed by ``ca``, for mutual TLS."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    cert = (
        _builder(_name(name), ca.cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return IssuedCert.save(directory, name.replace(" ", "-"), cert, key)


@dataclass(frozen=True)
class SigningCert(_CertAndKey):
    """A self-signed certificate used to sign registry JWTs (the whole rootcertbundle)."""


def load_signing_cert(directory: Path) -> SigningCert:
    """The signing cert :func:`make_signing_cert` wrote to ``directory`` (another process
    may serve tokens with it)."""
    cert_path = directory / f"{_SIGNER}.crt"
    key_path = directory / f"{_SIGNER}.key"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return SigningCert(cert=cert, key=key, cert_path=cert_path, key_path=key_path)


def make_signing_cert(directory: Path, name: str = "lockresolve test token signer") -> SigningCert:
    """A self-signed cert + key; the registry's ``auth.token.rootcertbundle`` is its PEM.

    No extended key usage is set: Go's x509 verification then accepts it for any use.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    subject = _name(name)
    cert = (
        _builder(subject, subject, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return SigningCert.save(directory, _SIGNER, cert, key)
