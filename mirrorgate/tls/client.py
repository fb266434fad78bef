"""Client-side TLS to backends and mirror backends under a ``BackendTLSPolicy`` (gateway.networking.k8s.io/v1).

How the upstream pool uses it:
- The IR carries a ``BackendTls`` per backend reference (the CA bundle's PEM, the hostname, the
  subjectAltNames). The pool keys connections by ``(address, port, BackendTls)``: a plain and a TLS
  connection to one address, or two policies with different names, never share a connection.
- ``cache.get(settings)`` returns the ``ClientTls`` for those settings, built once (loading CAs
  costs milliseconds and, for the system store, about a megabyte), so every connection made with
  the same settings shares one ``SSLContext`` and can resume its sessions.
- Connect with ``loop.create_connection(..., **tls.connect_kwargs(), ssl_handshake_timeout=T)``; then
  ``tls.verify(ssl_object)`` (raises ``BackendTlsError`` when subjectAltNames are set and none
  matches: close the connection and answer 503, or count a mirror drop ``tls``); when the
  connection goes idle after a response (TLS 1.3 tickets arrive after the handshake, with the first
  reads), ``tls.remember(ssl_object)`` keeps its session, offered by the next new connection.

Rules:
- TLS 1.2 and 1.3 only, certificates always verified: against the policy's CA bundle
  (``validation.caCertificateRefs``, ConfigMap key ``ca.crt``) or the system store
  (``wellKnownCACertificates: System``). SNI is always ``hostname``.
- Without ``subjectAltNames``, OpenSSL checks ``hostname`` against the certificate's DNS SANs.
  With them, the hostname check is off and one of them must match instead: a ``Hostname`` entry
  against a DNS SAN (RFC 6125: a SAN wildcard covers one label), a ``URI`` entry equal to a URI SAN.
  OpenSSL's own check knows only DNS names and IP addresses, hence the check after the handshake.
- Sessions: ``ssl``'s asyncio path offers no ``session`` argument, so the context's ``wrap_bio``
  offers the last session it was given. One slot per context: with several endpoints behind one
  hostname, a session from one offered to another costs only the full handshake it would have done.
- ALPN offers ``http/1.1`` only.
"""

import ssl
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from mirrorgate.errors import ConnectError, MirrorgateError
from mirrorgate.tls.names import san_matches


class BackendTlsError(ConnectError):
    """The backend's certificate matches none of the policy's subjectAltNames (503)."""


class InvalidCaBundle(MirrorgateError):
    """A CA bundle that OpenSSL cannot load (the policy's ``ResolvedRefs`` reason ``InvalidCACertificateRef``)."""


@dataclass(frozen=True, slots=True)
class SubjectAltName:
    type: Literal["Hostname", "URI"]
    value: str


@dataclass(frozen=True, slots=True)
class BackendTls:
    """A BackendTLSPolicy's resolved settings; ``ca_pem`` None means the system CA store."""

    hostname: str
    ca_pem: str | None = None
    subject_alt_names: tuple[SubjectAltName, ...] = ()


class SessionContext(ssl.SSLContext):
    """A client context that offers its last remembered session to every new connection."""

    session: ssl.SSLSession | None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and not server_side:
            session = self.session
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def client_context(settings: BackendTls) -> SessionContext:
    context = SessionContext(ssl.PROTOCOL_TLS_CLIENT)
    context.session = None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(["http/1.1"])
    context.check_hostname = not settings.subject_alt_names
    context.verify_mode = ssl.CERT_REQUIRED
    if settings.ca_pem is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        load_ca(context, settings.ca_pem)
    return context


def load_ca(context: ssl.SSLContext, pem: str) -> None:
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise InvalidCaBundle("ca.crt: no PEM certificate")
    try:
        context.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError) as error:
        raise InvalidCaBundle(f"ca.crt: cannot be loaded ({getattr(error, 'reason', None) or error})") from None


def peer_names(certificate: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(DNS SANs lower-cased, URI SANs) of ``getpeercert()``'s dictionary."""
    sans = certificate.get("subjectAltName", ())
    return [v.lower() for k, v in sans if k == "DNS"], [v for k, v in sans if k == "URI"]


def sans_match(wanted: tuple[SubjectAltName, ...], certificate: dict[str, Any]) -> bool:
    dns, uris = peer_names(certificate)
    for san in wanted:
        if san.type == "URI" and san.value in uris:
            return True
        if san.type == "Hostname" and any(san_matches(pattern, san.value.lower()) for pattern in dns):
            return True
    return False


class ClientTls:
    """The context, SNI and after-handshake check for one set of ``BackendTls`` settings."""

    def __init__(self, settings: BackendTls) -> None:
        self.settings = settings
        self.context = client_context(settings)
        self.server_hostname = settings.hostname

    def connect_kwargs(self) -> dict[str, Any]:
        return {"ssl": self.context, "server_hostname": self.server_hostname}

    def verify(self, ssl_object: ssl.SSLObject | ssl.SSLSocket) -> None:
        """Raise ``BackendTlsError`` when subjectAltNames are set and the peer certificate has none of them."""
        wanted = self.settings.subject_alt_names
        if wanted and not sans_match(wanted, ssl_object.getpeercert() or {}):
            names = ", ".join(f"{s.type}={s.value}" for s in wanted)
            raise BackendTlsError(f"backend certificate matches none of the subjectAltNames {names}")

    def remember(self, ssl_object: ssl.SSLObject | ssl.SSLSocket) -> None:
        """Keep the connection's session for the next new connection (call once a response was read)."""
        session = ssl_object.session
        if session is not None:
            self.context.session = session


class ClientTlsCache:
    """``ClientTls`` by settings, least recently used first out beyond ``size`` entries."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.entries: OrderedDict[BackendTls, ClientTls] = OrderedDict()

    def get(self, settings: BackendTls) -> ClientTls:
        found = self.entries.get(settings)
        if found is None:
            found = self.entries[settings] = ClientTls(settings)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(settings)
        return found
