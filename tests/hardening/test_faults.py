"""Fault injection: real misbehaving backends and real slow clients, over real sockets, through
the real in-process gateway. After each fault the gateway must hold no client connection, no
task and no upstream connection in use (``gateway.state.connections``/``tasks``/``pool``), and
must have logged no error.

The route ``/fault`` goes to a scripted backend (``Backend.scripted(handler)``) with a 1 s
``backendRequest`` timeout, ``/stream`` to the same backend without a timeout; everything else
goes to the recording backend of ``Harness``. Nothing asserts on time: waits are bounded and only
fail the test when exceeded.
"""

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Protocol, cast

import pytest

from mirrorgate.dataplane.limits import Limits
from mirrorgate.dataplane.protocol import SLICE, HttpProtocol
from tests.hardening.conftest import Harness, HarnessFactory
from tests.support.backends import Backend, Handler, answer_once, free_port, header_flood, read_head
from tests.support.client import WAIT, Conn, parse_head
from tests.support.manifests import service_docs
from tests.support.waiting import until

FAULT_RULE = """  - matches: [{path: {type: PathPrefix, value: /fault}}]
    timeouts: {backendRequest: 1s}
    backendRefs: [{name: fault, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /stream}}]
    backendRefs: [{name: fault, port: 8080}]
"""


class FaultFactory(Protocol):
    def __call__(self, handler: Handler, *, limits: Limits | None = None) -> Awaitable[Harness]: ...


@pytest.fixture
async def with_fault(make_harness: HarnessFactory) -> AsyncIterator[FaultFactory]:
    backends: list[Backend] = []

    async def make(handler: Handler, *, limits: Limits | None = None) -> Harness:
        backend = await Backend.scripted(handler).start()
        backends.append(backend)
        return await make_harness(extra_rules=FAULT_RULE, extra_docs=service_docs("fault", backend.port), limits=limits)

    yield make
    for b in backends:
        await b.close()


async def assert_no_leaks(h: Harness) -> None:
    """Bounded wait until the gateway holds nothing, then the exact counts (tasks, connections, pool)."""
    st = h.gateway.state
    async with asyncio.timeout(WAIT):
        await st.no_connections.wait()
    try:  # tasks end and connections return on later loop turns
        await until(lambda: not st.tasks and "in_use=0 " in repr(st.pool))
    except AssertionError:
        pass  # what is left is reported next
    assert (len(st.connections), len(st.tasks)) == (0, 0)
    assert "in_use=0 " in repr(st.pool)
    assert "waiting=0" in repr(st.pool)
    assert h.log.errors() == []


