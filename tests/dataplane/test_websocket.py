"""WebSocket through the gateway, on real sockets with the stdlib echo backend of
``tests/support/websocket.py``: frames both ways (large ones through flow control), a mirror
rule dropped as ``upgrade``, closes from either side, the idle timeout, a refused handshake,
h2c served as HTTP/1.1, the access line, and the connections and tasks back to zero."""

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from random import Random
from string import Template

import pytest
from prometheus_client import generate_latest

from mirrorgate.dataplane import accesslog
from mirrorgate.dataplane.accesswriter import AccessWriter
from mirrorgate.dataplane.limits import Limits
from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.dataplane.conftest import lines_of
from tests.support.backends import free_port
from tests.support.client import request
from tests.support.waiting import until
from tests.support.websocket import BINARY, CLOSE, PING, PONG, TEXT, WsClient, WsEchoBackend, encode_frame, read_frame

CONFIG = (Path(__file__).parent / "e2e_data" / "gateway.yaml").read_text()
ROUTES = """
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ws, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /ws}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Via-Route, value: ws}]}}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /mirrored-ws}}]
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: infra-backend-v2, port: 8080}}}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /rewritten-mirrored-ws}}]
    filters:
    - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /ws-echo}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: infra-backend-v2, port: 8080}}}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /refusing}}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /slow-handshake}}]
    timeouts: {request: 300ms}
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /app-protocol}}]
    backendRefs: [{name: ws-app-protocol, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ws-app-protocol, namespace: infra}
spec: {ports: [{port: 8080, targetPort: $v1, appProtocol: kubernetes.io/ws}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ws-app-protocol, namespace: infra, labels: {kubernetes.io/service-name: ws-app-protocol}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{port: $v1, appProtocol: kubernetes.io/ws}]
"""

Gateway = Callable[..., Awaitable[DataPlane]]


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, WsEchoBackend]]:
    made = {"v1": await WsEchoBackend().start(), "v2": await WsEchoBackend(delay=5.0).start()}
    made["v3"] = await WsEchoBackend(refuse=400).start()
    yield made
    for b in made.values():
        await b.close()


@pytest.fixture
async def gateway(tmp_path: Path, backends: dict[str, WsEchoBackend]) -> AsyncIterator[Gateway]:
    started: list[DataPlane] = []

    async def make(limits: Limits | None = None) -> DataPlane:
        ports = {name: b.port for name, b in backends.items()} | {"refused": free_port()}
        path = tmp_path / "ws.yaml"
        path.write_text(Template(CONFIG + ROUTES).substitute(ports))
        table = load_table([str(path)], "127.0.0.1")
        gw = DataPlane(table, port_overrides={s.port: 0 for s in table.servers}, rng=Random(7), limits=limits)
        await gw.start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.shutdown(1.0)


async def settled(gw: DataPlane, backend: WsEchoBackend | None = None) -> None:
    """Connections, tasks and pool slots in use back to zero (and the backend's tunnels closed)."""
    await until(lambda: not gw.state.connections and not gw.state.tasks, "connections and tasks at zero")
    await until(lambda: "in_use=0" in repr(gw.state.pool), "no upstream connection in use")
    if backend is not None:
        await until(lambda: backend.open == 0, "the backend's tunnels closed")
    text = generate_latest(gw.registry).decode()
    assert re.search(r"^mirrorgate_connections 0\.0$", text, re.M), text
    assert re.search(r"^mirrorgate_tasks 0\.0$", text, re.M), text


