"""Capturing both responses of a compared mirror: the primary's as it is relayed, the mirror's as
its ``Shadow`` reads it (``docs/mirroring.md``, "Comparing responses").

A request whose admitted mirrors have ``compare`` gets one ``PrimaryCapture`` (fed by the
exchange, ``dataplane/exchange.py``'s ``ComparedExchange``) and, per compared mirror, one
``CompareShadow``: the mirror's ``Shadow``, its comparison and the capture of its response in one
object (one object per compared mirror, not three). When both sides have ended, the comparison
goes to its ``Board`` (``board.py``), which compares later on the loop.

Rules:
1. Capturing copies nothing the relay does not already have: a side keeps references to the
   chunks it saw until ``limit`` bytes are kept (the last one sliced), counts the whole length
   and, once the body is longer than what it keeps, updates a running BLAKE2b digest of the
   whole body (a body kept whole is digested from the kept bytes, when it is compared). The
   head is kept as the raw bytes received (parsed only when compared). Nothing here writes, pauses or waits.
2. Every comparison ends exactly once (``Board.settle``): compared when both sides completed;
   else counted as ``mirror_failed`` (the mirror was dropped, with its reason) or as
   ``primary_failed`` (the primary's upstream failed, or the client went away): never a mismatch.
   The primary's exchange and the mirror's ``Shadow`` each end exactly once, so no comparison
   stays pending.
3. Memory: a comparison holds at most ``2 x max_body_bytes`` of body plus both response heads,
   the request head and the mirror's (its ``CompareShadow`` is kept until it is compared); the
   board caps how many are pending at once, and the bytes kept by all of them together: each
   chunk a side keeps is reserved in its board's ``reserved`` (the whole chunk inline when it
   fits, else through ``take``); granted less, it keeps what it was granted and no more (the
   whole length and digest still count, so it is compared by them). What a side kept is what
   the board gives back when the side is released (``Board._release``); from then on the side
   keeps, counts and digests nothing more (``limit`` -1): a mirror that failed while the
   primary's body still streams costs the primary's relay no more hashing.
4. Cost: the per-request path (``PrimaryCapture``, ``CompareShadow``, their ``head``/``body``/
   ``complete`` calls) is what comparing adds to every compared request, so each call is the
   fewest steps that keep rules 1-3: one object per side, the common chunk kept inline.
"""

import hashlib
import time
from types import FunctionType
from typing import Any, ClassVar, Protocol

from mirrorgate.ir.table import Mirror, MirrorCompare, UpstreamAddress
from mirrorgate.mirror.backend import BackendState
from mirrorgate.mirror.compare import Side
from mirrorgate.mirror.head import MirrorHead
from mirrorgate.mirror.metrics import MirrorSeries
from mirrorgate.mirror.shadow import PolicyShadow, Shadow, ShadowOwner
from mirrorgate.upstream.connection import ResponseHead, header_lines
from mirrorgate.upstream.tls import Key

Header = tuple[bytes, bytes]
# method, target, headers as the client sent them, and the request id forwarded (``x-request-id``)
Request = tuple[bytes, bytes, list[Header], bytes]
_blake2b = hashlib.blake2b
_monotonic = time.monotonic


