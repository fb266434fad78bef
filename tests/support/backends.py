"""Fake backends on loopback: one ``Backend`` class, one mode per way a backend can behave.

Modes (``Backend(mode)``); every backend counts accepted, open and peak-open connections and keeps
every raw byte it received (``raw``):
- ``ok``: parses requests with httptools (its own parser, independent of the gateway's), records
  each one (``seen``: method, target, headers as received, body) and answers ``status`` with the
  body ``ok:<target>`` (``delay`` seconds later when set: the slow backend); a head it cannot
  parse is counted (``parse_errors``) and the connection closed; after a CONNECT or Upgrade
  request nothing more is read (``upgrades``);
- ``blackhole``: accepts, never answers (it reads and discards, so it sees connections close and
  its open-connection count is exact);
- ``reset``: on the first bytes, resets the connection (SO_LINGER 0);
- ``garbage``: answers the first bytes with bytes that are not HTTP;
- ``slow_reader``: reads the head, then stops reading (small receive buffer);
- ``close``: answers 200 with ``connection: close``, then closes;
- ``early``: answers 413 once the head is in, without waiting for the body;
- ``stale``: answers the first request of each connection; closes the connection, unanswered, on
  any later one (a keep-alive connection the backend dropped just as it was reused);
- ``scripted``: ``handler(reader, writer)`` runs per connection (``Backend.scripted(handler)``).

``free_port()`` is a loopback port nothing listens on. Every wait is bounded by ``WAIT``.
"""

import asyncio
import hashlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Self, cast

import httptools

from mirrorgate.ir.table import UpstreamAddress
from tests.support.client import WAIT

Header = tuple[bytes, bytes]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
GARBAGE = b"\x16\x03\x01 this is not HTTP at all\r\n\r\n"
SENTINEL = "/__sentinel"  # a target ``Backend.targets`` leaves out (see tests/hardening/conftest.py)


class Mode(StrEnum):
    OK = "ok"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    GARBAGE = "garbage"
    SLOW_READER = "slow_reader"
    CLOSE = "close"
    EARLY = "early"
    STALE = "stale"
    SCRIPTED = "scripted"


@dataclass
class Seen:
    """One request as the backend parsed it."""

    method: str
    target: str
    headers: list[Header]
    body: bytes

    def values(self, name: str) -> list[bytes]:
        """Every value of header ``name`` (case-insensitive), in order."""
        return [v for n, v in self.headers if n.lower() == name.lower().encode()]

    def header(self, name: str) -> bytes | None:
        """The values of ``name`` joined with ``,``, or None."""
        values = self.values(name)
        return b",".join(values) if values else None

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def body_length(self) -> int:
        return len(self.body)


class Backend:
    """A fake backend (see the module docstring); ``await Backend(mode).start()``."""

    def __init__(
        self, mode: Mode = Mode.OK, *, delay: float = 0.0, status: int = 200, handler: Handler | None = None
    ) -> None:
        self.mode = mode
        self.delay = delay
        self.status = status
        self.handler = handler
        self.seen: list[Seen] = []
        self.raw: list[bytes] = []
        self.parse_errors = 0
        self.upgrades = 0
        self.accepted = 0
        self.open = 0
        self.max_open = 0
        self.changed = asyncio.Event()
        self.transports: set[asyncio.BaseTransport] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    @classmethod
    def scripted(cls, handler: Handler) -> Self:
        return cls(Mode.SCRIPTED, handler=handler)

    @property
    def endpoint(self) -> UpstreamAddress:
        return UpstreamAddress(address="127.0.0.1", port=self.port)

    async def start(self, port: int = 0) -> Self:
        """Listen on ``port`` (0: any free one)."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.mode is Mode.SLOW_READER:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.1", port))
        sock.listen(512)
        sock.setblocking(False)
        if self.handler is not None:
            self.server = await asyncio.start_server(self._serve, sock=sock)
        else:
            self.server = await asyncio.get_running_loop().create_server(lambda: _Protocol(self), sock=sock)
        self.port = int(sock.getsockname()[1])
        return self

    def targets(self) -> list[str]:
        """``METHOD target`` of every request seen, sentinels excluded."""
        return [f"{s.method} {s.target}" for s in self.seen if SENTINEL not in s.target]

    async def wait_for(self, check: Callable[[], bool]) -> None:
        """Wait (bounded by ``WAIT``) until ``check()`` holds after some request arrived."""
        async with asyncio.timeout(WAIT):
            while not check():
                self.changed.clear()
                await self.changed.wait()

    def connected(self, transport: asyncio.BaseTransport) -> None:
        self.accepted += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        self.transports.add(transport)

    def disconnected(self, transport: asyncio.BaseTransport) -> None:
        self.open -= 1
        self.transports.discard(transport)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.handler is not None
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connected(writer.transport)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.tasks.discard(task)
            self.disconnected(writer.transport)
            writer.close()

    def drop_all(self) -> None:
        """Close every open connection (connections the backend dropped while they were idle)."""
        for t in list(self.transports):
            t.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for t in list(self.transports):
            cast(asyncio.Transport, t).abort()
        for task in list(self.tasks):
            task.cancel()
        await self.server.wait_closed()


def answer_each(reply: bytes | Callable[[], bytes]) -> Handler:
    """A scripted handler that answers every request head of a connection with ``reply`` (or
    with what ``reply()`` returns at that moment)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_head(reader)
            writer.write(reply() if callable(reply) else reply)
            await writer.drain()

    return handler


