"""One request/response exchange: route, filter, forward, relay, log.

Owns: the state of one request from its parsed head to the last byte of its response: the
request body as it streams in, the routing decision, the upstream connection while in use,
timeouts and local replies; the response relay (``relay.ResponseRelay``) and the access-log line
(``accesslog.AccessLogged``) are its two mixins.

Rules:
1. Bodies stream both ways and are never buffered whole. Before an upstream connection is
   attached the request body is held in a list of chunks bounded by ``flow.HIGH_WATER`` (client
   reading pauses above it); afterwards each chunk is written upstream from the parser callback.
   A full upstream write buffer pauses the client's reading; a full client write buffer pauses
   the upstream's reading.
2. An exchange is driven by callbacks, not by a task: ``begin`` runs from ``loop.call_soon``, a
   pooled connection is taken synchronously, and the response's head, body, end, failure and the
   timeout timer are callbacks; ``finish`` runs exactly once at the end. A tracked task exists
   only while a new upstream connection is dialled (or waited for). The upstream head and the
   body buffered so far leave in one write (``_send_head``); each upstream read is relayed to
   the client with one write (``flush``). This keeps a keep-alive request to a pooled backend at
   no task, no future and no coroutine, and two sends. A ``Plan.plain`` rule (no request
   filters, no mirrors) has its upstream head encoded in one pass over the request headers
   (``headers.encode_forward``).
3. Filters apply in the IR's order: rule RequestHeaderModifier, rule URLRewrite, **mirror hook**,
   backend choice, backendRef RequestHeaderModifier and URLRewrite; redirects (rule or
   backendRef) answer locally; response edits are the rule's then the backendRef's.
4. Mirror hook: when the rule has mirrors and a dispatcher is installed, ``submit`` is called once,
   synchronously, with the filtered head; the ``BodyTee`` it returns receives every body chunk
   (the ones already buffered first) and ``end``/``abort``. Nothing here ever waits for it.
   Each hook call passes the exchange itself last: the mirror access log, when on, reads its
   request id and route (nothing reads it when off). On the plain path one precomputed flag
   (``Plan.mirror_policy``) sends a rule whose mirrors have MirrorPolicy settings or compare to
   ``compared.MirrorCalls``; mirrors with settings (``Plan.mirror_shapes``/``Target.mirror_shapes``
   not None) go with their shapes and the client's target and headers as received (the
   sampling keys' source): ``admit_shaped``/``start_shaped`` on the plain path, ``submit``.
5. Errors: an ``UpstreamError`` or a timeout before the response head was relayed becomes a local
   reply with its status (``errors.py`` owns the mapping; timeouts are 504); after, the client
   connection is aborted. Anything else is a bug: logged once with its traceback, then 500 or
   an abort (a bug must not take the process down, nor go unnoticed).
6. Retry: a request sent on a *reused* pooled connection that the upstream closed before
   answering (``StaleConnection``) is resent once on another connection when it is idempotent
   and has no body (a streamed body cannot be replayed).
7. Keep-alive: the client connection survives only if the client asked for it, the request body
   was read to its end and the response was framed (content-length or chunked).
8. Upgrade (``upgrade``, a WebSocket handshake: the protocol's rule 5): routed, filtered and
   timed like any request, forwarded with ``connection: upgrade`` and ``upgrade: websocket``,
   never mirrored (each sampled mirror counted as dropped, reason ``upgrade``). After the
   backend's 101 (relayed, ``relay.py``) the route's timeout stops, the upstream connection
   leaves the pool (``Pool.hand_over``) and both transports go to a ``tunnel.Tunnel``; the
   exchange finishes when the tunnel closes (its access line: status 101, the bytes relayed to
   the client, the tunnel's whole duration). Any other answer is relayed as usual.
9. Comparing responses: a rule or backendRef with a mirror that compares (``Plan.compare``,
   ``Target.compare``) calls ``start_compared``/``submit_compared`` instead (with its shapes,
   as rule 4); with the capture they return, the exchange relays as a ``ComparedExchange``
   (``dataplane/compared.py``).
"""

