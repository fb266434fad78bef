"""One mirrored request (``Shadow``) and the fan-out tee the exchange feeds (``Tee``).

A ``Shadow`` is the mirror side of one primary request for one mirror: it frames and forwards
the body as the primary's body streams, and it is the ``ResponseSink`` its upstream connection
drives (the response is read to its end and discarded).

Rules:
1. ``feed``/``end``/``abort`` return at once: bytes go to the mirror connection's transport
   (which buffers them) or, before the connection exists, to a pending list. Nothing here ever
   pauses the client or the primary.
2. Lag = bytes pending for this mirror plus its transport's write buffer, measured at each feed.
   Above ``body_lag_budget`` (or when all mirrors together exceed ``max_buffered_bytes``) the
   mirror is abandoned with ``body_lag``: its connection is aborted, its buffers are freed.
3. Framing follows ``MirrorHead``: chunked bodies are re-chunked chunk by chunk (empty chunks are
   never sent, they would end the body); a content-length body that disagrees with its length is
   abandoned with ``body_mismatch``.
4. ``abort`` before the body ended (the client vanished) abandons with ``primary_aborted``; after
   the body ended the mirror is detached from the primary and completes on its own.
5. The response deadline (``timeout``) is armed when the request body has ended: a mirror that
   keeps up with a long upload is never cut by it.
6. Only the owner (the dispatcher) decides outcomes; a Shadow reports through ``owner``.
7. A mirror with its own ``timeout`` or lag budget (a MirrorPolicy's ``timeout`` and
   ``maxBodyLag``) is a ``PolicyShadow``: the same, with the two limits of its own in place of the
   gateway's (``max_buffered_bytes`` still counts it). A plain ``Shadow`` reads neither. A
   compared mirror (``capture.CompareShadow``) is always one: its policy's limits, or the
   gateway's as of its admission.
"""

import asyncio
from typing import ClassVar, Protocol

from mirrorgate.errors import UpstreamError
from mirrorgate.ir.table import UpstreamAddress
from mirrorgate.mirror.backend import BackendState
from mirrorgate.mirror.config import DropReason
from mirrorgate.mirror.head import MirrorHead
from mirrorgate.mirror.metrics import MirrorSeries
from mirrorgate.upstream.connection import ResponseHead, UpstreamConnection
from mirrorgate.upstream.tls import Key

_LAST_CHUNK = b"0\r\n\r\n"


class ShadowOwner(Protocol):
    """What a Shadow needs from its dispatcher."""

    def abandon(self, shadow: "Shadow", reason: DropReason) -> None: ...
    def account(self, old: int, new: int) -> bool: ...  # update buffered bytes; False: over budget
    # ``account`` with this mirror's own lag budget (rule 7)
    def account_within(self, old: int, new: int, budget: int) -> bool: ...
    # loop time at which a request ending now times out (``timeout``: this mirror's own, rule 7)
    def deadline(self, timeout: float | None = None) -> float: ...
    def arm(self, deadline: float) -> None: ...  # an in-flight mirror got its deadline (rule 5)
    def response_complete(self, shadow: "Shadow", keep_alive: bool) -> None: ...
    def response_failed(self, shadow: "Shadow", exc: UpstreamError) -> None: ...