def answer_once(reply: bytes) -> Handler:
    """A scripted handler that answers the first request head with ``reply``, then waits for the
    client to close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(reply)
        await writer.drain()
        await reader.read()

    return handler


async def header_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A scripted handler answering the first request with a 4 MiB response head (64 Ki header
    lines, written as the peer reads them), then waiting for the client to close."""
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    line = b"x-flood: " + b"a" * 54 + b"\r\n"
    for _ in range(64):
        writer.write(line * 1024)
        await writer.drain()
    writer.write(b"content-length: 0\r\n\r\n")
    await writer.drain()
    await reader.read()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """For scripted handlers: the head of one request (raises ``IncompleteReadError`` at EOF)."""
    return await reader.readuntil(b"\r\n\r\n")


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed): free to bind, refused to connect to."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Parsing:
    url: bytes = b""
    headers: list[Header] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)


class _Protocol(asyncio.Protocol):
    """One connection of a non-scripted ``Backend``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.cur = _Parsing()
        self.served = 0  # requests answered on this connection
        self.timers: list[asyncio.TimerHandle] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.backend.connected(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.transport is not None
        self.backend.disconnected(self.transport)
        for timer in self.timers:
            timer.cancel()

    def data_received(self, data: bytes) -> None:
        t = self.transport
        assert t is not None
        self.backend.raw.append(data)
        mode = self.backend.mode
        if mode is Mode.BLACKHOLE:
            return
        if mode is Mode.RESET:
            t.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            t.abort()
        elif mode is Mode.GARBAGE:
            t.write(GARBAGE)
        else:
            self._feed(t, data)

    def _feed(self, t: asyncio.Transport, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.backend.upgrades += 1  # CONNECT / Upgrade: the request was recorded; nothing more is read
        except httptools.HttpParserError:
            self.backend.parse_errors += 1
            t.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.cur = _Parsing()

    def on_url(self, url: bytes) -> None:
        self.cur.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.cur.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.transport is not None
        if self.backend.mode is Mode.SLOW_READER:
            self.transport.pause_reading()
        elif self.backend.mode is Mode.EARLY:
            self.transport.write(b"HTTP/1.1 413 Too Large\r\ncontent-length: 0\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.cur.body += body

    def on_message_complete(self) -> None:
        b = self.backend
        if b.mode is Mode.STALE and self.served:
            assert self.transport is not None
            self.transport.close()
            return
        self.served += 1
        method = self.parser.get_method().decode("latin-1")
        b.seen.append(Seen(method, self.cur.url.decode("latin-1"), self.cur.headers, bytes(self.cur.body)))
        b.changed.set()
        if b.delay:
            self.timers.append(asyncio.get_running_loop().call_later(b.delay, self.reply, self.cur.url))
        else:
            self.reply(self.cur.url)

    def reply(self, target: bytes) -> None:
        t, b = self.transport, self.backend
        if t is None or t.is_closing() or b.mode is Mode.EARLY:
            return
        body = b"ok:" + target
        close = b"connection: close\r\n" if b.mode is Mode.CLOSE else b""
        reason = b"OK" if b.status == 200 else b"X"
        t.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n%s\r\n%s"
            % (b.status, reason, len(body), close, body)
        )
        if close:
            t.close()
