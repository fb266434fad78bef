"""The raw HTTP/1.1 client of every end-to-end test: real sockets, byte-exact requests, strict reads.

Rules:
- requests are bytes the test chose (``encode_request`` builds the common ones); nothing is
  normalised on the way out;
- a response is framed by Content-Length, chunked Transfer-Encoding, or the close (RFC 9112
  §6.3); interim 1xx, HEAD answers, 204 and 304 have no body;
- every wait is bounded by ``WAIT`` so a broken server fails a test instead of hanging it; no
  test asserts on how long a wait took;
- the peer may close while the client still writes: ``send`` swallows that error, and what the
  server sent before its close is still read.
"""

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

WAIT = 10.0  # seconds; an upper bound on any single wait, never asserted on


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    version: str = "HTTP/1.1"
    reason: str = ""

    def header(self, name: str) -> str | None:
        """Every value of ``name`` (case-insensitive) joined with ``,``, or None."""
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ",".join(values) if values else None

    def names(self) -> list[str]:
        return [n for n, _ in self.headers]

    def json(self) -> Any:
        return json.loads(self.body)


def parse_head(raw: bytes) -> Response:
    """The status line and header fields of one response head (ending in CRLF CRLF)."""
    status_line, *lines = raw.decode("latin-1")[:-4].split("\r\n")
    version, status, *reason = status_line.split(" ", 2)
    headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines if line)]
    return Response(int(status), headers, b"", version, reason[0] if reason else "")


def has_body(response: Response, head: bool) -> bool:
    return not (head or response.status < 200 or response.status in (204, 304))


class Conn:
    """One client connection; ``send`` raw bytes, read one response at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1", **kw: Any) -> Self:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, **kw), WAIT)
        return cls(reader, writer)

    @property
    def local_port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        try:
            await self.writer.drain()
        except ConnectionError:
            pass  # the server may close while we still write; what it answered is read next

    async def read_response(self, head: bool = False) -> Response:
        """One response (an interim 1xx too); raises ``IncompleteReadError`` at EOF."""
        async with asyncio.timeout(WAIT):
            response = parse_head(await self.reader.readuntil(b"\r\n\r\n"))
            if has_body(response, head):
                response.body = await self._read_body(response)
            return response

    async def read_reply(self, head: bool = False) -> Response | None:
        """``read_response``, or None when the connection ended before a response head."""
        try:
            return await self.read_response(head)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def _read_body(self, response: Response) -> bytes:
        te = response.header("transfer-encoding")
        length = response.header("content-length")
        if te is not None and te.lower().endswith("chunked"):
            return await self._read_chunked()
        if length is not None:
            return await self.reader.readexactly(int(length))
        return await self.reader.read()

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self.reader.readexactly(size))
            assert await self.reader.readexactly(2) == b"\r\n"
        while await self.reader.readuntil(b"\r\n") != b"\r\n":
            pass  # trailer fields
        return b"".join(parts)

    async def read_until_closed(self) -> bytes:
        """Everything the server sends until it closes (EOF or reset)."""
        received = bytearray()
        async with asyncio.timeout(WAIT):
            try:
                while chunk := await self.reader.read(1 << 16):
                    received += chunk
            except ConnectionError:
                pass
        return bytes(received)

    async def closed_by_peer(self) -> bool:
        """Reads to EOF (bounded): True when the server closed with nothing more to send."""
        async with asyncio.timeout(WAIT):
            try:
                return await self.reader.read() == b""
            except ConnectionError:
                return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:  # the server may have reset it on purpose
            pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def encode_request(
    method: str = "GET",
    target: str = "/",
    host: str | None = "example.com",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    version: str = "1.1",
) -> bytes:
    """One request head (and body): ``Host`` first unless ``host`` is None, then ``headers`` in
    order, then ``Content-Length`` when there is a body."""
    lines = [f"{method} {target} HTTP/{version}", *([f"Host: {host}"] if host is not None else [])]
    lines += [f"{n}: {v}" for n, v in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def roundtrip(port: int, data: bytes, *, head: bool = False) -> Response:
    """Send ``data`` on a fresh connection and return the first response."""
    async with await Conn.open(port) as conn:
        await conn.send(data)
        return await conn.read_response(head=head)


async def request(
    port: int,
    method: str = "GET",
    path: str = "/",
    host: str = "example.com",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> Response:
    """One request on a fresh connection."""
    return await roundtrip(port, encode_request(method, path, host, headers, body), head=method == "HEAD")
