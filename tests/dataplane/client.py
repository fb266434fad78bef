"""A tiny raw HTTP/1.1 client for end-to-end tests: real sockets, byte-exact requests, strict reads."""

import asyncio
import json
from typing import Any


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ",".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.headers}, {self.body[:200]!r})"


class Conn:
    """One client connection; ``send`` raw bytes, ``read_response`` one response at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> "Conn":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_response(self, head: bool = False) -> Response:
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:] if line)]
        if 100 <= status < 200:
            return Response(status, headers, b"")
        resp = Response(status, headers, b"")
        if head or status in (204, 304):
            return resp
        te = resp.header("transfer-encoding")
        if te is not None and te.lower().endswith("chunked"):
            resp.body = await self._read_chunked()
        elif resp.header("content-length") is not None:
            resp.body = await self.reader.readexactly(int(resp.header("content-length") or 0))
        else:
            resp.body = await self.reader.read()
        return resp

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            assert await self.reader.readexactly(2) == b"\r\n"

    async def closed_by_peer(self) -> bool:
        """True when the server closed the connection (EOF with nothing more to read)."""
        try:
            return await self.reader.read() == b""
        except ConnectionResetError:
            return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


def encode_request(
    method: str,
    path: str,
    host: str = "example.com",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    version: str = "1.1",
) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", f"Host: {host}"]
    lines += [f"{n}: {v}" for n, v in headers or []]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def request(
    port: int,
    method: str = "GET",
    path: str = "/",
    host: str = "example.com",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
) -> Response:
    """One request on a fresh connection."""
    conn = await Conn.open(port)
    try:
        await conn.send(encode_request(method, path, host, headers, body))
        return await conn.read_response(head=method == "HEAD")
    finally:
        await conn.close()
