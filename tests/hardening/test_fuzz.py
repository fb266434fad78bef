"""Hypothesis fuzz of the request path through the real in-process gateway, over real sockets.

Bytes in (arbitrary, or valid requests mutated) -> every reply is a well-formed status line; each
``200`` is a request the recording backend really received; any other final status is a 4xx/5xx
that is the last thing on the connection; the connection ends (the client half-closes after
sending, so the gateway owes at most the replies to what it read) within a bounded wait; no
traceback or ERROR record is logged (``mirrorgate`` and ``asyncio`` loggers, loop exception
handler) and no connection or task is left behind.

The gateway and its backends run on an event loop in a background thread for the whole module,
the client is a blocking socket with a timeout, so one example costs a few milliseconds.

``max_examples`` is 50 by default (CI); set ``MIRRORGATE_FUZZ_EXAMPLES`` (e.g. 20000) for a long
run, e.g. ``MIRRORGATE_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/hardening/test_fuzz.py``.
"""

import asyncio
import itertools
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.hardening.conftest import ErrorRecords, gateway_yaml
from tests.support.backends import Backend
from tests.support.waiting import until

EXAMPLES = int(os.environ.get("MIRRORGATE_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES <= 50,  # CI: the same examples every run
)
READ_TIMEOUT = 10.0  # seconds a reply may take: exceeding it is the "hang" this test exists to find
ALLOWED = {200, 400, 414, 431, 501, 505}  # 200 = proxied; the rest are the gateway's own rejections


class Served:
    """Gateway + recording backend on a loop in a thread."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.errors = ErrorRecords()
        self.loop_errors: list[str] = []
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.backend = Backend()
        self.mirror = Backend()
        self.gateway: DataPlane | None = None
        self.port = 0

    def run(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=30)

    def start(self) -> None:
        self.loop.set_exception_handler(lambda _loop, ctx: self.loop_errors.append(str(ctx.get("message"))))
        self.thread.start()
        for name in ("mirrorgate", "asyncio"):
            logging.getLogger(name).addHandler(self.errors)
        self.run(self._start())

    async def _start(self) -> None:
        self.backend.changed = asyncio.Event()
        self.mirror.changed = asyncio.Event()
        await self.backend.start()
        await self.mirror.start()
        path = self.tmp / "fuzz.yaml"
        path.write_text(gateway_yaml(self.backend.port, self.mirror.port))
        table = load_table([str(path)], "127.0.0.1")
        self.gateway = DataPlane(table, port_overrides={s.port: 0 for s in table.servers})
        await self.gateway.start()
        self.port = self.gateway.port(80)

    async def _idle(self) -> tuple[int, int]:
        assert self.gateway is not None
        st_ = self.gateway.state
        try:
            await until(lambda: not st_.connections and not st_.tasks)
        except AssertionError:
            pass  # what is left is reported
        return len(st_.connections), len(st_.tasks)

    def idle(self) -> tuple[int, int]:
        result: tuple[int, int] = self.run(self._idle())
        return result

    def stop(self) -> None:
        async def _stop() -> None:
            assert self.gateway is not None
            await self.gateway.shutdown(1.0)
            await self.backend.close()
            await self.mirror.close()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        for name in ("mirrorgate", "asyncio"):
            logging.getLogger(name).removeHandler(self.errors)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("fuzz"))
    s.start()
    yield s
    s.stop()


def exchange(port: int, segments: list[bytes]) -> bytes:
    """Send the segments (separate writes), half-close, read to EOF; raises on a hang."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for i, seg in enumerate(segments):
                sock.sendall(seg)
                if i < len(segments) - 1:
                    time.sleep(0.001)  # let the gateway read the segments separately
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # EPIPE, ECONNRESET, ENOTCONN
            pass  # the gateway closed early (an error reply); what it sent is read below
        out = bytearray()
        deadline = time.monotonic() + READ_TIMEOUT
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"no end of stream after {READ_TIMEOUT}s; got {bytes(out[:300])!r}")
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError as exc:
                raise AssertionError(f"hang: no end of stream; got {bytes(out[:300])!r}") from exc
            if not data:
                break
            out += data
        return bytes(out)


STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def check(served: Served, segments: list[bytes]) -> None:
    before = len(served.backend.seen)
    out = exchange(served.port, segments)
    statuses = [int(m) for m in STATUS.findall(out)]
    final = [s for s in statuses if s >= 200]
    assert not out or out.startswith(b"HTTP/1.1 "), out[:200]
    assert set(final) <= ALLOWED, (final, out[:500])
    for i, status in enumerate(final):
        if status != 200:
            assert i == len(final) - 1, f"a reply after a {status}: {final}"
    assert final.count(200) <= len(served.backend.seen) - before
    assert served.errors.errors() == [], served.errors.errors()
    assert served.loop_errors == []
    assert served.idle() == (0, 0)


VALID = [
    b"GET /a?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /mirrored/m HTTP/1.1\r\nHost: a\r\nX-Request-Id: r1\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /mirrored/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://h.example/abs HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"HEAD /h HTTP/1.1\r\nHost: a\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n",
]
NASTY = [
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: xchunked\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: -1\r\n",
    b"Host: b\r\n",
    b"X: a\x00b\r\n",
    b" folded\r\n",
    b"Bad Name: v\r\n",
    b"\r\n",
    b"\n",
    b"0\r\n\r\n",
    b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HTTP/1.1",
    b"\xff\xfe",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "nasty", "truncate", "lf"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "replace" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == "nasty":
            line_start = data.rfind(b"\n", 0, pos) + 1
            data[line_start:line_start] = draw(st.sampled_from(NASTY))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "lf":
            data[:] = data.replace(b"\r\n", b"\n", draw(st.integers(1, 3)))
    return bytes(data)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a] or [data]


@FUZZ
@given(data=st.binary(min_size=1, max_size=2048), cuts=st.lists(st.integers(0, 4096), max_size=3))
def test_arbitrary_bytes(served: Served, data: bytes, cuts: list[int]) -> None:
    check(served, split(data, cuts))


@FUZZ
@given(data=mutated(), cuts=st.lists(st.integers(0, 4096), max_size=3))
def test_mutated_requests(served: Served, data: bytes, cuts: list[int]) -> None:
    check(served, split(data, cuts))


@FUZZ
@given(parts=st.lists(st.one_of(st.sampled_from(VALID), st.sampled_from(NASTY), st.binary(max_size=32)), max_size=8))
def test_pipelined_pieces(served: Served, parts: list[bytes]) -> None:
    data = b"".join(parts)
    if data:
        check(served, [data])
