import dataclasses
import os
import pickle
import stat
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from mirrorgate.tls.certs import InvalidCertificate, PrivateKey, parse_tls_secret
from mirrorgate.tls.keyfile import memory_file, private_file
from mirrorgate.tls.x509 import GENERALIZED_TIME, UTC_TIME, X509Error, decode_time, parse_certificate
from tests.support.certs import Pki, mismatched


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.mark.parametrize(("key_type", "curve"), [("rsa", None), ("ecdsa", "P-256")])
def test_a_pair_parses_with_its_dns_names_and_key_type(pki: Pki, key_type: str, curve: str | None) -> None:
    pair = pki.leaf("a.example.com", "*.B.example.com", "10.0.0.1", key_type=key_type).pair
    assert pair.dns_names == ("a.example.com", "*.b.example.com")
    assert pair.key_type == key_type.upper()
    assert pair.leaf.curve == curve
    assert pair.leaf.ip_addresses == (bytes([10, 0, 0, 1]),)
    assert pair.warnings() == []
    assert pair.digest.startswith("sha256:")


def test_the_chain_keeps_every_certificate_leaf_first(pki: Pki) -> None:
    intermediate = pki.ca.create_child_ca()
    cert = intermediate.issue_cert("chain.example.com")
    crt = b"".join(b.bytes() for b in cert.cert_chain_pems)
    pair = parse_tls_secret(crt, cert.private_key_pem.bytes())
    assert pair.chain_pem.count(b"BEGIN CERTIFICATE") == 2
    assert pair.dns_names == ("chain.example.com",)


def test_the_common_name_is_never_a_host_name(pki: Pki) -> None:
    cert = pki.ca.issue_cert("san.example.com", common_name="cn.example.com")
    pair = parse_tls_secret(cert.cert_chain_pems[0].bytes(), cert.private_key_pem.bytes())
    assert pair.dns_names == ("san.example.com",)


def test_an_expired_certificate_is_served_with_a_warning(pki: Pki) -> None:
    pair = pki.leaf("old.example.com", expired=True).pair
    assert pair.warnings() == ["tls.crt: certificate expired at 2020-01-31T00:00:00+00:00"]
    assert pair.warnings(datetime(2019, 1, 1, tzinfo=UTC)) == [
        "tls.crt: certificate not valid before 2020-01-01T00:00:00+00:00"
    ]


def test_a_certificate_without_dns_names_is_warned_about(pki: Pki) -> None:
    assert pki.leaf("127.0.0.1").pair.warnings() == ["tls.crt: certificate has no DNS subject alternative name"]


def test_a_key_of_another_certificate_is_refused(pki: Pki) -> None:
    leaf = mismatched(pki, "a.example.com")
    with pytest.raises(InvalidCertificate, match=r"^tls.key does not match tls.crt$"):
        parse_tls_secret(leaf.crt, leaf.key)


@pytest.mark.parametrize(
    ("crt", "key", "message"),
    [
        (b"", None, "tls.crt: no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----\n", None, "tls.crt: certificate 1 is not valid"),
        (b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n", None, "tls.crt: certificate 1: "),
        (None, b"", "tls.key: no PEM private key"),
        (None, b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"),
        (None, b"-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n", "tls.key: unreadable"),
    ],
)
def test_broken_data_is_named(pki: Pki, crt: bytes | None, key: bytes | None, message: str) -> None:
    leaf = pki.leaf("a.example.com")
    with pytest.raises(InvalidCertificate, match=message):
        parse_tls_secret(leaf.crt if crt is None else crt, leaf.key if key is None else key)


def test_the_private_key_is_never_shown_or_pickled(pki: Pki) -> None:
    leaf = pki.leaf("a.example.com", key_type="rsa")
    pair = leaf.pair
    body = leaf.key.splitlines()[1].decode()
    for text in (repr(pair), str(pair), repr(pair.key), str(pair.key), f"{pair.key}", repr([pair])):
        assert body not in text
        assert "PRIVATE" not in text
    assert repr(pair.key) == "PrivateKey(<redacted>)"
    with pytest.raises(TypeError):
        pickle.dumps(pair.key)
    with pytest.raises(TypeError):
        msgspec.json.encode(pair)
    with pytest.raises(TypeError):
        dataclasses.asdict(pair)
    assert pair.key.reveal().startswith(b"-----BEGIN")
    assert PrivateKey(b"x") == PrivateKey(b"x")


def test_key_files_are_private_and_gone_afterwards() -> None:
    with private_file(b"secret") as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert Path(path).read_bytes() == b"secret"
    assert not os.path.exists(os.path.dirname(path))
    with memory_file(b"secret") as path:
        assert Path(path).read_bytes() == b"secret"
    assert not os.path.exists(path)


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x30\x85\x00\x00\x00\x00\x01", b"\x30\x03\x02\x01\x01", b"\x04\x00"])
def test_malformed_der_is_an_x509_error(der: bytes) -> None:
    with pytest.raises(X509Error):
        parse_certificate(der)


def test_an_ed25519_leaf_is_refused_by_name() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2000, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2049, 12, 31, tzinfo=UTC))
        .sign(key, None)
    )
    assert parse_certificate(cert.public_bytes(serialization.Encoding.DER)).not_after.year == 2049
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(InvalidCertificate, match=r"tls\.crt: unsupported key algorithm 1\.3\.101\.112"):
        parse_tls_secret(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def test_two_digit_years_from_50_are_the_1900s() -> None:
    assert decode_time(UTC_TIME, b"500101000000Z").year == 1950
    assert decode_time(UTC_TIME, b"491231235959Z").year == 2049
    assert decode_time(GENERALIZED_TIME, b"20500101000000Z").year == 2050
    with pytest.raises(X509Error, match="bad validity time"):
        decode_time(UTC_TIME, b"zz")
