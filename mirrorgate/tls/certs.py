"""A ``kubernetes.io/tls`` Secret's ``tls.crt`` / ``tls.key`` turned into a validated certificate and key.

Rules:
- ``tls.crt`` is a PEM chain, leaf first; every block must parse. ``tls.key`` is one unencrypted PEM
  private key (PKCS#8, PKCS#1 RSA or SEC1 EC). The leaf's key must be RSA or ECDSA, and the key must
  match it: OpenSSL loads the pair into a scratch context, which is also what proves it usable.
  Every failure is an ``InvalidCertificate`` whose message names the field and the fault
  ("tls.key does not match tls.crt"); the translator turns it into the listener condition
  ``ResolvedRefs=False`` with reason ``InvalidCertificateRef`` (Gateway API ``certificateRefs``).
- An expired or not-yet-valid certificate is NOT an invalid reference: the Secret's data is
  well-formed, renewal (cert-manager) usually lands moments later, and refusing it would take a
  whole listener down where serving it only makes strict clients fail their own check. It is
  reported as a warning (``warnings()``) so status and logs say so.
- Host names come from the leaf's DNS subject alternative names only, lower-cased; the subject
  common name is never used (RFC 6125 section 6.4.4: clients ignore it when SANs exist, and
  modern ones ignore it always).
- The private key lives only in a ``PrivateKey``, whose ``repr``/``str`` say "redacted" and which
  refuses to be pickled or copied; code that needs the bytes calls ``reveal()``. ``digest`` (a
  SHA-256 over the certificate and the key) is what the routing table and its dump carry to
  name a certificate, never the key bytes.
- Only the standard library is used (``cryptography`` is a development dependency, not a runtime
  one); loading needs a path, so the PEM goes through ``keyfile.pem_path`` (an anonymous memory
  file on Linux, else a private temporary directory).
"""

import base64
import binascii
import hashlib
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn

from mirrorgate.errors import MirrorgateError
from mirrorgate.tls.keyfile import pem_path
from mirrorgate.tls.x509 import CertificateInfo, X509Error, parse_certificate

CERT_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)-----END CERTIFICATE-----", re.DOTALL)
KEY_BLOCK = re.compile(rb"-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----(.*?)-----END \1-----", re.DOTALL)


class InvalidCertificate(MirrorgateError):
    """A Secret's certificate or key cannot be served; the message names the field and the fault."""


class PrivateKey:
    """PEM private key bytes that never show up in a repr, a str, a log line, a pickle or a dump."""

    __slots__ = ("_pem",)

    def __init__(self, pem: bytes) -> None:
        self._pem = pem

    def reveal(self) -> bytes:
        return self._pem

    def __repr__(self) -> str:
        return "PrivateKey(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a PrivateKey cannot be pickled or copied")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PrivateKey) and other._pem == self._pem

    def __hash__(self) -> int:
        return hash(self._pem)


@dataclass(frozen=True, slots=True)
class CertifiedKey:
    """A certificate chain with its matching private key, validated and ready to load."""

    chain_pem: bytes = field(repr=False)  # the certificates, leaf first, as PEM blocks joined by newlines
    key: PrivateKey = field(repr=False)
    leaf: CertificateInfo
    digest: str  # "sha256:<hex>" over the chain and the key; names the pair in the table

    @property
    def dns_names(self) -> tuple[str, ...]:
        return self.leaf.dns_names

    @property
    def key_type(self) -> str:
        return self.leaf.key_type

    def warnings(self, now: datetime | None = None) -> list[str]:
        """What is served anyway but worth saying: an expired or not-yet-valid certificate, no DNS name."""
        now = now or datetime.now(UTC)
        found = []
        if now > self.leaf.not_after:
            found.append(f"tls.crt: certificate expired at {self.leaf.not_after.isoformat()}")
        if now < self.leaf.not_before:
            found.append(f"tls.crt: certificate not valid before {self.leaf.not_before.isoformat()}")
        if not self.leaf.dns_names:
            found.append("tls.crt: certificate has no DNS subject alternative name")
        return found

    def load_into(self, context: ssl.SSLContext) -> None:
        """Add this pair to ``context`` (one slot per key type: an RSA and an ECDSA pair can share it)."""
        with pem_path(self.key.reveal() + b"\n" + self.chain_pem) as path:
            context.load_cert_chain(path, password=refuse_password)


def refuse_password() -> NoReturn:
    raise InvalidCertificate("tls.key is encrypted (a kubernetes.io/tls Secret holds an unencrypted key)")


def parse_tls_secret(crt: bytes, key: bytes) -> CertifiedKey:
    """Validate a Secret's ``tls.crt`` and ``tls.key``; raise ``InvalidCertificate`` saying what is wrong."""
    blocks = certificate_blocks(crt)
    leaf = parse_leaf(blocks)
    key_pem = private_key_block(key)
    chain_pem = b"\n".join(pem_block(der) for der in blocks)
    digest = hashlib.sha256(chain_pem + b"\0" + key_pem).hexdigest()
    pair = CertifiedKey(chain_pem, PrivateKey(key_pem), leaf, f"sha256:{digest}")
    check_pair(pair)
    return pair


def certificate_blocks(crt: bytes) -> list[bytes]:
    bodies = CERT_BLOCK.findall(crt)
    if not bodies:
        raise InvalidCertificate("tls.crt: no PEM certificate")
    ders = []
    for index, body in enumerate(bodies):
        try:
            ders.append(base64.b64decode(b"".join(body.split()), validate=True))
        except binascii.Error:
            raise InvalidCertificate(f"tls.crt: certificate {index + 1} is not valid base64") from None
    return ders


def parse_leaf(blocks: Sequence[bytes]) -> CertificateInfo:
    infos = []
    for index, der in enumerate(blocks):
        try:
            infos.append(parse_certificate(der))
        except X509Error as error:
            raise InvalidCertificate(f"tls.crt: certificate {index + 1}: {error}") from None
    if infos[0].key_type not in ("RSA", "ECDSA"):
        raise InvalidCertificate(
            f"tls.crt: unsupported key algorithm {infos[0].key_type} (RSA and ECDSA are supported)"
        )
    return infos[0]


def private_key_block(key: bytes) -> bytes:
    if b"ENCRYPTED" in key:
        refuse_password()
    match = KEY_BLOCK.search(key)
    if match is None:
        raise InvalidCertificate("tls.key: no PEM private key")
    return match.group(0)


def pem_block(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def check_pair(pair: CertifiedKey) -> None:
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        pair.load_into(scratch)
    except ssl.SSLError as error:
        raise InvalidCertificate(describe_load_error(error)) from None


def describe_load_error(error: ssl.SSLError) -> str:
    text = f"{error.reason or ''} {error}".upper()
    if "KEY_VALUES_MISMATCH" in text or "KEY VALUES MISMATCH" in text:
        return "tls.key does not match tls.crt"
    if "PEM" in text or "DECODER" in text or "ASN1" in text or "KEY" in text:
        return f"tls.key: unreadable private key ({error.reason or error})"
    return f"tls.crt: cannot be loaded ({error.reason or error})"