class Shadow:
    __slots__ = (
        "backend",
        "body_done",
        "body_seen",
        "conn",
        "deadline",
        "endpoint",
        "finished",
        "head",
        "key",
        "lag",
        "owner",
        "pending",
        "pending_bytes",
        "probe",
        "retried",
        "reused",
        "series",
        "slot",
        "started",
        "status",
        "task",
    )
    compared: ClassVar[bool] = False  # a ``capture.CompareShadow`` (the dispatcher's rule 11)

    def __init__(
        self,
        owner: ShadowOwner,
        head: MirrorHead,
        endpoint: UpstreamAddress,
        backend: "BackendState[Shadow]",
        series: MirrorSeries,
        started: float,
        probe: int,
        deadline: float | None,
        key: Key | None = None,
    ) -> None:
        # fixed at submit
        self.owner = owner
        self.head = head
        self.endpoint = endpoint
        self.key: Key = key or (endpoint.address, endpoint.port)  # the pool key (upstream.tls)
        self.backend = backend
        self.series = series
        self.started = started  # submitted (the duration metric counts from here)
        self.probe = probe  # its number if it is the breaker's half-open probe, else 0
        # the body, while it streams
        self.body_done = deadline is not None  # ``deadline`` is given iff the request has no body
        self.body_seen = 0
        self.pending: list[bytes] | None = None  # framed bytes waiting for a connection
        self.pending_bytes = 0
        self.lag = 0  # last measured lag, as accounted with the owner
        # the exchange with the mirror backend (driven by callbacks; ``task`` only while dialling)
        self.slot = False  # holds one of its backend's concurrency slots (the dispatcher's flag)
        self.task: asyncio.Task[None] | None = None
        self.conn: UpstreamConnection | None = None
        self.reused = False
        self.retried = False
        self.deadline = deadline
        self.status = 0
        self.finished = False

    def __repr__(self) -> str:
        return f"<Shadow {self.series.mirror} -> {self.endpoint.address}:{self.endpoint.port} lag={self.lag}>"

    # --- body, from the primary's tee (rule 1) --------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        if self.finished or self.body_done or not chunk:
            return
        self.body_seen += len(chunk)
        length = self.head.content_length
        if length is not None and self.body_seen > length:
            self.owner.abandon(self, DropReason.BODY_MISMATCH)
        elif self.head.chunked:
            size_line = b"%x\r\n" % len(chunk)
            self._send([size_line, chunk, b"\r\n"], len(size_line) + len(chunk) + 2)
        else:
            self._send([chunk], len(chunk))

    def end(self) -> None:
        if self.finished or self.body_done:
            return
        self.body_done = True
        length = self.head.content_length
        if length is not None and self.body_seen != length:
            self.owner.abandon(self, DropReason.BODY_MISMATCH)
            return
        if self.head.chunked:
            self._send([_LAST_CHUNK], len(_LAST_CHUNK))
            if self.finished:
                return
        self.deadline = deadline = self.owner.deadline()
        if self.slot:
            self.owner.arm(deadline)

    def abort(self) -> None:
        if not self.finished and not self.body_done:
            self.owner.abandon(self, DropReason.PRIMARY_ABORTED)

    def _send(self, parts: list[bytes], size: int) -> None:
        conn = self.conn
        if conn is None:
            if self.pending is None:
                self.pending = parts
            else:
                self.pending += parts
            self.pending_bytes += size
            self._set_lag(self.pending_bytes)
            return
        transport = conn.transport
        if conn.lost or transport is None or transport.is_closing():
            return  # the connection reports its own failure
        transport.writelines(parts)
        self._set_lag(transport.get_write_buffer_size())

    def _set_lag(self, lag: int) -> None:
        old, self.lag = self.lag, lag
        if not self.owner.account(old, lag):
            self.owner.abandon(self, DropReason.BODY_LAG)

    def release_buffers(self) -> None:
        """Forget pending bytes and give this mirror's share of the buffer budget back."""
        self.pending = None
        self.pending_bytes = 0
        old = self.lag
        if old:
            self.lag = 0
            self.owner.account(old, 0)

    # --- the connection, from the dispatcher ------------------------------------------------------

    def attach(self, conn: UpstreamConnection, cork: "list[tuple[asyncio.Transport, bytes]] | None" = None) -> None:
        """Send the head and everything pending on ``conn``; the response is reported to the
        owner (``response_complete``/``response_failed``) through this sink's callbacks. With
        ``cork``, a request without a body leaves its head there for the caller to write (the
        pump writes the heads of one turn back to back)."""
        self.conn = conn
        conn.begin(self, self.head.is_head)
        transport = conn.transport
        assert transport is not None
        head = self.head.whole or self.head.for_endpoint(self.endpoint)
        pending = self.pending
        if pending is None:
            if cork is not None and not self.head.has_body:
                cork.append((transport, head))
                return
            transport.write(head)
        else:
            self.pending, self.pending_bytes = None, 0
            transport.writelines([head, *pending])
        buffered = transport.get_write_buffer_size()
        if buffered or self.lag:
            self._set_lag(buffered)

    def detach(self) -> UpstreamConnection | None:
        """Stop listening to the connection and hand it back (to be released by the caller)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.detach()
        return conn

    # --- ResponseSink: read to the end, discard ----------------------------------------------------

    def on_response_head(self, head: ResponseHead) -> None:
        self.status = head.status

    def on_response_body(self, chunk: bytes) -> None:
        pass

    def on_response_complete(self, reusable: bool) -> None:
        if self.conn is not None:
            self.owner.response_complete(self, reusable)

    def on_upstream_failed(self, exc: UpstreamError) -> None:
        if self.conn is not None:
            self.owner.response_failed(self, exc)

    def on_upstream_write_paused(self, paused: bool) -> None:
        pass  # never propagated: the lag budget bounds what a slow mirror may hold (rule 2)

    def flush(self) -> None:
        pass  # nothing is relayed


class PolicyShadow(Shadow):
    """A ``Shadow`` with its own response ``timeout`` (seconds; None: the gateway's) and lag
    ``budget`` (bytes) (rule 7)."""

    __slots__ = ("budget", "timeout")

    def __init__(
        self,
        owner: ShadowOwner,
        head: MirrorHead,
        endpoint: UpstreamAddress,
        backend: "BackendState[Shadow]",
        series: MirrorSeries,
        started: float,
        probe: int,
        deadline: float | None,
        key: Key | None,
        timeout: float | None,
        budget: int,
    ) -> None:
        Shadow.__init__(self, owner, head, endpoint, backend, series, started, probe, deadline, key)
        self.timeout = timeout
        self.budget = budget

    def end(self) -> None:
        """``Shadow.end`` with this mirror's own ``timeout`` (rule 7): the plain ``Shadow`` never
        reads one."""
        if self.finished or self.body_done:
            return
        self.body_done = True
        length = self.head.content_length
        if length is not None and self.body_seen != length:
            self.owner.abandon(self, DropReason.BODY_MISMATCH)
            return
        if self.head.chunked:
            self._send([_LAST_CHUNK], len(_LAST_CHUNK))
            if self.finished:
                return
        self.deadline = deadline = self.owner.deadline(self.timeout)
        if self.slot:
            self.owner.arm(deadline)

    def _set_lag(self, lag: int) -> None:
        old, self.lag = self.lag, lag
        if not self.owner.account_within(old, lag, self.budget):
            self.owner.abandon(self, DropReason.BODY_LAG)


class Tee:
    """The ``BodyTee`` the exchange feeds: fans each call out to the shadows of one request."""

    __slots__ = ("shadows",)

    def __init__(self, shadows: list[Shadow]) -> None:
        self.shadows = shadows

    def feed(self, chunk: bytes) -> None:
        for shadow in self.shadows:
            shadow.feed(chunk)

    def end(self) -> None:
        for shadow in self.shadows:
            shadow.end()

    def abort(self) -> None:
        for shadow in self.shadows:
            shadow.abort()
