"""One upstream HTTP/1.1 connection: an ``asyncio.Protocol`` with an httptools response parser.

Owns: the socket to one endpoint, parsing of the responses it returns, and its explicit state
(CONNECTING -> ACTIVE <-> IDLE -> CLOSED). Only the pool changes ``state``; the connection
itself only records ``lost`` and tells the pool through ``on_lost``.

Rules:
1. One request at a time (no upstream pipelining). ``begin(sink, is_head)`` starts a response.
   The parser is kept from one response to the next (llhttp resets itself after each complete
   message) except around a HEAD: its response gets a fresh parser and so does the next one, so
   that a HEAD response's ``content-length`` never desynchronises the stream.
2. Everything the response parser reports goes to the ``ResponseSink`` synchronously: head,
   body chunks, completion, failure; ``flush`` ends each batch (one upstream read), so the sink
   can coalesce what it relays into one write. Nothing here awaits.
3. Interim 1xx responses (other than 101) are swallowed; the final response follows.
3b. A response head over ``max_head_bytes`` (raw bytes received inside it, or name + value as
   parsed) or ``max_headers`` lines, or a version other than HTTP/1.0 and 1.1, is an
   ``UpstreamProtocolError`` (502; a mirror drop): nothing of it is relayed.
4. A response without ``content-length`` or chunked framing ends when the upstream closes.
5. A connection lost before any byte of the response arrived raises ``StaleConnection`` to the
   sink: the exchange may retry it once when that is safe (idempotent, no body).
6. Bytes or EOF arriving while IDLE, or bytes beyond the end of the response, close the
   connection; the pool drops it on ``acquire``/``release``.
"""

import asyncio
from collections.abc import Callable
from enum import IntEnum
from typing import Protocol, cast

import httptools

from mirrorgate.errors import UpstreamClosed, UpstreamError, UpstreamProtocolError

Header = tuple[bytes, bytes]


_VERSIONS = frozenset({"1.1", "1.0"})


class StaleConnection(UpstreamClosed):
    """The upstream closed before answering at all (typically a pooled connection it had just closed)."""


class State(IntEnum):
    CONNECTING = 0
    ACTIVE = 1
    IDLE = 2
    CLOSED = 3


