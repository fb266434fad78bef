"""The client-facing HTTP/1.1 connection: ``HttpProtocol(asyncio.Protocol)`` + httptools.

Owns: one client connection: parsing request heads strictly, handing each request to an
``Exchange``, answering pipelined requests in order, keep-alive and its idle timeout, read
pausing (``flow.ReadGate``) and write-pause notifications, and closing on protocol errors.

Rules:
1. Parser callbacks only record data and never await (they run inside the parser); a request's work
   (``exchange.begin``) starts once the current read has been parsed: right after it for a
   request without a body on an idle connection, else with ``loop.call_soon``. One
   exchange runs at a time; pipelined ones queue behind it and reading pauses while any is
   queued. Responses therefore leave in request order.
2. Strict framing (the backend must never see a desynchronised stream): Content-Length with
   Transfer-Encoding, duplicate or invalid Content-Length, a Transfer-Encoding whose last coding
   is not chunked, chunked on HTTP/1.0, bad chunk sizes, bare LF, obs-fold (llhttp's strict
   mode, plus our checks) -> 400; missing or repeated Host on HTTP/1.1, or a Host that is not
   ``uri-host[:port]`` -> 400; a transfer coding other than ``chunked`` -> 501; a fragment in the
   target, or asterisk-form with a method other than OPTIONS -> 400; HTTP versions other than
   1.0/1.1 -> 505. After a protocol error nothing more is read: responses already owed are sent,
   then the error reply, then the connection closes.
6. Limits (``limits.Limits``, per worker): a request-target over ``max_target_bytes`` -> 414; a head
   over ``max_head_bytes`` or ``max_headers`` lines -> 431; a body over ``max_body_bytes`` -> 413; a
   head not complete ``header_timeout`` seconds after its first byte -> 408; a body that stalls
   (no byte, or under ``min_body_rate`` B/s, over a ``body_timeout`` window while the gateway is
   reading) -> 408 and close; idle keep-alive connections close after ``keepalive_timeout``; past
   ``max_connections`` a new connection is closed at once. A read is parsed in slices of
   ``SLICE`` bytes; once ``max_pipelined`` requests are queued behind the running one, what is
   left stays unparsed (``backlog``, reading paused) until the queue drains: at most
   ``max_pipelined`` + the requests of one slice (~75 minimal ones) are ever parsed and waiting.
3. Request header names are lower-cased here, once. Trailers of chunked requests are dropped.
4. An absolute-form target (``http://host/path``) is reduced to origin-form; its authority
   replaces the Host header (RFC 9112 §3.2.2).
5. Nothing is parsed after a request that asks for an upgrade (``Upgrade`` with ``Connection:
   upgrade``, RFC 9110 §7.8): what follows it may be another protocol. A WebSocket handshake
   (GET, HTTP/1.1, no body, ``websocket`` among the Upgrade tokens) is forwarded with its
   upgrade headers (``Exchange.upgrade``); the bytes read after its head are kept
   (``upgrade_rest``) and, after a 101, the exchange takes the transport over (``hand_over``)
   for a tunnel. A backend answering anything else is relayed and the connection closes after
   it. Any other upgrade (``h2c``, unknown protocols) is served as a plain HTTP/1.1 request (the
   upgrade headers and those Connection names are hop-by-hop and stripped: RFC 9113 §3.2 lets a
   server ignore h2c) and the connection closes after it (``connection: close``). ``CONNECT``
   is answered 501 and never forwarded (a 2xx from a backend would turn a pooled connection
   into a tunnel).
"""

import asyncio
import logging
from collections import deque
from typing import cast

import httptools

from mirrorgate.dataplane import flow
from mirrorgate.dataplane.exchange import Exchange
from mirrorgate.dataplane.framing import check_host, origin_form, request_framing, upgrade_protocols, valid_hosts
from mirrorgate.dataplane.headers import forward_tail, replace_header
from mirrorgate.dataplane.limits import Limits
from mirrorgate.dataplane.matcher import ServerKey
from mirrorgate.dataplane.replies import local_reply
from mirrorgate.dataplane.state import GatewayState
from mirrorgate.errors import ProtocolError
from mirrorgate.tls.server import chosen_listener

log = logging.getLogger("mirrorgate.dataplane")

