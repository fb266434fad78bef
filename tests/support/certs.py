"""Certificates made by tests: a CA (``trustme``), leaves for given names, RSA or ECDSA P-256,
expired ones, URI SANs, a key that does not match; and TLS servers and clients on loopback.

Everything is generated in memory; ``cryptography`` (a development dependency through trustme) is
used only where trustme cannot: a leaf with a URI SAN.
"""

import asyncio
import datetime as dt
import ssl
from dataclasses import dataclass

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mirrorgate.tls.certs import CertifiedKey, parse_tls_secret

KEY_TYPES = {"rsa": trustme.KeyType.RSA, "ecdsa": trustme.KeyType.ECDSA}
PAST = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Leaf:
    """A Secret's ``tls.crt`` (chain) and ``tls.key``."""

    crt: bytes
    key: bytes

    @property
    def pair(self) -> CertifiedKey:
        return parse_tls_secret(self.crt, self.key)


class Pki:
    """One test CA and the leaves it issues."""

    def __init__(self, key_type: str = "ecdsa") -> None:
        self.ca = trustme.CA(key_type=KEY_TYPES[key_type])

    @property
    def ca_pem(self) -> str:
        return self.ca.cert_pem.bytes().decode()

    def leaf(self, *names: str, key_type: str = "ecdsa", expired: bool = False) -> Leaf:
        window = {"not_before": PAST, "not_after": PAST + dt.timedelta(days=30)} if expired else {}
        cert = self.ca.issue_cert(*names, key_type=KEY_TYPES[key_type], **window)  # type: ignore[arg-type]
        return Leaf(b"".join(b.bytes() for b in cert.cert_chain_pems), cert.private_key_pem.bytes())

    def uri_leaf(self, uri: str, *dns: str) -> Leaf:
        """An ECDSA leaf whose SANs are ``uri`` (a URI SAN) and ``dns`` (DNS SANs)."""
        ca_key = serialization.load_pem_private_key(self.ca.private_key_pem.bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri), *map(x509.DNSName, dns)]
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "uri leaf")]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return Leaf(cert.public_bytes(serialization.Encoding.PEM), key_pem)

    def client_context(self, **versions: ssl.TLSVersion) -> ssl.SSLContext:
        """A client trusting this CA; ``minimum_version``/``maximum_version`` may be given."""
        context = ssl.create_default_context(cadata=self.ca_pem)
        for name, version in versions.items():
            setattr(context, name, version)
        return context


def mismatched(pki: Pki, *names: str) -> Leaf:
    """A certificate for ``names`` with the key of another certificate."""
    return Leaf(pki.leaf(*names).crt, pki.leaf(*names).key)


@dataclass
class Handshake:
    """What a client saw of one TLS connection."""

    names: list[str]  # the DNS SANs of the certificate the server presented
    version: str | None
    cipher: str | None
    ssl_object: ssl.SSLObject


async def handshake(
    port: int, context: ssl.SSLContext, server_hostname: str | None, check_hostname: bool = False
) -> Handshake:
    """Connect to ``port`` on loopback, handshake, read the peer certificate, close."""
    context.check_hostname = check_hostname and server_hostname is not None
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_hostname or None
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert() or {}
        names = [v for k, v in peer.get("subjectAltName", ()) if k == "DNS"]
        return Handshake(names, ssl_object.version(), (ssl_object.cipher() or (None,))[0], ssl_object)
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
        del reader


class TlsServer:
    """A loopback server on ``ssl_context``: per line received, it answers the listener the SNI chose."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self.ssl_context = ssl_context
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "TlsServer":
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from mirrorgate.tls.server import chosen_listener

        try:
            while await reader.readline():
                writer.write(f"{chosen_listener(writer.get_extra_info('ssl_object'))}\n".encode())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def memory_handshake(server: ssl.SSLContext, client: ssl.SSLContext, sni: str | None) -> BaseException | None:
    """Handshake in memory (two ``SSLObject`` over ``MemoryBIO`` pairs); the server side's error, if any."""
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, to_server, server_hostname=sni)
    server_side = server.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client_side), ("server", server_side)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                except ssl.SSLError as error:
                    if name == "server":
                        return error
            server_in.write(to_server.read())
            to_client.write(server_out.read())
        if all(done.values()):
            return None
    return TimeoutError("handshake did not finish")
