"""Small real mirror backends on loopback, one per way a mirror can misbehave, and helpers to
drive a ``Dispatcher`` directly (no gateway).

Backends (``Backend(mode)``), all counting accepted, open and peak-open connections:
- ``ok``: parses requests with httptools, records method/target/headers/body sha256, answers 200
  (``delay`` seconds later when set: the slow backend);
- ``blackhole``: accepts, never answers (it reads and discards, so it sees connections close and
  its open-connection count is exact);
- ``reset``: accepts, and on the first bytes resets the connection (SO_LINGER 0);
- ``garbage``: answers the first bytes with bytes that are not HTTP;
- ``slow_reader``: reads the head, then stops reading (small receive buffer);
- ``close``: answers 200 with ``connection: close``, then closes;
- ``early``: answers 413 once the head is in, without waiting for the body;
- ``stale``: answers the first request of each connection; closes the connection, unanswered,
  on any later one (a keep-alive connection the backend dropped just as it was reused).
``refused_endpoint()`` is a loopback port nothing listens on.

Waits are bounded (``tests.support.waiting.until``), generous, and never asserted on as timings.
"""

import asyncio
import hashlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum
from random import Random
from typing import Any, NamedTuple, cast

import httptools
import pytest
from prometheus_client import CollectorRegistry

from mirrorgate.ir.table import PPM, Endpoint, Mirror
from mirrorgate.mirror import Dispatcher, MirrorConfig

Header = tuple[bytes, bytes]
ROUTE = "httproute/default/web/rule/0"
BACKEND = "service/default/shadow:80"
OK_REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
GARBAGE = b"\x16\x03\x01 this is not HTTP at all\r\n\r\n"


class Mode(StrEnum):
    OK = "ok"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    GARBAGE = "garbage"
    SLOW_READER = "slow_reader"
    CLOSE = "close"  # answers with ``connection: close`` and closes
    EARLY = "early"  # answers 413 as soon as the head is in, before the body
    STALE = "stale"  # closes a connection, unanswered, on its second request


class Recorded(NamedTuple):
    method: bytes
    target: bytes
    headers: list[Header]
    body_sha256: str
    body_length: int

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]


class Backend:
    def __init__(self, mode: Mode = Mode.OK, *, delay: float = 0.0, status: int = 200) -> None:
        self.mode = mode
        self.delay = delay
        self.status = status
        self.requests: list[Recorded] = []
        self.accepted = 0
        self.open = 0
        self.max_open = 0
        self.transports: set[asyncio.Transport] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(address="127.0.0.1", port=self.port)

    async def start(self) -> "Backend":
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.mode is Mode.SLOW_READER:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        sock.setblocking(False)
        self.server = await asyncio.get_running_loop().create_server(lambda: BackendProtocol(self), sock=sock)
        self.port = int(sock.getsockname()[1])
        return self

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for t in list(self.transports):
            t.abort()
        await self.server.wait_closed()


class BackendProtocol(asyncio.Protocol):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[Header] = []
        self.hasher = hashlib.sha256()
        self.length = 0
        self.served = 0  # requests answered on this connection
        self.timers: list[asyncio.TimerHandle] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        b = self.backend
        b.accepted += 1
        b.open += 1
        b.max_open = max(b.max_open, b.open)
        b.transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.backend.open -= 1
        assert self.transport is not None
        self.backend.transports.discard(self.transport)
        for timer in self.timers:
            timer.cancel()

    def data_received(self, data: bytes) -> None:
        t = self.transport
        assert t is not None
        mode = self.backend.mode
        if mode is Mode.BLACKHOLE:
            return
        if mode is Mode.RESET:
            t.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.abort()
        elif mode is Mode.GARBAGE:
            t.write(GARBAGE)
        else:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                t.abort()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.hasher = hashlib.sha256()
        self.length = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self.transport is not None
        if self.backend.mode is Mode.SLOW_READER:
            self.transport.pause_reading()
        elif self.backend.mode is Mode.EARLY:
            self.transport.write(b"HTTP/1.1 413 Too Large\r\ncontent-length: 0\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.hasher.update(body)
        self.length += len(body)

    def on_message_complete(self) -> None:
        if self.backend.mode is Mode.STALE and self.served:
            assert self.transport is not None
            self.transport.close()
            return
        self.served += 1
        method = self.parser.get_method()
        self.backend.requests.append(Recorded(method, self.url, self.headers, self.hasher.hexdigest(), self.length))
        if self.backend.delay:
            loop = asyncio.get_running_loop()
            self.timers.append(loop.call_later(self.backend.delay, self.reply))
        else:
            self.reply()

    def reply(self) -> None:
        t = self.transport
        if self.backend.mode is Mode.EARLY:
            return
        if t is not None and self.backend.mode is Mode.CLOSE:
            t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            t.close()
        elif t is not None and not t.is_closing():
            status = self.backend.status
            t.write(OK_REPLY.replace(b"200 OK", b"%d X" % status) if status != 200 else OK_REPLY)


def refused_endpoint() -> Endpoint:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return Endpoint(address="127.0.0.1", port=int(s.getsockname()[1]))


def make_mirror(*endpoints: Endpoint, k: int = 0, ppm: int = PPM, backend: str = BACKEND, route: str = ROUTE) -> Mirror:
    return Mirror(name=f"{route}/mirror/{k}", backend=backend, ppm=ppm, endpoints=endpoints)


def request_headers(host: bytes = b"a.com:8080", request_id: bytes = b"rid-1") -> list[Header]:
    return [
        (b"host", host),
        (b"user-agent", b"mirror-test"),
        (b"x-forwarded-for", b"10.1.2.3"),
        (b"x-forwarded-proto", b"http"),
        (b"x-request-id", request_id),
    ]


StartBackend = Callable[..., Awaitable[Backend]]
MakeDispatcher = Callable[..., Dispatcher]


@pytest.fixture
async def start_backend() -> AsyncIterator[StartBackend]:
    """``await start_backend(mode, delay=..., status=...)``; every backend is closed at teardown."""
    started: list[Backend] = []

    async def start(mode: Mode = Mode.OK, *, delay: float = 0.0, status: int = 200) -> Backend:
        b = Backend(mode, delay=delay, status=status)
        started.append(b)
        return await b.start()

    yield start
    for b in started:
        await b.close()


@pytest.fixture
async def make_dispatcher() -> AsyncIterator[MakeDispatcher]:
    """``make_dispatcher(seed=..., **MirrorConfig fields)``; each is shut down at teardown and must
    leave no task behind."""
    made: list[Dispatcher] = []

    def make(*, seed: int = 7, **config: Any) -> Dispatcher:
        d = Dispatcher(MirrorConfig(**config), registry=CollectorRegistry(), rng=Random(seed))
        made.append(d)
        return d

    yield make
    for d in made:
        await d.shutdown()
        assert not d.tasks
