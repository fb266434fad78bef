"""One client connection of the echo server (``asyncio.Protocol`` over httptools).

Rules:
1. Responses on a connection go out in request order (one worker task per busy connection).
   Pipelined requests beyond ``_MAX_PIPELINE`` pause reading; a paused writer pauses the worker.
2. Parser callbacks only record state; all waiting happens in the worker, which is tracked.
3. Closing copies Go's server: half-close, then drop input for a moment (an RST could destroy a
   response the client has not read yet); the ``/retry/`` failure mode resets on purpose.
4. Deliberate differences from echo-basic are marked ``DIVERGES``.
"""

import asyncio
import socket
import struct
import traceback
from collections import deque
from typing import Final, cast

import httptools

from mirrorgate.echo.app import After, EchoApp, Exchange, Failure, check_head, failure_bytes
from mirrorgate.echo.http11 import status_line

_MAX_PIPELINE: Final = 16  # queued requests per connection before reading pauses
_MAX_HEAD_BYTES: Final = (1 << 20) + 4096  # Go's DefaultMaxHeaderBytes plus its slack -> 431
_LINGER_SECONDS: Final = 0.5  # Go's rstAvoidanceDelay: read and drop input this long before closing


def _format_peer(peername: object) -> str:
    """Go's ``RemoteAddr``: ``ip:port``, IPv6 in brackets."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = str(peername[0]), peername[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peername)


class EchoProtocol(asyncio.Protocol):
    """One client connection: httptools callbacks feed a queue that one worker task answers."""

    def __init__(self, app: EchoApp) -> None:
        # Global state.
        self._app = app
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        # Per-connection state.
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._queue: deque[Exchange] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._reading_done = False  # no more requests will be parsed; later input is dropped
        self._flow_paused = False  # reading paused because too many requests are queued
        self._writable = asyncio.Event()
        self._writable.set()
        # Per-request state (the request being parsed).
        self._in_head = True  # between message begin and headers complete
        self._head_bytes = 0  # bytes received while in the head; bounded by _MAX_HEAD_BYTES
        self._url = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._current: Exchange | None = None

    # asyncio callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_server gives a stream transport (uvloop's does not subclass asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)
        self._peer = _format_peer(self._transport.get_extra_info("peername"))
        self._app.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._app.connections.discard(self)
        self._reading_done = True
        self._writable.set()
        if self._linger is not None:
            self._linger.cancel()
        if self._worker is not None:
            self._worker.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self._reading_done:
            return
        if self._in_head:
            # Counted here, not in on_header: httptools buffers a header until it is complete.
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEAD_BYTES:
                self._reject(Failure(431))
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # DIVERGES: echo-basic serves Upgrade/CONNECT requests as plain ones and keeps the
            # connection; we answer them and close, since the bytes after them are not HTTP/1.
            self._stop_reading()
            if self._current is not None:
                self._current.keep_alive = False
                self._current.finish()
        except httptools.HttpParserCallbackError:  # a bug in a callback below: report, drop
            self._app.emit(traceback.format_exc())
            self.shutdown()
        except httptools.HttpParserError:
            if not self._reading_done:  # bytes after "Connection: close" are ignored, not errors
                self._reject(Failure(400))

    def shutdown(self) -> None:
        """Stop the worker and close the connection now (server shutdown)."""
        self._reading_done = True
        if self._worker is not None:
            self._worker.cancel()
        if self._transport is not None:
            self._transport.close()

    # httptools callbacks: record only, never wait.

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._url = bytearray()
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        self._in_head = False
        version = self._parser.get_http_version()
        head = (self._parser.get_method().decode("ascii"), bytes(self._url), version, self._headers)
        ex = Exchange(self._loop.create_future(), head)
        ex.keep_alive = self._parser.should_keep_alive()
        ex.expect_continue = version == "1.1" and any(
            name.lower() == b"expect" and value.lower() == b"100-continue" for name, value in self._headers
        )
        ex.failure = check_head(version, self._headers)
        self._current = ex
        self._enqueue(ex)

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.feed(body)

    def on_message_complete(self) -> None:
        if self._current is not None:
            self._current.finish()
            if not self._current.keep_alive:
                self._stop_reading()

    # Internals.

    def _stop_reading(self) -> None:
        self._reading_done = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def _reject(self, failure: Failure) -> None:
        """The request cannot be parsed: answer after the requests before it, then close."""
        self._stop_reading()
        current = self._current
        if current is not None and not current.done.done():
            current.finish(failure)
        else:
            rejected = Exchange(self._loop.create_future(), ("", b"", "1.1", []))
            rejected.finish(failure)
            self._enqueue(rejected)

    def _enqueue(self, ex: Exchange) -> None:
        self._queue.append(ex)
        if len(self._queue) >= _MAX_PIPELINE and not self._flow_paused and self._transport is not None:
            self._flow_paused = True
            self._transport.pause_reading()
        if self._worker is None or self._worker.done():
            self._worker = self._app.spawn(self._work())

    def _close_gracefully(self, transport: asyncio.Transport) -> None:
        """Go's ``closeWriteAndWait``: half-close, drop input for a moment, then close.

        Closing a socket that still has unread input sends an RST, which can destroy the
        response the client has not read yet.
        """
        self._reading_done = True
        if transport.is_closing():
            return
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()
        self._linger = self._loop.call_later(_LINGER_SECONDS, transport.close)

    async def _work(self) -> None:
        """Answer queued requests in order until the queue is empty or the connection closes."""
        transport = self._transport
        assert transport is not None  # tasks are only spawned after connection_made
        try:
            while self._queue:
                keep_open = await self._serve(transport, self._queue[0])
                self._queue.popleft()
                if not keep_open:
                    self._queue.clear()
                    return
                if self._flow_paused and len(self._queue) < _MAX_PIPELINE // 2 and not self._reading_done:
                    self._flow_paused = False
                    transport.resume_reading()
        except Exception:  # the one catch-all of this task: a bug; report it and drop the connection
            self._app.emit(traceback.format_exc())
            transport.abort()

    async def _serve(self, transport: asyncio.Transport, ex: Exchange) -> bool:
        """Answer one request; return whether the connection stays open."""
        if ex.failure is None and ex.expect_continue and not ex.done.done():
            transport.write(status_line(100) + b"\r\n")
        if ex.failure is None:
            await ex.done
        if ex.failure is not None:
            transport.write(failure_bytes(ex.failure))
            self._close_gracefully(transport)
            return False
        reply = await self._app.handle(ex, self._peer)
        if reply.after is After.RESET:
            _reset(transport)
            return False
        if reply.after is After.DROP:
            self._close_gracefully(transport)
            return False
        keep_alive = ex.keep_alive and reply.after is After.RESPOND
        transport.write(self._app.encode(ex, reply, keep_alive))
        if not keep_alive:
            self._close_gracefully(transport)
            return False
        await self._writable.wait()
        return not transport.is_closing()


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP RST (SO_LINGER 0), as echo-basic's hijack-and-close does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:  # already closed by the peer: a plain abort is all that is left
            pass
    transport.abort()
