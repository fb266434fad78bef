"""Server-side TLS for one port: the HTTPS listeners sharing it, chosen per connection by SNI.

How the data plane uses it (one ``TlsPort`` per TLS port of an IR server):
- ``loop.create_server(factory, sock=..., ssl=port.context, ssl_handshake_timeout=T)``: ``context``
  never changes for the life of the socket, so a reload never reopens it. ``port.reload(listeners)``
  installs a new SNI table; a connection already accepted keeps the context it was switched to
  (OpenSSL reference-counts it), a new one gets the new certificates.
- After the handshake, ``chosen_listener(transport.get_extra_info("ssl_object"))`` is the name of
  the listener the SNI chose: the matcher restricts the connection's requests to that listener's
  routes, and ``port.misdirected(name, host)`` says when a request must be answered ``421
  Misdirected Request`` (RFC 9110 section 15.5.20; Gateway API conformance
  ``GatewayHTTPSListenerDetectMisdirectedRequests``): its Host selects another listener of the port.
- Requests on such a connection get ``X-Forwarded-Proto: https``.

Rules:
- Listener choice (Gateway API listener ``hostname``): an exact hostname beats the longest
  matching wildcard suffix (``*.example.com`` matches one or more labels before
  ``.example.com``, never ``example.com`` itself), which beats the catch-all (no hostname). No SNI,
  or an SNI no listener matches, gets the catch-all listener, else the first one; with
  ``reject_unknown_sni`` an unmatched SNI is refused with the ``unrecognized_name`` alert instead.
- Certificate choice within a listener: the first certificate whose DNS SANs match the SNI
  (RFC 6125: a SAN wildcard covers exactly one label), else the listener's first. Certificates with
  the same names and different key types (RSA and ECDSA) share one context, where OpenSSL picks by
  the client's signature algorithms.
- Every context: TLS 1.2 and 1.3 only; for TLS 1.2 the ECDHE + AEAD suites of Mozilla's
  "intermediate" profile (AES-GCM and CHACHA20-POLY1305 with forward secrecy; its DHE suites are
  left out: slow, and every client that matters has ECDHE); no renegotiation, no compression;
  ALPN ``http/1.1`` only (a client offering only ``h2`` proceeds without ALPN). Session tickets
  stay on: resumption skips the certificate signature, the most expensive step of a new connection.
  Ticket keys belong to the port's front context, so they survive a reload (never a worker restart,
  and workers do not share them).
- The SNI callback runs for every ClientHello (OpenSSL 1.1.1+ calls it with ``None`` without SNI) and
  does a dict lookup, a short scan of wildcard suffixes and a context switch; it never raises.
"""

import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mirrorgate.tls.certs import CertifiedKey
from mirrorgate.tls.names import listener_matches, san_matches

TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)


@dataclass(frozen=True, slots=True)
class ListenerTls:
    """One HTTPS listener of a port: its name, its hostname (None: any) and its certificates, in order."""

    name: str
    hostname: str | None
    certificates: tuple[CertifiedKey, ...]


class ListenerContext(ssl.SSLContext):
    """A context serving some certificates of one listener; remembers which listener."""

    listener: str
    names: tuple[str, ...]


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(["http/1.1"])
    return context


def listener_context(listener: str, pairs: Sequence[CertifiedKey]) -> ListenerContext:
    context = harden(ListenerContext(ssl.PROTOCOL_TLS_SERVER))
    assert isinstance(context, ListenerContext)
    context.listener = listener
    context.names = pairs[0].dns_names
    for pair in pairs:
        pair.load_into(context)
    return context


def group_by_names(certificates: Iterable[CertifiedKey]) -> list[list[CertifiedKey]]:
    """Certificates with the same DNS names and distinct key types share a group; order is kept."""
    groups: list[list[CertifiedKey]] = []
    for pair in certificates:
        home = next(
            (g for g in groups if g[0].dns_names == pair.dns_names and pair.key_type not in {p.key_type for p in g}),
            None,
        )
        if home is None:
            groups.append([pair])
        else:
            home.append(pair)
    return groups


class Listener:
    """A listener's contexts, and the choice among them for one SNI."""

    def __init__(self, tls: ListenerTls) -> None:
        if not tls.certificates:
            raise ValueError(f"listener {tls.name} has no certificate")
        self.name = tls.name
        self.hostname = tls.hostname.lower() if tls.hostname else None
        self.contexts = [listener_context(tls.name, group) for group in group_by_names(tls.certificates)]

    def context_for(self, server_name: str | None) -> ListenerContext:
        if server_name is not None:
            for context in self.contexts:
                if any(san_matches(pattern, server_name) for pattern in context.names):
                    return context
        return self.contexts[0]


class SniTable:
    """The listeners of one port, indexed for the most-specific-hostname choice."""

    def __init__(self, listeners: Sequence[ListenerTls]) -> None:
        if not listeners:
            raise ValueError("a TLS port needs at least one listener")
        built = [Listener(tls) for tls in listeners]
        self.exact = {lst.hostname: lst for lst in reversed(built) if lst.hostname and lst.hostname[0] != "*"}
        wildcards = [lst for lst in built if lst.hostname and lst.hostname[0] == "*"]
        self.wildcards = sorted(wildcards, key=lambda lst: -len(lst.hostname or ""))
        self.catch_all = next((lst for lst in built if lst.hostname is None), None)
        self.default = self.catch_all or built[0]

    def listener_for(self, name: str) -> Listener | None:
        """The most specific listener whose hostname matches ``name`` (lower-case), the catch-all, or None."""
        found = self.exact.get(name)
        if found is not None:
            return found
        for listener in self.wildcards:
            if listener_matches(listener.hostname or "", name):
                return listener
        return self.catch_all


class TlsPort:
    """The TLS side of one listening port: a stable front ``context`` and a swappable SNI table."""

    def __init__(self, listeners: Sequence[ListenerTls], *, reject_unknown_sni: bool = False) -> None:
        self.reject_unknown_sni = reject_unknown_sni
        self.table = SniTable(listeners)
        self.context = harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
        self.context.sni_callback = self.on_client_hello

    def reload(self, listeners: Sequence[ListenerTls]) -> None:
        """New certificates for new connections; accepted connections keep the context they have.

        Everything is built before the swap, so a bad certificate raises here and changes nothing."""
        self.table = SniTable(listeners)

    def select(self, server_name: str | None) -> ListenerContext | None:
        table = self.table
        if server_name is None:
            return table.default.context_for(None)
        name = server_name.lower()
        listener = table.listener_for(name)
        if listener is None:
            return None if self.reject_unknown_sni else table.default.context_for(name)
        return listener.context_for(name)

    def on_client_hello(
        self, ssl_object: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        chosen = self.select(server_name)
        if chosen is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        ssl_object.context = chosen
        return None

    def misdirected(self, chosen: str | None, host: str) -> bool:
        """True when ``host`` (no port, any case) selects another listener of this port than ``chosen``:
        the request must get 421. A Host no listener matches is not misdirected (it gets 404)."""
        listener = self.table.listener_for(host.lower().rstrip("."))
        return listener is not None and listener.name != chosen


def chosen_listener(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The listener the SNI chose for an accepted connection, once its handshake is done."""
    context = ssl_object.context if ssl_object is not None else None
    return context.listener if isinstance(context, ListenerContext) else None
