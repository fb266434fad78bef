"""The admin server over real sockets: every endpoint, readiness, bad input."""

from prometheus_client import CollectorRegistry, Counter

from mirrorgate.admin.server import AdminApp, start_admin
from mirrorgate.ir.table import HTTPListener, RoutingTable, Server
from tests.support.client import Conn, Response


async def get(port: int, raw: bytes) -> Response:
    """One request on a fresh connection; the server answers, then closes with nothing more."""
    async with await Conn.open(port) as conn:
        await conn.send(raw)
        response = await conn.read_response(head=raw.startswith(b"HEAD "))
        assert await conn.closed_by_peer()
    return response


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
        assert (await get(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")).status == 200
        assert (await get(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")).status == 503
        ready["v"] = True
        assert (await get(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")).status == 200
        r = await get(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.status == 200
        assert (r.header("Content-Type") or "").startswith("text/plain")
        assert b"mirrorgate_test_things_total 3.0" in r.body
        r = await get(port, b"GET /config_dump HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.header("Content-Type") == "application/json"
        assert r.json()["servers"][0]["listeners"][0]["name"] == "l"
        r = await get(port, b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert r.json() == {"items": [], "lastReloadError": None}
        r = await get(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (r.status, r.header("Content-Length"), r.body) == (200, "3", b"")  # and nothing after the head
        assert (await get(port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")).status == 404
        assert (await get(port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")).status == 405
        assert (await get(port, b"GARBAGE\r\n\r\n")).status == 400
        assert (await get(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")).status == 431
    finally:
        server.close()
        await server.wait_closed()


def test_the_dump_never_holds_a_private_key() -> None:
    from mirrorgate.ir.dump import table_to_builtins
    from mirrorgate.ir.table import Certificate, RoutingTable

    cert = Certificate(
        digest="sha256:ab", source="secret/default/tls", dns_names=("a.example",), chain_pem="CHAIN", key_pem="KEY"
    )
    dumped = table_to_builtins(RoutingTable(certificates=(cert,)))
    assert dumped["certificates"] == [
        {"digest": "sha256:ab", "source": "secret/default/tls", "dnsNames": ["a.example"]}
    ]
    assert "KEY" not in repr(dumped)


def test_a_certificate_repr_hides_the_key() -> None:
    from mirrorgate.ir.table import Certificate

    cert = Certificate(digest="sha256:ab", source="secret/default/tls", chain_pem="CHAIN", key_pem="PRIVATE")
    assert "PRIVATE" not in repr(cert)
    assert "PRIVATE" not in str(cert)
    assert "PRIVATE" not in repr((cert,))