class Capture:
    """One side's response (rule 1): the primary's is a ``PrimaryCapture``, a mirror's its
    ``CompareShadow``. A mixin: each of them declares ``SLOTS`` (and ``status``: the shadow's is
    ``Shadow.status``) and calls ``_capture`` before it reads a field.

    Each subclass runs its own copy of the per-chunk code (``OWN_CODE``): CPython specializes
    attribute access per code object for one type at a time, and the primary's and the mirror's
    chunks alternate, so one shared copy, seeing the two layouts in turn, would miss its caches
    on every call (the generic lookup, several times slower). A subclass that defines one of
    those names itself keeps its own; an alias in its class body (``on_response_body =
    Capture.body``) gets the copy."""

    __slots__: tuple[str, ...] = tuple()  # (not a literal: mypy checks no slots of a mixin)
    SLOTS = ("board", "digest", "kept", "limit", "parts", "raw", "skipped")
    OWN_CODE = ("_capture", "body", "_body")

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        copies = {}
        own = vars(cls)
        for name in Capture.OWN_CODE:
            shared = vars(Capture)[name]
            copies[id(shared)] = copy = FunctionType(shared.__code__.replace(), shared.__globals__, shared.__name__)
            if name not in own or own[name] is shared:
                setattr(cls, name, copy)
        for name, value in tuple(own.items()):  # aliases (``on_response_body = Capture.body``)
            if id(value) in copies:
                setattr(cls, name, copies[id(value)])

    board: "Board"
    digest: Any  # a running blake2b once the body is longer than what is kept
    kept: int  # body bytes kept (each taken from the board's budget, rule 3)
    limit: int  # body bytes it may keep; -1 once released (rule 3)
    parts: list[bytes]
    raw: bytes  # the head as received
    skipped: int  # body bytes not kept (counted, digested)
    status: int

    def _capture(self, board: "Board", limit: int) -> None:
        self.board = board
        self.limit = limit
        self.status = 0
        self.raw = b""
        self.parts = []
        self.kept = 0
        self.skipped = 0
        self.digest = None

    @property
    def length(self) -> int:
        """The whole body's length."""
        return self.kept + self.skipped

    def body(self, chunk: bytes) -> None:
        n = len(chunk)
        kept = self.kept + n
        if kept <= self.limit and self.digest is None:
            board = self.board  # the common case, inline: all of it kept, if the budget allows
            reserved = board.reserved + n
            if reserved <= board.max_pending_bytes:
                board.reserved = reserved
                self.kept = kept
                self.parts.append(chunk)
                return
        self._body(chunk, n)

    def _body(self, chunk: bytes, n: int) -> None:
        """``body`` past the common case: part of ``chunk`` kept (or none), and the digest."""
        if self.limit < 0:  # released (``Board._release``): nothing of it is compared any more
            return
        digest = self.digest
        if digest is not None:  # it runs once nothing more is kept (below)
            self.skipped += n
            digest.update(chunk)
            return
        whole, room = chunk, self.limit - self.kept
        taken = 0
        if room > 0:
            if n > room:
                chunk = chunk[:room]
                n = room
            granted = self.board.take(n)
            if granted < n:  # the process's budget is spent: no more kept (length and digest count)
                self.limit = self.kept + granted
                chunk = chunk[:granted]
                n = granted
            if n:
                self.parts.append(chunk)
                self.kept += n
                taken = n
        if taken < len(whole):
            # Past what is kept: from now on a running digest of the whole body (while the whole
            # body is kept, its digest is made from the kept bytes only when it is needed).
            self.skipped += len(whole) - taken
            digest = self.digest = _blake2b(digest_size=16)
            for part in self.parts:
                digest.update(part)
            digest.update(whole[taken:])

    def digest_of_body(self) -> bytes:
        """The BLAKE2b digest (16 bytes) of the whole body."""
        if self.digest is not None:
            return bytes(self.digest.digest())
        return _blake2b(b"".join(self.parts), digest_size=16).digest()

    def side(self, latency: float) -> Side:
        """The captured response as the compare module reads it (off the relay's path)."""
        digest = self.digest_of_body().hex()
        lines = header_lines(self.raw, self.raw.find(b"\r\n") + 2)  # (after the status line)
        return Side(
            status=self.status,
            headers=tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in lines),
            body=b"".join(self.parts),
            length=self.length,
            digest=digest,
            latency=latency,
        )


class Board(Protocol):
    """What a capture needs of its ``board.Board``."""

    pending: int  # comparisons not released yet (``Board._release``)
    reserved: int  # body bytes kept by the pending comparisons (rule 3)
    max_pending_bytes: int  # at most

    def settle(self, c: "CompareShadow", failure: str | None) -> None: ...
    def take(self, n: int) -> int: ...  # reserve up to ``n`` bytes to keep: how many (rule 3)


