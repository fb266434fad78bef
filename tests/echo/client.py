"""A minimal raw-socket HTTP/1.1 client for the echo tests: bytes in, parsed responses out.

Every wait is bounded by ``WAIT`` so a broken server fails a test instead of hanging it.
"""

import asyncio
import io
import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Self

from mirrorgate.echo import EchoServer

WAIT = 10.0  # seconds; an upper bound on any single wait, never asserted on


@dataclass
class Echo:
    """A running in-process echo server and the text it has logged so far."""

    server: EchoServer
    log: io.StringIO

    @property
    def port(self) -> int:
        return self.server.port

    def log_lines(self) -> list[str]:
        return self.log.getvalue().splitlines()


class Response(NamedTuple):
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of ``name`` (case-insensitive), or None."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def names(self) -> list[str]:
        return [key for key, _ in self.headers]

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    target: str = "/",
    *,
    method: str = "GET",
    headers: tuple[tuple[str, str], ...] = (("Host", "echo.test"),),
    body: bytes = b"",
    version: str = "1.1",
) -> bytes:
    """Serialise one request; adds Content-Length when there is a body."""
    lines = [f"{method} {target} HTTP/{version}", *(f"{name}: {value}" for name, value in headers)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Conn:
    """One TCP connection to the echo server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Self:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
        return cls(reader, writer)

    @property
    def local_port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, *, head: bool = False) -> Response:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        status_line, *lines = raw.decode("latin-1")[:-4].split("\r\n")
        version, status, reason = status_line.split(" ", 2)
        headers = [(name, value.strip()) for name, _, value in (line.partition(":") for line in lines)]
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = b"" if head else await asyncio.wait_for(self.reader.readexactly(length), WAIT)
        return Response(version, int(status), reason, headers, body)

    async def at_eof(self) -> bool:
        """Whether the server closed the connection (reads until EOF, bounded)."""
        return await asyncio.wait_for(self.reader.read(), WAIT) == b""

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


async def roundtrip(port: int, data: bytes, *, head: bool = False) -> Response:
    """Send ``data`` on a fresh connection and return the first response."""
    async with await Conn.open(port) as conn:
        await conn.send(data)
        return await conn.response(head=head)
