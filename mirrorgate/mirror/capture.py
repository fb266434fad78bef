"""Capturing both responses of a compared mirror: the primary's as it is relayed, the mirror's as
its ``Shadow`` reads it (``docs/mirroring.md``, "Comparing responses").

A request whose admitted mirrors have ``compare`` gets one ``PrimaryCapture`` (fed by the
exchange, ``dataplane/exchange.py``'s ``ComparedExchange``) and, per compared mirror, one
``Comparison`` holding the mirror's ``Capture`` (fed by its ``CompareShadow``). When both sides
have ended, the comparison goes to its ``Board`` (``board.py``), which compares later on the loop.

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
3. Memory: a comparison holds at most ``2 x max_body_bytes`` of body plus both heads and the
   request head; the board caps how many are pending at once, and the bytes kept by all of them
   together: a side asks its board for each chunk it keeps (``take``); granted less, it keeps
   what it was granted and no more (the whole length and digest still count, so it is compared
   by them).
"""

import hashlib
import time
from typing import Any, ClassVar, Protocol

from mirrorgate.ir.table import Mirror, MirrorCompare
from mirrorgate.mirror.compare import Side
from mirrorgate.mirror.shadow import PolicyShadow
from mirrorgate.upstream.connection import ResponseHead

Header = tuple[bytes, bytes]
_blake2b = hashlib.blake2b
_monotonic = time.monotonic


class Capture:
    """One side's response (rule 1)."""

    __slots__ = ("board", "digest", "kept", "length", "limit", "parts", "raw", "reserved", "status")

    def __init__(self, board: "Board", limit: int) -> None:
        self.board = board
        self.limit = limit
        self.reserved = 0  # bytes taken from the board's budget (rule 3)
        self.status = 0
        self.raw = b""  # the head as received
        self.parts: list[bytes] = []
        self.kept = 0
        self.length = 0
        self.digest: Any = None  # a running blake2b once the body is longer than what is kept

    def head(self, status: int, raw: bytes) -> None:
        if status < 200:  # an interim response (100 Continue) is followed by the real one
            return
        self.status = status
        self.raw = raw

    def body(self, chunk: bytes) -> None:
        n = len(chunk)
        if not n:
            return
        self.length += n
        digest = self.digest
        if digest is not None:  # it runs once nothing more is kept (below)
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
                self.reserved += n
                self.parts.append(chunk)
                self.kept += n
                taken = n
        if self.kept < self.length:
            # Past what is kept: from now on a running digest of the whole body (while the whole
            # body is kept, its digest is made from the kept bytes only when it is needed).
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
        return Side(
            status=self.status,
            headers=tuple(_parse_head(self.raw)),
            body=b"".join(self.parts),
            length=self.length,
            digest=digest,
            latency=latency,
        )


def _parse_head(raw: bytes) -> list[tuple[str, str]]:
    """Header lines of a raw response head (validated by llhttp when it was read), latin-1."""
    lines = raw.split(b"\r\n")[1:]
    out = []
    for line in lines:
        if not line:
            continue
        name, _, value = line.partition(b":")
        out.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return out


class Board(Protocol):
    """What a capture needs of its ``board.Board``."""

    def settle(self, c: "Comparison", failure: str | None) -> None: ...
    def take(self, n: int) -> int: ...  # reserve up to ``n`` bytes to keep: how many (rule 3)


class Comparison:
    """One compared mirror of one request (rule 2)."""

    __slots__ = ("board", "ended", "mirror", "mirror_latency", "primary", "response")

    def __init__(self, board: Board, primary: "PrimaryCapture", mirror: Mirror, settings: MirrorCompare) -> None:
        self.board = board
        self.primary = primary
        self.mirror = mirror
        self.response = Capture(board, settings.max_body_bytes)
        self.mirror_latency = -1.0  # seconds; set when the mirror's response completed
        self.ended = False

    def mirror_complete(self) -> None:
        if self.ended:
            return
        self.mirror_latency = _monotonic() - self.primary.started
        if self.primary.latency >= 0:
            self.board.settle(self, None)

    def mirror_failed(self, reason: str) -> None:
        if not self.ended:
            self.board.settle(self, reason)


class PrimaryCapture:
    """The primary's side of one request and the comparisons waiting for it; the exchange calls
    ``head``/``body`` as it relays and ``end`` once, when it finishes (``complete`` first when
    the whole response was relayed)."""

    __slots__ = ("board", "comparisons", "latency", "open", "request", "response", "started", "wall")

    def __init__(self, board: Board, request: tuple[bytes, bytes, list[Header], bytes], limit: int) -> None:
        self.board = board
        self.request = request  # method, target, headers as the client sent them; the request id forwarded
        self.response = Capture(board, limit)
        self.comparisons: list[Comparison] = []
        self.open = 0  # comparisons not ended yet (the board gives the kept bytes back at 0)
        self.started = _monotonic()
        self.wall = time.time()
        self.latency = -1.0  # seconds; set when the response completed

    def head(self, rh: ResponseHead) -> None:
        self.response.head(rh.status, rh.raw)

    def body(self, chunk: bytes) -> None:
        self.response.body(chunk)

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


class CompareShadow(PolicyShadow):
    """A ``Shadow`` whose response is captured for its ``Comparison`` (only mirrors with
    ``compare`` are made of this class: a plain mirror's callbacks do no more work). A compared
    mirror always comes from a MirrorPolicy, so it is a ``PolicyShadow``: its own ``timeout`` and
    lag budget when the policy sets them, the gateway's (as of its admission) otherwise."""

    __slots__ = ("comparison",)
    compared: ClassVar[bool] = True
    comparison: Comparison  # set by the dispatcher right after it makes the shadow

    def on_response_head(self, head: ResponseHead) -> None:
        self.status = head.status
        self.comparison.response.head(head.status, head.raw)

    def on_response_body(self, chunk: bytes) -> None:
        self.comparison.response.body(chunk)

    def on_response_complete(self, reusable: bool) -> None:
        if self.conn is not None:
            if not self.finished:
                self.comparison.mirror_complete()
            self.owner.response_complete(self, reusable)
