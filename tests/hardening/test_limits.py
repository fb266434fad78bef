"""Per-worker limits (``dataplane/limits.py``) over real sockets through the in-process gateway
(``run --limit NAME=VALUE`` through a real process: tests/runtime/test_flags.py). Nothing asserts on time: every wait is
bounded by ``WAIT`` and fails the test only when exceeded."""

import asyncio
from typing import Any

import pytest

from mirrorgate.dataplane.limits import Limits, parse_limit
from tests.hardening.conftest import HarnessFactory
from tests.support.client import WAIT, Conn


def head(target: str, *headers: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: a", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_connections_over_the_limit_are_closed_at_accept(make_harness: HarnessFactory) -> None:
    h = await make_harness(limits=Limits(max_connections=2))
    first, second = await Conn.open(h.port), await Conn.open(h.port)
    third = await Conn.open(h.port)
    try:
        assert await third.closed_by_peer()
        for client in (first, second):
            await client.send(head("/kept"))
            reply = await client.read_reply()
            assert reply is not None
            assert reply.status == 200
    finally:
        for client in (first, second, third):
            await client.close()
    assert h.gateway.registry.get_sample_value("mirrorgate_connections_rejected_total") == 1.0
    assert h.primary.targets() == ["GET /kept", "GET /kept"]
    # once the others are gone a new connection is served again
    async with asyncio.timeout(WAIT):
        await h.gateway.state.no_connections.wait()
    fourth = await Conn.open(h.port)
    try:
        await fourth.send(head("/again"))
        reply = await fourth.read_reply()
        assert reply is not None
        assert reply.status == 200
    finally:
        await fourth.close()


async def test_open_connections_and_tasks_are_metrics(make_harness: HarnessFactory) -> None:
    h = await make_harness()
    clients = [await Conn.open(h.port) for _ in range(3)]
    try:
        for client in clients:  # every connection has been accepted once it has answered
            await client.send(head("/m"))
            assert await client.read_reply() is not None
        assert h.gateway.registry.get_sample_value("mirrorgate_connections") == 3.0
        assert h.gateway.registry.get_sample_value("mirrorgate_tasks") is not None
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize(
    ("request_bytes", "status", "forwarded"),
    [
        (head("/up", "Content-Length: 1000", method="POST") + b"b" * 1000, 200, True),
        (head("/up", "Content-Length: 1001", method="POST") + b"b" * 1001, 413, False),
        (
            head("/up", "Transfer-Encoding: chunked", method="POST") + b"3e8\r\n" + b"c" * 1000 + b"\r\n0\r\n\r\n",
            200,
            True,
        ),
    ],
    ids=["content-length-at-the-limit", "content-length-over", "chunked-at-the-limit"],
)
async def test_body_size_limit(
    make_harness: HarnessFactory, request_bytes: bytes, status: int, forwarded: bool
) -> None:
    h = await make_harness(limits=Limits(max_body_bytes=1000))
    client = await Conn.open(h.port)
    try:
        await client.send(request_bytes + head("/next"))
        reply = await client.read_reply()
        assert reply is not None
        assert reply.status == status
        if status == 413:
            assert await client.closed_by_peer()
        else:
            nxt = await client.read_reply()
            assert nxt is not None
            assert nxt.status == 200
    finally:
        await client.close()
    await h.settle()
    want = ["POST /up", "GET /next"] if forwarded else []
    assert [t for t in h.primary.targets() if "__sentinel" not in t] == want


async def test_chunked_body_over_the_limit_is_413_and_never_completes_upstream(make_harness: HarnessFactory) -> None:
    """A chunked body is forwarded as it streams; when it passes the limit the client gets 413 and
    a close, and the upstream never sees a complete request (its connection is dropped)."""
    h = await make_harness(limits=Limits(max_body_bytes=1000))
    client = await Conn.open(h.port)
    try:
        chunk = b"400\r\n" + b"c" * 1024 + b"\r\n"
        await client.send(head("/up", "Transfer-Encoding: chunked", method="POST") + chunk + b"0\r\n\r\n")
        reply = await client.read_reply()
        assert reply is not None
        assert reply.status == 413
        assert await client.closed_by_peer()
    finally:
        await client.close()
    await h.settle()
    assert [t for t in h.primary.targets() if "__sentinel" not in t] == []


@pytest.mark.parametrize(("count", "status"), [(99, 200), (100, 431)])
async def test_header_count_limit(make_harness: HarnessFactory, count: int, status: int) -> None:
    """``max_headers`` 100 counts every line, Host included: Host + 99 -> served, Host + 100 -> 431."""
    h = await make_harness()
    client = await Conn.open(h.port)
    try:
        await client.send(head("/h", *(f"X-H{i}: v" for i in range(count))))
        reply = await client.read_reply()
        assert reply is not None
        assert reply.status == status
    finally:
        await client.close()


async def test_idle_keepalive_timeout(make_harness: HarnessFactory) -> None:
    h = await make_harness(limits=Limits(keepalive_timeout=1.0))  # the request arrives well within
    client = await Conn.open(h.port)
    try:
        await client.send(head("/once"))
        reply = await client.read_reply()
        assert reply is not None
        assert reply.status == 200
        assert await client.closed_by_peer()  # bounded by WAIT, closed after ~1 s idle
    finally:
        await client.close()


async def test_a_body_paused_by_back_pressure_is_not_timed_out(make_harness: HarnessFactory) -> None:
    """``body_timeout`` counts only time the gateway is reading: a body that arrives at a healthy
    rate completes even when the whole upload takes several windows. The upload lasts 2.5 windows
    by the loop's clock; a chunk every 0.1 s keeps each 1 s window far above the rate unless the
    host stalls for a whole window."""
    h = await make_harness(limits=Limits(body_timeout=1.0, min_body_rate=1000))
    client = await Conn.open(h.port)
    loop = asyncio.get_running_loop()
    try:
        await client.send(head("/up", "Transfer-Encoding: chunked", method="POST"))
        done_at = loop.time() + 2.5
        while loop.time() < done_at:  # 8 KiB per 0.1 s: 80 times the minimum rate
            await client.send(b"2000\r\n" + b"u" * 0x2000 + b"\r\n")
            await asyncio.sleep(0.1)
        await client.send(b"0\r\n\r\n")
        reply = await client.read_reply()
        assert reply is not None
        assert reply.status == 200
    finally:
        await client.close()


# --- parsing of --limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("max-headers=200", "max_headers", 200),
        ("body-timeout=2.5", "body_timeout", 2.5),
        ("max_body_bytes=0", "max_body_bytes", 0),
        ("keepalive-timeout=30", "keepalive_timeout", 30.0),
    ],
)
def test_parse_limit(text: str, key: str, value: float) -> None:
    into: dict[str, Any] = {}
    parse_limit(text, into)
    assert into == {key: value}
    assert getattr(Limits(**into), key) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max-headers", "expected NAME=VALUE"),
        ("no-such-limit=1", "expected NAME=VALUE with NAME one of max-target-bytes"),
        ("max-headers=ten", "max-headers: expected a whole number, got 'ten'"),
        ("max-headers=0", "max-headers: must be > 0"),
        ("body-timeout=-1", "body-timeout: must be > 0"),
        ("max-body-bytes=-5", "max-body-bytes: must be >= 0 (0 = off)"),
        ("keepalive-timeout=inf", "keepalive-timeout: expected a finite number, got 'inf'"),
        ("body-timeout=nan", "body-timeout: expected a finite number, got 'nan'"),
    ],
)
def test_parse_limit_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_limit(text, {})
