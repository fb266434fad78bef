"""Comparisons through a real ``Dispatcher`` and real mirror backends; the primary's side is fed
by hand (as the exchange's relay would feed it): every comparison ends exactly once, failures
are never mismatches, the pending cap skips instead of holding memory, records are bounded."""

import base64
import gc
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from mirrorgate.ir.table import Mirror, MirrorCompare
from mirrorgate.mirror import Dispatcher
from mirrorgate.mirror.board import LATENCY_BOUNDS_MS, RECORD_OVERHEAD, Board, LatencyHistogram
from mirrorgate.mirror.capture import Capture, CompareShadow, PrimaryCapture
from tests.support.backends import Backend, Mode
from tests.support.waiting import until

from .compare_support import response, scripted
from .conftest import MakeDispatcher, StartBackend, make_mirror, refused_endpoint, request_headers


@dataclass
class Head:
    """What the exchange hands the capture: a response head as received."""

    status: int
    raw: bytes


def compared(mirror: Mirror, settings: MirrorCompare | None = None) -> Mirror:
    return msgspec.structs.replace(mirror, compare=settings or MirrorCompare())


def submit(d: Dispatcher, mirror: Mirror, target: bytes = b"/x") -> PrimaryCapture | None:
    headers = request_headers()
    _, capture = d.submit_compared((mirror,), b"GET", target, headers, False, (b"GET", target, headers, b"rid-1"))
    return capture


def relay(
    capture: PrimaryCapture, status: int, headers: list[tuple[str, str]], body: bytes, *, complete: bool = True
) -> None:
    raw = response(status, headers, body)
    head, _, rest = raw.partition(b"\r\n\r\n")
    capture.head(Head(status, head + b"\r\n\r\n"))  # type: ignore[arg-type]
    for i in range(0, len(rest), 7):  # in several chunks
        capture.body(rest[i : i + 7])
    if complete:
        capture.complete()
    capture.end()


