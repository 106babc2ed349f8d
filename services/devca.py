"""The development certificate authority of ``liaison cluster``: a CA and one TLS
certificate per Kafka node, made with ``cryptography``, as PEM.

Only for the development cluster on loopback: every node certificate names
``localhost`` and ``127.0.0.1`` and serves both ends of TLS (clients check the node's
name; nodes present it to each other for mutual TLS, where its common name is the node's
principal). Keys are ECDSA P-256 in unencrypted PKCS#8, the PEM form Kafka's
``ssl.keystore.type=PEM`` reads; the files that hold them are the caller's to protect.

No I/O and no clock: ``now`` is a parameter, so validity is testable.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from schemas.errors import ConfigurationError

__all__ = [
    "CA_DAYS",
    "SERVER_DAYS",
    "DevCA",
    "IssuedCertificate",
    "load_ca",
    "new_ca",
    "valid_at",
]

CA_DAYS = 3650
"""How long the development CA is valid."""
SERVER_DAYS = 825
"""How long a node certificate is valid (``liaison cluster start`` reissues one that is
about to expire)."""
_BACKDATE = dt.timedelta(minutes=5)
"""Certificates start a little in the past, so a clock a moment behind still accepts them."""
_CA_NAME = "Liaison development CA"
_HOSTS = ("localhost",)
_ADDRESSES = ("127.0.0.1",)


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A private key and the certificate the CA issued for it."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificate_pem(self) -> bytes:
        """The certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True)
class DevCA:
    """The development CA: its key and self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def key_pem(self) -> bytes:
        """The CA's private key as unencrypted PKCS#8 PEM."""
        return IssuedCertificate(self.key, self.certificate).key_pem()

    def certificate_pem(self) -> bytes:
        """The CA certificate as PEM: what clients trust (``LIAISON_KAFKA_CA_FILE``)."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, common_name: str, now: dt.datetime, *, days: int = SERVER_DAYS
    ) -> IssuedCertificate:
        """A new key and a certificate for it, for TLS server and client use, naming
        ``localhost`` and ``127.0.0.1``, with subject ``CN=<common_name>``."""
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        not_after = min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        *(x509.DNSName(host) for host in _HOSTS),
                        *(x509.IPAddress(ipaddress.ip_address(a)) for a in _ADDRESSES),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return IssuedCertificate(key, certificate)


def new_ca(now: dt.datetime, *, days: int = CA_DAYS) -> DevCA:
    """A new development CA, valid from ``now`` for ``days``, that may sign only end
    certificates (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _CA_NAME)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return DevCA(key, certificate)


def load_ca(certificate_pem: bytes, key_pem: bytes) -> DevCA:
    """The CA from its PEM files; a key that is not the certificate's, or not P-256
    ECDSA, is a ``ConfigurationError``."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as exc:
        msg = f"the development CA's files cannot be read: {exc}"
        raise ConfigurationError(msg) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _spki(key.public_key()) != _spki(
        certificate.public_key()
    ):
        msg = "the development CA's key is not the key of its certificate"
        raise ConfigurationError(msg)
    return DevCA(key, certificate)


def _spki(public: CertificatePublicKeyTypes) -> bytes:
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def valid_at(certificate: x509.Certificate, when: dt.datetime) -> bool:
    """Whether ``certificate`` is inside its validity period at ``when``."""
    return certificate.not_valid_before_utc <= when <= certificate.not_valid_after_utc