import asyncio
import logging
import time
from typing import Any

from mirrorgate.dataplane import flow
from mirrorgate.dataplane.accesslog import AccessLogged
from mirrorgate.dataplane.compared import CapturingRelay, MirrorCalls
from mirrorgate.dataplane.headers import (
    HeaderEdit,
    encode_forward,
    encode_head,
    forward_headers,
    redirect_location,
    url_rewrite,
)
from mirrorgate.dataplane.matcher import Decision, Plan, Target
from mirrorgate.dataplane.relay import ResponseRelay
from mirrorgate.dataplane.replies import (
    CONTINUE,
    local_reply,
    redirect_reply,
    strip_body,
)
from mirrorgate.dataplane.state import BodyTee, ClientConnection, GatewayState, ResponseCapture, access_log
from mirrorgate.errors import ProtocolError, UpstreamError
from mirrorgate.ir.table import Redirect
from mirrorgate.upstream.connection import StaleConnection, UpstreamConnection
from mirrorgate.upstream.tls import Key
from mirrorgate.wire.authority import authority

log = logging.getLogger("mirrorgate.dataplane")

Header = tuple[bytes, bytes]

_NONE: Any = ()  # ``body_chunks`` and ``tees`` until their first item (a tuple: nobody can append to it)
_monotonic = time.monotonic
_UPGRADE_LINES = b"connection: upgrade\r\nupgrade: websocket\r\n"  # rule 8
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class Exchange(ResponseRelay, AccessLogged, MirrorCalls):
    """One request and its response; created by the protocol when a head is parsed.

    The hook for mirroring is ``_submit_mirrors`` (``compared.MirrorCalls``, with the plain
    path's calls beyond ``admit``/``start``): the dispatcher receives the filtered head and
    returns a ``BodyTee``; ``feed_body``/``end_body``/``fail_body`` feed it as the body streams.
    """

    __slots__ = (  # and those of ``ResponseRelay``
        "body_chunks",
        "body_done",
        "body_error",
        "body_size",
        "capture",
        "chunked",
        "content_length",
        "discard_body",
        "expect_continue",
        "finished",
        "has_body",
        "headers",
        "host",
        "key",
        "method",
        "proto",
        "request_id",
        "request_sent",
        "response_edits",
        "retried",
        "reused",
        "route",
        "started",
        "state",
        "target",
        "task",
        "tees",
        "upgrade",
        "upstream_head",
        "version",
    )

    def __init__(
        self,
        proto: ClientConnection,
        state: GatewayState,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[Header],
        host: bytes,
        keep_alive: bool,
        chunked: bool,
        content_length: int | None,
        expect_continue: bool,
    ) -> None:
        # the request head: parsed and validated by the protocol; header names lower-case,
        # ``target`` origin-form (or ``*``), ``host`` the authority (absolute-form target, else Host)
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.host = host
        self.keep_alive = keep_alive  # the client's wish; false once the connection must close
        self.chunked = chunked
        self.content_length = content_length
        self.expect_continue = expect_continue
        self.has_body = has_body = chunked or bool(content_length)
        self.upgrade = False  # a WebSocket handshake (set by the protocol, rule 8)
        # fixed at creation
        self.proto = proto
        self.state = state
        self.started = _monotonic()
        # lifecycle
        self.task: asyncio.Task[None] | None = None  # only while dialling a new upstream connection
        self.timer: asyncio.TimerHandle | None = None  # request/backendRequest timeout
        self.finished = False
        # request body
        self.body_chunks: list[bytes] = _NONE  # (a list once the first chunk is buffered)
        self.body_size = 0
        self.body_conn: UpstreamConnection | None = None
        self.body_done = not has_body
        self.body_error: ProtocolError | None = None
        self.discard_body = False
        self.request_sent = False
        self.tees: list[BodyTee] = _NONE  # (a list once a mirror needs the body)
        # routing (for the access log)
        self.route = ""
        self.request_id = b""
        # upstream
        self.conn: UpstreamConnection | None = None
        self.reused = False
        self.retried = False
        self.key: Key = ("", 0)  # the endpoint, once chosen
        self.upstream_head = b""
        self.response_edits: tuple[HeaderEdit, ...] = ()
        # response
        self.status = 0
        self.bytes_sent = 0
        self.response_chunked = False
        self.response_started = False
        self.out: list[bytes] = []  # response bytes relayed in the current upstream batch

    # --- request body, driven by the protocol's parser callbacks --------------------------------

    def feed_body(self, chunk: bytes) -> None:
        for tee in self.tees:
            tee.feed(chunk)
        conn = self.body_conn
        if conn is not None:
            self._write_body(conn, chunk)
        elif not self.discard_body:
            if self.body_chunks:
                self.body_chunks.append(chunk)
            else:
                self.body_chunks = [chunk]
            self.body_size += len(chunk)
            if self.body_size > flow.HIGH_WATER:
                self.proto.gate.pause(flow.BODY_BUFFER)

    def end_body(self) -> None:
        self.body_done = True
        for tee in self.tees:
            tee.end()
        conn = self.body_conn
        if conn is not None:
            self._finish_body(conn)

    def fail_body(self, err: ProtocolError) -> None:
        """The client broke framing mid-body: nothing more will come; the exchange must not reuse
        its upstream connection nor the client's."""
        self.body_error = err
        self.keep_alive = False
        for tee in self.tees:
            tee.abort()
        self.tees = _NONE
        if self.conn is not None and not self.finished:  # forwarding: the upstream saw a partial body
            self._fail(err.status)
            self.finish()

    def _write_body(self, conn: UpstreamConnection, chunk: bytes) -> None:
        if self.chunked:
            if chunk:  # an empty chunk would end the body
                conn.writelines([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
        else:
            conn.write(chunk)

    def _finish_body(self, conn: UpstreamConnection) -> None:
        if self.chunked:
            conn.write(b"0\r\n\r\n")
        self.request_sent = True

    def _send_head(self, conn: UpstreamConnection) -> None:
        """Write the upstream head and the body buffered so far in one write; later chunks are
        written as they arrive (``feed_body``)."""
        chunks = self.body_chunks
        if self.expect_continue and not self.body_done and not chunks:
            self.proto.write(CONTINUE)
        if not chunks and not (self.body_done and self.chunked):
            conn.write(self.upstream_head)
        else:
            self.body_chunks, self.body_size = _NONE, 0
            out = [self.upstream_head]
            if self.chunked:
                for chunk in chunks:
                    if chunk:
                        out += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
                if self.body_done:
                    out.append(b"0\r\n\r\n")
            else:
                out += chunks
            conn.writelines(out)
        gate = self.proto.gate
        if gate.reasons & flow.BODY_BUFFER:
            gate.resume(flow.BODY_BUFFER)
        self.body_conn = conn
        if self.body_done:
            self.request_sent = True

    # --- lifecycle -----------------------------------------------------------------------------
    # begin() -> local reply | redirect | _route_*() + head -> (pooled conn | _connect task) -> _send()
    # -> ResponseSink callbacks -> on_response_complete / on_upstream_failed / _on_timeout -> finish()

    def begin(self) -> None:
        """Route and start forwarding, once the read that completed the head has been parsed
        (small bodies are then usually complete). ``_route_plain`` (a ``Plan.plain`` rule: the
        head encoded in one pass, ``headers.encode_forward``) or ``_route_filtered`` (filters,
        mirrors, a Connection header) choose the endpoint and return the head's parts; the one
        way to finish and send the head follows here for both (inline: this is the hot path)."""
        if self.finished:  # the client went away before we got to it
            return
        try:
            if self.body_error is not None:
                self._local(self.body_error.status)
                return self.finish()
            proto = self.proto
            if proto.tls_listener is not None and self.state.misdirected(proto, self.host):
                self._local(421)  # RFC 9110 section 15.5.20: the SNI chose another listener
                return self.finish()
            d = self.state.matcher.select(proto.server_key, self.host, self.method, self.target, self.headers)
            self.route = d.route
            plan = d.plan
            if d.status or plan is None:
                self._local(d.status or 404)
                return self.finish()
            if plan.redirect is not None:
                self._redirect(plan.redirect, d)
                return self.finish()
            encoded = None
            if plan.plain and not self.upgrade:
                encoded = encode_forward(
                    self.method, self.target, self.headers, proto.client_ip, proto.scheme, proto.forward_tail
                )
            if encoded is not None:
                parts, self.request_id, host_at = encoded
                target = self._route_plain(plan, parts, host_at)
                if target is None:  # answered locally
                    return self.finish()
            else:
                routed = self._route_filtered(plan, d)
                if routed is None:  # answered locally
                    return self.finish()
                parts, host_at, target = routed
            key = self.key
            if host_at < 0:  # HTTP/1.0 clients may omit Host; HTTP/1.1 upstreams require one
                parts += (b"host: ", authority(key[0], key[1]), b"\r\n")
            if self.chunked:
                parts.append(b"transfer-encoding: chunked\r\n")
            parts.append(b"\r\n")
            self.response_edits = target.response_edits
            self.upstream_head = b"".join(parts)
            if plan.timeout is not None:
                self.timer = proto.loop.call_later(plan.timeout, self._on_timeout)
            conn = self.state.pool.take_idle(key)
            if conn is None:
                self.task = self.state.track(self._connect())
            elif not self.has_body:  # _send, for the common case: nothing but the head to send
                self.conn = self.body_conn = conn
                self.reused = True
                conn.begin(self, self.method == b"HEAD")
                conn.write(self.upstream_head)
                self.request_sent = True
                if proto.write_paused:
                    conn.pause_reading()
            else:
                self._send(conn, True)
        except Exception:  # the one catch-all of an exchange: a bug (logged with its traceback)
            log.exception("bug while handling %r %r", self.method, self.target)
            self._fail(500)
            self.finish()

    def _route_plain(self, plan: Plan, parts: list[bytes], host_at: int) -> Target | None:
        """The hot path's routing (``Plan.plain``): mirrors, then the backend and its endpoint
        (``self.key``); the head is encoded but for the lines that depend on the endpoint. The
        steps and their order are those of ``_route_filtered``. None: answered locally."""
        if plan.mirrors:
            dispatcher = self.state.mirror
            if dispatcher is not None:
                if not plan.mirror_policy:
                    admitted = dispatcher.admit(plan.mirrors, self)  # (self: for the mirror access log)
                    if admitted is not None:  # the mirrors' head is built only now: drops cost nothing
                        is_head = self.method == b"HEAD"
                        self._tee(
                            dispatcher.start(
                                admitted, parts, host_at, self.has_body, self.content_length, is_head, self
                            )
                        )
                else:  # MirrorPolicy settings or comparing (rules 4 and 9)
                    self._policy_mirrors(dispatcher, plan, parts, host_at)
        target = plan.single or plan.pick(self.state.rng)
        if target is None or target.status:
            self._local(target.status if target is not None else 500)
            return None
        key = target.balancer.choose_key()
        if key is None:
            self._local(503)
            return None
        self.key = key
        return target

    def _route_filtered(self, plan: Plan, d: Decision) -> tuple[list[bytes], int, Target] | None:
        """Routing for rules with request filters or mirrors, and requests with a Connection
        header (filter order: rule 3): the head's parts, the index of its Host value (-1: none)
        and the backend; the endpoint is ``self.key``. None: answered locally."""
        target_bytes, headers = self._rule_filters(plan)
        if plan.action.filters.mirrors and self.state.mirror is not None:
            self._submit_mirrors(plan.action.filters.mirrors, target_bytes, headers, plan.mirror_shapes, plan.compare)
        target = plan.pick(self.state.rng)
        if target is None or target.status:
            self._local(target.status if target is not None else 500)
            return None
        backend = target.backend
        if backend.filters.redirect is not None:
            self._redirect(backend.filters.redirect, d)
            return None
        key = target.balancer.choose_key()
        if key is None:
            self._local(503)
            return None
        if target.request_edit is not None:
            headers = target.request_edit.apply(headers)
        target_bytes = url_rewrite(backend.filters.url_rewrite, target_bytes, headers)
        if backend.filters.mirrors and self.state.mirror is not None:
            # backendRef-level RequestMirror: only when this backend was chosen, after its filters
            self._submit_mirrors(backend.filters.mirrors, target_bytes, headers, target.mirror_shapes, target.compare)
        self.key = key
        parts, host_at = encode_head(self.method, target_bytes, headers)
        if self.upgrade:
            parts.append(_UPGRADE_LINES)
        return parts, host_at, target

    def _dispatch(self) -> None:
        conn = self.state.pool.take_idle(self.key)  # the common case: no coroutine, no task
        if conn is not None:
            self._send(conn, True)
        else:
            self.task = self.state.track(self._connect())

    async def _connect(self) -> None:
        try:
            conn, reused = await self.state.pool.acquire(self.key)
        except UpstreamError as exc:
            self.task = None
            self._fail(exc.status)
            return self.finish()
        except Exception:  # a bug: same policy as begin()
            self.task = None
            log.exception("bug while connecting for %r %r", self.method, self.target)
            self._fail(500)
            return self.finish()
        self.task = None
        if self.finished:  # cannot happen (finish cancels us), but never leak a connection
            self.state.pool.release(conn, False)
            return None
        self._send(conn, reused)

    def _send(self, conn: UpstreamConnection, reused: bool) -> None:
        self.conn = conn
        self.reused = reused
        conn.begin(self, self.method == b"HEAD")
        if self.body_error is not None:  # the client's framing broke before we got here
            self._fail(self.body_error.status)
            return self.finish()
        if self.body_chunks or self.chunked or self.expect_continue:
            self._send_head(conn)
        else:  # nothing buffered, nothing to frame: just the head (BODY_BUFFER cannot be held)
            conn.write(self.upstream_head)
            self.body_conn = conn
            if self.body_done:
                self.request_sent = True
        if self.proto.write_paused:
            conn.pause_reading()

    def _on_timeout(self) -> None:
        self.timer = None
        if not self.finished:
            self._fail(504)
            self.finish()

    def cancel(self) -> None:
        """The client connection is gone: stop everything, release the upstream connection."""
        self.keep_alive = False
        self.finish()

    def finish(self) -> None:
        """The last step of every exchange, exactly once."""
        if self.finished:
            return
        self.finished = True
        task = self.task
        if task is not None:
            self.task = None
            if task is not asyncio.current_task():
                task.cancel()
        if (
            self.timer is not None
            or self.conn is not None
            or not self.body_done
            or self.proto.gate.reasons & (flow.BODY_BUFFER | flow.UPSTREAM_WRITE)
        ):
            self._cleanup()
        if not access_log.disabled and access_log.isEnabledFor(logging.INFO):
            self._log()
        self.proto.exchange_done(self)

    def _rule_filters(self, plan: Plan) -> tuple[bytes, list[Header]]:
        headers, self.request_id = forward_headers(self.headers, self.proto.client_ip, self.proto.scheme)
        if plan.request_edit is not None:
            headers = plan.request_edit.apply(headers)
        return url_rewrite(plan.action.filters.url_rewrite, self.target, headers), headers

    def _compared(self, started: tuple[BodyTee | None, ResponseCapture | None]) -> None:
        """Rule 9: with a capture, relay as a ``ComparedExchange`` (same slots: only the class changes)."""
        tee, capture = started
        if capture is not None:
            self.capture = capture
            self.__class__ = ComparedExchange
        self._tee(tee)

    def _tee(self, tee: BodyTee | None) -> None:
        """Hand the body to the mirrors' tee: what is buffered now, the rest as it streams."""
        if tee is None:
            return
        for chunk in self.body_chunks:
            tee.feed(chunk)
        if self.body_done:
            tee.end()
        else:
            if self.tees:
                self.tees.append(tee)
            else:
                self.tees = [tee]

    def _release(self, reusable: bool) -> None:
        conn, self.conn, self.body_conn = self.conn, None, None
        if conn is not None:
            conn.detach()
            if conn.read_paused:  # paused for a slow client
                conn.resume_reading()
            self.state.pool.release(conn, reusable)
        gate = self.proto.gate
        if gate.reasons & flow.UPSTREAM_WRITE:
            gate.resume(flow.UPSTREAM_WRITE)

    def _cleanup(self) -> None:
        timer = self.timer
        if timer is not None:
            self.timer = None
            timer.cancel()
        if self.conn is not None:
            self._release(False)
        if not self.body_done:
            self.keep_alive = False
            self.discard_body = True
            self.body_chunks = _NONE
            for tee in self.tees:
                tee.abort()
            self.tees = _NONE
        gate = self.proto.gate
        if gate.reasons & (flow.BODY_BUFFER | flow.UPSTREAM_WRITE):
            gate.resume(flow.BODY_BUFFER | flow.UPSTREAM_WRITE)

    # --- local answers -----------------------------------------------------------------------------

    def _local(self, status: int) -> None:
        if not self.body_done:
            self.keep_alive = False
        reply = local_reply(status, self.keep_alive)
        if self.method == b"HEAD":
            reply = strip_body(reply)
        self._reply(status, reply)

    def _redirect(self, redirect: Redirect, d: Decision) -> None:
        if not self.body_done:
            self.keep_alive = False
        port = d.listener.port if d.listener is not None else self.proto.server_key[1]
        location = redirect_location(redirect, "http", self.host, port, self.target)
        self._reply(redirect.status_code, redirect_reply(redirect.status_code, location, self.keep_alive))

    def _reply(self, status: int, data: bytes) -> None:
        if self.keep_alive and self.version == "1.0":  # rare: HTTP/1.0 keep-alive must be confirmed
            data = data.replace(b"\r\n\r\n", b"\r\nconnection: keep-alive\r\n\r\n", 1)
        self.status = status
        self.bytes_sent = len(data) - data.index(b"\r\n\r\n") - 4  # the body: what follows the head
        self.response_started = True
        self.proto.write(data)

    def _fail(self, status: int) -> None:
        """An error after routing: a local reply if nothing was written to the client yet (a head
        parsed in the same upstream read as the error is discarded with what followed it), else
        abort the client."""
        self._release(False)
        unsent, self.out = self.out, []
        if not self.response_started:
            self._local(status)
        else:
            self.bytes_sent -= sum(map(len, unsent))  # body parts relayed but never written
            self.keep_alive = False
            self.proto.abort()

    # --- ResponseSink (the rest is ``relay.ResponseRelay``) ---------------------------------------

    def on_upstream_failed(self, exc: UpstreamError) -> None:
        if self.finished:
            return
        retry_safe = self.method in IDEMPOTENT and not self.has_body
        if (
            isinstance(exc, StaleConnection)
            and self.reused
            and not self.retried
            and retry_safe
            and not self.response_started
        ):
            self.retried = True  # rule 6: once, on another connection
            self._release(False)
            self._dispatch()
            return
        self._fail(exc.status)
        self.finish()


class ComparedExchange(CapturingRelay, Exchange):
    """An exchange whose response is captured for mirrors that compare responses (rule 9)."""

    __slots__ = ()  # the layout of ``Exchange``: ``_compared`` can swap the class
    _relay_head, _relay_body = Exchange.on_response_head, Exchange.on_response_body
    _relay_complete, _relay_finish = Exchange.on_response_complete, Exchange.finish
