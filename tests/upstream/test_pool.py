"""The upstream pool and connection against real loopback servers: reuse, limits, waiters,
expiry, loss of idle connections, closing, and response parsing edge cases."""

import asyncio
import socket
from collections.abc import AsyncIterator
from random import Random

import pytest

from mirrorgate.errors import ConnectError, PoolTimeout, UpstreamError, UpstreamProtocolError
from mirrorgate.upstream.connection import ResponseHead, State, UpstreamConnection
from mirrorgate.upstream.pool import Pool, PoolConfig
from tests.support.backends import Backend, answer_each, answer_once
from tests.support.waiting import until

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
async def server() -> AsyncIterator[tuple[Backend, tuple[str, int]]]:
    """A backend answering every request head with ``OK``."""
    backend = await Backend.scripted(answer_each(OK)).start()
    yield backend, ("127.0.0.1", backend.port)
    await backend.close()


class Sink:
    def __init__(self) -> None:
        self.head: ResponseHead | None = None
        self.body = bytearray()
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def on_response_head(self, head: ResponseHead) -> None:
        self.head = head

    def on_response_body(self, chunk: bytes) -> None:
        self.body += chunk

    def on_response_complete(self, reusable: bool) -> None:
        self.done.set_result(reusable)

    def on_upstream_failed(self, exc: UpstreamError) -> None:
        self.done.set_exception(exc)

    def on_upstream_write_paused(self, paused: bool) -> None:
        pass

    def flush(self) -> None:
        pass