MAX_HEAD = Limits().max_head_bytes  # the default head limit (tests size their heads from it)
MAX_HEAD_BUFFER = 1024 * 1024  # raw bytes received while inside one head (bounds llhttp's own buffering)
SLICE = 2048  # a read longer than this is parsed in slices of it, outside a Content-Length body (rule 6)
STOPPED = 16  # ReadGate reason: nothing more will be read from this connection
_HASH = ord("#")
_SPECIAL = frozenset({b"host", b"content-length", b"transfer-encoding", b"expect", b"upgrade"})  # framing, routing


class HttpProtocol(asyncio.Protocol):
    __slots__ = (
        "_body_bytes",
        "_head_bytes",
        "_head_size",
        "_head_started",
        "_headers",
        "_host",
        "_hosts",
        "_in_head",
        "_max_head",
        "_max_headers",
        "_max_target",
        "_special",
        "_starting",
        "_url",
        "_url_parts",
        "_window_bytes",
        "_window_start",
        "backlog",
        "client",
        "client_ip",
        "closed",
        "forward_tail",
        "gate",
        "idle_since",
        "idle_timer",
        "limits",
        "loop",
        "parser",
        "parsing",
        "pending_error",
        "queue",
        "running",
        "scheme",
        "server_key",
        "shutting_down",
        "state",
        "tls_listener",
        "transport",
        "upgrade_rest",
        "write_paused",
    )

    def __init__(self, state: GatewayState, server_key: ServerKey) -> None:
        # shared by every connection of the process / of this listening socket
        self.state = state
        self.server_key = server_key  # the IR (address, port) this socket serves
        self.limits = state.limits
        self.loop = asyncio.get_running_loop()
        # per connection
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.gate = flow.ReadGate()
        self.client = "-"
        self.client_ip = b""
        self.scheme = b"http"  # b"https" on a TLS connection
        self.tls_listener: str | None = None  # the listener the SNI chose (TLS connections)
        self.forward_tail = forward_tail(b"", b"http")  # (per connection, see ``connection_made``)
        self.closed = False
        self.write_paused = False
        self.shutting_down = False
        self.idle_timer: asyncio.TimerHandle | None = None  # the connection's one timer (head, body, idle)
        self.idle_since = 0.0  # loop time the connection became idle; 0.0 while a request is in progress
        self.queue: deque[Exchange] = deque()  # parsed, waiting for ``running`` to finish (pipelining)
        self.running: Exchange | None = None  # the exchange whose response is being written
        self.parsing: Exchange | None = None  # the exchange whose body the parser is reading
        self.pending_error = 0  # status of a protocol error to send once the owed responses are out
        self.backlog = b""  # bytes received but left unparsed while the pipeline queue is full (rule 6)
        self.upgrade_rest: bytes | None = None  # bytes after a WebSocket handshake's head (rule 5)
        self._starting: Exchange | None = None  # to begin once the read being parsed is done (rule 1)
        # per request head being parsed
        self._url = b""  # the request-target, when it came in one piece
        self._url_parts: list[bytes] | None = None  # its pieces otherwise
        self._headers: list[tuple[bytes, bytes]] = []
        self._host = b""  # the first Host value
        self._hosts = 0  # Host lines
        self._special: list[tuple[bytes, bytes]] | None = None  # Content-Length, Transfer-Encoding, Expect
        limits = state.limits
        self._max_target = limits.max_target_bytes
        self._max_head = limits.max_head_bytes
        self._max_headers = limits.max_headers
        self._head_size = 0
        self._head_bytes = 0
        self._head_started = 0.0
        self._in_head = False
        # per request body being read
        self._body_bytes = 0
        self._window_start = 0.0
        self._window_bytes = 0

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        self.gate.transport = transport
        peer = transport.get_extra_info("peername")
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:  # called once the handshake is done: the SNI chose a listener
            self.scheme = b"https"
            self.tls_listener = chosen_listener(ssl_object)
        if isinstance(peer, tuple):
            self.client_ip = str(peer[0]).encode()
            self.forward_tail = forward_tail(self.client_ip, self.scheme)
            self.client = f"{peer[0]}:{peer[1]}"
        if len(self.state.connections) >= self.limits.max_connections:
            self.state.rejected_connections += 1
            self.closed = True
            transport.close()
            return
        self.state.connections.add(self)
        self.state.no_connections.clear()
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)
        if not self.state.connections:
            self.state.no_connections.set()
        self._cancel_idle_timer()
        parsing, self.parsing = self.parsing, None
        if parsing is not None:
            parsing.fail_body(ProtocolError("client closed the connection mid-request"))
        self.queue.clear()
        self.backlog = b""
        running, self.running = self.running, None
        if running is not None:
            running.cancel()

    def data_received(self, data: bytes) -> None:
        if self.gate.reasons & STOPPED:
            if self.upgrade_rest is not None:  # a read under way when reading paused (rule 5)
                self.upgrade_rest += data
            return
        if self.backlog:  # (reading is paused; a read already under way may still arrive)
            self.backlog += data
            return
        if len(data) > SLICE:
            self._feed(data)
            return
        if self._in_head:
            self._parse(data)
            return
        try:  # _parse(), inlined for the common read: one small request, no head in progress
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_error(exc, data)
        if self._in_head and not self._head_started:  # a head began in this read and is not complete
            self._head_started = self.loop.time()
        ex = self._starting
        if ex is not None:
            self._starting = None
            ex.begin()

    def _feed(self, data: bytes) -> None:
        """Parse ``data`` in slices, stopping while ``max_pipelined`` requests are queued (rule 6)."""
        end = len(data)
        at = 0
        limit = self.limits.max_pipelined
        while at < end:
            if self.gate.reasons & STOPPED:
                if self.upgrade_rest is not None:  # the slices after the upgrade request's (rule 5)
                    self.upgrade_rest += data[at:]
                return
            if len(self.queue) >= limit:
                self.backlog = data[at:]  # reading is paused (PIPELINE) while anything is queued
                return
            step = SLICE
            ex = self.parsing
            if ex is not None and not self._in_head and ex.content_length is not None:
                step = max(step, ex.content_length - self._body_bytes)  # a body: no need to slice
            self._parse(data[at : at + step] if at or step < end else data)
            at += step

    def _parse(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BUFFER and self._head_bytes > 2 * self.limits.max_head_bytes:
                self._protocol_error(ProtocolError("request head too large", 431))
                return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parse_error(exc, data)
        if self._in_head and not self._head_started:  # a head began in this read and is not complete
            self._head_started = self.loop.time()
        ex = self._starting
        if ex is not None:
            self._starting = None
            ex.begin()

    def _parse_error(self, exc: Exception, data: bytes) -> None:
        """What ``feed_data`` raised (feeding ``data``): a protocol error, a bug in a callback, or an upgrade."""
        if isinstance(exc, httptools.HttpParserUpgrade):
            self._stop_reading()  # rule 5: the request was handed over; nothing after it is read
            if self.upgrade_rest is not None:
                self.upgrade_rest = data[exc.args[0] :]
            parsing, self.parsing = self.parsing, None
            if parsing is not None and not parsing.body_done:
                parsing.fail_body(ProtocolError("protocol upgrades are not supported"))
        elif isinstance(exc, httptools.HttpParserCallbackError):
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                self._protocol_error(cause)
            else:  # a bug in a callback: log it once, answer 500 and close
                log.error("bug in a parser callback", exc_info=cause)
                self._protocol_error(ProtocolError("internal error", 500))
        else:
            self._protocol_error(ProtocolError(f"malformed request: {exc}", 400))

    def eof_received(self) -> bool:
        # Half-close: finish what is owed, then close (returning True keeps our side writable).
        # TLS has no half-close (a close_notify shuts the session down): False there.
        self._stop_reading()
        parsing, self.parsing = self.parsing, None
        if parsing is not None and not parsing.body_done:
            parsing.fail_body(ProtocolError("client closed its side mid-body"))
        if self.running is None and not self.queue:
            self.close()
        return self.scheme == b"http"

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.running is not None:
            self.running.on_client_write_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.running is not None:
            self.running.on_client_write_paused(False)

    # --- httptools callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._url_parts = None
        self._headers = []
        self._host = b""
        self._hosts = 0
        self._special = None
        self._head_size = 0
        self._in_head = True
        self._head_started = 0.0  # set once a read ends inside this head (``data_received``)

    def on_url(self, url: bytes) -> None:
        size = self._head_size = self._head_size + len(url)  # counted as the parser reports it
        if size > self._max_target:  # the target comes first: the head so far is the target
            raise ProtocolError("request-target too long", 414)
        if self._url:  # a target split across reads: pieces kept in a list, joined once
            parts = self._url_parts
            if parts is None:
                parts = self._url_parts = [self._url]
            parts.append(url)
        else:
            self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a trailer (rule 3)
        size = self._head_size = self._head_size + len(name) + len(value) + 4  # counted as the parser reports it
        headers = self._headers
        if size > self._max_head or len(headers) >= self._max_headers:
            raise ProtocolError("request head too large" if size > self._max_head else "too many request headers", 431)
        low = name.lower()
        headers.append((low, value))
        if low in _SPECIAL:
            if low == b"host":
                self._hosts += 1
                if not self._host:
                    self._host = value
            elif self._special is None:
                self._special = [(low, value)]
            else:
                self._special.append((low, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        ex = self._build_exchange()
        self.parsing = ex
        self.idle_since = 0.0  # busy
        if not ex.body_done:  # a body follows: its stall check starts now (rule 6)
            self._body_bytes = self._window_bytes = 0
            self._window_start = self.loop.time()
        if self.running is None and not self.queue:
            self.running = ex
            if ex.body_done:
                self._starting = ex  # begun as soon as this read is parsed (rule 1)
            else:  # begun on the next loop turn: a body in the reads already received is in by then
                self.loop.call_soon(ex.begin)
        else:
            self.queue.append(ex)
            self.gate.pause(flow.PIPELINE)

    def on_body(self, body: bytes) -> None:
        size = self._body_bytes = self._body_bytes + len(body)
        cap = self.limits.max_body_bytes
        if cap and size > cap:
            raise ProtocolError("request body too large", 413)
        ex = self.parsing
        if ex is not None:
            ex.feed_body(body)

    def on_message_complete(self) -> None:
        ex, self.parsing = self.parsing, None
        if ex is not None and not ex.body_done:  # done from the start: no body, nothing to end
            ex.end_body()

    # --- helpers ---------------------------------------------------------------------------------

    def _build_exchange(self) -> Exchange:
        parser = self.parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise ProtocolError(f"HTTP/{version} is not supported", 505)
        target = self._url if self._url_parts is None else b"".join(self._url_parts)
        host = self._host
        hosts = self._hosts
        if hosts != 1 and (hosts or version == "1.1"):
            raise ProtocolError("exactly one Host header is required")
        length = None
        chunked = expect = False
        upgrade = b""
        if self._special is not None:
            length, chunked, expect, upgrade = request_framing(self._special, version, self.limits.max_body_bytes)
        method = parser.get_method()
        if method == b"CONNECT":  # rule 5: never forwarded (a 2xx would make the upstream a tunnel)
            raise ProtocolError("CONNECT is not supported", 501)
        if target[:1] != b"/":  # (not startswith: a one-byte slice allocates nothing)
            if target == b"*":
                if method != b"OPTIONS":
                    raise ProtocolError("asterisk-form is for OPTIONS only")
            else:
                target, host = origin_form(target)
                replace_header(self._headers, b"host", host)
        if _HASH in target:  # (an int: ``b"#" in`` first fails to read b"#" as an int, raising inside)
            raise ProtocolError("a fragment is not part of a request-target")
        if host and host not in valid_hosts:
            check_host(host)
        ex = Exchange(
            self,
            self.state,
            method,
            target,
            version,
            self._headers,
            host,
            parser.should_keep_alive(),
            chunked,
            length,
            expect,
        )
        if upgrade:
            self._upgrade(ex, upgrade)
        return ex

    def _upgrade(self, ex: Exchange, upgrade: bytes) -> None:
        """Rule 5: a request with an Upgrade header; only ``Connection: upgrade`` makes it one."""
        protocols = upgrade_protocols(self._headers, upgrade)
        if protocols is None:  # a plain request (the header is hop-by-hop, stripped)
            return
        ex.keep_alive = False  # nothing is read after it
        if b"websocket" in protocols and ex.method == b"GET" and ex.version == "1.1" and not ex.has_body:
            ex.upgrade = True
            self.upgrade_rest = b""

    def _start(self, ex: Exchange) -> None:
        self.running = ex
        self.loop.call_soon(ex.begin)

    def exchange_done(self, ex: Exchange) -> None:
        """Called by ``Exchange.finish`` once the exchange has written its last byte (or given up)."""
        if self.running is ex:
            self.running = None
        if self.closed:
            return
        if not ex.keep_alive or self.shutting_down:
            self.close()
            return
        if self.queue:
            nxt = self.queue.popleft()
            self._start(nxt)
            if self.backlog:  # rule 6: the queue has room again
                data, self.backlog = self.backlog, b""
                self._feed(data)
            if not self.queue and not self.backlog:
                self.gate.resume(flow.PIPELINE)
        elif self.pending_error:
            self.write(local_reply(self.pending_error, False))
            self.close()
        elif self.gate.reasons & STOPPED and self.parsing is None:
            self.close()
        else:  # _arm_idle_timer(), inlined
            self.idle_since = self.loop.time()
            if self.idle_timer is None:
                self._rearm(self.limits.keepalive_timeout)

    def _protocol_error(self, err: ProtocolError) -> None:
        self._stop_reading()
        parsing, self.parsing = self.parsing, None
        if parsing is not None:  # the body of a request in progress broke: that exchange answers
            parsing.fail_body(err)
            if parsing is not self.running and parsing not in self.queue:
                self.close()
            return
        if self.running is None and not self.queue:
            self.write(local_reply(err.status, False))
            self.close()
        else:
            self.pending_error = err.status

    def _stop_reading(self) -> None:
        self.gate.pause(STOPPED)

    # One timer per connection, never re-armed per request: marking idle/busy only stores a time.
    # When it fires it checks the deadline that applies now (head, body or idle) and sleeps until
    # that deadline, but never longer than ``_tick`` so that a state that began since (a head
    # starting on an idle connection) is checked in time: deadlines are exact, at the cost of one
    # wake-up per ``_tick`` seconds per connection.

    def _arm_idle_timer(self) -> None:
        self.idle_since = self.loop.time()
        if self.idle_timer is None:
            self._rearm(self.limits.keepalive_timeout)

    def _rearm(self, delay: float) -> None:
        limits = self.limits
        tick = min(limits.header_timeout, limits.body_timeout) / 2
        self.idle_timer = self.loop.call_later(min(delay, tick), self._on_timer)

    def _on_timer(self) -> None:
        self.idle_timer = None
        if self.closed:
            return
        limits = self.limits
        now = self.loop.time()
        if self._in_head:  # a head is arriving
            if self.gate.reasons:  # not being read (a pipelined backlog): its time starts over
                self._head_started = now
            left = self._head_started + limits.header_timeout - now
            if left <= 0:
                self._stop_reading()
                self.write(local_reply(408, False))
                self.close()
                return
        elif self.idle_since:
            left = self.idle_since + limits.keepalive_timeout - now
            if left <= 0:
                self.close()
                return
        elif (ex := self.parsing) is not None and not ex.body_done:
            left = self._check_body(now)
            if left <= 0:
                return
        else:  # waiting for a response: the route's timeouts apply
            left = limits.keepalive_timeout
        self._rearm(left)

    def _check_body(self, now: float) -> float:
        """The body stall check (rule 6); returns the seconds to the next one, 0 when it failed."""
        limits = self.limits
        if self.gate.reasons:  # the gateway is not reading (back-pressure): the window starts over
            self._window_start, self._window_bytes = now, self._body_bytes
            return limits.body_timeout
        elapsed = now - self._window_start
        if elapsed < limits.body_timeout:
            return limits.body_timeout - elapsed
        got = self._body_bytes - self._window_bytes
        if got == 0 or got < limits.min_body_rate * elapsed:
            self._protocol_error(ProtocolError("request body too slow", 408))
            return 0.0
        self._window_start, self._window_bytes = now, self._body_bytes
        return limits.body_timeout

    def _cancel_idle_timer(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    # --- used by exchanges and the server --------------------------------------------------------

    def write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def writelines(self, data: list[bytes]) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.writelines(data)

    def close(self) -> None:
        self._cancel_idle_timer()
        t = self.transport
        if t is not None and not t.is_closing():
            t.close()

    def abort(self) -> None:
        t = self.transport
        if t is not None:
            t.abort()

    def shutdown(self) -> None:
        """Graceful stop: close now if idle, else after the running exchange."""
        self.shutting_down = True
        if self.running is None and not self.queue:
            self.close()

    def hand_over(self) -> tuple[asyncio.Transport, bytes] | None:
        """The transport and the bytes read after the WebSocket handshake (rule 5), for a tunnel
        that replaces this protocol on it and calls ``connection_lost`` when it is lost; None
        when the connection is gone."""
        t = self.transport
        if self.closed or t is None or t.is_closing():
            return None
        self._cancel_idle_timer()
        self.gate.transport = None  # the tunnel pauses and resumes the transport itself
        rest, self.upgrade_rest = self.upgrade_rest or b"", None
        return t, rest

    @property
    def idle(self) -> bool:
        return self.running is None and not self.queue and self.parsing is None
