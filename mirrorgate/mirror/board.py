"""The comparison board of one process: comparisons pending, comparing them off the primary's
path, and each compared mirror's aggregates (``CompareStats``).

Rules:
1. At most ``max_pending`` comparisons are pending (captured, not yet compared) in the whole
   process: a request whose compared mirrors would go past it still sends its mirrors but
   compares none of them, each counted as ``skipped`` (``primary``). Their bodies keep at most
   ``max_pending_bytes`` together, reserved as they are kept (``capture.py`` rule 3), not by
   ``max_body_bytes``: a capture refused bytes keeps no more, and its side is compared by
   length and digest. A comparison gives its mirror side's bytes back when it is released
   (``_release``: when it fails, or when it is taken off the queue to be compared), a request
   its primary side's when its last comparison is released.
2. A comparison whose two sides are done is queued; the queue is compared on a later loop turn
   (``call_soon``), never inside a relay callback. Comparing runs on the loop that relays the
   primary, so one turn is bounded: it compares ``BATCH`` comparisons at most and stops once the
   body bytes it compared reach ``TURN_BYTES`` (at least one comparison a turn), then yields
   and goes on at the next turn. Two responses whose heads are the same bytes and whose whole
   bodies have the same length and digest match without parsing anything. One comparison is
   bounded by ``compare.py`` rule 4 (at most ``2 x MAX_JSON_BYTES`` parsed, ``MAX_JSON_NODES``
   values visited; larger bodies compare by the digest computed as they were relayed); beyond
   that it only joins and scans the kept bodies in C (copy, secret masking: linear in
   ``2 x max_body_bytes``).
3. Aggregates per mirror name: compared, matched, mismatches by kind (a comparison with several
   kinds counts once per kind), ``mirror_failed`` by drop reason, ``primary_failed``,
   ``skipped``, ``evicted``, the latency of each side (``LatencyHistogram``) and a ring of the
   latest ``keep_mismatches`` mismatches, whose header values named in ``redact_headers`` (and
   ``compare.ALWAYS_REDACTED``) are replaced by ``[redacted]`` before they are stored, and the
   values of those headers masked wherever else they appear: target, other headers, bodies,
   differences (``redact.py``). When a reload removes a
   mirror (or its ``compare``), its ring is freed (``keep_records_of``); its counters stay.
4. Ring memory: a record is stored as bytes (``Stored``: its JSON without the bodies, and the
   two bodies as kept), decoded only when shown, and counted as ``len(meta) + len(bodies) +
   RECORD_OVERHEAD``. All the rings of the process together hold at most ``max_ring_bytes``
   (``MAX_RING_BYTES``): past it the oldest records of any mirror are evicted first, each
   counted as ``evicted`` for its mirror.
5. Records of a ring carry a sequence number, so a worker can send its supervisor the ones it
   has not sent yet (``records_since``).
"""

import asyncio
import base64
import logging
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from mirrorgate.ir.table import Mirror, MirrorCompare
from mirrorgate.mirror.admission import Admitted
from mirrorgate.mirror.capture import Capture, CompareShadow, PrimaryCapture, Request
from mirrorgate.mirror.compare import ALWAYS_REDACTED, REDACTED, Difference, Side, compare, is_json, joined
from mirrorgate.mirror.redact import Redactor, secrets_of

log = logging.getLogger("mirrorgate.mirror")

MAX_PENDING = 1024
MAX_PENDING_BYTES = 128 << 20  # body bytes kept by all pending comparisons (rule 1)
BATCH = 64  # comparisons per loop turn at most: ~1 ms of small ones; big ones stop at TURN_BYTES
TURN_BYTES = 256 << 10  # body bytes compared per loop turn, beyond the first comparison (rule 2)
KINDS = ("status", "header", "body")
# Latency buckets (milliseconds): upper bounds growing by 1.2x from 0.1 ms to about 2 minutes,
# then +Inf. A percentile read from them is within 20 % of the true value.
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(round(0.1 * 1.2**k, 4) for k in range(78))
MAX_RING_BYTES = 64 << 20  # all the mismatch rings of a process (rule 4)
RECORD_OVERHEAD = 512  # bytes a stored record takes beyond its meta and bodies (objects, ring entry)


