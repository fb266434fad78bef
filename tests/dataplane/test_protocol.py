"""Protocol tests: ``HttpProtocol`` driven with raw bytes through a fake transport, no sockets.

Every case is fed three ways (h11's helper): all at once, one byte at a time, and followed by a
pipelined request. The table has no upstreams: answers are local (404, 500, redirects), which
isolates parsing, framing, ordering and closing. A property test feeds arbitrary bytes.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import httptools
import pytest
from hypothesis import given, settings, strategies as st

from mirrorgate.dataplane.limits import Limits
from mirrorgate.dataplane.matcher import compile
from mirrorgate.dataplane.protocol import MAX_HEAD, HttpProtocol
from mirrorgate.dataplane.state import GatewayState
from mirrorgate.ir.table import (
    Action,
    Filters,
    HTTPListener,
    Match,
    PathType,
    Redirect,
    Route,
    RoutingTable,
    Server,
    VirtualHost,
)
from mirrorgate.upstream.pool import Pool
from tests.support.waiting import until

KEY = ("0.0.0.0", 80)
TABLE = RoutingTable(
    servers=(
        Server(
            address="0.0.0.0",
            port=80,
            listeners=(
                HTTPListener(
                    name="l",
                    port=80,
                    virtual_hosts=(
                        VirtualHost(
                            hostname="",
                            routes=(
                                Route(
                                    name="redirect",
                                    match=Match(path_type=PathType.EXACT, path="/redirect"),
                                    action=Action(
                                        rule="redirect", filters=Filters(redirect=Redirect(hostname="example.org"))
                                    ),
                                ),
                                Route(
                                    name="broken",
                                    match=Match(path_type=PathType.EXACT, path="/500"),
                                    action=Action(rule="b", status=500),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )
)


class MockTransport:
    """Records writes; honours close/pause like a real transport."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.buffer += data

    def writelines(self, data: list[bytes]) -> None:
        for d in data:
            self.write(d)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.7", 5555) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0


class Parsed:
    def __init__(self) -> None:
        self.responses: list[tuple[int, dict[bytes, bytes], bytes]] = []
        self._headers: dict[bytes, bytes] = {}
        self._body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.responses.append((self.status, self._headers, bytes(self._body)))
        self._headers, self._body = {}, bytearray()

    status = 0


def parse_responses(data: bytes, head_only: bool = False) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Split the transport's bytes into responses; raises if they are not well-formed HTTP."""
    out: list[tuple[int, dict[bytes, bytes], bytes]] = []
    rest = data
    while rest:
        p = Parsed()
        parser = httptools.HttpResponseParser(p)
        end = rest.index(b"\r\n\r\n") + 4
        head, length = rest[:end], 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if head_only:
            length = 0
        msg, rest = rest[: end + length], rest[end + length :]
        p.status = int(msg.split(b" ")[1])
        parser.feed_data(msg)
        if not head_only:
            assert p.responses, f"incomplete response {msg!r}"
            out.append(p.responses[0])
        else:
            out.append((p.status, p._headers, b""))
    return out


async def drive(chunks: list[bytes], state: GatewayState | None = None) -> tuple[MockTransport, HttpProtocol]:
    state = state or GatewayState(compile(TABLE), Pool())
    proto = HttpProtocol(state, KEY)
    transport = MockTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    for chunk in chunks:
        if transport.closed:
            break
        proto.data_received(chunk)
    for _ in range(1000):  # let every exchange finish (bounded: a hang fails the test)
        if proto.running is None and not proto.queue:
            break
        await asyncio.sleep(0)
    assert proto.running is None, "an exchange did not finish"
    proto._cancel_idle_timer()
    return transport, proto


Feed = Callable[[bytes], list[bytes]]
FEEDS: dict[str, Feed] = {
    "whole": lambda data: [data],
    "bytewise": lambda data: [data[i : i + 1] for i in range(len(data))],
}
GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


@pytest.fixture(params=sorted(FEEDS))
def feed(request: pytest.FixtureRequest) -> Feed:
    return FEEDS[request.param]


async def test_get_404_keep_alive(feed: Feed) -> None:
    t, _ = await drive(feed(GET))
    ((status, headers, body),) = parse_responses(bytes(t.buffer))
    assert status == 404
    assert b"connection" not in headers
    assert body == b"Not Found\n"
    assert not t.closed


async def test_pipelined_requests_answered_in_order(feed: Feed) -> None:
    data = (
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
        + b"GET /500 HTTP/1.1\r\nHost: a\r\n\r\n"
        + b"GET /redirect?q=1 HTTP/1.1\r\nHost: h:8080\r\n\r\n"
    )
    t, _ = await drive(feed(data))
    got = parse_responses(bytes(t.buffer))
    assert [s for s, _, _ in got] == [404, 500, 302]
    assert got[2][1][b"location"] == b"http://example.org/redirect?q=1"
    assert not t.closed


async def test_body_is_consumed_and_next_request_served(feed: Feed) -> None:
    data = (
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        + b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n"
        + GET
    )
    t, _ = await drive(feed(data))
    assert [s for s, _, _ in parse_responses(bytes(t.buffer))] == [404, 404, 404]
    assert not t.closed


async def test_http10_closes(feed: Feed) -> None:
    t, _ = await drive(feed(b"GET / HTTP/1.0\r\n\r\n" + GET))
    ((status, headers, _),) = parse_responses(bytes(t.buffer))
    assert (status, headers[b"connection"]) == (404, b"close")
    assert t.closed