class ResponseHead:
    """What the exchange needs to relay a response head."""

    __slots__ = ("chunked", "content_length", "headers", "keep_alive", "lows", "status")

    def __init__(
        self,
        status: int,
        headers: list[Header],
        keep_alive: bool,
        chunked: bool,
        content_length: int | None,
        lows: list[bytes] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.lows = lows  # the header names lower-cased, in order (computed once, here)
        self.keep_alive = keep_alive
        self.chunked = chunked
        self.content_length = content_length


class ResponseSink(Protocol):
    """The callbacks an upstream connection drives (implemented by the exchange)."""

    def on_response_head(self, head: ResponseHead) -> None: ...
    def on_response_body(self, chunk: bytes) -> None: ...
    def on_response_complete(self, reusable: bool) -> None: ...
    def on_upstream_failed(self, exc: UpstreamError) -> None: ...
    def on_upstream_write_paused(self, paused: bool) -> None: ...
    def flush(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_close_delimited",
        "_head_bytes",
        "_head_size",
        "_headers",
        "_in_head",
        "_informational",
        "_is_head",
        "_parser",
        "_received",
        "_response_keep_alive",
        "_sink",
        "key",
        "lost",
        "max_head_bytes",
        "max_headers",
        "on_lost",
        "read_paused",
        "released_at",
        "state",
        "transport",
        "write_paused",
    )

    def __init__(
        self,
        key: tuple[str, int],
        on_lost: Callable[["UpstreamConnection"], None],
        max_head_bytes: int = 64 * 1024,
        max_headers: int = 200,
    ) -> None:
        self.key = key
        self.on_lost = on_lost
        self.max_head_bytes = max_head_bytes
        self.max_headers = max_headers
        self._in_head = False
        self._head_bytes = 0  # raw bytes received while inside a response head
        self._head_size = 0  # name + value bytes parsed
        self.state = State.CONNECTING
        self.transport: asyncio.Transport | None = None
        self.write_paused = False
        self.read_paused = False  # by pause_reading (the exchange, for a slow client)
        self.lost = False
        self.released_at = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._sink: ResponseSink | None = None
        self._headers: list[Header] = []
        self._is_head = False
        self._received = False
        self._informational = False
        self._close_delimited = False
        self._response_keep_alive = False

    def __repr__(self) -> str:
        return f"<UpstreamConnection {self.key[0]}:{self.key[1]} {self.state.name}>"

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        sink, self._sink = self._sink, None
        if sink is not None:
            if self._close_delimited:
                sink.on_response_complete(False)
            elif not self._received:
                sink.on_upstream_failed(StaleConnection("upstream closed the connection before responding"))
            else:
                sink.on_upstream_failed(UpstreamClosed("upstream closed the connection mid-response"))
            sink.flush()
        self.on_lost(self)

    def eof_received(self) -> bool:
        return False  # close our side too

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        sink = self._sink
        if sink is None or parser is None:
            self.close()  # unsolicited bytes: the connection can no longer be trusted
            return
        self._received = True
        try:
            parser.feed_data(data)
            if self._in_head:  # all of ``data`` was head: bound what httptools buffers inside one
                size = self._head_bytes = self._head_bytes + len(data)
                if size > 2 * self.max_head_bytes:
                    self._fail(UpstreamProtocolError(f"upstream response head over {self.max_head_bytes} bytes"))
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, UpstreamError) else UpstreamProtocolError(str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"malformed upstream response: {exc}"))
        finally:
            sink.flush()  # one write to the client per upstream read (rule 2)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self._sink is not None:
            self._sink.on_upstream_write_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._sink is not None:
            self._sink.on_upstream_write_paused(False)

    # --- used by the exchange -----------------------------------------------------------------

    def begin(self, sink: ResponseSink, is_head: bool) -> None:
        """Start one request/response on this connection."""
        self._sink = sink
        if is_head or self._is_head or self._parser is None:  # rule 1
            self._parser = httptools.HttpResponseParser(self)
        self._is_head = is_head
        self._headers = []
        self._received = False
        self._informational = False
        self._close_delimited = False
        self._in_head = True
        self._head_bytes = self._head_size = 0

    def detach(self) -> None:
        """Stop reporting to the current sink (the exchange gave up on this response)."""
        self._sink = None

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        assert self.transport is not None
        self.transport.writelines(data)

    def pause_reading(self) -> None:
        self.read_paused = True
        t = self.transport
        if t is not None and not t.is_closing():
            t.pause_reading()

    def resume_reading(self) -> None:
        self.read_paused = False
        t = self.transport
        if t is not None and not t.is_closing():
            t.resume_reading()

    def is_usable(self) -> bool:
        t = self.transport
        return self.state == State.IDLE and not self.lost and t is not None and not t.is_closing()

    def close(self) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.close()

    def abort(self) -> None:
        t = self.transport
        if t is not None:
            t.abort()

    # --- httptools callbacks (record and forward only) ------------------------------------------

    def on_message_begin(self) -> None:
        if self._sink is None:  # a second response nobody asked for: the stream cannot be trusted
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        size = self._head_size = self._head_size + len(name) + len(value) + 4
        if size > self.max_head_bytes or len(headers) >= self.max_headers:
            raise UpstreamProtocolError(
                f"upstream response head over {self.max_head_bytes} bytes or {self.max_headers} lines"
            )
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        headers = self._headers
        if status < 200 and status >= 100 and status != 101:
            self._informational = True
            self._headers = []
            self._head_bytes = self._head_size = 0  # the final head gets the whole allowance
            return
        self._in_head = False
        if parser.get_http_version() not in _VERSIONS:
            raise UpstreamProtocolError(f"upstream answered HTTP/{parser.get_http_version()}")
        chunked = False
        length: int | None = None
        lows = [name.lower() for name, _ in headers]
        if b"transfer-encoding" in lows:
            for low, (_, value) in zip(lows, headers, strict=True):
                if low == b"content-length":
                    length = int(value)
                elif low == b"transfer-encoding":
                    chunked = value.lower().rstrip().endswith(b"chunked")
        elif b"content-length" in lows:  # llhttp rejects a repeated Content-Length: there is one
            length = int(headers[lows.index(b"content-length")][1])
        is_head = self._is_head
        close_delimited = not chunked and length is None and not is_head and status != 204 and status != 304
        self._close_delimited = close_delimited
        keep_alive = self._response_keep_alive = not close_delimited and parser.should_keep_alive()
        sink = self._sink
        if sink is not None:
            sink.on_response_head(ResponseHead(status, headers, keep_alive, chunked, length, lows))
        if is_head:
            self._complete()

    def on_body(self, body: bytes) -> None:
        sink = self._sink
        if sink is not None:
            sink.on_response_body(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._complete()

    def _complete(self) -> None:
        sink, self._sink = self._sink, None
        self._close_delimited = False
        if sink is not None:
            sink.on_response_complete(self._response_keep_alive)

    def _fail(self, exc: UpstreamError) -> None:
        sink, self._sink = self._sink, None
        self.abort()
        if sink is not None:
            sink.on_upstream_failed(exc)