async def test_text_and_binary_frames_round_trip(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/ws/chat?room=1")
    assert ws.status == 101
    assert ws.headers[b"upgrade"] == b"websocket"
    assert ws.headers[b"connection"] == b"upgrade"
    head = backends["v1"].heads[-1].lower()
    assert b"upgrade: websocket\r\n" in head
    assert b"connection: upgrade\r\n" in head
    assert b"sec-websocket-version: 13\r\n" in head
    assert b"x-via-route: ws\r\n" in head
    assert await ws.echo(TEXT, b"hello") == b"hello"
    assert await ws.echo(BINARY, bytes(range(256))) == bytes(range(256))
    await ws.send(PING, b"p")
    assert await ws.recv() == (PONG, b"p")
    await ws.send(CLOSE, b"\x03\xe8")
    assert await ws.recv() == (CLOSE, b"\x03\xe8")
    assert await ws.closed_by_peer()
    ws.close()
    await settled(gw, backends["v1"])


async def test_a_backend_with_app_protocol_ws(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    """Gateway API HTTPRouteBackendProtocolWebSocket: a Service port with ``appProtocol:
    kubernetes.io/ws`` is accepted and upgraded to (as every backend is)."""
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/app-protocol")
    assert ws.status == 101
    assert await ws.echo(TEXT, b"ws") == b"ws"
    ws.close()
    await settled(gw, backends["v1"])


async def test_large_frames_go_through_flow_control(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/ws")
    big = os.urandom(3 * 1024 * 1024 + 7)
    for opcode in (BINARY, TEXT, BINARY):
        payload = big if opcode == BINARY else b"x" * (1 << 20)
        # several in flight at once: the backend echoes while the client is still sending
        sends = asyncio.gather(*(ws.send(opcode, payload) for _ in range(3)))
        got = [await ws.recv() for _ in range(3)]
        await sends
        assert got == [(opcode, payload)] * 3
    ws.close()
    await settled(gw, backends["v1"])


async def test_a_mirror_rule_never_mirrors_an_upgrade(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/mirrored-ws")
    assert ws.status == 101
    assert await ws.echo(TEXT, b"primary") == b"primary"
    ws.close()
    await settled(gw, backends["v1"])
    assert backends["v2"].heads == []  # the mirror backend saw nothing
    text = generate_latest(gw.registry).decode()
    assert re.search(r'^mirrorgate_mirror_dropped_total\{[^}]*reason="upgrade"[^}]*\} 1\.0$', text, re.M), text


async def test_the_mirror_access_log_has_the_refused_upgrade(
    gateway: Gateway, backends: dict[str, WsEchoBackend], log_file: Path, tmp_path: Path
) -> None:
    mirror_log = tmp_path / "mirror.log"
    accesslog.install_mirror(AccessWriter(os.open(mirror_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)))
    try:
        gw = await gateway()
        ws = await WsClient.connect(gw.port(80), "/rewritten-mirrored-ws/x")
        assert ws.status == 101
        ws.close()
        await settled(gw, backends["v1"])
        (primary,) = lines_of(log_file)  # (drains the mirror log's writer too)
        (line,) = mirror_log.read_text().splitlines()
    finally:
        accesslog.install_mirror(None, on=False)
    request_id = primary.rpartition(" request_id=")[2]
    assert re.fullmatch(
        r'\S+ \S+ mirror "GET /ws-echo/x HTTP/1\.1" - - 0\.000ms route=httproute/infra/ws/rule/2/match/0 endpoint=- '
        rf"request_id={request_id} name=httproute/infra/ws/rule/2/mirror/0 backend=service/infra/infra-backend-v2:8080 "
        r"host=example\.com-shadow drop=upgrade",
        line,
    ), line


async def test_the_client_closing_closes_the_backend_side(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/ws")
    assert await ws.echo(TEXT, b"x") == b"x"
    assert backends["v1"].open == 1
    ws.writer.transport.abort()  # no close frame: the TCP connection just goes
    await settled(gw, backends["v1"])


async def test_the_backend_closing_closes_the_client_side(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/ws")
    await ws.send(TEXT, b"close-now")
    assert await ws.closed_by_peer()
    ws.close()
    await settled(gw, backends["v1"])


async def test_a_half_close_keeps_the_other_direction(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/ws")
    await ws.send(TEXT, b"last words")
    ws.writer.write_eof()  # our side is done; the echo still comes back
    assert await ws.recv() == (TEXT, b"last words")
    assert await ws.closed_by_peer()  # the backend saw the EOF, closed, and so did the gateway
    ws.close()
    await settled(gw, backends["v1"])


async def test_an_idle_tunnel_is_closed(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway(Limits(websocket_idle_timeout=0.3))
    ws = await WsClient.connect(gw.port(80), "/ws")
    for _ in range(3):  # traffic keeps it open past the timeout
        await asyncio.sleep(0.15)
        assert await ws.echo(TEXT, b"tick") == b"tick"
    assert await ws.closed_by_peer(limit=5.0)
    ws.close()
    await settled(gw, backends["v1"])


async def test_a_refused_handshake_is_relayed_then_the_connection_closes(
    gateway: Gateway, backends: dict[str, WsEchoBackend]
) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/refusing")
    assert ws.status == 400
    assert ws.headers[b"connection"] == b"close"
    assert await ws.reader.readexactly(7) == b"refused"
    assert await ws.closed_by_peer()
    ws.close()
    await settled(gw)


async def test_the_route_timeout_bounds_the_handshake(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/slow-handshake")  # the backend answers after 5 s
    assert ws.status == 504
    assert await ws.closed_by_peer()
    ws.close()
    await settled(gw)


async def test_h2c_is_served_as_http11_without_the_upgrade(
    gateway: Gateway, backends: dict[str, WsEchoBackend]
) -> None:
    gw = await gateway()
    port = gw.port(80)
    r = await request(
        port,
        path="/ws/h2c",
        headers=[("Upgrade", "h2c"), ("Connection", "Upgrade, HTTP2-Settings"), ("HTTP2-Settings", "AAMAAABkAAQAAP__")],
    )
    assert r.status == 200
    seen = r.body.lower()  # the backend's body: the head it received
    assert b"upgrade" not in seen.replace(b"x-via-route", b"")
    assert b"http2-settings" not in seen
    assert r.header("connection") == "close"
    await settled(gw)


async def test_a_101_to_a_plain_request_is_a_502(gateway: Gateway, tmp_path: Path) -> None:
    gw = await gateway()

    async def rogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(rogue, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        await gw.shutdown(1.0)
        ports = {"v1": port, "v2": port, "v3": port, "refused": free_port()}
        path = tmp_path / "rogue.yaml"
        path.write_text(Template(CONFIG + ROUTES).substitute(ports))
        table = load_table([str(path)], "127.0.0.1")
        gw = DataPlane(table, port_overrides={s.port: 0 for s in table.servers})
        await gw.start()
        r = await request(gw.port(80), path="/ws/plain")
        assert r.status == 502
        await settled(gw)
        await gw.shutdown(1.0)
    finally:
        server.close()


async def test_one_access_line_when_the_tunnel_closes(
    gateway: Gateway, backends: dict[str, WsEchoBackend], log_file: Path
) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/ws/logged")
    assert await ws.echo(TEXT, b"a" * 10) == b"a" * 10  # 12 bytes back: a 2-byte header
    assert await ws.echo(BINARY, b"b" * 200) == b"b" * 200  # 204: a 4-byte header
    await asyncio.sleep(0.2)
    assert lines_of(log_file) == []  # nothing while the tunnel is open
    await ws.send(CLOSE, b"")
    assert await ws.recv() == (CLOSE, b"")
    assert await ws.closed_by_peer()
    ws.close()
    await settled(gw, backends["v1"])
    (line,) = lines_of(log_file)
    m = re.search(r'"GET /ws/logged HTTP/1\.1" 101 (\d+) (\d+\.\d{3})ms route=httproute/infra/ws/rule/0', line)
    assert m is not None, line
    assert int(m[1]) == 12 + 204 + 2  # the frames relayed to the client, the close frame included
    assert float(m[2]) >= 200.0  # the tunnel's whole life


async def test_frames_sent_with_the_handshake_are_relayed(gateway: Gateway, backends: dict[str, WsEchoBackend]) -> None:
    gw = await gateway()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port(80))
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n" + encode_frame(TEXT, b"eager", True)
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert await read_frame(reader) == (TEXT, b"eager")
    writer.close()
    await settled(gw, backends["v1"])


async def test_shutdown_closes_an_open_tunnel_after_the_grace(
    gateway: Gateway, backends: dict[str, WsEchoBackend]
) -> None:
    gw = await gateway()
    ws = await WsClient.connect(gw.port(80), "/ws")
    assert await ws.echo(TEXT, b"x") == b"x"
    await gw.shutdown(0.2)
    assert await ws.closed_by_peer(limit=5.0)
    ws.close()
    await settled(gw, backends["v1"])
