"""The development CA: it signs the node certificates, which name loopback, serve both ends
of TLS and are valid when they should be; OpenSSL itself accepts them."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import cast

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import ConfigurationError
from services.devca import CA_DAYS, SERVER_DAYS, DevCA, load_ca, new_ca, valid_at

NOW = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def ca() -> DevCA:
    return new_ca(NOW)


def test_the_ca_signs_the_node_certificate(ca: DevCA) -> None:
    issued = ca.issue("liaison-node-1", NOW)
    issued.certificate.verify_directly_issued_by(ca.certificate)
    assert issued.certificate.issuer == ca.certificate.subject
    assert issued.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "liaison-node-1"
    )


def test_another_ca_did_not_sign_it(ca: DevCA) -> None:
    other = new_ca(NOW)
    issued = other.issue("liaison-node-1", NOW)
    # Same subject name, another key: only the signature tells them apart.
    assert issued.certificate.issuer == ca.certificate.subject
    with pytest.raises(InvalidSignature):
        issued.certificate.verify_directly_issued_by(ca.certificate)


def test_node_certificate_names_localhost_and_127_0_0_1(ca: DevCA) -> None:
    san = ca.issue("liaison-node-2", NOW).certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_node_certificate_key_usage(ca: DevCA) -> None:
    extensions = ca.issue("liaison-node-3", NOW).certificate.extensions
    basic = extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca is False
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    assert list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    assert extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier


def test_ca_may_sign_certificates_only(ca: DevCA) -> None:
    extensions = ca.certificate.extensions
    basic = extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is True
    assert basic.path_length == 0
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature


def test_validity(ca: DevCA) -> None:
    issued = ca.issue("liaison-node-1", NOW).certificate
    assert valid_at(ca.certificate, NOW)
    assert valid_at(issued, NOW)
    assert issued.not_valid_before_utc < NOW
    assert issued.not_valid_after_utc == NOW + dt.timedelta(days=SERVER_DAYS)
    assert ca.certificate.not_valid_after_utc == NOW + dt.timedelta(days=CA_DAYS)
    assert not valid_at(issued, NOW + dt.timedelta(days=SERVER_DAYS, seconds=1))
    assert not valid_at(issued, NOW - dt.timedelta(hours=1))


@settings(max_examples=20, deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=CA_DAYS - 1),
    days=st.integers(min_value=1, max_value=2 * CA_DAYS),
)
def test_a_node_certificate_never_outlives_its_ca(offset: int, days: int) -> None:
    ca = new_ca(NOW)
    when = NOW + dt.timedelta(days=offset)
    issued = ca.issue("liaison-node-1", when, days=days).certificate
    assert issued.not_valid_after_utc <= ca.certificate.not_valid_after_utc
    assert valid_at(issued, when)


def test_keys_are_unencrypted_pkcs8_p256(ca: DevCA) -> None:
    issued = ca.issue("liaison-node-1", NOW)
    assert issued.key_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert ca.key_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert isinstance(issued.key.curve, ec.SECP256R1)


def test_load_ca_round_trips(ca: DevCA) -> None:
    loaded = load_ca(ca.certificate_pem(), ca.key_pem())
    assert loaded.certificate == ca.certificate
    loaded.issue("liaison-node-1", NOW).certificate.verify_directly_issued_by(ca.certificate)


def test_load_ca_refuses_a_key_that_is_not_the_certificates(ca: DevCA) -> None:
    with pytest.raises(ConfigurationError, match="not the key of its certificate"):
        load_ca(ca.certificate_pem(), new_ca(NOW).key_pem())
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_ca(b"not a certificate", ca.key_pem())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_openssl_accepts_the_chain_and_the_name(ca: DevCA, tmp_path: Path, host: str) -> None:
    """A TLS handshake in memory: a client trusting only the CA, checking the host name,
    completes against a server presenting a node certificate."""
    now = dt.datetime.now(dt.UTC)
    fresh = new_ca(now)
    issued = fresh.issue("liaison-node-1", now)
    chain = tmp_path / "node.pem"
    chain.write_bytes(issued.key_pem() + issued.certificate_pem())
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain)
    client = ssl.create_default_context(cadata=fresh.certificate_pem().decode())
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    assert _handshake(client, server, host) == "liaison-node-1"


def test_openssl_refuses_another_name(ca: DevCA, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    fresh = new_ca(now)
    issued = fresh.issue("liaison-node-1", now)
    chain = tmp_path / "node.pem"
    chain.write_bytes(issued.key_pem() + issued.certificate_pem())
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain)
    client = ssl.create_default_context(cadata=fresh.certificate_pem().decode())
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client, server, "kafka.example.org")


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, host: str) -> str:
    """Run a TLS handshake between two in-memory ends; the server certificate's CN."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client_end = client.wrap_bio(c_in, c_out, server_hostname=host)
    server_end = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end, out_bio, peer_in in (
            ("client", client_end, c_out, s_in),
            ("server", server_end, s_out, c_in),
        ):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out_bio.read())
        if all(done.values()):
            break
    peer = client_end.getpeercert()
    assert peer is not None
    subject = cast("tuple[tuple[tuple[str, str], ...], ...]", peer["subject"])
    return next(value for rdn in subject for key, value in rdn if key == "commonName")