async def test_http10_keep_alive(feed: Feed) -> None:
    t, _ = await drive(feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
    ((status, headers, _),) = parse_responses(bytes(t.buffer))
    assert (status, headers[b"connection"]) == (404, b"keep-alive")
    assert not t.closed


async def test_head_reply_has_no_body(feed: Feed) -> None:
    t, _ = await drive(feed(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert t.buffer.endswith(b"\r\n\r\n")
    assert b"content-length: 10" in t.buffer


async def test_absolute_form_target(feed: Feed) -> None:
    t, _ = await drive(feed(b"GET http://Example.com:81/redirect?z HTTP/1.1\r\nHost: ignored\r\n\r\n"))
    ((status, headers, _),) = parse_responses(bytes(t.buffer))
    assert (status, headers[b"location"]) == (302, b"http://example.org/redirect?z")


BAD = {
    "cl-and-te": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    "two-cl": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    "bad-cl": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400),
    "te-not-chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    "te-http10": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "bad-chunk": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "no-host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
    "bare-lf": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "space-in-name": (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    "garbage": (b"\x00\x01\x02 nonsense\r\n\r\n", 400),
    "bad-target": (b"GET ftp://x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "userinfo": (b"GET http://u@x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "version": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    "huge-head": (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431),
    "many-headers": (b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Y: z\r\n" * (MAX_HEAD // 8) + b"\r\n", 431),
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_bad_requests_get_an_error_and_close(case: str) -> None:
    raw, status = BAD[case]
    for feed in (FEEDS["whole"], FEEDS["bytewise"]) if len(raw) < 5000 else (FEEDS["whole"],):
        t, _ = await drive(feed(raw + GET))  # the pipelined GET after the error is never answered
        got = parse_responses(bytes(t.buffer))
        assert [s for s, _, _ in got] == [status], case
        assert got[0][1][b"connection"] == b"close"
        assert t.closed


async def test_error_after_good_requests_waits_for_them() -> None:
    t, _ = await drive([GET + GET + b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + GET])
    assert [s for s, _, _ in parse_responses(bytes(t.buffer))] == [404, 404, 400]
    assert t.closed


async def test_upgrade_is_answered_then_closed() -> None:
    t, _ = await drive([b"GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nxyz"])
    assert [s for s, _, _ in parse_responses(bytes(t.buffer))] == [404]
    assert t.closed


async def test_pipelining_pauses_reading_until_the_queue_drains() -> None:
    state = GatewayState(compile(TABLE), Pool())
    proto = HttpProtocol(state, KEY)
    t = MockTransport()
    proto.connection_made(t)  # type: ignore[arg-type]
    proto.data_received(GET + GET + GET)
    assert t.paused
    for _ in range(100):
        await asyncio.sleep(0)
    assert not t.paused
    assert len(parse_responses(bytes(t.buffer))) == 3
    proto.connection_lost(None)


async def test_client_gone_mid_request_cancels_nothing_pending() -> None:
    state = GatewayState(compile(TABLE), Pool())
    proto = HttpProtocol(state, KEY)
    t = MockTransport()
    proto.connection_made(t)  # type: ignore[arg-type]
    proto.data_received(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    proto.connection_lost(None)
    for _ in range(100):
        await asyncio.sleep(0)
    assert not state.tasks
    assert not state.connections


REQUEST_PARTS = st.sampled_from(
    [
        GET,
        b"GET /redirect HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"\r\n",
        b"Content-Length: 5\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"HTTP/1.0",
        b"\x00",
        b"GET ",
        b"Host: x\r\n",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(REQUEST_PARTS, st.binary(max_size=40)), max_size=8), st.integers(1, 64))
def test_arbitrary_bytes_never_escape_or_hang(parts: list[bytes], step: int) -> None:
    """Any input: well-formed responses only; an error reply is the last one and closes."""
    data = b"".join(parts)
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    transport, proto = asyncio.run(drive(chunks))
    out = bytes(transport.buffer)
    statuses = [s for s, _, _ in parse_responses(out)] if out else []
    for i, status in enumerate(statuses):
        assert status in (302, 400, 404, 431, 500, 505)
        if status in (400, 431, 505):
            assert i == len(statuses) - 1
            assert transport.closed
    assert transport.closed or proto.running is None


async def test_idle_keep_alive_connection_is_closed() -> None:
    state = GatewayState(compile(TABLE), Pool(), limits=Limits(keepalive_timeout=0.02))
    proto = HttpProtocol(state, KEY)
    t = MockTransport()
    proto.connection_made(t)  # type: ignore[arg-type]
    proto.data_received(GET)
    await until(lambda: t.closed, "the idle connection is closed")
    assert len(parse_responses(bytes(t.buffer))) == 1
    proto.connection_lost(None)


async def test_half_close_mid_body_answers_400() -> None:
    state = GatewayState(compile(TABLE), Pool())
    proto = HttpProtocol(state, KEY)
    t = MockTransport()
    proto.connection_made(t)  # type: ignore[arg-type]
    proto.data_received(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    assert proto.eof_received() is True
    for _ in range(100):
        await asyncio.sleep(0)
    assert [s for s, _, _ in parse_responses(bytes(t.buffer))] == [400]
    assert t.closed
    proto.connection_lost(None)
