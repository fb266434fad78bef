"""The response side of an exchange: the ``ResponseSink`` callbacks its upstream connection drives.

Owns: the response head as relayed to the client (hop-by-hop lines dropped, response header
edits applied, framing and ``connection`` lines added), the body relay and the end of the
response; ``Exchange`` inherits it (``ResponseRelay`` is a mixin: it keeps no state of its own).

Rules:
1. One client write per upstream read (``flush``): the parts of one read are joined when small,
   handed over as they are when large (no copy). A head relayed with nothing added or edited
   is kept on its upstream connection (``ResponseHead.relayed``) and reused while the upstream
   repeats that head.
2. Framing: a response without content-length is re-chunked for an HTTP/1.1 client and ends with
   the connection for an HTTP/1.0 one; HEAD, 204 and 304 have no body (RFC 9112 §6.3).
3. Keep-alive survives only if the client asked for it and its request body was read to its end
   (``connection: close`` otherwise); an HTTP/1.0 client's keep-alive is confirmed explicitly.
4. A full client write buffer pauses the upstream's reading; a full upstream write buffer pauses
   the client's.
5. ``bytes_sent`` (the access log's ``bytes``) counts the response body bytes handed to the client
   connection, everything after the head, chunk framing included (NGINX's ``$body_bytes_sent``):
   it grows as each part is queued in ``out``, and ``Exchange._fail`` takes back what was queued
   but never written.
6. A ``101 Switching Protocols`` is relayed only to a WebSocket handshake (``upgrade``), with
   ``connection: upgrade`` and ``upgrade: websocket`` put back (the backend's are hop-by-hop);
   to any other request it is an ``UpstreamProtocolError`` (502). The exchange then becomes a
   tunnel (``on_switched``): the upstream connection leaves the pool, both transports go to a
   ``tunnel.Tunnel``, and the exchange finishes when the tunnel closes (``tunnel_closed``).
"""

import asyncio

from mirrorgate.dataplane import flow
from mirrorgate.dataplane.headers import HeaderEdit
from mirrorgate.dataplane.replies import STATUS_LINES as _STATUS_LINES, status_line
from mirrorgate.dataplane.state import ClientConnection, GatewayState
from mirrorgate.dataplane.tunnel import Tunnel
from mirrorgate.errors import UpstreamProtocolError
from mirrorgate.upstream.connection import ResponseHead, UpstreamConnection
from mirrorgate.wire.hop import strip_hop_by_hop