async def one(h: Harness, target: str = "/fault") -> tuple[int | None, bool]:
    """One request on a fresh connection: (status or None, connection closed by the gateway)."""
    client = await Conn.open(h.port)
    try:
        await client.send(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        reply = await client.read_reply()
        if reply is None:
            return None, True
        await client.send(b"GET /probe HTTP/1.1\r\nHost: a\r\n\r\n")
        return reply.status, await client.read_reply() is None
    finally:
        await client.close()


# --- malformed responses --------------------------------------------------------------------------


BAD_RESPONSES = {
    "invalid-status-line": b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "http09-style-body": b"<html>hello</html>\r\n\r\n",
    "cl-and-te": b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-content-lengths": b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
    "bad-content-length": b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
    "space-before-colon": b"HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n",
    "nul-in-header": b"HTTP/1.1 200 OK\r\nx-a: 1\x002\r\ncontent-length: 0\r\n\r\n",
    "http2-version": b"HTTP/2.0 200 OK\r\ncontent-length: 0\r\n\r\n",
    "http09-version": b"HTTP/0.9 200 OK\r\ncontent-length: 0\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(BAD_RESPONSES))
async def test_malformed_response_is_502(with_fault: FaultFactory, case: str) -> None:
    h = await with_fault(answer_once(BAD_RESPONSES[case]))
    status, closed = await one(h)
    assert (status, closed) == (502, False)
    await assert_no_leaks(h)


async def test_backend_closes_before_responding_is_502(with_fault: FaultFactory) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)

    h = await with_fault(handler)
    assert await one(h) == (502, False)
    await assert_no_leaks(h)


async def test_backend_reset_is_502(with_fault: FaultFactory) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST

    h = await with_fault(handler)
    assert await one(h) == (502, False)
    await assert_no_leaks(h)


async def test_refused_is_503(make_harness: HarnessFactory) -> None:
    h = await make_harness(extra_rules=FAULT_RULE, extra_docs=service_docs("fault", free_port()))
    assert await one(h) == (503, False)
    await assert_no_leaks(h)


async def test_backend_closes_mid_response_closes_the_client(with_fault: FaultFactory) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    h = await with_fault(handler)
    client = await Conn.open(h.port)
    try:
        await client.send(b"GET /fault HTTP/1.1\r\nHost: a\r\n\r\n")
        async with asyncio.timeout(WAIT):
            head = await client.reader.readuntil(b"\r\n\r\n")
            rest = await client.reader.read()  # to EOF: the gateway must close, not hang
    finally:
        await client.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert rest == b"x" * 10  # truncated: the client sees a short body and a closed connection
    await assert_no_leaks(h)


async def test_chunked_response_cut_mid_body_closes_the_client(with_fault: FaultFactory) -> None:
    """The head was relayed already: the only honest signal left is closing the client connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\nabc")
        await writer.drain()
        await asyncio.sleep(0)
        writer.close()

    h = await with_fault(handler)
    client = await Conn.open(h.port)
    try:
        await client.send(b"GET /fault HTTP/1.1\r\nHost: a\r\n\r\n")
        async with asyncio.timeout(WAIT):
            data = await client.reader.read(1 << 20)
            while chunk := await client.reader.read(1 << 20):
                data += chunk
    finally:
        await client.close()
    assert data.startswith(b"HTTP/1.1 200 ")
    body = data.partition(b"\r\n\r\n")[2]
    assert body == b"3\r\nabc\r\n"  # re-framed, then closed: never the last chunk of a cut body
    await assert_no_leaks(h)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"3\r\nabc\r\nzz\r\n", id="bad-chunk-size"),
        pytest.param(b"3\r\nabcXY", id="bad-chunk-end"),
    ],
)
async def test_head_and_error_in_one_read_is_502(with_fault: FaultFactory, body: bytes) -> None:
    """A head parsed in the same upstream read as the error was never written to the client: it
    is discarded, and the client gets a 502 on a connection that stays usable."""
    h = await with_fault(answer_once(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + body))
    assert await one(h) == (502, False)
    await assert_no_leaks(h)


async def test_interim_responses_are_swallowed(with_fault: FaultFactory) -> None:
    h = await with_fault(
        answer_once(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
        )
    )
    client = await Conn.open(h.port)
    try:
        await client.send(b"GET /fault HTTP/1.1\r\nHost: a\r\n\r\n")
        reply = await client.read_reply()
    finally:
        await client.close()
    assert reply is not None
    assert (reply.status, reply.body) == (200, b"hi")
    await assert_no_leaks(h)


async def test_trickling_backend_hits_the_backend_request_timeout(with_fault: FaultFactory) -> None:
    """One byte of the response head every 100 ms: the 1 s backendRequest timeout answers 504."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    h = await with_fault(handler)
    assert await one(h) == (504, False)
    await assert_no_leaks(h)


async def test_header_flood_is_502(with_fault: FaultFactory) -> None:
    """A response head of 4 MiB (64 Ki header lines): the gateway must refuse it, not buffer it."""
    h = await with_fault(header_flood)
    client = await Conn.open(h.port)
    try:
        await client.send(b"GET /fault HTTP/1.1\r\nHost: a\r\n\r\n")
        async with asyncio.timeout(WAIT):
            head = await client.reader.readuntil(b"\r\n")
    finally:
        await client.close()
    await assert_no_leaks(h)
    assert head.startswith(b"HTTP/1.1 502 ")


# --- slow clients -----------------------------------------------------------------------------------


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def gateway_buffered(h: Harness) -> int:
    """Bytes the gateway holds for its clients: their transports' write buffers."""
    total = 0
    for conn in h.gateway.state.connections:
        assert isinstance(conn, HttpProtocol)
        if conn.transport is not None and not conn.transport.is_closing():
            total += conn.transport.get_write_buffer_size()
    return total


async def test_large_response_to_slow_reader_keeps_memory_bounded(with_fault: FaultFactory) -> None:
    """A 48 MiB response streamed to a client that reads 64 KiB per millisecond or so (the backend
    writes far faster on loopback): the gateway's client write buffer stays under 2 MiB (it
    pauses the backend), and the test process's RSS (gateway, backend and client together) grows
    by less than 64 MiB."""
    size = 48 << 20
    block = b"z" * (1 << 20)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
        await reader.read()

    h = await with_fault(handler)
    reader, writer = await asyncio.open_connection("127.0.0.1", h.port, limit=1 << 16)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    before = rss_bytes()
    peak_rss = before
    peak_buffered = 0
    got = 0
    try:
        writer.write(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        async with asyncio.timeout(30):
            head = await reader.readuntil(b"\r\n\r\n")
            while got < size:
                chunk = await reader.read(1 << 16)
                assert chunk, "connection closed early"
                got += len(chunk)
                peak_buffered = max(peak_buffered, gateway_buffered(h))
                if got % (1 << 20) < len(chunk):  # about once per MiB
                    peak_rss = max(peak_rss, rss_bytes())
                await asyncio.sleep(0.001)  # a slow reader
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert got == size
    print(f"slow reader: peak gateway write buffer {peak_buffered} B, RSS growth {(peak_rss - before) >> 20} MiB")
    assert peak_buffered < 2 << 20, peak_buffered
    assert peak_rss - before < 64 << 20, (peak_rss - before) >> 20
    await assert_no_leaks(h)


async def test_slowloris_head_is_cut_off(make_harness: HarnessFactory) -> None:
    """A client sending its head one byte per 100 ms, with ``header_timeout`` 0.5 s (the head
    must be complete that long after its first byte). The connection must be closed before the
    head completes; nothing is forwarded."""
    harness = await make_harness(limits=Limits(header_timeout=0.5))
    head = b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"  # 25 s at 10 bytes/s
    client = await Conn.open(harness.port)
    reading = asyncio.ensure_future(client.reader.read())  # completes when the gateway closes
    sent = 0
    try:
        async with asyncio.timeout(WAIT):
            for byte in head:
                if reading.done():
                    break
                try:
                    client.writer.write(bytes([byte]))
                    await client.writer.drain()
                except OSError:
                    break
                sent += 1
                await asyncio.sleep(0.1)
            data = await reading
    finally:
        reading.cancel()
        await client.close()
    assert sent < len(head)
    assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
    await harness.settle()
    assert harness.primary.targets() == []
    await assert_no_leaks(harness)


async def test_slowloris_gets_408(make_harness: HarnessFactory) -> None:
    harness = await make_harness(limits=Limits(header_timeout=0.3))
    client = await Conn.open(harness.port)
    try:
        await client.send(b"GET /slow HTTP/1.1\r\nHost: a\r\n")
        async with asyncio.timeout(WAIT):
            data = await client.reader.read()
    finally:
        await client.close()
    assert data.startswith(b"HTTP/1.1 408 ")


async def test_client_gone_mid_upload_releases_everything(with_fault: FaultFactory) -> None:
    """A client that declares a 1 GB body, sends 1 MiB and vanishes: nothing is left behind."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await reader.read()

    h = await with_fault(handler)
    client = await Conn.open(h.port)
    await client.send(b"POST /fault HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\n" + b"u" * (1 << 20))
    client.writer.transport.abort()
    await assert_no_leaks(h)


async def test_slow_body_is_cut_off(with_fault: FaultFactory) -> None:
    """Head complete, then a body byte every 100 ms (10 B/s), with ``body_timeout`` 0.3 s and
    ``min_body_rate`` 500 B/s: the gateway gives up on the client with a 408 and closes the
    connection (R.U.D.Y.), and releases the upstream connection. The client keeps writing until
    the answer arrives, so the close may find it writing: what the gateway sent is still read."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    h = await with_fault(handler, limits=Limits(body_timeout=0.3))
    async with await Conn.open(h.port) as client:
        await client.send(b"POST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
        received = asyncio.create_task(client.read_until_closed())
        async with asyncio.timeout(WAIT):
            while not received.done():
                await client.send(b"b")
                await asyncio.wait([received], timeout=0.1)
        answer = await received
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert parse_head(answer[: answer.index(b"\r\n\r\n") + 4]).header("connection") == "close", answer
    await assert_no_leaks(h)


async def test_pipelined_flood_is_bounded(harness: Harness) -> None:
    """256 KiB of minimal pipelined requests sent at once by a client that never reads: the
    gateway serves them in order, but stops parsing at the first slice boundary once
    ``max_pipelined`` requests are queued; the rest stays unparsed bytes until the queue drains."""
    req = b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n"
    client = await Conn.open(harness.port)
    try:
        client.writer.write(req * ((256 << 10) // len(req)))
        await harness.primary.wait_for(lambda: len(harness.primary.seen) >= 50)
        queued = max(len(cast(HttpProtocol, conn).queue) for conn in harness.gateway.state.connections)
    finally:
        client.writer.transport.abort()
        await client.close()
    assert queued <= Limits().max_pipelined + SLICE // len(req), queued


async def test_pipelined_burst_is_answered_in_order(harness: Harness) -> None:
    """500 pipelined requests in one write (far more than ``max_pipelined``, and parsed in slices):
    every one is answered, in order, and the connection stays open."""
    count = 500
    client = await Conn.open(harness.port)
    try:
        client.writer.write(b"".join(b"GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(count)))
        statuses = []
        for _ in range(count):
            reply = await client.read_reply()
            assert reply is not None
            statuses.append(reply.status)
        await client.send(b"GET /last HTTP/1.1\r\nHost: a\r\n\r\n")
        last = await client.read_reply()
    finally:
        await client.close()
    assert statuses == [200] * count
    assert last is not None
    assert last.status == 200
    assert harness.primary.targets()[:count] == [f"GET /p{i}" for i in range(count)]
    await assert_no_leaks(harness)
