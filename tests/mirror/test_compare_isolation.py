"""Comparing never stalls the primary's event loop (``board.py`` rule 2): large JSON comparisons
are spread over loop turns, the loop runs other work between them, and a client of a real backend
on the same loop keeps being answered while they drain."""

import asyncio
import itertools
import json

import msgspec
import pytest

from mirrorgate.ir.table import MirrorCompare
from mirrorgate.mirror import board as board_module
from mirrorgate.mirror.board import TURN_BYTES, Board
from mirrorgate.mirror.capture import CompareShadow
from tests.support.backends import Backend
from tests.support.client import Conn, encode_request
from tests.support.waiting import until

from .compare_support import response, scripted
from .conftest import MakeDispatcher, StartBackend, make_mirror, request_headers
from .test_compare_board import Head, settled

JSON = [("content-type", "application/json")]
N = 6


def body(tag: str) -> bytes:
    """About 200 KiB of JSON: two sides of one comparison are past ``TURN_BYTES``."""
    doc = {"items": [{"id": i, "name": f"item {i}", "tag": tag} for i in range(5000)]}
    return json.dumps(doc).encode()


async def test_large_comparisons_take_a_loop_turn_each_while_the_primary_is_answered(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary_body, mirror_body = body("primary"), body("mirror")
    assert 2 * len(primary_body) > TURN_BYTES
    mirror_backend = await Backend.scripted(scripted(lambda target: (200, JSON, mirror_body))).start()
    primary_backend = await start_backend()
    events: list[str] = []
    compare = Board._compare

    def logged(self: Board, c: CompareShadow) -> None:
        events.append("compare")
        compare(self, c)

    monkeypatch.setattr(Board, "_compare", logged)
    try:
        d = make_dispatcher()
        m = msgspec.structs.replace(make_mirror(mirror_backend.endpoint), compare=MirrorCompare(max_body_bytes=1 << 20))
        captures = []
        for i in range(N):
            headers = request_headers()
            _, capture = d.submit_compared((m,), b"GET", b"/%d" % i, headers, False, (b"GET", b"/", headers, b"r"))
            assert capture is not None
            captures.append(capture)
        raw = response(200, JSON, primary_body)
        head, _, rest = raw.partition(b"\r\n\r\n")
        await until(lambda: d.stats().completed.get("2xx") == N, "every mirror answered")
        turns = d.board.turns
        for capture in captures:  # all N queued in the same turn
            capture.head(Head(200, head + b"\r\n\r\n"))  # type: ignore[arg-type]
            for i in range(0, len(rest), 65536):
                capture.body(rest[i : i + 65536])
            capture.complete()
            capture.end()

        done = asyncio.Event()

        async def ticker() -> None:  # runs once per loop turn
            while not done.is_set():
                events.append("tick")
                await asyncio.sleep(0)

        answered = 0

        async def client() -> None:  # a client of a backend on the same loop, through the drain
            nonlocal answered
            async with await Conn.open(primary_backend.endpoint.port) as conn:
                while True:
                    await conn.send(encode_request("GET", "/p", "a.com"))
                    r = await conn.read_response()
                    assert r.status == 200
                    answered += 1
                    events.append("answered")
                    if done.is_set():
                        return

        tasks = [asyncio.create_task(ticker()), asyncio.create_task(client())]
        c = await settled(d, m, N)
        done.set()
        await asyncio.gather(*tasks)
        assert (c.compared, c.mismatches["body"]) == (N, N)
        assert d.board.turns - turns == N  # one large comparison per turn ...
        compares = [i for i, e in enumerate(events) if e == "compare"]
        assert len(compares) == N
        for a, b in itertools.pairwise(compares):
            assert "tick" in events[a:b], events  # ... and the loop ran other work between them
        assert answered >= 1
    finally:
        await mirror_backend.close()


async def test_small_comparisons_share_a_turn_up_to_the_batch(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    m = msgspec.structs.replace(make_mirror(b.endpoint), compare=MirrorCompare())
    n = board_module.BATCH + 4
    captures = []
    for _ in range(n):
        headers = request_headers()
        _, capture = d.submit_compared((m,), b"GET", b"/x", headers, False, (b"GET", b"/x", headers, b"r"))
        assert capture is not None
        captures.append(capture)
    await until(lambda: d.stats().completed.get("2xx") == n)
    turns = d.board.turns
    raw = response(200, [("content-type", "text/plain")], b"ok:/x")
    head, _, rest = raw.partition(b"\r\n\r\n")
    for capture in captures:
        capture.head(Head(200, head + b"\r\n\r\n"))  # type: ignore[arg-type]
        capture.body(rest)
        capture.complete()
        capture.end()
    c = await settled(d, m, n)
    assert (c.compared, c.matched) == (n, n)
    assert d.board.turns - turns == 2  # BATCH, then the rest