class ResponseRelay:
    """The ``ResponseSink`` half of ``Exchange``, whose ``__init__`` sets these attributes (the
    slots of those this half assigns are declared here: one base of ``Exchange`` may have slots)."""

    __slots__ = (
        "body_conn",
        "bytes_sent",
        "conn",
        "keep_alive",
        "out",
        "response_chunked",
        "response_started",
        "status",
        "timer",
    )

    # the request, as the exchange received it
    method: bytes
    version: str
    upgrade: bool
    keep_alive: bool
    body_done: bool
    request_sent: bool
    # the exchange's context and upstream connection
    proto: ClientConnection
    state: GatewayState
    conn: UpstreamConnection | None
    body_conn: UpstreamConnection | None
    timer: asyncio.TimerHandle | None
    response_edits: tuple[HeaderEdit, ...]
    # the response
    status: int
    bytes_sent: int
    response_chunked: bool
    response_started: bool
    out: list[bytes]

    def finish(self) -> None:
        raise NotImplementedError  # ``Exchange.finish``

    def on_switched(self, conn: UpstreamConnection, rest: bytes) -> None:
        """The backend's 101 was relayed (rule 8): the exchange becomes a tunnel; ``rest`` is what
        the backend sent after its head."""
        timer = self.timer
        if timer is not None:
            self.timer = None
            timer.cancel()
        self.conn = self.body_conn = None
        self.state.pool.hand_over(conn)
        upstream = conn.transport
        handed = self.proto.hand_over()
        if handed is None or upstream is None or upstream.is_closing():  # one side is gone already
            conn.abort()
            self.proto.abort()
            return self.finish()
        client, early = handed
        tunnel = Tunnel(self, client, upstream, self.state.limits.websocket_idle_timeout, self.proto.connection_lost)
        tunnel.start(early, rest, self.proto.write_paused)

    def tunnel_closed(self, to_client: int) -> None:
        self.bytes_sent = to_client
        self.finish()

    def on_response_head(self, rh: ResponseHead) -> None:
        status = self.status = rh.status
        if status == 101:
            return self._switching_head(rh)
        if rh.content_length is not None and self.keep_alive and self.body_done and self.version == "1.1":
            if not self.response_edits:  # the common case: the head as relayed last time, if any
                head = rh.relayed
                if not head:
                    head = rh.relayed = self._head_lines(rh, status) + b"\r\n"
                self.out.append(head)
                return
            self.out.append(self._head_lines(rh, status) + b"\r\n")  # nothing to add
            return
        extra = b"\r\n"
        if rh.content_length is None and self.method != b"HEAD" and status != 204 and status != 304:
            if self.version == "1.1":
                extra = b"transfer-encoding: chunked\r\n\r\n"
                self.response_chunked = True
            else:
                self.keep_alive = False  # HTTP/1.0: the body ends when we close
        if not self.keep_alive or not self.body_done:
            extra = extra[:-2] + b"connection: close\r\n\r\n"
            self.keep_alive = False
        elif self.version == "1.0":
            extra = extra[:-2] + b"connection: keep-alive\r\n\r\n"
        self.out.append(self._head_lines(rh, status) + extra)

    def _switching_head(self, rh: ResponseHead) -> None:
        """Rule 6: the 101's head as relayed to the client."""
        if not self.upgrade:
            raise UpstreamProtocolError("upstream switched protocols unasked")
        self.out.append(self._head_lines(rh, 101) + b"connection: upgrade\r\nupgrade: websocket\r\n\r\n")

    def _head_lines(self, rh: ResponseHead, status: int) -> bytes:
        """The status line and the header lines to relay (rule 1 of the module: hop-by-hop lines
        dropped, response edits applied), without the empty line."""
        block = None if self.response_edits else rh.relay_block()
        if block is None:
            headers = strip_hop_by_hop(rh.headers)
            for edit in self.response_edits:
                headers = edit.apply(headers)
            block = b"".join([b"%s: %s\r\n" % line for line in headers])
        return (_STATUS_LINES.get(status) or status_line(status)) + block

    def on_response_body(self, chunk: bytes) -> None:
        if self.response_chunked:
            size = b"%x\r\n" % len(chunk)
            self.bytes_sent += len(size) + len(chunk) + 2
            self.out += (size, chunk, b"\r\n")
        else:
            self.bytes_sent += len(chunk)
            self.out.append(chunk)

    def flush(self) -> None:
        out = self.out
        if out:
            self.out = []
            self._write_out(out)

    def _write_out(self, out: list[bytes]) -> None:
        # one send per upstream read: small parts are joined (cheaper than writelines), large
        # ones are handed over as they are (no copy)
        self.response_started = True
        if len(out) == 1:
            self.proto.write(out[0])
        elif len(out) == 2 and len(out[1]) <= 16384:  # a head and a small body: the common case
            self.proto.write(out[0] + out[1])
        elif sum(map(len, out)) <= 16384:
            self.proto.write(b"".join(out))
        else:
            self.proto.writelines(out)

    def on_response_complete(self, reusable: bool) -> None:
        out = self.out
        if self.response_chunked:
            out.append(b"0\r\n\r\n")
            self.bytes_sent += 5
        if len(out) == 2 and len(out[1]) <= 16384:  # a head and a small body: the common case
            self.out = []
            self.response_started = True
            self.proto.write(out[0] + out[1])
        elif out:  # flush(), inlined
            self.out = []
            self._write_out(out)
        conn = self.conn
        if conn is not None:  # _release, minus what the connection already did (detached us)
            self.conn = self.body_conn = None
            if conn.read_paused:
                conn.resume_reading()
            self.state.pool.release(conn, reusable and self.request_sent)
        self.finish()

    def on_upstream_write_paused(self, paused: bool) -> None:
        if paused:
            self.proto.gate.pause(flow.UPSTREAM_WRITE)
        else:
            self.proto.gate.resume(flow.UPSTREAM_WRITE)

    def on_client_write_paused(self, paused: bool) -> None:
        """The client's write buffer crossed its high-water mark (or drained)."""
        conn = self.conn
        if conn is None:
            return
        if paused:
            conn.pause_reading()
        else:
            conn.resume_reading()