def ok_reply(target: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """What ``Mode.OK`` backends answer (``tests/support/backends.py``)."""
    return 200, [("content-type", "text/plain")], b"ok:" + target


def counts(d: Dispatcher, mirror: Mirror) -> Any:
    return d.board.stats[mirror.name].counts


async def settled(d: Dispatcher, mirror: Mirror, n: int) -> Any:
    def ended() -> int:
        st = d.board.stats.get(mirror.name)
        if st is None:
            return 0
        c = st.counts
        return c.compared + c.primary_failed + sum(c.mirror_failed.values())

    await until(lambda: ended() >= n and d.board.pending == 0, f"{n} comparisons ended")
    return counts(d, mirror)


async def test_a_matching_mirror_is_counted_matched(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    m = compared(make_mirror(b.endpoint))
    for i in range(3):
        capture = submit(d, m, b"/m%d" % i)
        assert capture is not None
        relay(capture, *ok_reply(b"/m%d" % i))
    c = await settled(d, m, 3)
    assert (c.compared, c.matched, c.mismatches) == (3, 3, {"status": 0, "header": 0, "body": 0})
    assert sum(c.primary_latency) == sum(c.mirror_latency) == 3


async def test_a_settled_request_is_freed_by_reference_counting(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    """A request's captures and comparisons refer to each other; once all of them ended the
    board breaks that cycle, so none waits for the cyclic collector (whose full collections of
    such garbage stalled the loop for 100 ms and more under load)."""
    b = await start_backend()
    d = make_dispatcher()
    m = compared(make_mirror(b.endpoint))
    gc.collect()
    gc.disable()
    try:
        for i in range(20):
            capture = submit(d, m, b"/f%d" % i)
            assert capture is not None
            relay(capture, *ok_reply(b"/f%d" % i))
        del capture
        await settled(d, m, 20)
        left = [o for o in gc.get_objects() if isinstance(o, (PrimaryCapture, CompareShadow))]
        assert left == [], f"{len(left)} captures and comparisons wait for the cyclic collector"
    finally:
        gc.enable()


async def test_only_compared_mirrors_capture(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b = await start_backend(delay=0.2)
    d = make_dispatcher()
    plain, cmp = make_mirror(b.endpoint, k=0), compared(make_mirror(b.endpoint, k=1))
    headers = request_headers()
    _, capture = d.submit_compared((plain, cmp), b"GET", b"/x", headers, False, (b"GET", b"/x", headers, b"rid-1"))
    assert capture is not None
    assert sorted(type(s).__name__ for s in d.tasks) == ["CompareShadow", "Shadow"]
    assert [c.mirror.name for c in capture.comparisons] == [cmp.name]
    d.submit((plain,), b"GET", b"/y", headers, False)  # the plain hook never compares
    assert d.board.pending == 1
    relay(capture, *ok_reply(b"/x"))
    c = await settled(d, cmp, 1)
    assert (c.compared, c.matched) == (1, 1)
    assert set(d.board.stats) == {cmp.name}


@pytest.mark.parametrize(
    ("mode", "reason"), [(Mode.RESET, "reset"), (Mode.BLACKHOLE, "timeout"), (None, "connect_error")]
)
async def test_a_failed_mirror_is_never_a_mismatch(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher, mode: Mode | None, reason: str
) -> None:
    endpoint = refused_endpoint() if mode is None else (await start_backend(mode)).endpoint
    d = make_dispatcher(timeout=0.3, breaker_failures=0)
    m = compared(make_mirror(endpoint))
    capture = submit(d, m)
    assert capture is not None
    relay(capture, *ok_reply(b"/x"))
    c = await settled(d, m, 1)
    assert c.mirror_failed == {reason: 1}
    assert c.compared == 0
    assert d.board.stats[m.name].limit == 20
    assert not d.board.stats[m.name].ring


async def test_a_failed_primary_is_never_a_mismatch(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    m = compared(make_mirror(b.endpoint))
    capture = submit(d, m)
    assert capture is not None
    relay(capture, *ok_reply(b"/x"), complete=False)  # the upstream failed mid-body, or the client left
    c = await settled(d, m, 1)
    assert (c.primary_failed, c.compared) == (1, 0)
    await until(lambda: d.stats().completed.get("2xx") == 1)  # the mirror itself still completed


async def test_the_pending_cap_skips_comparisons_but_still_mirrors(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    d.board.max_pending = 2
    m = compared(make_mirror(b.endpoint))
    captures = [submit(d, m, b"/c%d" % i) for i in range(5)]
    assert [c is not None for c in captures] == [True, True, False, False, False]
    assert d.board.pending == 2
    assert counts(d, m).skipped == 3
    await until(lambda: d.stats().completed.get("2xx") == 5)  # all five were mirrored
    for i, capture in enumerate(captures[:2]):
        assert capture is not None
        relay(capture, *ok_reply(b"/c%d" % i))
    c = await settled(d, m, 2)
    assert (c.compared, c.matched, c.skipped) == (2, 2, 3)
    assert submit(d, m) is not None  # room again


async def test_a_large_max_body_bytes_reserves_only_what_is_kept(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    """Board rule 1: a policy allowing 16 MiB bodies whose bodies are small takes only what it
    keeps, so it never starves the process's budget (it used to reserve 2 x 16 MiB each)."""
    b = await start_backend()
    d = make_dispatcher()
    d.board.max_pending_bytes = 4 * 1024
    m = compared(make_mirror(b.endpoint), MirrorCompare(max_body_bytes=16 << 20))
    captures = [submit(d, m, b"/b%d" % i) for i in range(10)]
    assert all(c is not None for c in captures)
    assert d.board.reserved == 0  # nothing kept yet
    await until(lambda: d.stats().completed.get("2xx") == 10)
    assert d.board.reserved == sum(len(b"ok:/b%d" % i) for i in range(10))  # the mirrors' bodies
    for i, capture in enumerate(captures):
        assert capture is not None
        relay(capture, *ok_reply(b"/b%d" % i))
    c = await settled(d, m, 10)
    assert (c.compared, c.matched, c.skipped) == (10, 10, 0)
    assert d.board.reserved == 0


async def test_a_spent_budget_falls_back_to_length_and_digest(make_dispatcher: MakeDispatcher) -> None:
    doc = json.dumps({"items": list(range(40))}).encode()
    b = await Backend.scripted(scripted(lambda target: (200, [("content-type", "application/json")], doc))).start()
    try:
        d = make_dispatcher()
        d.board.max_pending_bytes = len(doc) + 10  # the primary's body, then 10 bytes of the mirror's
        m = compared(make_mirror(b.endpoint))
        first = submit(d, m, b"/same")
        assert first is not None
        relay(first, 200, [("content-type", "application/json")], doc)  # before the mirror answers
        assert d.board.reserved == len(doc)
        c = await settled(d, m, 1)
        assert (c.compared, c.matched) == (1, 1)  # compared by digest: the same bytes
        assert d.board.reserved == 0
        second = submit(d, m, b"/differs")
        assert second is not None
        relay(second, 200, [("content-type", "application/json")], doc.replace(b"39", b"40"))
        c = await settled(d, m, 2)
        assert c.mismatches["body"] == 1
        (record,) = d.board.stats[m.name].records()
        (diff,) = record["differences"]
        assert diff["detail"] == "bytes"  # the mirror kept 10 bytes only: no JSON comparison
        assert record["mirror"]["bodyTruncated"] is True
        assert record["mirror"]["body"] == doc[:10].decode()
        assert d.board.reserved == 0
    finally:
        await b.close()


async def test_a_failed_mirror_leaves_the_streaming_primary_unhashed(make_dispatcher: MakeDispatcher) -> None:
    """The only compared mirror fails (nothing listens) while the primary's body still streams,
    longer than what is kept: the rest of it is neither kept, counted nor digested, since
    nothing will compare it (the primary's relay does no hashing for a dead mirror)."""
    d = make_dispatcher()
    m = compared(make_mirror(refused_endpoint()), MirrorCompare(max_body_bytes=16))
    capture = submit(d, m)
    assert capture is not None
    capture.head(Head(200, response(200, [], b"")))  # type: ignore[arg-type]
    capture.body(b"x" * 10)  # kept
    c = await settled(d, m, 1)
    assert c.mirror_failed == {"connect_error": 1}
    for _ in range(100):
        capture.body(b"y" * 1000)  # past the 16 bytes kept, and after the failure
    assert (capture.digest, capture.kept, capture.skipped) == (None, 10, 0)
    capture.complete()
    capture.end()
    assert (d.board.pending, d.board.reserved) == (0, 0)


async def test_long_bodies_are_compared_by_their_whole_digest(make_dispatcher: MakeDispatcher) -> None:
    body = bytes(range(255, -1, -1)) * 8  # 2 KiB, not UTF-8
    b = await Backend.scripted(
        scripted(lambda target: (200, [("content-type", "application/octet-stream")], body))
    ).start()
    try:
        d = make_dispatcher()
        m = compared(make_mirror(b.endpoint), MirrorCompare(max_body_bytes=100, keep_mismatches=2))
        same = submit(d, m, b"/same")
        assert same is not None
        relay(same, 200, [("content-type", "application/octet-stream")], body)
        differs = submit(d, m, b"/differs")
        assert differs is not None
        relay(differs, 200, [("content-type", "application/octet-stream")], body[:-1] + b"!")  # the last byte
        c = await settled(d, m, 2)
        assert (c.compared, c.matched, c.mismatches["body"]) == (2, 1, 1)
        (record,) = d.board.stats[m.name].records()
        (diff,) = record["differences"]
        assert diff["detail"] == "bytes"
        assert diff["primary"]["length"] == diff["mirror"]["length"] == len(body)
        assert diff["primary"]["digest"] != diff["mirror"]["digest"]
        for side in ("primary", "mirror"):
            assert record[side]["bodyTruncated"] is True
            assert record[side]["bodyEncoding"] == "base64"
            assert base64.b64decode(record[side]["body"]) == body[:100]
    finally:
        await b.close()


async def test_the_ring_keeps_the_latest_mismatches(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(status=503)
    d = make_dispatcher()
    m = compared(make_mirror(b.endpoint), MirrorCompare(keep_mismatches=3))
    for i in range(5):
        capture = submit(d, m, b"/r%d" % i)
        assert capture is not None
        relay(capture, *ok_reply(b"/r%d" % i))
        await settled(d, m, i + 1)
    ring = d.board.stats[m.name].records_since(0)
    assert [r["request"]["target"] for r in ring] == ["/r2", "/r3", "/r4"]
    assert [json.dumps(r["differences"][0]) for r in ring] == [
        json.dumps({"kind": "status", "primary": 200, "mirror": 503, "detail": "class"})
    ] * 3
    views = d.views()
    assert [r["request"]["target"] for r in views.diffs(m.name)] == ["/r4", "/r3", "/r2"]  # newest first
    assert d.board.stats[m.name].records_since(4) == [ring[-1]]


def test_latency_percentiles_from_fixed_buckets() -> None:
    h = LatencyHistogram()
    assert h.percentile(0.5) is None
    for ms in range(1, 101):  # 1 .. 100 ms
        h.add(ms / 1000)
    p50, p99 = h.percentile(0.5), h.percentile(0.99)
    assert p50 is not None
    assert p99 is not None
    assert 50 / 1.2 <= p50 <= 50 * 1.2
    assert 99 / 1.2 <= p99 <= 99 * 1.2
    h.add(10_000.0)  # beyond the last bound
    assert h.percentile(1.0) == LATENCY_BOUNDS_MS[-1]


async def test_the_rings_of_a_process_share_one_byte_budget(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    """Board rule 4: records are kept as bytes, counted, and the oldest of any mirror evicted
    first once all the rings together pass ``max_ring_bytes``."""
    b = await start_backend(status=503)
    d = make_dispatcher()
    board = d.board
    one = compared(make_mirror(b.endpoint, k=0), MirrorCompare(keep_mismatches=100))
    two = compared(make_mirror(b.endpoint, k=1), MirrorCompare(keep_mismatches=100))
    emoji = "\N{GRINNING FACE}" + "a" * 3000  # as a str: 4 bytes per character

    async def mismatch(m: Mirror, i: int) -> None:
        capture = submit(d, m, b"/%d" % i)
        assert capture is not None
        st = board.stats.get(m.name)
        before = 0 if st is None else st.counts.compared
        relay(capture, 200, [("content-type", "text/plain")], emoji.encode())
        await settled(d, m, before + 1)

    await mismatch(one, 0)
    ((_, stored),) = board.stats[one.name].ring
    assert type(stored.primary) is bytes  # decoded only when shown
    assert stored.primary == emoji.encode()
    assert board.ring_bytes == stored.size == len(stored.meta) + len(emoji.encode()) + len(b"ok:/0") + RECORD_OVERHEAD
    (shown,) = board.stats[one.name].records()
    assert shown["primary"]["body"] == emoji
    size = stored.size
    board.max_ring_bytes = 3 * size + size // 2  # room for three records
    await mismatch(two, 1)
    await mismatch(one, 2)
    await mismatch(two, 3)  # the fourth: the oldest (one's /0) goes
    assert [r["request"]["target"] for r in board.stats[one.name].records()] == ["/2"]
    assert [r["request"]["target"] for r in board.stats[two.name].records()] == ["/3", "/1"]
    assert (counts(d, one).evicted, counts(d, two).evicted) == (1, 0)
    await mismatch(one, 4)  # then two's /1
    assert [r["request"]["target"] for r in board.stats[two.name].records()] == ["/3"]
    assert counts(d, two).evicted == 1
    assert board.ring_bytes == sum(r.size for st in board.stats.values() for _, r in st.ring) <= board.max_ring_bytes
    board.keep_records_of({two.name})  # one left the table: its ring and its bytes are freed
    assert not board.stats[one.name].ring
    assert board.ring_bytes == sum(r.size for _, r in board.stats[two.name].ring)
    reports = d.views().reports()
    assert sum(r.compare.evicted for r in reports if r.compare is not None) == 2


JSON_TYPE = [("content-type", "application/json")]


@pytest.mark.parametrize(
    ("mirror_headers", "mirror_body", "matched"),
    [
        (JSON_TYPE, b'{"a": 1}', True),  # the same bytes
        (JSON_TYPE, b'{"a": 2}', False),
        ([("content-type", "text/json")], b'{"a": 1}', False),
    ],
)
async def test_the_same_bytes_match_without_parsing(
    make_dispatcher: MakeDispatcher,
    monkeypatch: pytest.MonkeyPatch,
    mirror_headers: list[tuple[str, str]],
    mirror_body: bytes,
    matched: bool,
) -> None:
    """Identical heads and bodies are a match at once; anything else is compared in full."""
    b = await Backend.scripted(scripted(lambda target: (200, mirror_headers, mirror_body))).start()
    try:
        d = make_dispatcher()
        m = compared(make_mirror(b.endpoint))
        parsed: list[int] = []
        real_side = Capture.side

        def side(self: Capture, latency: float) -> Any:
            parsed.append(1)
            return real_side(self, latency)

        monkeypatch.setattr(Capture, "side", side)
        capture = submit(d, m)
        assert capture is not None
        relay(capture, 200, JSON_TYPE, b'{"a": 1}')
        c = await settled(d, m, 1)
        assert (c.compared, c.matched) == (1, int(matched))
        assert parsed == ([] if matched else [1, 1])
    finally:
        await b.close()


async def test_a_sibling_dropped_as_it_starts_leaves_the_primary_its_body(
    make_dispatcher: MakeDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two compared mirrors of one request; the first is dropped the moment it is started, so its
    comparison is released before the second one exists: the primary still keeps its body for
    the second, which is compared field by field (only an ignored field differs: a match)."""
    b = await Backend.scripted(scripted(lambda target: (200, JSON_TYPE, b'{"a": 1, "t": 2}'))).start()
    try:
        d = make_dispatcher()
        settings = MirrorCompare(ignore_paths=("$.t",))
        first = compared(make_mirror(refused_endpoint(), k=0), settings)
        second = compared(make_mirror(b.endpoint, k=1), settings)
        start = Dispatcher._start

        def start_or_drop(self: Dispatcher, shadow: Any) -> None:
            if shadow.mirror is first:  # as if its connection failed inside ``_start``
                self._drop(shadow, "connect_error")
                return
            start(self, shadow)

        monkeypatch.setattr(Dispatcher, "_start", start_or_drop)
        headers = request_headers()
        record = (b"GET", b"/x", headers, b"rid-1")
        _, capture = d.submit_compared((first, second), b"GET", b"/x", headers, False, record)
        assert capture is not None
        relay(capture, 200, JSON_TYPE, b'{"a": 1, "t": 1}')
        c = await settled(d, second, 1)
        assert (c.compared, c.matched) == (1, 1)
        assert counts(d, first).mirror_failed == {"connect_error": 1}
        assert (d.board.pending, d.board.reserved) == (0, 0)
    finally:
        await b.close()


@pytest.mark.parametrize("limit", [0, 1, 10, 25, 100])
@pytest.mark.parametrize("sizes", [(30,), (5, 5, 20), (10, 1, 19), (1,) * 30, (29, 1)])
def test_the_digest_is_of_the_whole_body_however_it_is_cut(limit: int, sizes: tuple[int, ...]) -> None:
    """Kept whole, the body is digested when asked; past ``limit`` a running digest takes over
    from the kept bytes: either way the digest and length are the whole body's."""
    body = bytes(range(65, 95))
    capture = PrimaryCapture(Board(), (b"GET", b"/", [], b""), limit)
    at = 0
    for size in sizes:
        capture.body(body[at : at + size])
        at += size
    assert capture.length == len(body)
    assert b"".join(capture.parts) == body[:limit]
    assert capture.digest_of_body() == hashlib.blake2b(body, digest_size=16).digest()


def test_each_side_runs_its_own_copy_of_the_per_chunk_code() -> None:
    """The primary's and the mirror's captures alternate chunk by chunk: each class has its own
    code object for them (CPython's attribute caches are per code object, for one type), the
    mirror's relay callback included; a subclass's own definition is left alone."""
    for name in ("_capture", "body", "_body"):
        codes = (getattr(PrimaryCapture, name), getattr(CompareShadow, name), vars(Capture)[name])
        assert len({id(f.__code__) for f in codes}) == 3, name  # (equal code objects compare equal)
    assert CompareShadow.on_response_body is CompareShadow.body

    def own_body(self: PrimaryCapture, chunk: bytes) -> None:
        raise NotImplementedError

    class Own(PrimaryCapture):
        body = own_body

    assert Own.body is own_body
