"""A minimal stdlib WebSocket (RFC 6455) echo backend and client, for tests and the bench.

Rules:
1. Frames: FIN always set (no fragmentation), payload lengths 7/16/64-bit, client frames masked,
   server frames not (RFC 6455 §5.1-5.3). Text and binary frames are echoed as they came; a ping
   gets a pong; a close is answered with a close and the TCP connection closed (§5.5.1).
2. The backend answers a handshake (``Upgrade: websocket``, ``Sec-WebSocket-Key``) with 101 and
   ``Sec-WebSocket-Accept`` (§4.2.2), or with ``refuse`` (a status) when set; any other request
   gets 200 with the request head it received as its body, then the connection closes. It
   records every request head (``heads``) and counts open tunnels (``open``); ``delay`` seconds
   pass before it answers a handshake.
3. A text message ``close-now`` makes the backend close the TCP connection at once (without a
   close frame), to test the backend side going away.
"""

import asyncio
import base64
import hashlib
import os
from ssl import SSLContext

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def encode_frame(opcode: int, payload: bytes, mask: bool) -> bytes:
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes([0x80 | opcode, bit | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, bit | 127]) + n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        return head + key + _mask(payload, key)
    return head + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(opcode, unmasked payload); raises ``asyncio.IncompleteReadError`` at EOF."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    key = await reader.readexactly(4) if b1 & 0x80 else b""
    payload = await reader.readexactly(n)
    return b0 & 0x0F, _mask(payload, key) if key else payload


def _headers(head: bytes) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name:
            out[name.strip().lower()] = value.strip()
    return out


class WsEchoBackend:
    def __init__(self, refuse: int = 0, delay: float = 0.0) -> None:
        self.refuse = refuse
        self.delay = delay
        self.heads: list[bytes] = []
        self.open = 0  # tunnels open now
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> "WsEchoBackend":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            h = _headers(head)
            key = h.get(b"sec-websocket-key")
            if key is None or b"websocket" not in h.get(b"upgrade", b"").lower():
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(head) + head)
            else:
                await asyncio.sleep(self.delay)
                await self._handshake(key, reader, writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _handshake(self, key: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.write(b"HTTP/1.1 %d Refused\r\ncontent-length: 7\r\n\r\nrefused" % self.refuse)
            return
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
        )
        self.open += 1
        try:
            await self._echo(reader, writer)
        finally:
            self.open -= 1

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == CLOSE:
                writer.write(encode_frame(CLOSE, payload[:2], False))
                return
            if opcode == PING:
                writer.write(encode_frame(PONG, payload, False))
            elif opcode == TEXT and payload == b"close-now":
                return
            elif opcode in (TEXT, BINARY):
                writer.write(encode_frame(opcode, payload, False))
            await writer.drain()


class WsClient:
    """A client connection: ``connect`` does the handshake; ``status``/``head`` are the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0
        self.head = b""

    @classmethod
    async def connect(
        cls,
        port: int,
        path: str = "/",
        host: str = "example.com",
        extra: bytes = b"",
        upgrade: bytes = b"websocket",
        ssl: SSLContext | None = None,
    ) -> "WsClient":
        tls = {"ssl": ssl, "server_hostname": host} if ssl is not None else {}
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22, **tls)  # type: ignore[arg-type]
        c = cls(reader, writer)
        key = base64.b64encode(os.urandom(16))
        writer.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: %s\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
            % (path.encode(), host.encode(), upgrade, key, extra)
        )
        c.head = await reader.readuntil(b"\r\n\r\n")
        c.status = int(c.head.split(b" ", 2)[1])
        if c.status == 101:
            assert _headers(c.head).get(b"sec-websocket-accept") == accept_key(key)
        return c

    @property
    def headers(self) -> dict[bytes, bytes]:
        return _headers(self.head)

    async def send(self, opcode: int, payload: bytes) -> None:
        self.writer.write(encode_frame(opcode, payload, True))
        await self.writer.drain()

    async def recv(self) -> tuple[int, bytes]:
        return await read_frame(self.reader)

    async def echo(self, opcode: int, payload: bytes) -> bytes:
        await self.send(opcode, payload)
        got_opcode, got = await self.recv()
        assert got_opcode == opcode
        return got

    async def closed_by_peer(self, limit: float = 10.0) -> bool:
        """Whether the peer closed the connection (everything it still sends is read and dropped)."""
        try:
            async with asyncio.timeout(limit):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()
