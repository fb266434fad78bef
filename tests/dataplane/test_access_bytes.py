"""The access log's ``bytes``: the response body bytes written to the client, head not counted,
chunk framing counted (NGINX's ``$body_bytes_sent``), on every path. Each case reads the response
off a real socket and checks the logged count against the bytes that followed the head on the
wire, and against the exact expected number."""

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirrorgate.serve.plane import DataPlane
from tests.dataplane.conftest import GatewayFactory
from tests.support.backends import Backend, read_head
from tests.support.client import encode_request
from tests.support.manifests import route_doc, service_docs

CONFIG = (Path(__file__).parent / "e2e_data" / "gateway.yaml").read_text()
BODY = b"hello world"  # 11 bytes
REPLIES = {
    "/cl": b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n" + BODY,
    "/chunked": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
    "/empty": b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    "/garbage": b"this is not HTTP\r\n\r\n",  # a protocol error: 502
}


def raw_route(port: int) -> str:
    """A Service ``raw`` at 127.0.0.1:``port`` and a route sending ``/raw`` to it."""
    rules = """  - matches: [{path: {type: PathPrefix, value: /raw}}]
    backendRefs: [{name: raw, port: 8080}]"""
    return service_docs("raw", port) + route_doc(rules, name="raw")


async def serve_scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers ``/raw<key>`` with ``REPLIES[key]`` in one write; ``/raw/close`` with a body ended by
    closing the connection; HEAD with the head only."""
    while True:
        head = await read_head(reader)
        method, target = head.split(b" ")[:2]
        key = target.decode()[len("/raw") :]
        if key == "/close":
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + BODY)
            await writer.drain()
            return
        reply = REPLIES[key]
        writer.write(reply[: reply.index(b"\r\n\r\n") + 4] if method == b"HEAD" else reply)
        await writer.drain()


@pytest.fixture
async def gateway(gateway_for: GatewayFactory) -> AsyncIterator[DataPlane]:
    backend = await Backend.scripted(serve_scripted).start()
    yield await gateway_for(CONFIG + raw_route(backend.port))
    await backend.close()


async def body_on_the_wire(port: int, method: str, path: str, version: str = "1.1") -> tuple[int, int]:
    """(status, number of bytes after the head) of one response, read by its framing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(encode_request(method, path, version=version))
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head.split(" ")[1])
        if method == "HEAD":
            return status, 0
        if "transfer-encoding: chunked" in head:
            n = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line, 16)
                n += len(size_line) + len(await reader.readexactly(size + 2))
                if size == 0:
                    return status, n
        length = re.search(r"content-length: (\d+)", head)
        if length is not None:
            return status, len(await reader.readexactly(int(length.group(1))))
        return status, len(await reader.read())  # ends with the connection
    finally:
        writer.close()


async def logged_bytes(caplog: pytest.LogCaptureFixture, method: str, path: str) -> tuple[int, int]:
    """(status, bytes) of the access-log line of ``method path`` (waiting briefly for it)."""
    pattern = re.compile(rf'"{method} {re.escape(path)} HTTP/1\.[01]" (\d+) (\d+) ')
    for _ in range(500):
        for record in caplog.records:
            if record.name == "mirrorgate.access" and (m := pattern.search(record.getMessage())):
                return int(m.group(1)), int(m.group(2))
        await asyncio.sleep(0.01)
    raise AssertionError(f"no access-log line for {method} {path}")


CASES = [
    # relayed
    ("GET", "/raw/cl", "1.1", 200, 11),  # content-length: the body as is
    ("GET", "/raw/chunked", "1.1", 200, 21),  # re-chunked: b\r\n + 11 + \r\n + 0\r\n\r\n
    ("GET", "/raw/close", "1.1", 200, 21),  # no length: chunked for an HTTP/1.1 client
    ("GET", "/raw/close", "1.0", 200, 11),  # ... ended by the close for an HTTP/1.0 one
    ("GET", "/raw/empty", "1.1", 200, 0),
    ("HEAD", "/raw/cl", "1.1", 200, 0),
    # local replies: the body is the reason and a newline
    ("GET", "/missing", "1.1", 404, len(b"Not Found\n")),
    ("GET", "/invalid", "1.1", 500, len(b"Internal Server Error\n")),
    ("GET", "/raw/garbage", "1.1", 502, len(b"Bad Gateway\n")),
    ("GET", "/refused", "1.1", 503, len(b"Service Unavailable\n")),  # connect refused
    ("GET", "/no-endpoints", "1.1", 503, len(b"Service Unavailable\n")),
    ("GET", "/timeout?delay=1s", "1.1", 504, len(b"Gateway Timeout\n")),
    ("GET", "/redirect/x", "1.1", 301, 0),
    ("HEAD", "/no-endpoints", "1.1", 503, 0),
]


@pytest.mark.parametrize(("method", "path", "version", "status", "expected"), CASES)
async def test_bytes_is_the_body_written_to_the_client(
    gateway: DataPlane,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    version: str,
    status: int,
    expected: int,
) -> None:
    caplog.set_level(logging.INFO, logger="mirrorgate.access")
    assert await body_on_the_wire(gateway.port(80), method, path, version) == (status, expected)
    assert await logged_bytes(caplog, method, path) == (status, expected)