class LatencyHistogram:
    """Fixed buckets (``LATENCY_BOUNDS_MS`` + Inf): constant memory, and two histograms merge by
    adding their counts (the supervisor adds its workers')."""

    __slots__ = ("counts",)

    def __init__(self, counts: list[int] | None = None) -> None:
        self.counts = counts if counts is not None else [0] * (len(LATENCY_BOUNDS_MS) + 1)

    def add(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BOUNDS_MS, seconds * 1000.0)] += 1

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile in milliseconds, interpolated inside its bucket; None when empty."""
        total = sum(self.counts)
        if not total:
            return None
        rank = q * total
        seen = 0
        for i, n in enumerate(self.counts):
            if n and seen + n >= rank:
                lower = LATENCY_BOUNDS_MS[i - 1] if i else 0.0
                if i == len(LATENCY_BOUNDS_MS):
                    return lower  # beyond the last bound: its lower bound
                upper = LATENCY_BOUNDS_MS[i]
                return round(lower + (upper - lower) * max(rank - seen, 0.0) / n, 3)
            seen += n
        return LATENCY_BOUNDS_MS[-1]


class Counts(msgspec.Struct, kw_only=True):
    """The counters of one compared mirror (also what a worker sends, summed by the supervisor)."""

    compared: int = 0
    matched: int = 0
    mismatches: dict[str, int] = msgspec.field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    mirror_failed: dict[str, int] = msgspec.field(default_factory=dict)
    primary_failed: int = 0
    skipped: int = 0
    evicted: int = 0  # records evicted from the ring by the process's byte budget (rule 4)
    primary_latency: list[int] = msgspec.field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    mirror_latency: list[int] = msgspec.field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))

    def add(self, other: "Counts") -> None:
        self.compared += other.compared
        self.matched += other.matched
        for key, n in other.mismatches.items():
            self.mismatches[key] = self.mismatches.get(key, 0) + n
        for key, n in other.mirror_failed.items():
            self.mirror_failed[key] = self.mirror_failed.get(key, 0) + n
        self.primary_failed += other.primary_failed
        self.skipped += other.skipped
        self.evicted += other.evicted
        for mine, theirs in (
            (self.primary_latency, other.primary_latency),
            (self.mirror_latency, other.mirror_latency),
        ):
            for i, n in enumerate(theirs[: len(mine)]):
                mine[i] += n


class Stored(msgspec.Struct, frozen=True):
    """One record as a ring keeps it (rule 4): ``meta``, the record's JSON without the bodies
    (``primary.body`` and ``mirror.body`` absent), and the two bodies as bytes."""

    meta: bytes
    primary: bytes
    mirror: bytes

    @property
    def size(self) -> int:
        return len(self.meta) + len(self.primary) + len(self.mirror) + RECORD_OVERHEAD

    def shown(self) -> dict[str, Any]:
        """The record as ``/mirrors/<id>/diffs`` shows it (bodies decoded now)."""
        record: dict[str, Any] = msgspec.json.decode(self.meta)
        for key, body in (("primary", self.primary), ("mirror", self.mirror)):
            side = record[key]
            text, encoding = body_text(body, side["bodyTruncated"])
            record[key] = {
                "status": side["status"],
                "headers": side["headers"],
                "body": text,
                "bodyEncoding": encoding,
                "bodyTruncated": side["bodyTruncated"],
                "latencyMs": side["latencyMs"],
            }
        return record


class CompareStats:
    """Aggregates of one compared mirror (rule 3); its ring is kept by its ``Board`` (rule 4)."""

    __slots__ = ("counts", "limit", "ring", "seq")

    def __init__(self, keep: int) -> None:
        self.counts = Counts()
        self.limit = keep
        self.ring: deque[tuple[int, Stored]] = deque()
        self.seq = 0

    def records(self) -> list[dict[str, Any]]:
        """The ring, newest first, as shown."""
        return [r.shown() for _, r in reversed(tuple(self.ring))]

    def records_since(self, seq: int) -> list[dict[str, Any]]:
        return [r.shown() for s, r in tuple(self.ring) if s > seq]


class Board:
    """Pending comparisons and the aggregates of every compared mirror of the process."""

    __slots__ = (
        "_loop",
        "_order",
        "_queue",
        "_scheduled",
        "max_pending",
        "max_pending_bytes",
        "max_ring_bytes",
        "pending",
        "reserved",
        "ring_bytes",
        "stats",
        "turns",
    )

    def __init__(
        self,
        max_pending: int = MAX_PENDING,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        max_ring_bytes: int = MAX_RING_BYTES,
    ) -> None:
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.max_ring_bytes = max_ring_bytes
        self.ring_bytes = 0  # what every ring holds (rule 4)
        self._order: dict[tuple[str, int], int] = {}  # (mirror, seq) -> size, oldest first
        self.pending = 0
        self.reserved = 0  # body bytes the pending comparisons keep (rule 1)
        self.stats: dict[str, CompareStats] = {}
        self._queue: deque[CompareShadow] = deque()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.turns = 0  # loop turns spent comparing (rule 2)

    def stats_for(self, mirror: Mirror) -> CompareStats:
        settings = mirror.compare
        assert settings is not None
        st = self.stats.get(mirror.name)
        if st is None:
            st = self.stats[mirror.name] = CompareStats(settings.keep_mismatches)
        elif st.limit != settings.keep_mismatches:
            st.limit = settings.keep_mismatches
            self._trim(mirror.name, st, st.limit)
        return st

    def keep_records_of(self, names: set[str]) -> None:
        """Free the rings of the mirrors not in ``names`` (they left the table; rule 3): their
        counters stay, so the metrics never go down."""
        for name, st in tuple(self.stats.items()):
            if name not in names:
                self._trim(name, st, 0)

    def store(self, name: str, st: CompareStats, record: Stored) -> None:
        """Add ``record`` to the ring of ``name`` (its ``keep_mismatches`` latest), then evict
        the oldest records of any mirror while the rings hold more than ``max_ring_bytes`` (rule 4)."""
        st.seq += 1
        st.ring.append((st.seq, record))
        size = record.size
        self._order[(name, st.seq)] = size
        self.ring_bytes += size
        self._trim(name, st, st.limit)
        order = self._order
        while self.ring_bytes > self.max_ring_bytes and order:
            oldest, _ = next(iter(order))
            owner = self.stats[oldest]
            self._trim(oldest, owner, len(owner.ring) - 1)
            owner.counts.evicted += 1

    def _trim(self, name: str, st: CompareStats, keep: int) -> None:
        """Drop the oldest records of ``st`` until it holds ``keep``."""
        ring = st.ring
        while len(ring) > max(keep, 0):
            seq, _ = ring.popleft()
            self.ring_bytes -= self._order.pop((name, seq))

    def primary(
        self, request: Request, admitted: list[Admitted], capture: PrimaryCapture | None = None
    ) -> PrimaryCapture | None:
        """A capture for a request whose ``admitted`` mirrors (first of each tuple) include some
        with ``compare`` (``capture``, the one the request already has, is reused), or None: none
        compares, or the process is at its cap (rule 1: each compared one is counted ``skipped``)."""
        n = limit = 0
        for a in admitted:
            settings = a[0].compare
            if settings is not None:
                n += 1
                if settings.max_body_bytes > limit:
                    limit = settings.max_body_bytes
        if not n:
            return capture
        if self.pending + n > self.max_pending:
            for a in admitted:
                if a[0].compare is not None:
                    self.stats_for(a[0]).counts.skipped += 1
            return None
        if capture is None:
            return PrimaryCapture(self, request, limit)
        # The request's mirror hooks all run before its primary is sent, so nothing was kept
        # yet: a capture released meanwhile (every comparison of the rule's mirrors dropped at
        # once) gave nothing back and may keep again.
        assert not capture.kept, "a capture is reused only before the primary's response"
        if limit > capture.limit:
            capture.limit = limit
        return capture

    def take(self, n: int) -> int:
        """Reserve up to ``n`` more bytes for a capture to keep: how many it may (rule 1)."""
        n = min(n, self.max_pending_bytes - self.reserved)
        if n <= 0:
            return 0
        self.reserved += n
        return n

    def settle(self, c: CompareShadow, failure: str | None) -> None:
        """End ``c`` (capture rule 2): ``failure`` None -> queue it to be compared (rule 2)."""
        if c.ended:
            return
        c.ended = True
        if failure is not None:
            self._release(c)
            counts = self.stats_for(c.mirror).counts
            if failure == "primary_failed":
                counts.primary_failed += 1
            else:
                counts.mirror_failed[failure] = counts.mirror_failed.get(failure, 0) + 1
            return
        self._queue.append(c)  # compared later (rule 2): not inside the relay callback that got here
        if not self._scheduled:
            self._scheduled = True
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        self.turns += 1
        queue = self._queue
        stats = self.stats
        spent = 0
        for _ in range(min(BATCH, len(queue))):
            c = queue.popleft()
            self._release(c)
            p = c.primary
            spent += p.kept + c.kept
            if (
                p.raw == c.raw
                and p.status == c.status
                and ((p.parts == c.parts and p.digest is None and c.digest is None) or _same_body(p, c))
            ):
                # The same head and the same body bytes: nothing can differ, whatever the settings
                # (the common case of a healthy mirror), so nothing is parsed (rule 2).
                counts = (stats.get(c.mirror.name) or self.stats_for(c.mirror)).counts
                counts.compared += 1
                counts.matched += 1
                counts.primary_latency[bisect_left(LATENCY_BOUNDS_MS, p.latency * 1000.0)] += 1
                counts.mirror_latency[bisect_left(LATENCY_BOUNDS_MS, c.mirror_latency * 1000.0)] += 1
            else:
                try:
                    self._compare(c)
                except Exception:  # a bug must not stop the board; logged with its traceback
                    log.exception("bug comparing the responses of %s", c.mirror.name)
            if spent >= TURN_BYTES:
                break  # the rest at the next turn (rule 2)
        if queue:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._drain)

    def _release(self, c: CompareShadow) -> None:
        """Rule 1: the comparison is no longer pending, and its mirror side (and the primary's
        side, for the request's last comparison) keeps no more (what it kept stays until compared)."""
        self.pending -= 1
        self.reserved -= c.kept
        c.limit = -1  # keeps, counts and digests no more (``capture.py`` rule 3)
        p = c.primary
        p.open -= 1
        if not p.open:  # the request's last comparison
            self.reserved -= p.kept
            p.limit = -1
            # The request's comparisons and their primary refer to each other; once none is
            # open nothing iterates the list, and forgetting it lets reference counting free
            # all of them (left to the cyclic collector, every compared request made garbage
            # that full collections, 100 ms and more under load, had to find).
            p.comparisons = []

    def _compare(self, c: CompareShadow) -> None:
        """Compare two responses that are not the same bytes (those match in ``_drain``)."""
        settings = c.mirror.compare
        assert settings is not None
        p = c.primary
        primary = p.side(p.latency)
        if len(primary.body) > settings.max_body_bytes:  # the primary kept the largest limit of its mirrors
            primary = msgspec.structs.replace(primary, body=primary.body[: settings.max_body_bytes])
        mirror = c.side(c.mirror_latency)
        st = self.stats_for(c.mirror)
        counts = st.counts
        counts.compared += 1
        counts.primary_latency[bisect_left(LATENCY_BOUNDS_MS, primary.latency * 1000.0)] += 1
        counts.mirror_latency[bisect_left(LATENCY_BOUNDS_MS, mirror.latency * 1000.0)] += 1
        differences = compare(primary, mirror, settings)
        if not differences:
            counts.matched += 1
            return
        kinds = [k for k in KINDS if any(d.kind == k for d in differences)]
        for k in kinds:
            counts.mismatches[k] += 1
        self.store(c.mirror.name, st, mismatch_record(c.primary, primary, mirror, differences, kinds, settings))


def _same_body(a: Capture, b: Capture) -> bool:
    """The two whole bodies are the same bytes (their lengths and BLAKE2b digests when one was
    longer than what it kept)."""
    if a.length != b.length:
        return False
    if a.digest is None and b.digest is None:  # both kept whole
        return b"".join(a.parts) == b"".join(b.parts)
    return a.digest_of_body() == b.digest_of_body()


# --- records (rule 3) ---------------------------------------------------------------------------


def redacted_names(settings: MirrorCompare) -> frozenset[str]:
    return ALWAYS_REDACTED | {n.lower() for n in settings.redact_headers}


def _headers(headers: Iterable[tuple[str, str]], redact: frozenset[str], r: Redactor) -> list[list[str]]:
    return [[name, REDACTED if name.lower() in redact else r.text(value)] for name, value in headers]


def body_text(body: bytes, truncated: bool) -> tuple[str, str]:
    """(text, encoding): UTF-8 text when the bytes are (a truncated body may end inside a
    character: up to 3 bytes are then left out), else base64."""
    for cut in range(4 if truncated else 1):
        try:
            return body[: len(body) - cut].decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            continue
    return base64.b64encode(body).decode("ascii"), "base64"


def _side(side: Side, redact: frozenset[str], r: Redactor) -> dict[str, Any]:
    """A response of a record, without its body (``Stored``)."""
    return {
        "status": side.status,
        "headers": _headers(side.headers, redact, r),
        "bodyTruncated": side.truncated,
        "latencyMs": round(side.latency * 1000.0, 3),
    }


def _body(side: Side, r: Redactor) -> bytes:
    return r.body(side.body, side.truncated, is_json(joined(side.headers).get("content-type")))


def _difference(d: Difference, redact: frozenset[str], r: Redactor) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(d)
    if d.kind == "header" and d.name in redact:
        out["primary"] = None if d.primary is None else REDACTED
        out["mirror"] = None if d.mirror is None else REDACTED
    else:
        out["primary"] = r.value(d.primary)
        out["mirror"] = r.value(d.mirror)
        if d.path is not None:
            out["path"] = r.text(d.path)
    return out


def mismatch_record(
    p: PrimaryCapture,
    primary: Side,
    mirror: Side,
    differences: list[Difference],
    kinds: list[str],
    settings: MirrorCompare,
) -> Stored:
    """One ring entry (``Stored.shown``: as ``/mirrors/<id>/diffs`` shows it); secrets already
    masked (rule 3)."""
    redact = redacted_names(settings)
    method, target, headers, request_id = p.request
    request_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    secrets = secrets_of(request_headers, redact) | secrets_of(primary.headers, redact)
    r = Redactor(redact, secrets | secrets_of(mirror.headers, redact))
    meta = {
        "time": datetime.fromtimestamp(p.wall(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestId": request_id.decode("latin-1") or None,
        "request": {
            "method": method.decode("latin-1"),
            "target": r.text(target.decode("latin-1")),
            "headers": _headers(request_headers, redact, r),
        },
        "kinds": kinds,
        "differences": [_difference(d, redact, r) for d in differences],
        "primary": _side(primary, redact, r),
        "mirror": _side(mirror, redact, r),
    }
    return Stored(msgspec.json.encode(meta), _body(primary, r), _body(mirror, r))
