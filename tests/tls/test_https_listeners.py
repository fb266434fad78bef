"""HTTPS listeners through the whole DataPlane on real TLS sockets: SNI selects the certificate and
the listener, a Host of another listener gets 421, backends see ``X-Forwarded-Proto: https``, a
reload swaps certificates without re-binding or failing a request, a handshake that never comes
is closed after ``handshake-timeout``."""

import asyncio

import msgspec
import pytest

from mirrorgate.dataplane.limits import Limits
from mirrorgate.ir.dump import table_to_builtins
from mirrorgate.ir.table import Certificate, HTTPListener, ListenerTLS
from mirrorgate.serve.config import StartupError
from mirrorgate.serve.gwsettings import Settings
from mirrorgate.serve.worker import FRAME, Frame, table_frame
from tests.support.certs import Pki
from tests.support.client import Conn, encode_request
from tests.support.waiting import until

from .gateway import TlsBackend, action, backend, certificate, https_table, listener, serving


def two_listeners(pki: Pki, port: int) -> tuple[tuple[HTTPListener, ...], tuple[Certificate, ...]]:
    foo = certificate(pki.leaf("foo.example.com"), "foo")
    wild = certificate(pki.leaf("*.example.com"), "wild")
    act = action(backend(port))
    return (listener("foo", "foo.example.com", (foo,), act), listener("wild", "*.example.com", (wild,), act)), (
        foo,
        wild,
    )


async def open_tls(port: int, pki: Pki, sni: str) -> Conn:
    return await Conn.open(port, ssl=pki.client_context(), server_hostname=sni)


def peer_names(conn: Conn) -> list[str]:
    cert = conn.writer.get_extra_info("ssl_object").getpeercert() or {}
    return [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]


async def get(conn: Conn, host: str, path: str = "/") -> int:
    await conn.send(encode_request("GET", path, host))
    return (await conn.read_response()).status


async def test_sni_selects_exact_then_wildcard_certificate_and_serves() -> None:
    pki = Pki()
    async with TlsBackend(None) as up:
        listeners, certs = two_listeners(pki, up.port)
        async with serving(https_table(listeners, certs)) as gw:
            port = gw.port(443)
            exact = await open_tls(port, pki, "foo.example.com")
            assert peer_names(exact) == ["foo.example.com"]
            assert await get(exact, "foo.example.com") == 200
            wild = await open_tls(port, pki, "bar.example.com")
            assert peer_names(wild) == ["*.example.com"]
            assert await get(wild, "bar.example.com") == 200
            for conn in (exact, wild):
                conn.writer.close()
    assert up.header(0, b"x-forwarded-proto") == b"https"
    assert up.header(1, b"x-forwarded-proto") == b"https"


async def test_host_of_another_listener_of_the_port_is_misdirected() -> None:
    pki = Pki()
    async with TlsBackend(None) as up:
        listeners, certs = two_listeners(pki, up.port)
        async with serving(https_table(listeners, certs)) as gw:
            conn = await open_tls(gw.port(443), pki, "bar.example.com")
            assert await get(conn, "foo.example.com") == 421
            assert await get(conn, "baz.example.com:443") == 200  # same listener, port ignored
            assert await get(conn, "other.test") == 404  # no listener of the port: not misdirected
            conn.writer.close()
    assert len(up.heads) == 1


async def test_reload_swaps_certificates_without_rebinding_or_failing_a_request() -> None:
    pki = Pki()
    async with TlsBackend(None) as up:
        old = certificate(pki.leaf("foo.example.com", "old.example.com"), "old")
        new = certificate(pki.leaf("foo.example.com", "new.example.com"), "new")
        act = action(backend(up.port))
        first = https_table((listener("foo", "foo.example.com", (old,), act),), (old,))
        second = https_table((listener("foo", "foo.example.com", (new,), act),), (new,))
        async with serving(first) as gw:
            port = gw.port(443)
            socket_before = gw.listeners[("127.0.0.1", 443)]
            conns = [await open_tls(port, pki, "foo.example.com") for _ in range(4)]
            statuses: list[int] = []

            async def loop(conn: Conn) -> None:
                for _ in range(30):
                    statuses.append(await get(conn, "foo.example.com"))

            running = [asyncio.create_task(loop(c)) for c in conns]
            for table in (second, first, second):
                await asyncio.sleep(0.01)
                await gw.apply(table)
            await asyncio.gather(*running)
            assert statuses == [200] * 120
            assert gw.listeners[("127.0.0.1", 443)] is socket_before
            assert "old.example.com" in peer_names(conns[0])  # open connections keep theirs
            fresh = await open_tls(port, pki, "foo.example.com")
            assert "new.example.com" in peer_names(fresh)
            assert await get(fresh, "foo.example.com") == 200
            for conn in (*conns, fresh):
                conn.writer.close()


async def test_handshake_that_never_comes_is_closed_after_the_timeout() -> None:
    pki = Pki()
    async with TlsBackend(None) as up:
        listeners, certs = two_listeners(pki, up.port)
        async with serving(https_table(listeners, certs), Limits(handshake_timeout=0.2)) as gw:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port(443))
            async with asyncio.timeout(5):
                assert await reader.read() == b""  # closed by the gateway, nothing sent
            writer.close()
            await until(lambda: not gw.state.connections and not gw.state.tasks)


async def test_http_turned_https_on_one_port_is_rebound_and_a_bad_certificate_changes_nothing() -> None:
    pki = Pki()
    async with TlsBackend(None) as up:
        cert = certificate(pki.leaf("foo.example.com"))
        act = action(backend(up.port))
        https = https_table((listener("foo", "foo.example.com", (cert,), act),), (cert,))
        plain_listener = msgspec.structs.replace(https.servers[0].listeners[0], tls=None)
        plain = msgspec.structs.replace(
            https, servers=(msgspec.structs.replace(https.servers[0], listeners=(plain_listener,)),), certificates=()
        )
        async with serving(plain) as gw:
            conn = await Conn.open(gw.port(443))
            assert await get(conn, "foo.example.com") == 200
            conn.writer.close()
            await gw.apply(https)
            tls = await open_tls(gw.port(443), pki, "foo.example.com")
            assert await get(tls, "foo.example.com") == 200
            bad = msgspec.structs.replace(cert, digest="sha256:bad", key_pem=pki.leaf("x.test").key.decode())
            bad_listener = msgspec.structs.replace(
                https.servers[0].listeners[0], tls=ListenerTLS(certificates=(bad.digest,))
            )
            broken = msgspec.structs.replace(
                https,
                servers=(msgspec.structs.replace(https.servers[0], listeners=(bad_listener,)),),
                certificates=(bad,),
            )
            with pytest.raises(StartupError, match="cannot be served"):
                await gw.apply(broken)
            assert gw.table is https
            assert await get(tls, "foo.example.com") == 200
            tls.writer.close()


def test_worker_frames_carry_the_pem_and_dumps_never_do() -> None:
    pki = Pki()
    cert = certificate(pki.leaf("foo.example.com"))
    table = https_table((listener("foo", "foo.example.com", (cert,), action(backend(1))),), (cert,))
    frame = table_frame(table, Settings())
    assert msgspec.json.decode(frame[FRAME.size :], type=Frame).table == table
    dumped = msgspec.json.encode(table_to_builtins(table))
    assert b"PRIVATE KEY" not in dumped
    assert b"BEGIN CERTIFICATE" not in dumped
    assert cert.digest.encode() in dumped
