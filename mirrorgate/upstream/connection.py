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
3a. Heads are not reported header by header: llhttp validates the head (strict CRLF, tokens,
   no obs-fold, one Content-Length, no CL with TE) without per-header callbacks, and
   ``on_headers_complete`` takes the head's raw bytes from what was fed since the response
   began (``_head_buf``; a response always starts at the first byte after the request, or
   after an interim response). ``ResponseHead`` carries them; its ``headers`` list is built
   only when someone asks (response edits, tests). A buffer that starts with the last distinct
   head (``_memo``) holds that head (a head ends at its first empty line): it is taken without a
   search, and the relay keeps what it wrote for it (``relayed``) until the next distinct head.
3b. A response head over ``max_head_bytes`` (raw bytes, or twice that received while inside
   it) or ``max_headers`` lines, or a version other than HTTP/1.0 and 1.1, is an
   ``UpstreamProtocolError`` (502; a mirror drop): nothing of it is relayed.
4. A response without ``content-length`` or chunked framing ends when the upstream closes.
5. A connection lost before any byte of the response arrived raises ``StaleConnection`` to the
   sink: the exchange may retry it once when that is safe (idempotent, no body).
6. Bytes or EOF arriving while IDLE, or bytes beyond the end of the response, close the
   connection; the pool drops it on ``acquire``/``release``.
7. A ``101 Switching Protocols`` ends HTTP on the connection (RFC 9110 §15.2.2): its head is
   reported like a final one, then the sink's ``on_switched`` receives the connection and the
   bytes that followed the head, and the connection reports nothing more (its transport now
   belongs to the sink, e.g. a tunnel). A sink without ``on_switched`` (nobody asked for an
   upgrade) fails with ``UpstreamProtocolError``.
