"""The few X.509 fields mirrorgate needs, read from DER with the standard library only.

Rules:
- Only what certificate selection and validation use is read: the validity window, the subject
  alternative names (``dNSName``, ``uniformResourceIdentifier``, ``iPAddress``) and the public key
  algorithm (RSA, ECDSA with its named curve, anything else by its OID: ``certs`` refuses it on a leaf
  only, so an intermediate of another kind still loads). The signature is never checked here: OpenSSL
  checks the key pair when the certificate is loaded, and clients check the chain.
- The subject common name is never read: modern clients ignore it for host names (RFC 6125
  section 6.4.4, CA/Browser Forum baseline requirements), so it never makes a certificate match.
- Anything malformed raises ``X509Error`` with what was expected where; nothing else escapes.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

OID_SUBJECT_ALT_NAME = "2.5.29.17"
OID_RSA = "1.2.840.113549.1.1.1"
OID_EC = "1.2.840.10045.2.1"
CURVES = {"1.2.840.10045.3.1.7": "P-256", "1.3.132.0.34": "P-384", "1.3.132.0.35": "P-521"}

SEQUENCE = 0x30
OID = 0x06
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
OCTET_STRING = 0x04
BOOLEAN = 0x01
EXPLICIT_VERSION = 0xA0
EXPLICIT_EXTENSIONS = 0xA3
SAN_DNS = 0x82
SAN_URI = 0x86
SAN_IP = 0x87


class X509Error(ValueError):
    """The DER is not a certificate this module can read."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What mirrorgate reads of one certificate."""

    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]  # lower-cased, in certificate order
    uris: tuple[str, ...]
    ip_addresses: tuple[bytes, ...]
    key_type: str  # "RSA", "ECDSA", or the algorithm's object identifier (Ed25519: "1.3.101.112")
    curve: str | None  # "P-256", ... for ECDSA; None for RSA


def read_tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the element at ``at``."""
    if at + 2 > len(der):
        raise X509Error(f"truncated element at byte {at}")
    tag, first = der[at], der[at + 1]
    start = at + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(der):
            raise X509Error(f"bad length at byte {at}")
        length = int.from_bytes(der[start : start + count], "big")
        start += count
    end = start + length
    if end > len(der):
        raise X509Error(f"element at byte {at} runs past the end")
    return tag, start, end


def children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The elements inside a constructed value."""
    found = []
    at = start
    while at < end:
        tag, value_start, value_end = read_tlv(der, at)
        found.append((tag, value_start, value_end))
        at = value_end
    if at != end:
        raise X509Error(f"elements overrun their container at byte {start}")
    return found


def expect(element: tuple[int, int, int], tag: int, what: str) -> tuple[int, int, int]:
    if element[0] != tag:
        raise X509Error(f"{what}: expected tag 0x{tag:02x}, found 0x{element[0]:02x}")
    return element


def decode_oid(value: bytes) -> str:
    if not value:
        raise X509Error("empty object identifier")
    arcs = [min(value[0] // 40, 2), value[0] - 40 * min(value[0] // 40, 2)]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(number)
            number = 0
    return ".".join(map(str, arcs))


def decode_time(tag: int, value: bytes) -> datetime:
    """UTCTime's two-digit year means 19YY from 50 up, else 20YY (RFC 5280 section 4.1.2.5.1)."""
    text = value.decode("ascii", "replace")
    full = text
    if tag == UTC_TIME and text[:2].isdigit():
        full = ("19" if int(text[:2]) >= 50 else "20") + text
    try:
        return datetime.strptime(full, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise X509Error(f"bad validity time {text!r}") from None


def parse_certificate(der: bytes) -> CertificateInfo:
    """Read one DER certificate (RFC 5280 section 4.1)."""
    try:
        return _parse(der)
    except (IndexError, UnicodeDecodeError) as error:
        raise X509Error(f"malformed certificate ({error})") from None


def _parse(der: bytes) -> CertificateInfo:
    _, start, end = expect(read_tlv(der, 0), SEQUENCE, "Certificate")
    _, tbs_start, tbs_end = expect(children(der, start, end)[0], SEQUENCE, "tbsCertificate")
    fields = children(der, tbs_start, tbs_end)
    if fields and fields[0][0] == EXPLICIT_VERSION:
        fields = fields[1:]
    if len(fields) < 6:
        raise X509Error("tbsCertificate has too few fields")
    not_before, not_after = validity(der, fields[3])
    key_type, curve = public_key(der, fields[5])
    dns, uris, ips = subject_alt_names(der, fields[6:])
    return CertificateInfo(not_before, not_after, dns, uris, ips, key_type, curve)


def validity(der: bytes, element: tuple[int, int, int]) -> tuple[datetime, datetime]:
    _, start, end = expect(element, SEQUENCE, "validity")
    times = children(der, start, end)
    if len(times) != 2 or any(tag not in (UTC_TIME, GENERALIZED_TIME) for tag, _, _ in times):
        raise X509Error("validity: expected two times")
    return tuple(decode_time(tag, der[s:e]) for tag, s, e in times)  # type: ignore[return-value]


def public_key(der: bytes, element: tuple[int, int, int]) -> tuple[str, str | None]:
    _, start, end = expect(element, SEQUENCE, "subjectPublicKeyInfo")
    _, alg_start, alg_end = expect(children(der, start, end)[0], SEQUENCE, "algorithm")
    parts = children(der, alg_start, alg_end)
    algorithm = decode_oid(der[parts[0][1] : parts[0][2]])
    if algorithm == OID_RSA:
        return "RSA", None
    if algorithm == OID_EC and len(parts) > 1 and parts[1][0] == OID:
        curve_oid = decode_oid(der[parts[1][1] : parts[1][2]])
        return "ECDSA", CURVES.get(curve_oid, curve_oid)
    return algorithm, None


def subject_alt_names(
    der: bytes, rest: list[tuple[int, int, int]]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[bytes, ...]]:
    for tag, start, _ in rest:
        if tag == EXPLICIT_EXTENSIONS:
            _, seq_start, seq_end = expect(read_tlv(der, start), SEQUENCE, "extensions")
            for _, ext_start, ext_end in children(der, seq_start, seq_end):
                names = san_extension(der, children(der, ext_start, ext_end))
                if names is not None:
                    return names
    return (), (), ()


def san_extension(
    der: bytes, parts: list[tuple[int, int, int]]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[bytes, ...]] | None:
    if decode_oid(der[parts[0][1] : parts[0][2]]) != OID_SUBJECT_ALT_NAME:
        return None
    _, value_start, _ = expect(parts[-1], OCTET_STRING, "extnValue")
    _, start, end = expect(read_tlv(der, value_start), SEQUENCE, "GeneralNames")
    dns: list[str] = []
    uris: list[str] = []
    ips: list[bytes] = []
    for tag, s, e in children(der, start, end):
        if tag == SAN_DNS:
            dns.append(der[s:e].decode("ascii").lower())
        elif tag == SAN_URI:
            uris.append(der[s:e].decode("ascii"))
        elif tag == SAN_IP:
            ips.append(der[s:e])
    return tuple(dns), tuple(uris), tuple(ips)