async def roundtrip(conn: UpstreamConnection, method: bytes = b"GET") -> Sink:
    sink = Sink()
    conn.begin(sink, method == b"HEAD")
    conn.write(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    await sink.done
    return sink


async def test_reuse_and_repr(server: tuple[Backend, tuple[str, int]]) -> None:
    srv, key = server
    pool = Pool()
    conn, reused = await pool.acquire(key)
    assert not reused
    assert repr(pool) == "<Pool in_use=1 idle=0 waiting=0>"
    sink = await roundtrip(conn)
    assert sink.head is not None
    assert (sink.head.status, bytes(sink.body)) == (200, b"ok")
    pool.release(conn, True)
    assert repr(pool) == "<Pool in_use=0 idle=1 waiting=0>"
    again, reused = await pool.acquire(key)
    assert (again, reused) == (conn, True)
    pool.release(again, False)
    assert repr(pool) == "<Pool in_use=0 idle=0 waiting=0>"
    assert again.state == State.CLOSED
    assert srv.accepted == 1
    pool.close()


async def test_per_key_limit_queues_waiters_fifo(server: tuple[Backend, tuple[str, int]]) -> None:
    _, key = server
    pool = Pool(PoolConfig(limit_per_key=1))
    first, _ = await pool.acquire(key)
    waiters = [asyncio.create_task(pool.acquire(key)) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert repr(pool) == "<Pool in_use=1 idle=0 waiting=2>"
    await roundtrip(first)
    pool.release(first, True)
    second, reused = await waiters[0]
    assert (second, reused) == (first, True)
    assert not waiters[1].done()
    pool.release(second, False)
    third, reused = await waiters[1]
    assert not reused
    pool.release(third, False)
    assert repr(pool) == "<Pool in_use=0 idle=0 waiting=0>"
    pool.close()


async def test_pool_timeout_and_cancelled_waiter_leave_no_trace(server: tuple[Backend, tuple[str, int]]) -> None:
    _, key = server
    pool = Pool(PoolConfig(limit=1, pool_timeout=0.05))
    held, _ = await pool.acquire(key)
    with pytest.raises(PoolTimeout):
        await pool.acquire(key)
    waiter = asyncio.create_task(pool.acquire(("127.0.0.1", 1)))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert repr(pool) == "<Pool in_use=1 idle=0 waiting=0>"
    pool.release(held, False)
    pool.close()


async def test_connect_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pool = Pool()
    with pytest.raises(ConnectError):
        await pool.acquire(("127.0.0.1", port))
    assert repr(pool) == "<Pool in_use=0 idle=0 waiting=0>"


async def test_idle_connection_closed_by_upstream_is_dropped(server: tuple[Backend, tuple[str, int]]) -> None:
    srv, key = server
    pool = Pool()
    conn, _ = await pool.acquire(key)
    await roundtrip(conn)
    pool.release(conn, True)
    srv.drop_all()
    await until(lambda: repr(pool) == "<Pool in_use=0 idle=0 waiting=0>")
    fresh, reused = await pool.acquire(key)
    assert not reused
    assert fresh is not conn
    pool.release(fresh, False)


async def test_idle_expiry_and_max_idle(server: tuple[Backend, tuple[str, int]]) -> None:
    _, key = server
    pool = Pool(PoolConfig(idle_timeout=0.05, max_idle_per_key=1))
    a, _ = await pool.acquire(key)
    b, _ = await pool.acquire(key)
    await roundtrip(a)
    await roundtrip(b)
    pool.release(a, True)
    pool.release(b, True)
    assert repr(pool) == "<Pool in_use=0 idle=1 waiting=0>"
    await until(lambda: repr(pool) == "<Pool in_use=0 idle=0 waiting=0>")
    pool.close()


async def test_close_refuses_new_acquires(server: tuple[Backend, tuple[str, int]]) -> None:
    _, key = server
    pool = Pool()
    conn, _ = await pool.acquire(key)
    await roundtrip(conn)
    pool.release(conn, True)
    pool.close()
    assert conn.state == State.CLOSED
    with pytest.raises(ConnectError):
        await pool.acquire(key)


async def test_random_operations_keep_counters_consistent(server: tuple[Backend, tuple[str, int]]) -> None:
    _, key = server
    cfg = PoolConfig(limit=4, limit_per_key=3, max_idle_per_key=2)
    pool = Pool(cfg)
    rng = Random(5)
    held: list[UpstreamConnection] = []
    for _ in range(200):
        op = rng.random()
        if op < 0.5 and len(held) < cfg.limit_per_key:
            conn, _ = await pool.acquire(key)
            assert conn.state == State.ACTIVE
            assert conn not in held
            held.append(conn)
        elif held:
            conn = held.pop(rng.randrange(len(held)))
            await roundtrip(conn)
            pool.release(conn, rng.random() < 0.8)
        in_use, idle = (int(part.split("=")[1]) for part in repr(pool)[6:-1].split()[:2])
        assert in_use == len(held)
        assert idle <= cfg.max_idle_per_key
    for conn in held:
        pool.release(conn, False)
    pool.close()


@pytest.mark.parametrize(
    ("reply", "method", "status", "body", "reusable"),
    [
        (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, b"GET", 200, b"ok", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"HEAD", 200, b"", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"GET", 204, b"", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", b"GET", 200, b"ab", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", b"GET", 200, b"ok", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"GET", 200, b"ok", False),
    ],
)
async def test_response_framing(reply: bytes, method: bytes, status: int, body: bytes, reusable: bool) -> None:
    srv = await Backend.scripted(answer_once(reply)).start()
    key = ("127.0.0.1", srv.port)
    pool = Pool()
    conn, _ = await pool.acquire(key)
    sink = Sink()
    conn.begin(sink, method == b"HEAD")
    conn.write(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await sink.done is reusable
    assert sink.head is not None
    assert (sink.head.status, bytes(sink.body)) == (status, body)
    pool.release(conn, False)
    await srv.close()


async def test_malformed_response_fails_the_sink() -> None:
    srv = await Backend.scripted(answer_once(b"HTTP/1.1 abc\r\n\r\n")).start()
    key = ("127.0.0.1", srv.port)
    pool = Pool()
    conn, _ = await pool.acquire(key)
    with pytest.raises(UpstreamProtocolError):
        await roundtrip(conn)
    pool.release(conn, True)
    assert repr(pool) == "<Pool in_use=0 idle=0 waiting=0>"
    await srv.close()


async def test_bytes_after_the_response_poison_the_connection() -> None:
    srv = await Backend.scripted(answer_once(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")).start()
    key = ("127.0.0.1", srv.port)
    pool = Pool()
    conn, _ = await pool.acquire(key)
    assert await (await _start(conn)).done is True
    pool.release(conn, True)
    assert repr(pool) == "<Pool in_use=0 idle=0 waiting=0>"
    await srv.close()


async def _start(conn: UpstreamConnection) -> Sink:
    sink = Sink()
    conn.begin(sink, False)
    conn.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return sink


async def test_parser_kept_across_responses_but_not_around_head() -> None:
    """GET, GET, HEAD, GET, GET on one connection: the parser is reused between GETs and
    replaced around the HEAD, whose Content-Length must not frame the next response."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        writer.close()
        await writer.wait_closed()
        served.set()

    served = asyncio.Event()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    pool = Pool()
    conn, _ = await pool.acquire(("127.0.0.1", int(server.sockets[0].getsockname()[1])))
    for method in (b"GET", b"GET", b"HEAD", b"GET", b"GET"):
        sink = await roundtrip(conn, method)
        assert sink.done.result() is True
        assert sink.head is not None
        assert (sink.head.status, bytes(sink.body)) == (200, b"" if method == b"HEAD" else b"ok")
    assert conn.is_usable() is False  # ACTIVE, not IDLE: still ours, and still open
    assert not conn.lost
    pool.release(conn, True)
    assert repr(pool) == "<Pool in_use=0 idle=1 waiting=0>"
    pool.close()
    await asyncio.wait_for(served.wait(), 10)  # the server side saw the close and closed its writer
    server.close()
    await server.wait_closed()


async def test_each_response_head_is_read_on_its_own_even_when_one_repeats() -> None:
    """A connection derives framing and the relayed lines once per distinct head (a backend
    repeats its head until the Date changes): a different head on the same connection, or a
    repeated one after a different one, must still be read exactly as it is."""
    current = [OK]
    srv = await Backend.scripted(answer_each(lambda: current[0])).start()
    pool = Pool()
    conn, _ = await pool.acquire(("127.0.0.1", srv.port))
    heads = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", 2, False, b"ok"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi", 2, False, b"hi"),
        (
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            None,
            True,
            b"abc",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", 2, False, b"ok"),
        (  # the repeated head after an interim response: found after it, not at the buffer's start
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
            2,
            False,
            b"ok",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\nabc",
            3,
            False,
            b"abc",
        ),
    ]
    relayed = []
    for reply, length, chunked, body in heads:
        current[0] = reply
        sink = await roundtrip(conn)
        assert sink.head is conn
        assert (conn.content_length, conn.chunked, bytes(sink.body)) == (length, chunked, body)
        relayed.append(conn.relay_block())
    assert relayed == [
        b"Content-Length: 2\r\n",
        b"Content-Length: 2\r\n",
        b"X-A: 1\r\n",
        b"Content-Length: 2\r\n",
        b"Content-Length: 2\r\n",
        None,
    ]
    pool.release(conn, False)
    pool.close()
    await srv.close()
