"""Routing tables with HTTPS listeners and TLS backends, built directly, and a TLS test backend.

``certificate(leaf)`` is the IR ``Certificate`` of a test leaf; ``https_table(...)`` one server on
port 443 whose listeners each carry their certificates and route ``/`` to one backend (plain,
TLS, ExternalName), with an optional mirror. ``TlsBackend`` answers every request 200 with its
name and records the heads it received.
"""

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from random import Random

from prometheus_client import CollectorRegistry

from mirrorgate.dataplane.limits import Limits
from mirrorgate.ir.table import (
    Action,
    Backend,
    BackendTLS,
    Certificate,
    ExternalName,
    Filters,
    HTTPListener,
    ListenerTLS,
    Match,
    Mirror,
    Route,
    RoutingTable,
    Server,
    TrustBundle,
    UpstreamAddress,
    VirtualHost,
)
from mirrorgate.mirror import MirrorConfig
from mirrorgate.serve.plane import DataPlane
from tests.support.certs import Leaf, Pki

LISTENER = "gateway/default/gw/listener/{}"


def certificate(leaf: Leaf, name: str = "tls") -> Certificate:
    pair = leaf.pair
    return Certificate(
        digest=pair.digest,
        source=f"secret/default/{name}",
        dns_names=pair.dns_names,
        chain_pem=leaf.crt.decode(),
        key_pem=leaf.key.decode(),
    )


def trust(pki: Pki) -> TrustBundle:
    return TrustBundle(digest="sha256:ca-" + str(id(pki)), source="configmap/default/ca", ca_pem=pki.ca_pem)


def action(backend: Backend, mirrors: tuple[Mirror, ...] = ()) -> Action:
    return Action(rule="httproute/default/r/rule/0", backends=(backend,), filters=Filters(mirrors=mirrors))


def listener(name: str, hostname: str, certs: tuple[Certificate, ...], act: Action) -> HTTPListener:
    route = Route(name=f"httproute/default/{name}/rule/0/match/0", match=Match(), action=act)
    return HTTPListener(
        name=LISTENER.format(name),
        hostname=hostname,
        port=443,
        virtual_hosts=(VirtualHost(hostname=hostname, routes=(route,)),),
        tls=ListenerTLS(certificates=tuple(c.digest for c in certs)),
    )


def backend(port: int, tls: BackendTLS | None = None, external: ExternalName | None = None) -> Backend:
    endpoints = () if external is not None else (UpstreamAddress(address="127.0.0.1", port=port),)
    return Backend(name="service/default/b:80", weight=1, endpoints=endpoints, tls=tls, external=external)


def mirror(port: int, tls: BackendTLS | None = None, external: ExternalName | None = None) -> Mirror:
    endpoints = () if external is not None else (UpstreamAddress(address="127.0.0.1", port=port),)
    return Mirror(
        name="httproute/default/r/rule/0/mirror/0",
        backend="service/default/m:80",
        ppm=1_000_000,
        endpoints=endpoints,
        tls=tls,
        external=external,
    )


def https_table(
    listeners: tuple[HTTPListener, ...], certs: tuple[Certificate, ...], bundles: tuple[TrustBundle, ...] = ()
) -> RoutingTable:
    return RoutingTable(
        servers=(Server(address="127.0.0.1", port=443, listeners=listeners),), certificates=certs, trust=bundles
    )


@asynccontextmanager
async def serving(table: RoutingTable, limits: Limits | None = None) -> AsyncIterator[DataPlane]:
    """The table served on an ephemeral port, with a mirror dispatcher (``gw.mirror``)."""
    gw = DataPlane(
        table,
        port_overrides={443: 0},
        rng=Random(1),
        limits=limits,
        registry=CollectorRegistry(),
        mirror_config=MirrorConfig(timeout=2.0),
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.shutdown(1.0)


class TlsBackend:
    """A TLS (or plain, ``context=None``) HTTP/1.1 backend answering 200 with its ``name``."""

    def __init__(self, context: ssl.SSLContext | None, name: str = "backend") -> None:
        self.context = context
        self.name = name
        self.heads: list[bytes] = []
        self.handshakes = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "TlsBackend":
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        body = self.name.encode()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass  # (cancelled: the test's loop is closing; nothing is waiting for this handler)
        finally:
            writer.close()

    def header(self, index: int, name: bytes) -> bytes | None:
        for line in self.heads[index].split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name:
                return value.strip()
        return None


def server_context(leaf: Leaf) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pair = leaf.pair
    pair.load_into(context)
    return context
