"""End-to-end behaviour that needs a scripted backend: stale-connection retry, malformed or cut
upstream responses, and flow control in both directions. Polls for steady state; never times."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import pytest

from mirrorgate.dataplane import flow
from mirrorgate.dataplane.protocol import HttpProtocol
from mirrorgate.serve.plane import DataPlane
from tests.dataplane.conftest import GatewayFactory
from tests.support.backends import Backend, Handler, read_head
from tests.support.client import Conn, encode_request, request
from tests.support.manifests import gateway_doc, route_doc, service_docs

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Start = Callable[[Handler], Awaitable[tuple[DataPlane, Backend]]]


@pytest.fixture
async def start(gateway_for: GatewayFactory) -> AsyncIterator[Start]:
    backends: list[Backend] = []

    async def go(handler: Handler) -> tuple[DataPlane, Backend]:
        backend = await Backend.scripted(handler).start()
        backends.append(backend)
        config = (
            gateway_doc() + service_docs("raw", backend.port) + route_doc("  - backendRefs: [{name: raw, port: 8080}]")
        )
        return await gateway_for(config), backend

    yield go
    for b in backends:
        await b.close()


async def settle(probe: Callable[[], int], rounds: int = 10, limit: int = 2000) -> int:
    """Poll ``probe`` until it returns the same value ``rounds`` times in a row (bounded)."""
    last, same = -1, 0
    for _ in range(limit):
        await asyncio.sleep(0.01)
        value = probe()
        same = same + 1 if value == last else 0
        last = value
        if same >= rounds:
            break
    return last


def client_protocol(gw: DataPlane) -> HttpProtocol:
    (proto,) = gw.state.connections
    return cast(HttpProtocol, proto)


async def test_stale_pooled_connection_is_retried_once_for_get(start: Start) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = backend.accepted == 1
        await read_head(reader)
        writer.write(OK)
        await writer.drain()
        await read_head(reader)
        if first:
            return  # close without answering: the race a keep-alive pool must survive
        writer.write(OK)
        await writer.drain()

    gw, backend = await start(handler)
    assert (await request(gw.port(80), path="/a")).status == 200
    assert repr(gw.state.pool) == "<Pool in_use=0 idle=1 waiting=0>"
    r = await request(gw.port(80), path="/b")
    assert r.status == 200
    assert backend.accepted == 2


async def test_stale_pooled_connection_is_not_retried_for_post(start: Start) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(OK)
        await writer.drain()
        await read_head(reader)

    gw, _ = await start(handler)
    assert (await request(gw.port(80), path="/a")).status == 200
    assert (await request(gw.port(80), method="POST", path="/b", body=b"abc")).status == 502


async def test_malformed_upstream_response_is_502(start: Start) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
        await writer.drain()
        await reader.read()

    gw, _ = await start(handler)
    assert (await request(gw.port(80))).status == 502


async def test_upstream_cut_mid_body_aborts_the_client(start: Start) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part")
        await writer.drain()

    gw, _ = await start(handler)
    conn = await Conn.open(gw.port(80))
    await conn.send(encode_request("GET", "/"))
    head = await conn.reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    rest = await conn.reader.read()
    assert rest == b"only-part"  # then EOF/reset: the client can tell the body is short
    await conn.close()


async def test_close_delimited_upstream_body_is_rechunked(start: Start) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof")
        await writer.drain()

    gw, _ = await start(handler)
    conn = await Conn.open(gw.port(80))
    await conn.send(encode_request("GET", "/x") + encode_request("GET", "/y"))
    r1 = await conn.read_response()
    assert (r1.status, r1.body, r1.header("transfer-encoding")) == (200, b"until-eof", "chunked")
    r2 = await conn.read_response()
    assert r2.body == b"until-eof"
    await conn.close()


async def test_slow_client_pauses_the_upstream(start: Start) -> None:
    total = 64 * 1024 * 1024
    sent = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        chunk = b"z" * 65536
        while sent < total:
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()

    gw, _ = await start(handler)
    conn = await Conn.open(gw.port(80))
    await conn.send(encode_request("GET", "/big"))
    await conn.reader.readuntil(b"\r\n\r\n")
    stalled_at = await settle(lambda: sent)
    assert stalled_at < total  # back-pressure reached the backend
    transport = client_protocol(gw).transport
    assert transport is not None
    assert transport.get_write_buffer_size() <= 1024 * 1024  # the gateway holds little
    received = 0
    while received < total:
        received += len(await conn.reader.read(1 << 20))
    assert received == total
    await conn.close()


async def test_slow_upstream_pauses_the_client(start: Start) -> None:
    total = 64 * 1024 * 1024
    go = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        assert b"content-length: %d" % total in head.lower()
        await go.wait()
        got = 0
        while got < total:
            got += len(await reader.read(1 << 20))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d" % (len(str(got)), got))
        await writer.drain()

    gw, _ = await start(handler)
    conn = await Conn.open(gw.port(80))
    sent = 0

    async def upload() -> None:
        nonlocal sent
        await conn.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % total)
        chunk = b"u" * 65536
        while sent < total:
            conn.writer.write(chunk)
            sent += len(chunk)
            await conn.writer.drain()

    uploader = asyncio.create_task(upload())
    stalled_at = await settle(lambda: sent)
    assert stalled_at < total
    proto = client_protocol(gw)
    assert proto.gate.reasons & flow.UPSTREAM_WRITE
    go.set()
    await uploader
    r = await conn.read_response()
    assert r.body == str(total).encode()
    await conn.close()