"""

import asyncio
from collections.abc import Callable
from enum import IntEnum
from typing import Any, Protocol, cast

import httptools

from mirrorgate.errors import UpstreamClosed, UpstreamError, UpstreamProtocolError
from mirrorgate.upstream.tls import Key
from mirrorgate.wire.hop import strip_hop_by_hop_raw

Header = tuple[bytes, bytes]
_Memo = tuple[bytes, bytes, int, int | None, bool, bytes | bool | None]


class StaleConnection(UpstreamClosed):
    """The upstream closed before answering at all (typically a pooled connection it had just closed)."""


class State(IntEnum):
    CONNECTING = 0
    ACTIVE = 1
    IDLE = 2
    CLOSED = 3


def header_lines(raw: bytes, start: int) -> list[Header]:
    """The header lines of ``raw``, a head as received (status line, header lines, empty line;
    validated by llhttp), those lines starting at ``start``: (name as sent, value without
    surrounding whitespace), in order."""
    if start >= len(raw) - 2:
        return []
    headers = []
    for line in raw[start:-4].split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers.append((name, value.strip(b" \t")))
    return headers


class ResponseHead(Protocol):
    """What the exchange needs to relay a response head: the status, the framing, and the head
    as received (``raw``: status line, header lines, empty line; validated by llhttp), with
    ``low``, the same bytes lower-cased, and ``lines``, the index in both where the header lines
    start. The connection is its own ``ResponseHead``: these describe the response it is
    receiving (no object per response)."""

    @property
    def status(self) -> int: ...
    @property
    def raw(self) -> bytes: ...
    @property
    def low(self) -> bytes: ...
    @property
    def lines(self) -> int: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def chunked(self) -> bool: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def headers(self) -> list[Header]: ...
    def relay_block(self) -> bytes | None: ...

    # the head as the relay last wrote it for this ``raw`` when it added no line (b"": not yet);
    # reset with every new distinct head
    relayed: bytes


class ResponseSink(Protocol):
    """The callbacks an upstream connection drives (implemented by the exchange)."""

    def on_response_head(self, head: ResponseHead) -> None: ...
    def on_response_body(self, chunk: bytes) -> None: ...
    def on_response_complete(self, reusable: bool) -> None: ...
    def on_upstream_failed(self, exc: UpstreamError) -> None: ...
    def on_upstream_write_paused(self, paused: bool) -> None: ...
    def flush(self) -> None: ...


class SwitchingSink(ResponseSink, Protocol):
    """A sink that asked for a protocol upgrade (rule 7)."""

    def on_switched(self, conn: "UpstreamConnection", rest: bytes) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_close_delimited",
        "_count_from",
        "_head_buf",
        "_head_limit",
        "_head_pos",
        "_in_head",
        "_informational",
        "_is_head",
        "_memo",
        "_parser",
        "_received",
        "_sink",
        "chunked",
        "content_length",
        "keep_alive",
        "key",
        "lines",
        "lost",
        "low",
        "max_head_bytes",
        "max_headers",
        "on_lost",
        "pool_key",
        "raw",
        "read_paused",
        "relayed",
        "released_at",
        "state",
        "status",
        "transport",
        "write_paused",
    )

    def __init__(
        self,
        key: Key,
        on_lost: Callable[["UpstreamConnection"], None],
        max_head_bytes: int = 64 * 1024,
        max_headers: int = 200,
    ) -> None:
        self.key = key
        self.on_lost = on_lost
        self.max_head_bytes = max_head_bytes
        self.max_headers = max_headers
        self._in_head = False
        self._head_buf = b""  # what was fed since the response (or the interim one) began (rule 3a)
        self._head_pos = 0  # where in it the head being parsed starts
        self.state = State.CONNECTING
        self.transport: asyncio.Transport | None = None
        self.write_paused = False
        self.read_paused = False  # by pause_reading (the exchange, for a slow client)
        self.lost = False
        self.released_at = 0.0
        self.pool_key: Any = None  # the pool's record of this connection's key (pool.py rule 3)
        self._parser = httptools.HttpResponseParser(self)  # replaced around HEAD requests (rule 1)
        self._head_limit = max_head_bytes  # heads at most this long
        self._count_from = 4 * max_headers  # heads shorter than this cannot have too many lines (>= 4 B each)
        self._sink: ResponseSink | None = None
        self._is_head = False
        self._received = False
        self._informational = False
        self._close_delimited = False
        # the head of the response being received (``ResponseHead``), set by on_headers_complete
        self.status = 0
        self.raw = b""
        self.low = b""
        self.lines = 0
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = False
        self.relayed = b""  # (``ResponseHead.relayed``)
        # The last distinct head and what was derived from it (``_derive``): a backend sends the
        # same head over and over (until its Date changes), so most heads are compared, not parsed.
        self._memo: _Memo = (b"", b"", 0, None, False, False)

    def relay_block(self) -> bytes | None:
        """The header lines without the hop-by-hop ones (``wire.hop.strip_hop_by_hop_raw``),
        computed once per distinct head; None when the slow path is needed."""
        memo = self._memo
        block = memo[5]
        if block is False:
            block = strip_hop_by_hop_raw(self.raw, self.low, self.lines)
            self._memo = (*memo[:5], block)
        return block  # type: ignore[return-value]

    @property
    def headers(self) -> list[Header]:
        """(name as sent, value without surrounding whitespace), in order; built on each use."""
        return header_lines(self.raw, self.lines)

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
        if sink is None:
            self.close()  # unsolicited bytes: the connection can no longer be trusted
            return
        self._received = True
        if self._in_head:
            buf = self._head_buf
            buf = self._head_buf = buf + data if buf else data
            if len(buf) - self._head_pos > 2 * self.max_head_bytes:  # bound what llhttp and we hold
                self._fail(UpstreamProtocolError(f"upstream response head over {self.max_head_bytes} bytes"))
                sink.flush()
                return
        try:
            parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, UpstreamError) else UpstreamProtocolError(str(exc)))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"malformed upstream response: {exc}"))
        except httptools.HttpParserUpgrade as exc:
            self._switched(sink, data[exc.args[0] :])
            return
        if self._sink is sink:  # still relaying: one write to the client per upstream read (rule 2)
            sink.flush()  # (a sink the response completed or failed has written what it had)

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
        if is_head or self._is_head:  # rule 1
            self._parser = httptools.HttpResponseParser(self)
        self._is_head = is_head
        self._received = False
        self._informational = False
        self._close_delimited = False
        self._in_head = True
        self._head_buf = b""
        self._head_pos = 0

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

    def on_headers_complete(self) -> None:
        sink = self._sink
        if sink is None:  # a second response nobody asked for: the stream cannot be trusted
            raise UpstreamProtocolError("unsolicited response")
        memo = self._memo
        raw = memo[0]
        buf = self._head_buf
        # The last distinct head again: it ends at its first empty line, which is its last bytes,
        # and it was validated and checked against the limits when it was derived.
        if self._head_pos or not raw or not buf.startswith(raw):
            head = self._head_of(buf, self._head_pos)
            if head is None:  # an interim response
                return
            raw = head
            if raw != memo[0]:
                memo = self._memo = self._derive(raw)
                self.relayed = b""
        self._in_head = False
        self._head_buf = b""
        status = self._parser.get_status_code()
        _, low, lines, length, chunked, _ = memo
        if status == 101:  # rule 7: no message completes after it (``on_message_complete``)
            self._informational = True
        self.status = status
        self.raw = raw
        self.low = low
        self.lines = lines
        self.content_length = length
        self.chunked = chunked
        if length is not None:
            self._close_delimited = False
            self.keep_alive = self._parser.should_keep_alive()
        else:
            close_delimited = self._close_delimited = (
                not chunked and not self._is_head and status != 204 and status != 304
            )
            self.keep_alive = not close_delimited and self._parser.should_keep_alive()
        sink.on_response_head(self)
        if self._is_head:
            self._complete()

    def _head_of(self, buf: bytes, start: int) -> bytes | None:
        """The head at ``start`` in ``buf``, checked (rule 3a); None, and ready for the final
        head, when it is an interim response."""
        if start or not buf.startswith(b"HTTP/1.1 "):  # after an interim response; HTTP/1.0; leading CRLFs
            while buf.startswith(b"\r\n", start):  # llhttp skips empty lines before a response
                start += 2
            version = buf[start : start + 9]
            if version != b"HTTP/1.1 " and version != b"HTTP/1.0 ":
                raise UpstreamProtocolError(f"upstream answered {version!r}")
        end = buf.find(b"\r\n\r\n", start) + 4  # the first empty line ends the head (strict CRLF)
        if end < 4:
            raise UpstreamProtocolError("cannot locate the response head")
        status = self._parser.get_status_code()
        if status < 200 and status >= 100 and status != 101:
            self._informational = True
            self._head_buf = buf[end:]  # the final head gets the whole allowance
            self._head_pos = 0
            return None
        return buf[start:end] if start or end != len(buf) else buf

    def _derive(self, raw: bytes) -> _Memo:
        """(raw, lower-cased, index of the header lines, content length, chunked, False: the relay
        block, computed on first use) of a head; raises when it is over the limits."""
        lines = raw.index(b"\n") + 1
        low = raw.lower()
        if len(raw) > self._count_from and (
            len(raw) > self._head_limit or low.count(b"\n", lines) > self.max_headers + 1
        ):
            raise UpstreamProtocolError(
                f"upstream response head over {self.max_head_bytes} bytes or {self.max_headers} lines"
            )
        # Framing. llhttp has rejected a second Content-Length and Content-Length with
        # Transfer-Encoding; the last Transfer-Encoding line decides, as in llhttp.
        i = low.find(b"\ncontent-length:", lines - 1)
        if i >= 0:
            return raw, low, lines, int(raw[i + 16 : raw.index(b"\r", i)]), False, False
        i = low.rfind(b"\ntransfer-encoding:", lines - 1)
        chunked = i >= 0 and low[i + 19 : low.index(b"\r", i)].rstrip(b" \t").endswith(b"chunked")
        return raw, low, lines, None, chunked, False

    def _switched(self, sink: ResponseSink, rest: bytes) -> None:
        """Rule 7: hand the connection and ``rest`` (what followed the 101's head) to ``sink``."""
        if self._sink is not sink:  # the sink failed while the head was reported
            return
        on_switched = getattr(sink, "on_switched", None)
        if on_switched is None:
            self._fail(UpstreamProtocolError("upstream switched protocols unasked"))
            sink.flush()
            return
        self._sink = None
        self._in_head = False
        sink.flush()
        cast(SwitchingSink, sink).on_switched(self, rest)

    def on_body(self, body: bytes) -> None:
        sink = self._sink
        if sink is not None:
            sink.on_response_body(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        sink = self._sink  # _complete(), inlined
        self._sink = None
        self._close_delimited = False
        if sink is not None:
            sink.on_response_complete(self.keep_alive)

    def _complete(self) -> None:
        sink, self._sink = self._sink, None
        self._close_delimited = False
        if sink is not None:
            sink.on_response_complete(self.keep_alive)

    def _fail(self, exc: UpstreamError) -> None:
        sink, self._sink = self._sink, None
        self.abort()
        if sink is not None:
            sink.on_upstream_failed(exc)