class PrimaryCapture(Capture):
    """The primary's side of one request (the exchange calls ``head``/``body`` as it relays,
    ``complete`` when the whole response was relayed and ``end`` once, when it finishes) and the
    comparisons waiting for it."""

    __slots__ = (*Capture.SLOTS, "comparisons", "latency", "open", "request", "started", "status")

    def __init__(self, board: Board, request: Request, limit: int) -> None:
        self._capture(board, limit)
        self.request = request  # method, target, headers as the client sent them; the request id forwarded
        self.comparisons: list[CompareShadow] = []
        self.open = 0  # comparisons not released yet (the board gives the kept bytes back at 0)
        self.started = _monotonic()
        self.latency = -1.0  # seconds; set when the response completed

    def head(self, rh: ResponseHead) -> None:
        if rh.status >= 200:  # an interim response (100 Continue) is followed by the real one
            self.status = rh.status
            self.raw = rh.raw

    def wall(self) -> float:
        """When the capture started, in seconds since the epoch (for a mismatch record)."""
        return time.time() - (_monotonic() - self.started)

    def complete(self) -> None:
        if self.latency >= 0:
            return
        self.latency = _monotonic() - self.started
        for c in self.comparisons:
            if not c.ended and c.mirror_latency >= 0:
                self.board.settle(c, None)

    def end(self) -> None:
        """The exchange finished: comparisons still waiting for a complete primary response fail."""
        if self.latency >= 0:
            return
        for c in self.comparisons:
            if not c.ended:
                self.board.settle(c, "primary_failed")


class CompareShadow(Capture, PolicyShadow):
    """A ``Shadow`` whose response is captured (``Capture``) to be compared with its ``primary``'s:
    one compared mirror of one request (rule 2). Only mirrors with ``compare`` are made of this
    class, so a plain mirror's callbacks do no more work. A compared mirror always comes from a
    MirrorPolicy, so it is a ``PolicyShadow``: its own ``timeout`` and lag budget when the policy
    sets them, the gateway's (as of its admission) otherwise."""

    __slots__ = (*Capture.SLOTS, "ended", "mirror", "mirror_latency", "primary")
    compared: ClassVar[bool] = True

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
        primary: PrimaryCapture,
        mirror: Mirror,
        settings: MirrorCompare,
    ) -> None:
        """``PolicyShadow``'s arguments, then the comparison's: ``mirror`` (with its ``compare``
        ``settings``) compared with ``primary``, pending on its board from now on."""
        Shadow.__init__(self, owner, head, endpoint, backend, series, started, probe, deadline, key)
        self.timeout = timeout  # (``PolicyShadow.__init__``'s, without one more call)
        self.budget = budget
        board = primary.board
        self._capture(board, settings.max_body_bytes)
        self.primary = primary
        self.mirror = mirror
        self.mirror_latency = -1.0  # seconds; set when the mirror's response completed
        self.ended = False
        if not primary.open and primary.limit < self.limit:
            # A sibling started before this one and was already released (dropped at once, as it
            # was started): its release gave the primary's budget back; no body was relayed yet.
            primary.limit = self.limit
        primary.comparisons.append(self)
        primary.open += 1
        board.pending += 1

    def mirror_failed(self, reason: str) -> None:
        if not self.ended:
            self.board.settle(self, reason)

    def on_response_head(self, head: ResponseHead) -> None:
        status = self.status = head.status  # (interim heads: replaced by the final one)
        if status >= 200:
            self.raw = head.raw

    on_response_body = Capture.body

    def on_response_complete(self, reusable: bool) -> None:
        if self.conn is not None:
            if not self.finished and not self.ended:
                self.mirror_latency = _monotonic() - self.primary.started
                if self.primary.latency >= 0:
                    self.board.settle(self, None)
            self.owner.response_complete(self, reusable)
