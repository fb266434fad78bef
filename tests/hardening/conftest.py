"""Hardening fixtures: the real in-process gateway in front of recording backends, raw clients.

``RecordingBackend`` is an asyncio server that parses what it receives with httptools (its own,
independent parser), records every request (method, target, headers, body) and every raw byte,
and answers each request ``200`` with a small framed body. ``Harness`` starts two of them
(``primary`` and ``mirror``) and the gateway (``DataPlane(load_table(...), port_overrides=...)``)
with one route: ``/mirrored`` (prefix) is mirrored 100% to ``mirror``, everything goes to
``primary``. Every wait is bounded; nothing asserts on time.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import httptools
import pytest

from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane

WAIT = 5.0  # seconds any single wait may take before the test fails (never asserted on as a time)
SENTINEL = "/__sentinel"


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> bytes | None:
        values = [v for n, v in self.headers if n.lower() == name.lower().encode()]
        return b",".join(values) if values else None


@dataclass
class _Parsing:
    url: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)


class _ServerProto(asyncio.Protocol):
    def __init__(self, backend: "RecordingBackend") -> None:
        self.backend = backend
        self.parser = httptools.HttpRequestParser(self)
        self.cur = _Parsing()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.backend.open += 1
        self.backend.accepted += 1
        self.backend.transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.backend.open -= 1
        if self.transport is not None:
            self.backend.transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.backend.raw.append(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.backend.upgrades += 1  # CONNECT / Upgrade: the request was recorded; nothing more is read
        except httptools.HttpParserError:
            self.backend.parse_errors += 1
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.cur = _Parsing()

    def on_url(self, url: bytes) -> None:
        self.cur.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.cur.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.cur.body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("latin-1")
        seen = Seen(method, self.cur.url.decode("latin-1"), self.cur.headers, bytes(self.cur.body))
        self.backend.seen.append(seen)
        self.backend.changed.set()
        assert self.transport is not None
        body = b"ok:" + self.cur.url
        self.transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )


class RecordingBackend:
    """Records every request it receives (see module docstring)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.raw: list[bytes] = []
        self.parse_errors = 0
        self.upgrades = 0
        self.open = 0
        self.accepted = 0
        self.changed = asyncio.Event()
        self.transports: set[asyncio.Transport] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _ServerProto(self), "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    def targets(self) -> list[str]:
        """``METHOD target`` of every request seen, sentinels excluded."""
        return [f"{s.method} {s.target}" for s in self.seen if SENTINEL not in s.target]

    async def wait_for(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not check():
                self.changed.clear()
                await self.changed.wait()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for t in list(self.transports):
            t.abort()
        await self.server.wait_closed()


def gateway_yaml(primary: int, mirror: int, extra_rules: str = "", extra_docs: str = "") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: mirrorgate}}
spec: {{controllerName: mirrorgate.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: mirrorgate
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: primary, namespace: infra}}
spec: {{ports: [{{port: 8080, targetPort: {primary}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: primary, namespace: infra, labels: {{kubernetes.io/service-name: primary}}}}
addressType: IPv4
endpoints: [{{addresses: [127.0.0.1]}}]
ports: [{{port: {primary}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: mirror, namespace: infra}}
spec: {{ports: [{{port: 8080, targetPort: {mirror}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: mirror, namespace: infra, labels: {{kubernetes.io/service-name: mirror}}}}
addressType: IPv4
endpoints: [{{addresses: [127.0.0.1]}}]
ports: [{{port: {mirror}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: route, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /mirrored}}}}]
    filters: [{{type: RequestMirror, requestMirror: {{backendRef: {{name: mirror, port: 8080}}}}}}]
    backendRefs: [{{name: primary, port: 8080}}]
{extra_rules}  - backendRefs: [{{name: primary, port: 8080}}]
{extra_docs}"""


class ErrorRecords(logging.Handler):
    """Collects WARNING+ records of the ``mirrorgate`` loggers and any traceback."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            for r in self.records
            if r.levelno >= logging.ERROR or r.exc_info is not None or "Traceback" in r.getMessage()
        ]


@dataclass
class Harness:
    gateway: DataPlane
    primary: RecordingBackend
    mirror: RecordingBackend
    log: ErrorRecords

    @property
    def port(self) -> int:
        return self.gateway.port(80)

    async def settle(self) -> None:
        """Send a mirrored sentinel on a fresh connection and wait until both backends saw it: the
        requests of earlier (closed) client connections have been forwarded or never will be."""
        n = sum(SENTINEL in s.target for s in self.primary.seen)
        m = sum(SENTINEL in s.target for s in self.mirror.seen)
        target = f"/mirrored{SENTINEL}"  # route prefix /mirrored: the mirror sees it too
        async with asyncio.timeout(WAIT):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(f"GET {target} HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n".encode())
            await reader.read()
            writer.close()
        await self.primary.wait_for(lambda: sum(SENTINEL in s.target for s in self.primary.seen) > n)
        await self.mirror.wait_for(lambda: sum(SENTINEL in s.target for s in self.mirror.seen) > m)

    def leaks(self) -> tuple[int, int, str]:
        st = self.gateway.state
        return len(st.connections), len(st.tasks), repr(st.pool)


HarnessFactory = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    made: list[Harness] = []
    handler = ErrorRecords()
    logger = logging.getLogger("mirrorgate")
    logger.addHandler(handler)

    async def make(extra_rules: str = "", extra_docs: str = "", **gateway_kw: object) -> Harness:
        primary, mirror = RecordingBackend(), RecordingBackend()
        await primary.start()
        await mirror.start()
        path = tmp_path / f"gw{len(made)}.yaml"
        path.write_text(gateway_yaml(primary.port, mirror.port, extra_rules, extra_docs))
        try:
            table = load_table([str(path)], "127.0.0.1")
        except Exception:  # a configuration the test expects to be refused: close what was started
            await primary.close()
            await mirror.close()
            raise
        gw = DataPlane(table, port_overrides={s.port: 0 for s in table.servers}, rng=Random(7), **gateway_kw)  # type: ignore[arg-type]
        await gw.start()
        h = Harness(gw, primary, mirror, handler)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.gateway.shutdown(1.0)
        await h.primary.close()
        await h.mirror.close()
    logger.removeHandler(handler)


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    return await make_harness()


# --- a raw client ---------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ",".join(values) if values else None


class RawClient:
    """One connection; every read is bounded by ``WAIT``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, **kw: object) -> "RawClient":
        reader, writer = await asyncio.open_connection("127.0.0.1", port, **kw)  # type: ignore[arg-type]
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        try:
            await self.writer.drain()
        except ConnectionError:
            pass  # the gateway may close while we still write; what it answered is read next

    async def read_reply(self, head_only: bool = False) -> Reply | None:
        """One response (interim 1xx included); None when the connection ended first."""
        async with asyncio.timeout(WAIT):
            try:
                raw = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers = [(n.strip(), v.strip()) for n, _, v in (ln.partition(":") for ln in lines[1:] if ln)]
            reply = Reply(status, headers, b"")
            if status < 200 or head_only or status in (204, 304):
                return reply
            te = reply.header("transfer-encoding")
            cl = reply.header("content-length")
            if te is not None and te.lower().endswith("chunked"):
                parts = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        while await self.reader.readuntil(b"\r\n") != b"\r\n":
                            pass
                        break
                    parts.append(await self.reader.readexactly(size))
                    await self.reader.readexactly(2)
                reply.body = b"".join(parts)
            elif cl is not None:
                reply.body = await self.reader.readexactly(int(cl))
            else:
                reply.body = await self.reader.read()
            return reply

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
        except ConnectionError:
            pass
