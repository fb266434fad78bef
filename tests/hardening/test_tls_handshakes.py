"""Hostile TLS clients against an HTTPS listener: garbage instead of a ClientHello, a handshake
that never finishes, a huge ClientHello, an SNI with odd bytes. Each connection is closed
cleanly, the gateway still serves, and ``mirrorgate_connections`` / ``mirrorgate_tasks`` go back
to zero. Every wait is bounded; nothing asserts on time."""

import asyncio
import os
import ssl
import struct
from collections.abc import AsyncIterator

import pytest

from mirrorgate.dataplane.limits import Limits
from mirrorgate.serve.plane import DataPlane
from tests.support.certs import Pki
from tests.support.client import WAIT, Conn, encode_request
from tests.support.waiting import until
from tests.tls.gateway import TlsBackend, action, backend, certificate, https_table, listener, serving

HOST = "app.example.com"


class Setup:
    def __init__(self, gw: DataPlane, pki: Pki) -> None:
        self.gw = gw
        self.pki = pki
        self.port = gw.port(443)

    async def still_serves(self) -> None:
        conn = await Conn.open(self.port, ssl=self.pki.client_context(), server_hostname=HOST)
        await conn.send(encode_request("GET", "/", HOST))
        assert (await conn.read_response()).status == 200
        conn.writer.close()

    async def back_to_zero(self) -> None:
        registry = self.gw.registry

        def zero() -> bool:
            return registry.get_sample_value("mirrorgate_connections") == 0.0 and not self.gw.state.tasks

        await until(zero, "connections and tasks back to zero")
        assert registry.get_sample_value("mirrorgate_tasks") == 0.0


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    pki = Pki()
    cert = certificate(pki.leaf(HOST))
    async with TlsBackend(None) as up:
        table = https_table((listener("app", HOST, (cert,), action(backend(up.port))),), (cert,))
        async with serving(table, Limits(handshake_timeout=0.3)) as gw:
            yield Setup(gw, pki)


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, read until the gateway closes (bounded)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        received = b""
        async with asyncio.timeout(WAIT):
            while chunk := await reader.read(65536):
                received += chunk
        return received
    except ConnectionError:
        return b""
    finally:
        writer.close()


def client_hello(sni: bytes, padding: int = 0) -> bytes:
    """A TLS 1.2 ClientHello record with ``sni`` in server_name and ``padding`` bytes of an extension."""
    name = struct.pack("!BH", 0, len(sni)) + sni
    sni_ext = struct.pack("!HHH", 0, len(name) + 2, len(name)) + name
    pad_ext = struct.pack("!HH", 21, padding) + b"\0" * padding if padding else b""
    groups = struct.pack("!HHHH", 10, 4, 2, 23)
    sigalgs = struct.pack("!HHHH", 13, 4, 2, 0x0403)
    extensions = sni_ext + groups + sigalgs + pad_ext
    body = b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack("!HH", 2, 0xC02B) + b"\x01\x00"
    body += struct.pack("!H", len(extensions)) + extensions
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    records = b""
    for i in range(0, len(handshake), 16384):
        fragment = handshake[i : i + 16384]
        records += b"\x16\x03\x01" + struct.pack("!H", len(fragment)) + fragment
    return records


async def test_garbage_instead_of_a_client_hello(setup: Setup) -> None:
    for garbage in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096), b"\x16\x03\x01\xff\xff" + b"\0" * 100):
        received = await raw_exchange(setup.port, garbage)
        assert not received.startswith(b"HTTP/")  # never parsed as a request
    await setup.still_serves()
    await setup.back_to_zero()


async def test_a_handshake_that_never_finishes_is_closed(setup: Setup) -> None:
    hello = client_hello(HOST.encode())
    reader, writer = await asyncio.open_connection("127.0.0.1", setup.port)
    writer.write(hello)  # then nothing: the server's flight is never answered
    async with asyncio.timeout(WAIT):
        while await reader.read(65536):
            pass
    writer.close()
    await setup.still_serves()
    await setup.back_to_zero()


async def test_a_huge_client_hello(setup: Setup) -> None:
    await raw_exchange(setup.port, client_hello(HOST.encode(), padding=60_000))
    await setup.still_serves()
    await setup.back_to_zero()


@pytest.mark.parametrize("sni", [b"\xff\xfe\x00bad", b"a" * 255, b"app.example.com.", b"APP.EXAMPLE.COM", b"..", b""])
async def test_sni_with_odd_bytes(setup: Setup, sni: bytes) -> None:
    received = await raw_exchange(setup.port, client_hello(sni))
    assert not received.startswith(b"HTTP/")
    await setup.still_serves()
    await setup.back_to_zero()


async def test_client_closing_mid_handshake(setup: Setup) -> None:
    for _ in range(20):
        try:
            conn = await Conn.open(setup.port, ssl=setup.pki.client_context(), server_hostname=HOST)
            conn.writer.transport.abort()
        except (ssl.SSLError, ConnectionError):
            pass
    await setup.still_serves()
    await setup.back_to_zero()
