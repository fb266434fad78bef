"""The admin server over real sockets: every endpoint, readiness, bad input."""

import asyncio
import json

from prometheus_client import CollectorRegistry, Counter

from mirrorgate.admin.server import AdminApp, start_admin
from mirrorgate.ir.table import HTTPListener, RoutingTable, Server


async def get(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


async def test_admin_endpoints() -> None:
    registry = CollectorRegistry()
    Counter("mirrorgate_test_things", "things", registry=registry).inc(3)
    table = RoutingTable(servers=(Server(address="127.0.0.1", port=80, listeners=(HTTPListener(name="l", port=80),)),))
    ready = {"v": False}
    app = AdminApp(
        registry=registry,
        table=lambda: table,
        status=lambda: {"items": [], "lastReloadError": None},
        ready=lambda: ready["v"],
    )
    server = await start_admin(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await get(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 200
        assert (await get(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 503
        ready["v"] = True
        assert (await get(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 200
        status, headers, body = await get(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain")
        assert b"mirrorgate_test_things_total 3.0" in body
        status, headers, body = await get(port, b"GET /config_dump HTTP/1.1\r\nHost: x\r\n\r\n")
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body)["servers"][0]["listeners"][0]["name"] == "l"
        status, _, body = await get(port, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert json.loads(body) == {"items": [], "lastReloadError": None}
        status, headers, body = await get(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, headers["Content-Length"], body) == (200, "3", b"")
        assert (await get(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 404
        assert (await get(port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))[0] == 405
        assert (await get(port, b"GARBAGE\r\n\r\n"))[0] == 400
        assert (await get(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n"))[0] == 431
    finally:
        server.close()
        await server.wait_closed()
